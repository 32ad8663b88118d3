"""Batch write-back end to end on moto's server (S3, SQS, SSM) and the Segment emulator over
loopback HTTP: an output file -> S3 notification -> chunk messages -> every user's trait;
the report; a redelivered chunk adds nothing; a failing Segment ends in the DLQ with its range.

The SQS event source mapping is played by :func:`drain`: receive, call the handler with the
Lambda SQS event shape, delete what succeeded, make failures visible again at once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from backfill import chunks, handler, runtime

from emulators.segment import SegmentEmulator

REGION = "us-east-1"
CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
ROLE = "arn:aws:iam::123456789012:role/batch-personalize"
MAX_RECEIVES = 3


class Context:
    aws_request_id = "8f5e4b2a-0000-4000-8000-000000000002"

    def __init__(self, remaining_ms: int = 120_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Stack:
    env: dict[str, str]
    bucket: str
    queue_url: str
    dlq_url: str
    s3: Any
    sqs: Any
    container: runtime.Runtime | None = None

    def runtime(self) -> runtime.Runtime:
        """One container for the stack's settings, as Lambda keeps a warm one."""
        if self.container is None:
            self.container = runtime.Runtime(self.env)
        return self.container

    def drain(self, context: Context | None = None, rounds: int = 400, batch: int = 1) -> int:
        """Deliver queue messages (up to ``batch`` per invocation) to the handler until the
        queue is empty; invocations."""
        for calls in range(rounds):
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=batch,
                AttributeNames=["All"],
                VisibilityTimeout=60,
            ).get("Messages", [])
            if not got:
                return calls  # invocations so far
            event = {"Records": [sqs_record(message) for message in got]}
            result = handler.handle_with(self.runtime(), event, context or Context())
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            for message in got:
                if message["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=message["ReceiptHandle"],
                        VisibilityTimeout=0,
                    )
                else:
                    self.sqs.delete_message(
                        QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        raise AssertionError("the queue did not drain")

    def upload_output(self, job: str, data: bytes) -> str:
        key = f"output/{job}/users.json.out"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
        self.notify(key)
        return key

    def notify(self, key: str) -> None:
        """What S3 sends to the queue for an ObjectCreated (real shape, key URL-encoded)."""
        head = self.s3.head_object(Bucket=self.bucket, Key=key)
        body = {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": REGION,
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": self.bucket, "arn": f"arn:aws:s3:::{self.bucket}"},
                        "object": {"key": key, "size": head["ContentLength"], "eTag": head["ETag"]},
                    },
                }
            ]
        }
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))

    def json(self, key: str) -> dict[str, Any]:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def dead_letters(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10)
        return [json.loads(m["Body"]) for m in got.get("Messages", [])]


def sqs_record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:chunks",
        "awsRegion": REGION,
    }


def output_line(user: str, items: list[str], error: str | None = None) -> bytes:
    record = {
        "input": {"userId": user},
        "output": {
            "recommendedItems": items,
            "scores": [round(1 / (i + 2), 4) for i in range(len(items))],
        },
        "error": error,
    }
    return json.dumps(record).encode() + b"\n"


def items_for(user: str) -> list[str]:
    n = int(user.split("-")[1])
    return [f"item-{(n * 7 + k) % 97}" for k in range(10)]


@pytest.fixture
def segment() -> Iterator[SegmentEmulator]:
    with SegmentEmulator(seed=0) as emulator:
        emulator.rate_limits.disable()
        yield emulator


@pytest.fixture
def stack(
    monkeypatch: pytest.MonkeyPatch, moto_url: str, segment: SegmentEmulator
) -> Iterator[Stack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL": moto_url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    suffix = uuid.uuid4().hex[:10]
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_url)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_url)
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto_url)
    bucket = f"batch-{suffix}"
    s3.create_bucket(Bucket=bucket)
    dlq = sqs.create_queue(QueueName=f"chunks-dlq-{suffix}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=f"chunks-{suffix}",
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
            )
        },
    )["QueueUrl"]
    parameter = f"/batch-test/{suffix}/write-key"
    ssm.put_parameter(Name=parameter, Value=segment.write_key, Type="SecureString")
    env = {
        "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
        "BATCH_BUCKET": bucket,
        "BATCH_ROLE_ARN": ROLE,
        "CHUNK_QUEUE_URL": queue,
        "CHUNK_BYTES": "4096",
        "SEGMENT_WRITE_KEY_PARAMETER": parameter,
        "SEGMENT_API_URL": f"{segment.url}/v1",
        "SEGMENT_EVENTS_PER_S": "5000",
        "MAX_RECEIVE_COUNT": str(MAX_RECEIVES),
        "TIME_MARGIN_MS": "1000",
        "DEPLOYMENT_NAME": "batch-test",
    }
    runtime.reset()
    yield Stack(env, bucket, queue, dlq, s3, sqs)
    runtime.reset()


