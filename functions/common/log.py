"""Structured JSON logs on stdout (CloudWatch Logs keeps one line per record).

Only decisions and counts are logged, never whole events, profiles or secrets; user ids
appear only as a short keyed hash (HMAC-SHA256 under the deployment's own key,
``LOG_HASH_KEY_PARAMETER``), so a user's lines can be correlated without the id, and a list
of e-mail addresses hashed by anyone without the key reverses nothing. Without the key (not
configured, or not read yet) no id is logged at all: never an unkeyed hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from common.config import ConfigError
from common.settings import LOG_LEVEL

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


def level_of(env: Mapping[str, str]) -> str:
    """``LOG_LEVEL``, leniently: the logger must exist to report a configuration error, so
    a value it does not know logs at INFO."""
    try:
        return LOG_LEVEL.value(env)
    except ConfigError:
        return "INFO"


class Logger:
    def __init__(self, service: str, level: str | None = None) -> None:
        self.service = service
        wanted = level_of(os.environ) if level is None else level.upper()
        self.threshold = _LEVELS.get(wanted, 20)
        self.context: dict[str, Any] = {}
        self._pseudonym_key: Callable[[], bytes | None] = _no_key

    def use_pseudonym_key(self, key: Callable[[], bytes | None]) -> None:
        """Where :meth:`pseudonym` gets the deployment's key (it must not block: None while
        the key is not known)."""
        self._pseudonym_key = key

    def pseudonym(self, value: str) -> str | None:
        """The id as it may appear in a log line, or None (then log no id)."""
        return hash_id(value, self._pseudonym_key())

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


def _no_key() -> bytes | None:
    return None


def hash_id(value: str, key: bytes | None) -> str | None:
    """A short, stable pseudonym for an id under ``key`` (HMAC-SHA256, 16 hex digits); None
    without a key."""
    if not key:
        return None
    # surrogatepass: an id with a lone surrogate must not make the log line itself fail.
    data = value.encode("utf-8", "surrogatepass")
    return hmac.new(key, data, hashlib.sha256).hexdigest()[:16]
