"""The AWS resources the deployment would create, made directly in moto with boto3.

The sandbox does not apply the Terraform root here: creating four resources with boto3 takes
milliseconds and needs no terraform binary at run time (Terraform against moto is covered
by its own end-to-end test).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient


@dataclass(frozen=True)
class Resources:
    stream_name: str
    stream_arn: str
    shards: int
    write_key_parameter: str
    profile_token_parameter: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    on_failure_queue_url: str
    on_failure_queue_arn: str


def create(
    *,
    kinesis: KinesisClient,
    ssm: SSMClient,
    sqs: SQSClient,
    prefix: str,
    shards: int,
    write_key: str,
    profile_token: str,
    timeout_s: float = 10.0,
) -> Resources:
    stream_name = f"{prefix}-segment-events"
    kinesis.create_stream(StreamName=stream_name, ShardCount=shards)
    deadline = time.monotonic() + timeout_s
    while True:
        summary = kinesis.describe_stream_summary(StreamName=stream_name)
        description = summary["StreamDescriptionSummary"]
        if description["StreamStatus"] == "ACTIVE":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"stream {stream_name} did not become ACTIVE")
        time.sleep(0.1)

    write_key_parameter = f"/{prefix}/segment/write-key"
    profile_token_parameter = f"/{prefix}/segment/profile-token"
    for name, value in ((write_key_parameter, write_key), (profile_token_parameter, profile_token)):
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)

    queues: dict[str, tuple[str, str]] = {}
    for role in ("dead-letter", "on-failure"):
        url = sqs.create_queue(
            QueueName=f"{prefix}-update-traits-{role}",
            Attributes={"MessageRetentionPeriod": "1209600"},
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queues[role] = (url, arn)

    return Resources(
        stream_name=stream_name,
        stream_arn=description["StreamARN"],
        shards=shards,
        write_key_parameter=write_key_parameter,
        profile_token_parameter=profile_token_parameter,
        dead_letter_queue_url=queues["dead-letter"][0],
        dead_letter_queue_arn=queues["dead-letter"][1],
        on_failure_queue_url=queues["on-failure"][0],
        on_failure_queue_arn=queues["on-failure"][1],
    )
