"""boto3 clients with explicit timeouts and botocore retry modes, created lazily and typed.

One :class:`Clients` per container (held by the function's runtime, see
:mod:`common.runtime`): a client per (service, policy), made on first use. Endpoints come
from the SDK's own variables (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>), so nothing
here knows about emulators.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from common.config import ConfigError

if TYPE_CHECKING:  # boto3-stubs: types only, not in the Lambda runtime
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_personalize import PersonalizeClient
    from mypy_boto3_personalize_events import PersonalizeEventsClient
    from mypy_boto3_personalize_runtime import PersonalizeRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient


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


class Clients:
    """A container's boto3 clients: one per (service, policy), created on first use.

    botocore's ``NoRegionError`` becomes the :class:`ConfigError` naming the variable it
    reads, here and nowhere else.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[tuple[str, ClientPolicy], Any] = {}

    def personalize_runtime(self, policy: ClientPolicy) -> PersonalizeRuntimeClient:
        client: PersonalizeRuntimeClient = self._client("personalize-runtime", policy)
        return client

    def personalize_events(self, policy: ClientPolicy) -> PersonalizeEventsClient:
        client: PersonalizeEventsClient = self._client("personalize-events", policy)
        return client

    def personalize(self, policy: ClientPolicy) -> PersonalizeClient:
        """The control plane (batch inference jobs, DescribeCampaign)."""
        client: PersonalizeClient = self._client("personalize", policy)
        return client

    def s3(self, policy: ClientPolicy) -> S3Client:
        client: S3Client = self._client("s3", policy)
        return client

    def ssm(self, policy: ClientPolicy) -> SSMClient:
        client: SSMClient = self._client("ssm", policy)
        return client

    def dynamodb(self, policy: ClientPolicy) -> DynamoDBClient:
        """The user-state store's table (common.userstate)."""
        client: DynamoDBClient = self._client("dynamodb", policy)
        return client

    def sqs(self, policy: ClientPolicy) -> SQSClient:
        client: SQSClient = self._client("sqs", policy)
        return client

    def _client(self, service: str, policy: ClientPolicy) -> Any:
        key = (service, policy)
        found = self._made.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._made.get(key)
            if found is None:
                found = self._made[key] = _new_client(service, policy)
        return found


def _new_client(service: str, policy: ClientPolicy) -> Any:
    import boto3  # imported on first use, not at cold start
    from botocore.config import Config

    config = Config(
        connect_timeout=policy.connect_timeout,
        read_timeout=policy.read_timeout,
        retries={"mode": policy.retry_mode, "max_attempts": policy.max_attempts},
        max_pool_connections=policy.max_pool_connections,
    )
    session: Any = boto3.session.Session()
    try:
        return session.client(service, config=config)
    except Exception as exc:
        if type(exc).__name__ == "NoRegionError":
            raise missing_region() from exc
        raise


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
