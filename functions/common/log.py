"""Structured JSON logs on stdout (CloudWatch Logs keeps one line per record).

Only decisions and counts are logged, never whole events, profiles or secrets; user ids
appear only as a short keyed hash so a user's lines can be correlated without the id.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class Logger:
    def __init__(self, service: str, level: str | None = None) -> None:
        self.service = service
        wanted = (level or os.environ.get("LOG_LEVEL") or "INFO").upper()
        self.threshold = _LEVELS.get(wanted, 20)
        self.context: dict[str, Any] = {}

    def bind(self, **fields: Any) -> None:
        """Fields added to every following line (e.g. the request id), until the next bind."""
        self.context = dict(fields)

    def _emit(self, level: str, message: str, fields: dict[str, Any]) -> None:
        if _LEVELS[level] < self.threshold:
            return
        line = {
            "level": level,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "service": self.service,
            "message": message,
            **self.context,
            **fields,
        }
        sys.stdout.write(json.dumps(line, default=str, separators=(",", ":")) + "\n")
        sys.stdout.flush()

    def debug(self, message: str, **fields: Any) -> None:
        self._emit("DEBUG", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._emit("INFO", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._emit("WARNING", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._emit("ERROR", message, fields)


def hash_id(value: str) -> str:
    """A short, stable pseudonym for an id (for correlating log lines, not for security)."""
    # surrogatepass: an id with a lone surrogate must not make the log line itself fail.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]


ENV_DOCS = {"LOG_LEVEL": "`DEBUG`, `INFO`, `WARNING` or `ERROR`"}
