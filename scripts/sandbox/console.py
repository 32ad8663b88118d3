"""The sandbox's own output, kept apart from the handlers' JSON log lines.

Handlers write their structured logs to ``sys.stdout`` (one line per record in CloudWatch);
here ``sys.stdout`` is pointed at a log file while the console keeps the terminal.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, TextIO


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
        self._log: IO[str] | None = None

    def line(self, text: str = "") -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()

    def event(self, text: str) -> None:
        """A timestamped line (batches, requests)."""
        self.line(f"{time.strftime('%H:%M:%S')} {text}")

    def capture_stdout(self, path: Path) -> None:
        """Send everything else written to sys.stdout (the handlers' logs) to ``path``."""
        self._log = path.open("a", buffering=1, encoding="utf-8")
        self._saved_stdout = sys.stdout
        sys.stdout = self._log

    def restore_stdout(self) -> None:
        if self._saved_stdout is not None:
            sys.stdout = self._saved_stdout
            self._saved_stdout = None
        if self._log is not None:
            self._log.close()
            self._log = None
