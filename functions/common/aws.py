"""Lazily created, cached boto3 clients with explicit timeouts and botocore retry modes.

Endpoints come from the SDK's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>),
so nothing here knows about emulators.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Literal

from common.config import ConfigError

_lock = threading.Lock()
_clients: dict[tuple[str, ClientPolicy], Any] = {}


@dataclass(frozen=True)
class ClientPolicy:
    """Timeouts and retries for one use of a client (an API answers fast or not at all;
    a stream consumer can wait a little longer)."""

    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    # botocore's ``max_attempts``: retries AFTER the first call (2 → up to 3 calls).
    max_attempts: int = 2
    retry_mode: Literal["standard", "adaptive", "legacy"] = "standard"
    max_pool_connections: int = 10


def client(service: str, policy: ClientPolicy = ClientPolicy()) -> Any:
    """One client per (service, policy) per container, created on first use."""
    key = (service, policy)
    found = _clients.get(key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(key)
        if found is None:
            import boto3  # imported on first use, not at cold start
            from botocore.config import Config

            config = Config(
                connect_timeout=policy.connect_timeout,
                read_timeout=policy.read_timeout,
                retries={"mode": policy.retry_mode, "max_attempts": policy.max_attempts},
                max_pool_connections=policy.max_pool_connections,
            )
            session: Any = boto3.session.Session()
            found = session.client(service, config=config)
            _clients[key] = found
    return found


def reset_clients() -> None:
    """Forget cached clients (tests that change endpoints between cases)."""
    with _lock:
        _clients.clear()


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError, else None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if isinstance(status, int) else None
    return None


def missing_region() -> ConfigError:
    """What to log when botocore finds no region: it reads AWS_DEFAULT_REGION (or the AWS
    config file), not AWS_REGION, so naming AWS_REGION would send the operator astray."""
    return ConfigError(
        "AWS_DEFAULT_REGION",
        "is not set and the AWS config file names no region (botocore does not read AWS_REGION)",
    )


def require_region() -> None:
    """ConfigError unless botocore can find a region (checked once, before any client)."""
    import boto3

    session: Any = boto3.session.Session()
    if not session.region_name:
        raise missing_region()
