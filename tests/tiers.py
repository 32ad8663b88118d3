"""Test tiers (pytest plugin, loaded by tests/conftest.py).

``tests/unit`` runs in-process: no subprocess, no socket (loopback included). A unit test that
needs either belongs in ``tests/integration`` or ``tests/e2e``; this guard makes such a test
fail with that message instead of quietly slowing the tier down.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

UNIT = Path(__file__).resolve().parent / "unit"
ADVICE = "the unit tier runs in-process; move this test to tests/integration or tests/e2e"


def _refuse(what: str) -> Any:
    def refuse(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError(f"{what}: {ADVICE}")

    return refuse


@pytest.fixture(autouse=True)
def _unit_tier_in_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if not request.node.path.is_relative_to(UNIT):
        return
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("subprocess"))
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse(f"socket.{name}"))