def sample_file(n_users: int) -> tuple[bytes, dict[str, list[str]]]:
    """n users, of which every 10th is an error line and every 25th has no items; plus one
    undecodable line in the middle and a truncated last line."""
    expected: dict[str, list[str]] = {}
    parts = []
    for n in range(n_users):
        user = f"user-{n}"
        if n % 10 == 3:
            parts.append(output_line(user, [], "Cannot find user"))
        elif n % 25 == 7:
            parts.append(output_line(user, []))
        else:
            parts.append(output_line(user, items_for(user)))
            expected[user] = items_for(user)
        if n == n_users // 2:
            parts.append(b"{not json\n")
    parts.append(output_line("user-truncated", ["a", "b"])[:-9])
    return b"".join(parts), expected


def test_an_output_file_sets_every_users_trait_and_the_report_counts_right(
    stack: Stack, segment: SegmentEmulator
) -> None:
    data, expected = sample_file(300)
    stack.upload_output("job-a", data)
    stack.drain()

    plan = stack.json(chunks.plan_key("job-a", "output/job-a/users.json.out"))
    assert plan["chunks"] == -(-len(data) // 4096) > 5  # several chunks, so boundaries cut lines
    for user, items in expected.items():
        assert (segment.traits(user) or {}).get("recommended_products") == items, user
    identifies = segment.messages("identify")
    assert len(identifies) == len(expected)
    assert {m["userId"] for m in identifies} == set(expected)
    assert all(m["integrations"] == {"Amazon Kinesis": False} for m in identifies)

    report = stack.json(chunks.report_key("job-a"))
    errors = sum(1 for n in range(300) if n % 10 == 3)
    assert report["status"] == "complete"
    assert report["chunks_total"] == report["chunks_done"] == plan["chunks"]
    assert report["users_written"] == len(expected)
    assert report["users_skipped"] == 300 - len(expected) - errors
    assert report["by_reason"]["failed_error_line"] == errors
    assert report["by_reason"]["undecodable"] == 2  # the bad line and the truncated last one
    assert report["by_reason"]["segment_failed"] == 0
    assert report["lines"] == 300 + 2
    assert report["users_failed"] == errors + 2


def test_a_redelivered_chunk_adds_no_duplicates(stack: Stack, segment: SegmentEmulator) -> None:
    data, expected = sample_file(120)
    key = stack.upload_output("job-b", data)
    stack.drain()
    before = segment.messages("identify")
    ids = sorted(m["messageId"] for m in before)

    # Chunk 0 again, as if its first delivery had died after sending (no state object yet).
    etag = stack.s3.head_object(Bucket=stack.bucket, Key=key)["ETag"]
    total = stack.json(chunks.plan_key("job-b", key))["chunks"]
    again = chunks.ChunkMessage("job-b", stack.bucket, key, etag, 0, total, 0, 4096)
    stack.s3.delete_object(Bucket=stack.bucket, Key=again.state_key())
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=again.body())
    # And the S3 notification again: the plan says it was split already.
    stack.notify(key)
    stack.drain()

    assert segment.dropped["duplicate_message_id"] > 0  # the resent identifies, same ids
    after = segment.messages("identify")
    assert sorted(m["messageId"] for m in after) == ids
    assert len(after) == len(expected)
    # A chunk whose state object exists is skipped outright.
    sent = segment.stats()
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=again.body())
    stack.drain()
    assert segment.stats() == sent


