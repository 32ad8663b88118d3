"""A fake AWS environment for the SDK, and moto's server on a free loopback port.

Endpoints are set through the SDK's own variables (``AWS_ENDPOINT_URL_<SERVICE>``), as the
functions' configuration does; no developer config or credentials can leak in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from botocore.config import Config
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_personalize import PersonalizeClient
    from mypy_boto3_personalize_events import PersonalizeEventsClient
    from mypy_boto3_personalize_runtime import PersonalizeRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

REGION = "us-east-1"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# Variables that would let a developer's own AWS setup reach the SDK: always removed.
UNSET = ("AWS_PROFILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


def fake_aws_env(
    region: str = REGION,
    endpoints: Mapping[str, str] | None = None,
    *,
    credential: str = "testing",
) -> dict[str, str]:
    """Dummy credentials, ``region``, no config files, no instance metadata, and
    ``AWS_ENDPOINT_URL_<SERVICE>`` for each ``endpoints`` entry (service ids as botocore
    spells them, e.g. ``personalize-runtime``; the key ``""`` sets ``AWS_ENDPOINT_URL``)."""
    env = {
        "AWS_ACCESS_KEY_ID": credential,
        "AWS_SECRET_ACCESS_KEY": credential,
        "AWS_SESSION_TOKEN": credential,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for service, url in (endpoints or {}).items():
        suffix = f"_{service.upper().replace('-', '_')}" if service else ""
        env[f"AWS_ENDPOINT_URL{suffix}"] = url
    return env


def apply_env(env: Mapping[str, str], target: MutableMapping[str, str] | None = None) -> None:
    """Set ``env`` in ``target`` (default ``os.environ``) and remove :data:`UNSET`."""
    environ = os.environ if target is None else target
    environ.update(env)
    for name in UNSET:
        environ.pop(name, None)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server (SSM, SQS, Kinesis...) in a thread on a free 127.0.0.1 port; yields its
    URL and stops it on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        _, port = server.get_host_and_port()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


LocalService = Literal[
    "kinesis",
    "dynamodb",
    "s3",
    "sqs",
    "ssm",
    "personalize",
    "personalize-runtime",
    "personalize-events",
]


@overload
def local_client(
    service: Literal["kinesis"], endpoint_url: str, region: str = ..., config: Config | None = ...
) -> KinesisClient: ...
@overload
def local_client(
    service: Literal["dynamodb"], endpoint_url: str, region: str = ..., config: Config | None = ...
) -> DynamoDBClient: ...
@overload
def local_client(
    service: Literal["s3"], endpoint_url: str, region: str = ..., config: Config | None = ...
) -> S3Client: ...
@overload
def local_client(
    service: Literal["personalize"],
    endpoint_url: str,
    region: str = ...,
    config: Config | None = ...,
) -> PersonalizeClient: ...
@overload
def local_client(
    service: Literal["sqs"], endpoint_url: str, region: str = ..., config: Config | None = ...
) -> SQSClient: ...
@overload
def local_client(
    service: Literal["ssm"], endpoint_url: str, region: str = ..., config: Config | None = ...
) -> SSMClient: ...
@overload
def local_client(
    service: Literal["personalize-runtime"],
    endpoint_url: str,
    region: str = ...,
    config: Config | None = ...,
) -> PersonalizeRuntimeClient: ...
@overload
def local_client(
    service: Literal["personalize-events"],
    endpoint_url: str,
    region: str = ...,
    config: Config | None = ...,
) -> PersonalizeEventsClient: ...
def local_client(
    service: LocalService, endpoint_url: str, region: str = REGION, config: Config | None = None
) -> Any:
    """A typed boto3 client (own session, dummy credentials) for an emulator on loopback;
    any other endpoint is refused, so a local tool can never write to a real AWS account.
    Without ``config``: short timeouts and botocore's standard retry mode."""
    if urlsplit(endpoint_url).hostname not in LOOPBACK:
        raise ValueError(f"{service} endpoint must be on 127.0.0.1, not {endpoint_url!r}")
    import boto3
    from botocore.config import Config

    session = boto3.session.Session()
    make: Any = session.client  # one overload per literal service name; ours is a parameter
    return make(
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - a local emulator accepts any
        config=config or Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard"}),
    )


@dataclass(frozen=True)
class TraitsResources:
    """What update_traits needs in AWS besides Personalize: the Segment secrets as SSM
    SecureStrings and a dead-letter queue, and with ``user_state`` the user-state table and
    the refresh queue (made in moto by :func:`traits_resources`)."""

    sqs: SQSClient
    queue_url: str
    write_key_parameter: str
    profile_token_parameter: str | None
    user_state_table: str | None = None
    refresh_queue_url: str | None = None

    def env(self) -> dict[str, str]:
        """The function's variables that name these resources."""
        env = {
            "SEGMENT_WRITE_KEY_PARAMETER": self.write_key_parameter,
            "DEAD_LETTER_QUEUE_URL": self.queue_url,
        }
        if self.profile_token_parameter is not None:
            env["SEGMENT_PROFILE_TOKEN_PARAMETER"] = self.profile_token_parameter
        if self.user_state_table is not None:
            env["USER_STATE_TABLE"] = self.user_state_table
        if self.refresh_queue_url is not None:
            env["REFRESH_QUEUE_URL"] = self.refresh_queue_url
        return env


def create_user_state_table(dynamodb: DynamoDBClient, table: str) -> None:
    """The user-state table as Terraform declares it (the user_state module): partition key
    ``user_id`` (S), on-demand, TTL on ``expires_at`` (which moto records but never acts on)."""
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True},
    )


def traits_resources(
    moto_url: str,
    name: str,
    *,
    write_key: str,
    profile_token: str | None = None,
    user_state: bool = False,
    region: str = REGION,
) -> TraitsResources:
    """The write key (and the profile token, when given) under ``/<name>/<random>/`` and a
    queue ``<name>-dlq-<random>``: names of their own, so tests sharing one moto never meet.
    With ``user_state``: a table ``<name>-user-state-<random>`` and a refresh queue
    ``<name>-refresh-<random>`` too."""
    prefix = f"/{name}/{uuid.uuid4().hex}"
    ssm = local_client("ssm", moto_url, region)
    ssm.put_parameter(Name=f"{prefix}/write-key", Value=write_key, Type="SecureString")
    token_parameter = None
    if profile_token is not None:
        token_parameter = f"{prefix}/profile-token"
        ssm.put_parameter(Name=token_parameter, Value=profile_token, Type="SecureString")
    sqs = local_client("sqs", moto_url, region)
    queue_url = sqs.create_queue(QueueName=f"{name}-dlq-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    table = refresh_url = None
    if user_state:
        suffix = uuid.uuid4().hex[:12]
        table = f"{name}-user-state-{suffix}"
        create_user_state_table(local_client("dynamodb", moto_url, region), table)
        refresh_url = sqs.create_queue(QueueName=f"{name}-refresh-{suffix}")["QueueUrl"]
    return TraitsResources(
        sqs, queue_url, f"{prefix}/write-key", token_parameter, table, refresh_url
    )
