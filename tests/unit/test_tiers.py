"""The unit tier's guard (tests/tiers.py) refuses subprocesses and sockets here."""

from __future__ import annotations

import socket
import subprocess

import pytest


def test_a_subprocess_is_refused() -> None:
    with pytest.raises(AssertionError, match="move this test to tests/integration"):
        subprocess.run(["true"], check=False)


def test_a_loopback_socket_is_refused() -> None:
    with socket.socket() as sock, pytest.raises(AssertionError, match=r"socket\.connect"):
        sock.connect(("127.0.0.1", 9))
    with socket.socket() as sock, pytest.raises(AssertionError, match=r"socket\.bind"):
        sock.bind(("127.0.0.1", 0))