def test_a_chunk_out_of_time_continues_from_where_it_stopped(
    stack: Stack, segment: SegmentEmulator
) -> None:
    stack.env["CHUNK_BYTES"] = str(1 << 20)  # one chunk for the whole file
    data, expected = sample_file(40)
    stack.upload_output("job-c", data)
    # Every invocation is already past its deadline: each does one line, then continues.
    calls = stack.drain(Context(remaining_ms=0), rounds=200)
    assert calls > 40  # one line per invocation
    assert {m["userId"] for m in segment.messages("identify")} == set(expected)
    report = stack.json(chunks.report_key("job-c"))
    assert report["chunks_total"] == 1
    assert report["users_written"] == len(expected)
    assert report["lines"] == 42  # the carried counts add up: no line counted twice


def test_records_whose_turn_comes_too_late_in_a_batch_go_back_without_spending_receives(
    stack: Stack, segment: SegmentEmulator
) -> None:
    data, expected = sample_file(40)
    key = stack.upload_output("job-j", data)
    # Every invocation has no time left: its first record does one line, every other record
    # of its batch goes back unchanged. A chunk is handed back far more often than
    # maxReceiveCount (a new message each time), and none is dead-lettered or failed.
    calls = stack.drain(Context(remaining_ms=1000), rounds=300, batch=10)
    total = stack.json(chunks.plan_key("job-j", key))["chunks"]
    assert total > 1 and calls > 40
    assert [m for m in stack.dead_letters() if m.get("job") == "job-j"] == []
    assert {m["userId"] for m in segment.messages("identify")} == set(expected)
    report = stack.json(chunks.report_key("job-j"))
    assert (report["status"], report["chunks_done"], report["lines"]) == ("complete", total, 42)


def test_a_failing_segment_fails_the_chunk_then_dead_letters_it_with_its_range(
    stack: Stack, segment: SegmentEmulator
) -> None:
    data, _ = sample_file(30)
    key = stack.upload_output("job-d", data)
    segment.controls.set(fault_rate={"500": 1.0}, operations={"batch"})
    # Half a second before the deadline: no backoff fits, each attempt fails at once.
    stack.drain(Context(remaining_ms=1500))

    plan = stack.json(chunks.plan_key("job-d", key))
    letters = [m for m in stack.dead_letters() if m.get("job") == "job-d"]
    assert sorted(m["index"] for m in letters) == list(range(plan["chunks"]))
    assert all(m["key"] == key and m["end"] > m["start"] for m in letters)
    assert segment.messages("identify") == []
    report = stack.json(chunks.report_key("job-d"))
    assert report["status"] == "partial"
    assert report["chunks_failed"] == plan["chunks"]
    assert [(r["start"], r["end"]) for r in report["failed_ranges"]] == chunks.ranges(
        len(data), 4096
    )
    assert report["by_reason"]["segment_failed"] > 0
    assert report["users_written"] == 0


def test_429s_are_waited_out_within_the_deadline(stack: Stack, segment: SegmentEmulator) -> None:
    data, expected = sample_file(80)
    stack.upload_output("job-e", data)
    segment.controls.set(fault_rate={"429": 0.5}, retry_after_s=0, operations={"batch"}, seed=3)
    stack.drain()
    statuses = [r.status for r in segment.request_log() if r.operation == "batch"]
    assert 429 in statuses
    assert {m["userId"] for m in segment.messages("identify")} == set(expected)
    assert stack.json(chunks.report_key("job-e"))["users_written"] == len(expected)


def test_a_429_asking_to_wait_past_the_deadline_fails_the_chunk(
    stack: Stack, segment: SegmentEmulator
) -> None:
    data, _ = sample_file(20)
    stack.upload_output("job-f", data)
    segment.controls.set(fault_rate={"429": 1.0}, retry_after_s=30, operations={"batch"})
    handled = stack.drain(Context(remaining_ms=5_000))
    assert handled == 1 + MAX_RECEIVES * len(chunks.ranges(len(data), 4096))  # split + tries
    assert segment.messages("identify") == []
    assert stack.json(chunks.report_key("job-f"))["status"] == "partial"


def test_an_empty_output_file_gets_its_empty_report_at_once(stack: Stack) -> None:
    stack.upload_output("job-g", b"")
    assert stack.drain() == 1
    report = stack.json(chunks.report_key("job-g"))
    assert (report["status"], report["chunks_total"], report["users_written"]) == ("complete", 0, 0)


