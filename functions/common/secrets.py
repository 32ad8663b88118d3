"""SSM SecureString values, fetched once per container and cached with a TTL; the log
pseudonyms' key (:class:`LogHashKey`) is read the same way, in the background."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from common.aws import error_code

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# Errors that no retry will fix: the deployment is wrong.
_PERMANENT = {"ParameterNotFound", "AccessDeniedException", "ParameterVersionNotFound"}
# What Terraform writes when no value was given (terraform/modules/segment_secrets). Segment
# answers 200 to an unknown write key and drops the data, so it must count as missing.
PLACEHOLDER = "set-out-of-band"
# The shortest log pseudonym key accepted: Terraform generates 64 characters; a short one
# typed by hand could be guessed, and with it every pseudonym reversed from a list of ids.
MIN_LOG_HASH_KEY = 32


class SecretError(Exception):
    def __init__(self, name: str, permanent: bool, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.permanent = permanent
        self.reason = reason


class SecretCache:
    def __init__(
        self,
        ssm: Callable[[], SSMClient],
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssm = ssm
        self._ttl = ttl_seconds
        self._clock = clock
        self._values: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        now = self._clock()
        cached = self._values.get(name)
        if cached is not None and now - cached[1] < self._ttl:
            return cached[0]
        with self._lock:
            cached = self._values.get(name)
            if cached is not None and now - cached[1] < self._ttl:
                return cached[0]
            value = self._fetch(name)
            self._values[name] = (value, self._clock())
            return value

    def invalidate(self, name: str) -> None:
        """Drop a value that the far side rejected, so a rotated secret is picked up."""
        self._values.pop(name, None)

    def _fetch(self, name: str) -> str:
        try:
            response = self._ssm().get_parameter(Name=name, WithDecryption=True)
        except Exception as exc:  # classified below, never swallowed
            code = error_code(exc)
            raise SecretError(name, code in _PERMANENT, code or type(exc).__name__) from exc
        parameter = response.get("Parameter") or {}
        value = parameter.get("Value")
        if not isinstance(value, str) or not value.strip():
            raise SecretError(name, True, "parameter has no value")
        if value.strip() == PLACEHOLDER:
            raise SecretError(name, True, f"parameter still holds the placeholder {PLACEHOLDER!r}")
        if parameter.get("Type") != "SecureString":
            raise SecretError(name, True, "parameter must be a SecureString")
        # A value pasted with a trailing newline or spaces would be sent as part of the key
        # (and Segment answers 200 to a wrong write key): no secret here has either.
        return value.strip()


def _in_a_thread(work: Callable[[], None]) -> None:
    threading.Thread(target=work, name="log-hash-key", daemon=True).start()


class LogHashKey:
    """The deployment's key for the user ids' pseudonyms in the logs
    (``LOG_HASH_KEY_PARAMETER``), read through the :class:`SecretCache` like the other
    secrets, but never on the caller's path: :meth:`current` answers what is known now and,
    when nothing is (or a refresh is due), starts a read in the background. Until a key is
    read, and after a read fails with none known, it is None: the log lines carry no id
    (never an unkeyed hash). A failed read is tried again after ``retry_s`` and reported
    through ``on_problem`` each time."""

    def __init__(
        self,
        secrets: SecretCache,
        name: str,
        *,
        on_problem: Callable[[SecretError], None],
        start: Callable[[Callable[[], None]], None] = _in_a_thread,
        clock: Callable[[], float] = time.monotonic,
        refresh_s: float = 300.0,
        retry_s: float = 60.0,
    ) -> None:
        self._secrets = secrets
        self.name = name
        self._on_problem = on_problem
        self._start = start
        self._clock = clock
        self._refresh_s = refresh_s
        self._retry_s = retry_s
        self._lock = threading.Lock()
        self._key: bytes | None = None
        self._due = float("-inf")
        self._reading = False
        self._read_once = threading.Event()

    def wait(self, timeout_s: float) -> bool:
        """Whether a read has finished (with a key or not) within ``timeout_s``: for tests and
        tools that must not race the background read; the functions never wait."""
        return self._read_once.wait(timeout_s)

    def current(self) -> bytes | None:
        with self._lock:
            begin = not self._reading and self._clock() >= self._due
            if begin:
                self._reading = True
            key = self._key
        if begin:
            self._start(self._read)
        return key

    def _read(self) -> None:
        key: bytes | None = None
        problem: SecretError | None = None
        try:
            value = self._secrets.get(self.name)
            if len(value) < MIN_LOG_HASH_KEY:
                raise SecretError(
                    self.name, True, f"the key must be at least {MIN_LOG_HASH_KEY} characters"
                )
            key = value.encode("utf-8")
        except SecretError as exc:
            problem = exc
        except Exception as exc:  # noqa: BLE001 - a background read must never raise
            problem = SecretError(self.name, False, type(exc).__name__)
        with self._lock:
            self._reading = False
            if key is not None:
                self._key = key
                self._due = self._clock() + self._refresh_s
            else:
                self._due = self._clock() + self._retry_s  # a key read before stays in use
        if problem is not None:
            self._on_problem(problem)
        self._read_once.set()
