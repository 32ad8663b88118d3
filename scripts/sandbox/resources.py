"""The AWS resources the deployment would create, made directly in moto with boto3.

The sandbox does not apply the Terraform root here: creating a few resources with boto3 takes
milliseconds and needs no terraform binary at run time (Terraform against moto is covered
by its own end-to-end test).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType
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


# The refresh queue's redrive, as Terraform's update_traits module sets it.
REFRESH_MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class UserStateResources:
    table_name: str
    table_arn: str
    refresh_queue_url: str
    refresh_queue_arn: str


def create_user_state(
    *,
    dynamodb: DynamoDBClient,
    sqs: SQSClient,
    prefix: str,
    dead_letter_queue_arn: str,
    visibility_timeout_s: int,
) -> UserStateResources:
    """The user_state module's table and update_traits' refresh queue, as Terraform makes
    them: partition key ``user_id`` (S), on demand, TTL on ``expires_at``
    (common.userstate's item schema); the queue redriven to the dead-letter queue after
    :data:`REFRESH_MAX_RECEIVE_COUNT` receives."""
    table = f"{prefix}-user-state"
    created = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    url = sqs.create_queue(
        QueueName=f"{prefix}-update-traits-refresh",
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": dead_letter_queue_arn,
                    "maxReceiveCount": REFRESH_MAX_RECEIVE_COUNT,
                }
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return UserStateResources(
        table_name=table,
        table_arn=created["TableDescription"]["TableArn"],
        refresh_queue_url=url,
        refresh_queue_arn=arn,
    )


# The chunk queue's redrive, as Terraform's batch_traits module sets it.
CHUNK_MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class BatchResources:
    bucket: str
    users_key: str
    users: int
    chunk_queue_url: str
    chunk_queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    role_arn: str


def create_batch(
    *,
    s3: S3Client,
    sqs: SQSClient,
    prefix: str,
    account: str,
    user_ids: list[str],
    visibility_timeout_s: int,
    users_key: str = "input/users.json",
) -> BatchResources:
    """The batch_traits module's bucket and queues in moto: chunk queue with its dead-letter
    queue (maxReceiveCount 5), the S3 -> SQS notification for output/*.out, and the users
    file at the documented key with every sample user."""
    name = f"{prefix}-batch-traits"
    s3.create_bucket(Bucket=name)
    queues: dict[str, tuple[str, str]] = {}
    # Named as terraform/modules/batch_traits names them.
    wanted: tuple[tuple[str, str, dict[QueueAttributeNameType, str]], ...] = (
        ("dlq", f"{prefix}-batch-chunks-dead-letter", {"MessageRetentionPeriod": "1209600"}),
        ("chunks", f"{prefix}-batch-chunks", {"VisibilityTimeout": str(visibility_timeout_s)}),
    )
    for role, queue_name, attributes in wanted:
        if role == "chunks":
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": queues["dlq"][1],
                    "maxReceiveCount": CHUNK_MAX_RECEIVE_COUNT,
                }
            )
        url = sqs.create_queue(QueueName=queue_name, Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queues[role] = (url, arn)
    s3.put_bucket_notification_configuration(
        Bucket=name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queues["chunks"][1],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                {"Name": "prefix", "Value": "output/"},
                                {"Name": "suffix", "Value": ".out"},
                            ]
                        }
                    },
                }
            ]
        },
    )
    body = "".join(json.dumps({"userId": user}) + "\n" for user in user_ids)
    s3.put_object(Bucket=name, Key=users_key, Body=body.encode())
    return BatchResources(
        bucket=name,
        users_key=users_key,
        users=len(user_ids),
        chunk_queue_url=queues["chunks"][0],
        chunk_queue_arn=queues["chunks"][1],
        dead_letter_queue_url=queues["dlq"][0],
        dead_letter_queue_arn=queues["dlq"][1],
        role_arn=f"arn:aws:iam::{account}:role/{prefix}-personalize-batch",
    )