def test_an_s3_test_event_and_a_bad_message_are_not_dropped_silently(stack: Stack) -> None:
    test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": stack.bucket}
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(test_event))
    assert stack.drain() == 1  # ignored: deleted after one call
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody="not json")
    assert stack.drain() == MAX_RECEIVES  # reported every time, then dead-lettered
    got = stack.sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10)
    assert [m["Body"] for m in got.get("Messages", [])] == ["not json"]


def test_profile_exclusion_removes_purchased_items_keeping_the_ranking(
    stack: Stack, segment: SegmentEmulator
) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    token = f"/batch-test/{uuid.uuid4().hex[:8]}/profile-token"
    ssm.put_parameter(Name=token, Value=segment.profile_token, Type="SecureString")
    stack.env.update(
        PROFILE_EXCLUSION="true",
        SEGMENT_SPACE_ID=segment.space_id,
        SEGMENT_PROFILE_TOKEN_PARAMETER=token,
        SEGMENT_PROFILE_API_URL=f"{segment.url}/v1",
        SEGMENT_PROFILE_API_RPS="1000",
    )
    bought = items_for("user-1")[1:3]
    segment.set_traits("user-1", {"purchased_products": bought})
    data = output_line("user-1", items_for("user-1")) + output_line("user-2", items_for("user-2"))
    stack.upload_output("job-h", data)
    stack.drain()
    traits = segment.traits("user-1") or {}
    assert traits["recommended_products"] == [i for i in items_for("user-1") if i not in bought]
    assert (segment.traits("user-2") or {})["recommended_products"] == items_for("user-2")


def test_two_output_files_of_one_job_are_both_written_and_reported(
    stack: Stack, segment: SegmentEmulator
) -> None:
    first, expected_first = sample_file(60)
    keys = ["output/job-i/part-1.out", "output/job-i/part-2.out"]
    second = b"".join(output_line(f"other-{n}", items_for(f"other-{n}")) for n in range(50))
    for key, data in zip(keys, (first, second), strict=True):
        stack.s3.put_object(Bucket=stack.bucket, Key=key, Body=data)
        stack.notify(key)
    stack.drain()
    written = {m["userId"] for m in segment.messages("identify")}
    assert written == set(expected_first) | {f"other-{n}" for n in range(50)}
    report = stack.json(chunks.report_key("job-i"))
    plans = [stack.json(chunks.plan_key("job-i", key)) for key in keys]
    assert report["status"] == "complete"
    assert [s["key"] for s in report["sources"]] == keys
    assert report["chunks_total"] == sum(p["chunks"] for p in plans)
    assert report["users_written"] == len(expected_first) + 50


def test_a_corrected_reupload_reaches_segment_and_its_redelivery_does_not(
    stack: Stack, segment: SegmentEmulator
) -> None:
    # The batch bucket keeps versions (terraform/modules/batch_traits): each upload is one.
    stack.s3.put_bucket_versioning(
        Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    users = [f"user-{n}" for n in range(30)]
    wrong = b"".join(output_line(u, ["stale"]) for u in users)
    key = stack.upload_output("job-k", wrong)
    stack.drain()
    right = b"".join(output_line(u, items_for(u)) for u in users)
    stack.upload_output("job-k", right)  # the same key, a corrected file
    stack.drain()
    # Segment drops a messageId it has seen: the correction must come with new ones.
    assert segment.dropped["duplicate_message_id"] == 0
    assert all((segment.traits(u) or {})["recommended_products"] == items_for(u) for u in users)
    report = stack.json(chunks.report_key("job-k"))
    (source,) = report["sources"]
    assert source["version"] == stack.s3.head_object(Bucket=stack.bucket, Key=key)["VersionId"]
    assert report["users_written"] == len(users)
    # The same version delivered again (the notification, a chunk): nothing new reaches it.
    stack.notify(key)
    plan = stack.json(chunks.plan_key("job-k", key))
    first = chunks.ChunkMessage(
        "job-k", stack.bucket, key, plan["etag"], 0, plan["chunks"], 0, 4096, None,
        plan["version"],
    )  # fmt: skip
    stack.s3.delete_object(Bucket=stack.bucket, Key=first.state_key())
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=first.body())
    sent = len(segment.messages("identify"))
    stack.drain()
    assert segment.dropped["duplicate_message_id"] > 0
    assert len(segment.messages("identify")) == sent
