"""SSM SecureString values, fetched once per container and cached with a TTL."""

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
