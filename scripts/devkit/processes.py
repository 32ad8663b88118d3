"""Reading a child process's output with a deadline (an emulator run as ``python -m ...``)."""

from __future__ import annotations

import contextlib
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

READY_TIMEOUT_S = 30.0
SCRIPTS = Path(__file__).resolve().parents[1]


def stdout_lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's stdout lines, read by a thread so that waits can have a deadline; an
    empty string marks the end of the output."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_ready(lines: queue.Queue[str], timeout_s: float = READY_TIMEOUT_S) -> str:
    """The URL from the "ready <url>" line; fails with the output if it never comes."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line.startswith("ready http://127.0.0.1:"):
            return line.split()[1]
        seen.append(line)
        if line == "":
            break
    raise AssertionError("emulator did not get ready:\n" + "".join(seen))


@contextlib.contextmanager
def emulator_process(
    module: str, *args: str
) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str], str]]:
    """``python -m <module> <args>`` (an emulator's process mode) started and ready: yields
    the process, its output lines after the ready line, and its URL; killed on exit if it is
    still running."""
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = stdout_lines(process)
        yield process, lines, wait_ready(lines)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
