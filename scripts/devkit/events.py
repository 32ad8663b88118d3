"""Events as AWS services deliver them to a Lambda function, for tests and local runs.

The shapes follow the AWS documentation's samples (Lambda developer guide, "Using Lambda with
Kinesis / API Gateway / Amazon SQS / Amazon S3"); Powertools for AWS Lambda keeps the same
examples as JSON (https://github.com/aws-powertools/powertools-lambda-python/tree/develop/tests/events).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/segment-personalize-events"
INVOKE_IDENTITY_ARN = f"arn:aws:iam::{ACCOUNT}:role/update-traits"
SHARD_ID = "shardId-000000000000"
# A real-looking 56-digit Kinesis sequence number is this prefix and a 7-digit counter.
SEQUENCE_PREFIX = "4959033827149025660855969253836157109592157598914"
ARRIVAL = 1710064800.0  # 2024-03-10T10:00:00Z


def sequence_number(n: int) -> str:
    """The ``n``-th sequence number of the default shard (increasing with ``n``)."""
    return f"{SEQUENCE_PREFIX}{n:07d}"


def kinesis_data(message: Any) -> str:
    """A record's base64 ``data``: a ``str`` is taken as the data field itself (so a test can
    send text that is not base64), ``bytes`` are encoded as they are, anything else as JSON."""
    if isinstance(message, str):
        return message
    raw = message if isinstance(message, bytes) else json.dumps(message).encode()
    return base64.b64encode(raw).decode("ascii")


def kinesis_record(
    data: str,
    *,
    sequence: str,
    partition_key: str = "k",
    arrival: float = ARRIVAL,
    stream_arn: str = STREAM_ARN,
    region: str = REGION,
    shard_id: str = SHARD_ID,
    invoke_identity_arn: str = INVOKE_IDENTITY_ARN,
) -> dict[str, Any]:
    """One record of a Kinesis event source mapping's event; ``data`` is already base64."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": data,
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": invoke_identity_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def _partition_key(message: Any) -> str:
    if isinstance(message, Mapping):
        return str(message.get("userId") or message.get("anonymousId") or "k")
    return "k"


def kinesis_event(
    messages: Iterable[Any],
    *,
    offset: int = 0,
    stream_arn: str = STREAM_ARN,
    region: str = REGION,
) -> dict[str, Any]:
    """A Kinesis event with one record per message (see :func:`kinesis_data`), sequence
    numbers counting up from ``offset``, partitioned by userId (else anonymousId)."""
    return {
        "Records": [
            kinesis_record(
                kinesis_data(message),
                sequence=sequence_number(n),
                partition_key=_partition_key(message),
                arrival=ARRIVAL + n / 10,
                stream_arn=stream_arn,
                region=region,
            )
            for n, message in enumerate(messages, start=offset)
        ]
    }


def kinesis_messages(event: Mapping[str, Any]) -> list[Any]:
    """The JSON messages in a Kinesis event's records (the inverse of :func:`kinesis_event`)."""
    return [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]


def apigw_event(
    base: Path | Mapping[str, Any],
    query: Mapping[str, str] | None = None,
    *,
    body: Any = None,
) -> dict[str, Any]:
    """An API Gateway REST (proxy, payload v1) event: a JSON fixture file (or a dict) with
    ``query`` as its query string, set in both forms as API Gateway builds them, and ``body``
    (JSON-encoded unless a ``str``) when given."""
    value: dict[str, Any] = (
        json.loads(base.read_text(encoding="utf-8"))
        if isinstance(base, Path)
        else json.loads(json.dumps(base))
    )
    if query is not None:
        value["queryStringParameters"] = dict(query) or None
        value["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if body is not None:
        value["body"] = body if isinstance(body, str) else json.dumps(body)
        value["isBase64Encoded"] = False
    return value


def sqs_event(
    bodies: Sequence[Any],
    *,
    queue_arn: str = f"arn:aws:sqs:{REGION}:{ACCOUNT}:segment-personalize-queue",
) -> dict[str, Any]:
    """An SQS event source mapping's event: one record per body (JSON-encoded unless a
    ``str``), message ids ``m-0``, ``m-1``... (what ``batchItemFailures`` names)."""
    return {
        "Records": [
            {
                "messageId": f"m-{n}",
                "receiptHandle": f"receipt-{n}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(ARRIVAL * 1000) + n),
                    "SenderId": ACCOUNT,
                    "ApproximateFirstReceiveTimestamp": str(int(ARRIVAL * 1000) + n),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
            for n, body in enumerate(bodies)
        ]
    }


def s3_event(
    bucket: str, keys: Sequence[str], *, sizes: Sequence[int] | None = None
) -> dict[str, Any]:
    """An S3 ``ObjectCreated:Put`` notification for ``keys`` in ``bucket``. Keys are written
    as S3 writes them: URL-encoded, spaces as ``+``."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2024-03-10T10:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        "size": sizes[n] if sizes else 0,
                        "sequencer": f"{n:016X}",
                    },
                },
            }
            for n, key in enumerate(keys)
        ]
    }
