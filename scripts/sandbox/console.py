"""The sandbox's own output, kept apart from the handlers' JSON log lines.

Handlers write their structured logs to ``sys.stdout`` (one line per record in CloudWatch);
here ``sys.stdout`` is pointed at a log file while the console keeps the terminal.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO


class Console:
    def __init__(self, stream: TextIO | None = None) -> None:
        if stream is None:
            # A private copy of the terminal's descriptor: unaffected by sys.stdout changes.
            stream = open(  # noqa: SIM115 - lives as long as the sandbox
                os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8", closefd=True
            )
        self._stream = stream
        self._lock = threading.Lock()
        self._saved_stdout: TextIO | None = None
        self._log: TextIO | None = None

    def line(self, text: str = "") -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    def event(self, text: str) -> None:
        """A timestamped line (batches, requests)."""
        self.line(f"{time.strftime('%H:%M:%S')} {text}")

    def capture_stdout(self, path: Path, on_line: Callable[[str], None] | None = None) -> None:
        """Send everything else written to sys.stdout (the handlers' logs) to ``path``;
        ``on_line`` also sees each complete line (how the sandbox learns of dead letters, as an
        operator would from CloudWatch Logs)."""
        self._log = path.open("a", buffering=1, encoding="utf-8")
        self._saved_stdout = sys.stdout
        sys.stdout = _Tee(self._log, on_line) if on_line is not None else self._log

    def restore_stdout(self) -> None:
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout
            self._saved_stdout = None
        if self._log is not None:
            self._log.close()
            self._log = None


class _Tee(io.TextIOBase):
    """Writes through to a file and hands each complete line to a callback (whose failure
    never reaches the writer: a handler's log call must not raise)."""

    def __init__(self, target: TextIO, on_line: Callable[[str], None]) -> None:
        self._target = target
        self._on_line = on_line
        self._partial = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._target.encoding

    def fileno(self) -> int:
        return self._target.fileno()

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        with self._lock:
            self._target.write(text)
            self._partial += text
            *lines, self._partial = self._partial.split("\n")
        for line in lines:
            with contextlib.suppress(Exception):
                self._on_line(line)
        return len(text)

    def flush(self) -> None:
        self._target.flush()
