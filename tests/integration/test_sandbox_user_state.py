"""The sandbox's user-state store on moto's server: the table as Terraform makes it (key,
TTL), the refresh queue's delay and redrive as SQS applies them (moto's server keeps a
delayed message hidden, so the poller need not), and the console's store counters."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from common.userstate import UserStateStore
from devkit.aws import local_client
from sandbox import resources
from sandbox.sqs_poller import SqsEventSource
from sandbox.store_counts import sample

REGION = "us-east-1"


@pytest.fixture
def made(moto_url: str) -> tuple[resources.UserStateResources, str, Any, Any]:
    sqs, dynamodb = local_client("sqs", moto_url), local_client("dynamodb", moto_url)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=f"{prefix}-update-traits-dead-letter")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    store = resources.create_user_state(
        dynamodb=dynamodb, sqs=sqs, prefix=prefix, dead_letter_queue_arn=dlq_arn,
        visibility_timeout_s=1,
    )  # fmt: skip
    return store, dlq, sqs, dynamodb


def poller(sqs: Any, store: resources.UserStateResources, invoke: Any) -> SqsEventSource:
    return SqsEventSource(
        sqs=sqs,
        queue_url=store.refresh_queue_url,
        queue_arn=store.refresh_queue_arn,
        region=REGION,
        invoke=invoke,
        batch_size=10,
    )


def test_the_table_has_terraforms_key_and_ttl(made: Any) -> None:
    store, _, _, dynamodb = made
    table = dynamodb.describe_table(TableName=store.table_name)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=store.table_name)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    assert store.table_name.endswith("-user-state")


def test_a_delayed_refresh_is_invoked_only_after_its_delay(made: Any) -> None:
    store, _, sqs, _ = made
    seen: list[tuple[float, dict[str, Any]]] = []
    source = poller(sqs, store, lambda event: seen.append((time.monotonic(), event)))
    body = {"v": 1, "userId": "u-1", "after": time.time(), "watermark": 1}
    sent = time.monotonic()
    sqs.send_message(QueueUrl=store.refresh_queue_url, MessageBody=json.dumps(body), DelaySeconds=3)
    assert source.poll_once() is None  # a one-second long poll: still delayed
    deadline = sent + 15
    while not seen and time.monotonic() < deadline:
        source.poll_once()
    assert seen, "the delayed message never arrived"
    at, event = seen[0]
    assert at - sent >= 2.9  # not before its DelaySeconds (moto counts in milliseconds)
    (record,) = event["Records"]
    assert json.loads(record["body"]) == body
    assert record["eventSourceARN"] == store.refresh_queue_arn
    assert source.stats.deleted == 1


def test_a_refresh_that_keeps_failing_ends_in_the_dead_letter_queue(made: Any) -> None:
    store, dlq, sqs, _ = made

    def fail(event: dict[str, Any]) -> dict[str, Any]:
        ids = [r["messageId"] for r in event["Records"]]
        return {"batchItemFailures": [{"itemIdentifier": i} for i in ids]}

    source = poller(sqs, store, fail)
    sqs.send_message(QueueUrl=store.refresh_queue_url, MessageBody='{"v": 1, "userId": "u-2"}')

    def parked() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return list(got.get("Messages", []))

    deadline = time.monotonic() + 30
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        source.poll_once()
        found = parked()
    assert found and json.loads(found[0]["Body"])["userId"] == "u-2"
    assert source.stats.failed == resources.REFRESH_MAX_RECEIVE_COUNT
    assert source.stats.deleted == 0


def test_the_counters_read_the_table_and_the_queue(made: Any) -> None:
    store, _, sqs, dynamodb = made
    state = UserStateStore(dynamodb, store.table_name)
    state.add_purchases("bought-only", ["A"])
    state.seed("seeded", ["B"])
    state.seed("seeded-too", [])
    for _ in range(2):
        sqs.send_message(QueueUrl=store.refresh_queue_url, MessageBody="{}", DelaySeconds=60)
    counts = sample(dynamodb, sqs, store.table_name, store.refresh_queue_url, trailing=5)
    assert (counts.users, counts.seeded, counts.refreshed, counts.capped) == (3, 2, 0, 0)
    assert (counts.waiting, counts.trailing, counts.deferred, counts.complete) == (2, 5, 7, True)
