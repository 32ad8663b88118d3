"""Child processes that never outlive the sandbox, and ports that fail fast.

Each child starts in its own session (so a terminal's Ctrl-C reaches only the sandbox, which
then stops the children in order), asks the kernel to kill it if the sandbox dies without
cleaning up (Linux ``PR_SET_PDEATHSIG``), and is stopped by signalling its whole process
group: SIGTERM, a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO


class PortInUse(Exception):
    def __init__(self, what: str, host: str, port: int) -> None:
        super().__init__(
            f"port {port} on {host} is already in use ({what}); "
            f"stop whatever holds it or choose another port"
        )
        self.port = port


def check_port_free(what: str, host: str, port: int) -> None:
    """Fail at once, with a message naming the port, if ``port`` cannot be bound."""
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            raise PortInUse(what, host, port) from None
        raise
    finally:
        probe.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None


# Loaded in the parent: the child, between fork and exec, only makes one system call.
_LIBC = _load_libc()
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the sandbox dies without stopping it."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Child:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM the group, wait up to ``timeout_s``, then SIGKILL it; always reaps."""
        try:
            if self.proc.poll() is None:
                self._signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self._signal(signal.SIGKILL)
                    self.proc.wait(timeout=timeout_s)
            # Grandchildren (if any) share the group: make sure none is left.
            self._signal(signal.SIGKILL)
        finally:
            self._log.close()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)


def wait_http(url: str, child: Child | None, timeout_s: float) -> None:
    """Poll ``url`` until it answers (any HTTP status), the child dies, or time runs out."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(
                f"{child.name} exited with code {child.proc.returncode}:\n{child.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0):  # noqa: S310 - loopback URL we built
                return
        except urllib.error.HTTPError:
            return  # it answered
        except (OSError, urllib.error.URLError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s ({last})")


def start_moto(host: str, port: int, log_path: Path) -> Child:
    """moto's server for every service on one port (the sandbox uses Kinesis, SSM and SQS)."""
    env = dict(os.environ)
    return Child(
        "moto server",
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        log_path,
        env,
    )
