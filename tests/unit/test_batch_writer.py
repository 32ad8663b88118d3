"""The chunk worker and the SQS handler on in-memory S3, SQS and Tracking fakes with a fake
clock: several output files per job, a re-uploaded output, a lost report, one user's Profile
API refusal, metrics of a continuation, time-stopped batches, and the events/s bucket."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from backfill import chunks, handler, runtime, splitter, writer
from backfill.settings import Settings, load
from botocore.exceptions import ClientError

from common.profiles import ProfileError
from common.ratelimit import TokenBucket
from common.tracking import TrackingError

BUCKET = "batch"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/chunks"
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "PERSONALIZE_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/shop",
    "BATCH_BUCKET": BUCKET,
    "BATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/batch-personalize",
    "CHUNK_QUEUE_URL": QUEUE,
    "CHUNK_BYTES": "65536",  # one chunk per file unless a test says otherwise
    "SEGMENT_WRITE_KEY_PARAMETER": "/t/write-key",
    "SEGMENT_API_URL": "http://127.0.0.1:9/v1",
    "SEGMENT_EVENTS_PER_S": "5",
    "MAX_RECEIVE_COUNT": "3",
    "TIME_MARGIN_MS": "1000",
    "DEPLOYMENT_NAME": "batch-test",
}


def _error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        for at in range(0, len(self.data), size):
            yield self.data[at : at + size]

    def read(self) -> bytes:
        return self.data

    def close(self) -> None:
        pass


@dataclass
class FakeS3:
    objects: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    # key prefix -> how many more put_object calls under it fail
    failing_puts: dict[str, int] = field(default_factory=dict)
    failing_gets: dict[str, int] = field(default_factory=dict)

    def put(self, key: str, data: bytes) -> str:
        etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        self.objects[key] = (data, etag)
        return etag

    def _fails(self, table: dict[str, int], key: str) -> bool:
        for prefix, left in table.items():
            if key.startswith(prefix) and left > 0:
                table[prefix] = left - 1
                return True
        return False

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        if self._fails(self.failing_puts, Key):
            raise _error("InternalError", "PutObject")
        self.put(Key, Body)
        return {}

    def get_object(
        self, Bucket: str, Key: str, Range: str | None = None, IfMatch: str | None = None
    ) -> dict[str, Any]:
        if self._fails(self.failing_gets, Key):
            raise _error("InternalError", "GetObject")
        if Key not in self.objects:
            raise _error("NoSuchKey", "GetObject")
        data, etag = self.objects[Key]
        if IfMatch is not None and IfMatch != etag:
            raise _error("PreconditionFailed", "GetObject")
        if Range is not None:
            data = data[int(Range.removeprefix("bytes=").removesuffix("-")) :]
        return {"Body": Body(data)}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        data, etag = self.objects[Key]
        return {"ContentLength": len(data), "ETag": etag}

    def get_paginator(self, name: str) -> FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
        return [{"Contents": [{"Key": k} for k in sorted(self.objects) if k.startswith(Prefix)]}]

    def json(self, key: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.objects[key][0])
        return value


@dataclass
class FakeSQS:
    bodies: list[str] = field(default_factory=list)

    def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
        self.bodies.append(MessageBody)
        return {"MessageId": str(len(self.bodies))}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.bodies += [e["MessageBody"] for e in Entries]
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    def take(self) -> list[chunks.ChunkMessage]:
        taken, self.bodies = self.bodies, []
        return [chunks.parse_chunk(json.loads(b)) for b in taken]


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        # Whole microseconds up: a float wait of 1e-16 s must still move the clock on.
        self.now = math.ceil((self.now + seconds) * 1e6 + 1e-3) / 1e6


@dataclass
class FakeTracking:
    clock: Clock
    # Called before a request is accepted; raise a TrackingError to refuse it.
    refuse: Callable[[int], None] = lambda n: None
    sent: list[tuple[float, list[str]]] = field(default_factory=list)
    attempts: int = 0

    def send_batch(self, body: bytes) -> None:
        self.attempts += 1
        self.refuse(self.attempts)
        users = [m["userId"] for m in json.loads(body)["batch"]]
        self.sent.append((self.clock.now, users))

    def users(self) -> list[str]:
        return [u for _, batch in self.sent for u in batch]


@dataclass
class World:
    settings: Settings
    s3: FakeS3 = field(default_factory=FakeS3)
    sqs: FakeSQS = field(default_factory=FakeSQS)
    clock: Clock = field(default_factory=Clock)
    tracking: FakeTracking = field(init=False)
    ports: writer.Ports = field(init=False)

    def __post_init__(self) -> None:
        self.tracking = FakeTracking(self.clock)
        rate = self.settings.events_per_s
        bucket = TokenBucket(
            rate,
            capacity=float(writer.max_batch_messages(rate)),
            clock=self.clock,
            sleep=self.clock.sleep,
        )
        self.ports = writer.Ports(
            self.s3, self.sqs, self.tracking, bucket, clock=self.clock, sleep=self.clock.sleep
        )

    def output(self, job: str, users: list[str], name: str = "users.json.out") -> str:
        key = f"output/{job}/{name}"
        self.s3.put(key, b"".join(line(u) for u in users))
        created = splitter.ObjectCreated(BUCKET, key)
        splitter.split(created, self.s3, self.sqs, QUEUE, self.settings.chunk_bytes)
        return key

    def run(self, deadline_s: float = 1e6, rounds: int = 500) -> list[writer.Outcome]:
        """Process the queued chunk messages (and their continuations) until none is left."""
        outcomes = []
        for _ in range(rounds):
            pending = self.sqs.take()
            if not pending:
                return outcomes
            for message in pending:
                deadline = self.clock.now + deadline_s
                outcomes.append(writer.process(message, self.settings, self.ports, deadline))
        raise AssertionError("chunks did not finish")


def line(user: str, items: list[str] | None = None) -> bytes:
    items = items if items is not None else [f"{user}-item-{k}" for k in range(3)]
    record = {"input": {"userId": user}, "output": {"recommendedItems": items}, "error": None}
    return json.dumps(record).encode() + b"\n"


def settings(**changes: str) -> Settings:
    return load({**ENV, **changes})


@pytest.fixture
def world() -> World:
    return World(settings())


def test_every_output_file_of_a_job_is_written_and_reported() -> None:
    # Personalize treats the input path as a prefix: one job, several .out files.
    world = World(settings(CHUNK_BYTES="1024"))  # several chunks per file
    first = [f"a-{n}" for n in range(30)]
    second = [f"b-{n}" for n in range(40)]
    key_a = world.output("job", first, "part-1.out")
    key_b = world.output("job", second, "part-2.out")
    assert chunks.plan_key("job", key_a) != chunks.plan_key("job", key_b)
    world.run()
    assert sorted(world.tracking.users()) == sorted(first + second)
    report = world.s3.json(chunks.report_key("job"))
    plans = [world.s3.json(chunks.plan_key("job", k)) for k in (key_a, key_b)]
    assert report["status"] == "complete"
    assert report["users_written"] == len(first) + len(second)
    assert report["chunks_total"] == report["chunks_done"] == sum(p["chunks"] for p in plans)
    assert [s["key"] for s in report["sources"]] == [key_a, key_b]
    assert report["source"] is None


def test_a_reuploaded_output_is_written_again_not_taken_for_a_duplicate(world: World) -> None:
    world.output("job", [f"old-{n}" for n in range(20)])
    world.run()
    newer = [f"new-{n}" for n in range(20)]
    key = world.output("job", newer)  # same key, another object (ETag)
    world.run()
    assert set(newer) <= set(world.tracking.users())
    report = world.s3.json(chunks.report_key("job"))
    assert report["sources"][0]["etag"] == world.s3.objects[key][1]
    assert report["users_written"] == len(newer)  # the new object's chunks only


def test_keys_of_the_former_layout_do_not_hold_the_report_back(world: World) -> None:
    # state/<job>/plan.json and state/<job>/chunks/<i>.json from before (a job in flight).
    world.s3.put("state/job/plan.json", b"{}")
    world.s3.put("state/job/chunks/0.json", b'{"status": "done"}')
    world.output("job", ["u-1"])
    world.run()
    assert world.s3.json(chunks.report_key("job"))["users_written"] == 1


def test_a_report_lost_after_the_last_chunk_is_written_by_its_retry(world: World) -> None:
    world.output("job", [f"u-{n}" for n in range(5)])
    (message,) = world.sqs.take()
    world.s3.failing_puts["reports/"] = 1
    with pytest.raises(ClientError):
        writer.process(message, world.settings, world.ports, 1e6)
    assert chunks.report_key("job") not in world.s3.objects
    again = writer.process(message, world.settings, world.ports, 1e6)
    assert (again.status, again.report_written) == ("duplicate", True)
    assert world.s3.json(chunks.report_key("job"))["users_written"] == 5
    # Once it is there, a further duplicate leaves it alone.
    assert writer.process(message, world.settings, world.ports, 1e6).report_written is False


def test_one_users_profile_api_refusal_counts_profile_failed_and_the_chunk_goes_on(
    world: World,
) -> None:
    class Profiles:
        def traits(
            self, user_id: str, include: list[str], *, deadline: float | None = None
        ) -> dict[str, Any]:
            if user_id == "odd/user":
                raise ProfileError("rejected", "HTTP 400")
            return {}

    world.ports.profiles = Profiles()
    world.output("job", ["u-1", "odd/user", "u-2"])
    (outcome,) = world.run()
    assert outcome.status == "done"
    assert world.tracking.users() == ["u-1", "u-2"]
    report = world.s3.json(chunks.report_key("job"))
    assert report["by_reason"][chunks.PROFILE_FAILED] == 1
    assert report["users_failed"] == 1
    assert report["lines"] == 3


def test_a_retry_after_past_the_deadline_continues_from_the_unsent_batch(world: World) -> None:
    users = [f"u-{n}" for n in range(12)]  # batches of 5 (SEGMENT_EVENTS_PER_S)
    world.output("job", users)

    def second_request_throttled(attempt: int) -> None:
        if attempt == 2:
            raise TrackingError("unavailable", "HTTP 429", 429, retry_after=30.0)

    world.tracking.refuse = second_request_throttled
    (message,) = world.sqs.take()
    outcome = writer.process(message, world.settings, world.ports, world.clock.now + 10)
    assert outcome.status == "continued"
    assert world.tracking.users() == users[:5]
    assert outcome.continued_at == len(b"".join(line(u) for u in users[:5]))
    assert outcome.counts.values["lines"] == 5  # the unsent batch is the continuation's
    assert outcome.counts.values[chunks.SEGMENT_FAILED] == 0
    world.run()
    assert world.tracking.users() == users  # each user once
    report = world.s3.json(chunks.report_key("job"))
    assert (report["status"], report["lines"], report["users_written"]) == ("complete", 12, 12)


def test_no_budget_token_before_the_deadline_continues_instead_of_failing() -> None:
    world = World(settings(TIME_MARGIN_MS="0"))
    users = [f"u-{n}" for n in range(15)]
    world.output("job", users)
    (message,) = world.sqs.take()
    # 5 events/s in batches of 5, the bucket full: the first batch leaves at once, the
    # second one's tokens are due 1 s later, past this 0.5 s deadline.
    outcome = writer.process(message, world.settings, world.ports, world.clock.now + 0.5)
    assert outcome.status == "continued"
    assert world.tracking.users() == users[:5]
    assert outcome.counts.values["lines"] == 5
    world.run()
    assert world.tracking.users() == users


def test_an_attempt_that_could_not_send_its_first_batch_fails(world: World) -> None:
    world.output("job", [f"u-{n}" for n in range(3)])

    def throttled(attempt: int) -> None:
        raise TrackingError("unavailable", "HTTP 429", 429, retry_after=30.0)

    world.tracking.refuse = throttled
    (message,) = world.sqs.take()
    with pytest.raises(writer.ChunkFailed) as failed:
        writer.process(message, world.settings, world.ports, world.clock.now + 10)
    assert failed.value.counts.values[chunks.SEGMENT_FAILED] == 3
    assert world.sqs.bodies == []  # no continuation of the very same range


def test_a_persistent_segment_error_still_fails_the_chunk(world: World) -> None:
    world.output("job", [f"u-{n}" for n in range(12)])

    def failing_after_one(attempt: int) -> None:
        if attempt > 1:
            raise TrackingError("unavailable", "HTTP 503", 503)

    world.tracking.refuse = failing_after_one
    (message,) = world.sqs.take()
    with pytest.raises(writer.ChunkFailed) as failed:
        writer.process(message, world.settings, world.ports, world.clock.now + 100)
    assert "503" in failed.value.reason
    assert world.tracking.attempts == 1 + writer.SEND_ATTEMPTS
    assert world.sqs.bodies == []


def test_a_send_after_the_deadline_gets_one_attempt(world: World) -> None:
    world.output("job", [f"u-{n}" for n in range(3)])

    def throttled(attempt: int) -> None:
        raise TrackingError("unavailable", "HTTP 429", 429, retry_after=0.0)

    world.tracking.refuse = throttled
    (message,) = world.sqs.take()
    with pytest.raises(writer.ChunkFailed):
        writer.process(message, world.settings, world.ports, world.clock.now - 1)
    assert world.tracking.attempts == 1


def test_the_writer_keeps_to_the_events_per_second_bucket() -> None:
    world = World(settings(CHUNK_BYTES="1024"))
    users = [f"u-{n}" for n in range(60)]
    world.output("job", users)
    world.run()
    assert world.tracking.users() == users
    rate = world.settings.events_per_s
    burst = writer.max_batch_messages(rate)
    sent = 0
    for at, batch in world.tracking.sent:
        sent += len(batch)
        # A token bucket: at most its capacity plus rate x elapsed, by every send.
        assert sent <= burst + rate * at + 1e-9, (at, sent)
    last = world.tracking.sent[-1][0]
    assert last >= (len(users) - burst) / rate - 1e-9


# -- the handler -----------------------------------------------------------------------------


class Context:
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _container(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> tuple[runtime.Runtime, list[dict[str, float]]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    state = runtime.Runtime(ENV)
    monkeypatch.setattr(state, "ports", lambda: world.ports)
    monkeypatch.setattr(state, "prefetch_write_key", lambda: None)
    flushed: list[dict[str, float]] = []
    monkeypatch.setattr(
        state.metrics, "flush", lambda **_: flushed.append(state.metrics.snapshot())
    )
    return state, flushed


def _event(*messages: chunks.ChunkMessage, receives: int = 1) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{n}",
                "body": m.body(),
                "attributes": {"ApproximateReceiveCount": str(receives)},
            }
            for n, m in enumerate(messages)
        ]
    }


def test_a_records_unexpected_error_fails_that_record_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.output("one", ["u-1"])
    world.output("two", ["u-2"])
    first, second = world.sqs.take()
    state, _ = _container(world, monkeypatch)
    world.s3.failing_gets[chunks.chunk_key("one", first.key, 0)] = 1  # the duplicate check
    result = handler.handle_with(state, _event(first, second), Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert world.tracking.users() == ["u-2"]


def test_on_the_last_receive_an_unexpected_error_records_the_chunk_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.output("job", [f"u-{n}" for n in range(3)])
    (message,) = world.sqs.take()
    state, _ = _container(world, monkeypatch)

    class BrokenSQS(FakeSQS):
        def send_message(self, QueueUrl: str, MessageBody: str) -> dict[str, Any]:
            raise _error("InternalError", "SendMessage")

    world.ports.sqs = BrokenSQS()
    # Past the deadline after one line: a continuation is due and cannot be queued.
    world.ports.clock = lambda: 1e12
    result = handler.handle_with(state, _event(message, receives=3), Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    saved = world.s3.json(chunks.chunk_key("job", message.key, 0))
    assert saved["status"] == "failed" and "continuation" in saved["reason"]
    assert world.s3.json(chunks.report_key("job"))["status"] == "partial"


def test_a_continuations_metrics_count_only_its_own_part(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.output("job", ["u-1", "u-2"])
    (message,) = world.sqs.take()
    carried = chunks.Counts()
    carried.add("lines", 500)
    carried.add(chunks.WRITTEN, 480)
    carried.add(chunks.parser.ERROR_LINE, 20)
    continued = message.continuation(message.start, carried)
    state, flushed = _container(world, monkeypatch)
    assert handler.handle_with(state, _event(continued), Context()) == {"batchItemFailures": []}
    (metrics,) = flushed
    assert metrics["UsersWritten"] == 2
    assert metrics["UsersFailed_failed_error_line"] == 0
    report = world.s3.json(chunks.report_key("job"))
    assert report["users_written"] == 482  # the report does include what was carried
