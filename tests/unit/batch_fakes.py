"""In-memory S3, SQS and Tracking fakes with a fake clock for the batch write-back's unit
tests (test_batch_writer.py, test_batch_deadline.py): the worker and the handler run on
them unmodified."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from backfill import chunks, runtime, splitter, writer
from backfill.settings import Settings, load
from botocore.exceptions import ClientError

from common.ratelimit import TokenBucket

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


def error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, operation)


class Body:
    def __init__(self, data: bytes, meter: FakeS3 | None = None) -> None:
        self.data = data
        self.meter = meter

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        for at in range(0, len(self.data), size):
            block = self.data[at : at + size]
            if self.meter is not None:
                self.meter.bytes_read += len(block)
            yield block

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
    # With versioning: each put is a new VersionId (as S3 does, even for the same bytes).
    versioned: bool = False
    versions: dict[str, str] = field(default_factory=dict)
    bytes_read: int = 0  # of GetObject bodies, as the worker pulled them
    clock: Callable[[], float] = lambda: 0.0
    calls: list[tuple[str, str, float]] = field(default_factory=list)  # (operation, key, when)

    def put(self, key: str, data: bytes) -> str:
        etag = '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"'
        self.objects[key] = (data, etag)
        if self.versioned:
            self.versions[key] = f"v{len(self.versions) + 1}.{key}"
        return etag

    def _fails(self, table: dict[str, int], key: str) -> bool:
        for prefix, left in table.items():
            if key.startswith(prefix) and left > 0:
                table[prefix] = left - 1
                return True
        return False

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.calls.append(("PutObject", Key, self.clock()))
        if self._fails(self.failing_puts, Key):
            raise error("InternalError", "PutObject")
        self.put(Key, Body)
        return {}

    def get_object(
        self, Bucket: str, Key: str, Range: str | None = None, IfMatch: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("GetObject", Key, self.clock()))
        if self._fails(self.failing_gets, Key):
            raise error("InternalError", "GetObject")
        if Key not in self.objects:
            raise error("NoSuchKey", "GetObject")
        data, etag = self.objects[Key]
        if IfMatch is not None and IfMatch != etag:
            raise error("PreconditionFailed", "GetObject")
        if Range is not None:
            # bytes=first- or bytes=first-last (last past the end: to the end, as S3 does)
            first, _, last = Range.removeprefix("bytes=").partition("-")
            data = data[int(first) : int(last) + 1 if last else None]
        return {"Body": Body(data, self) if Range is not None else Body(data)}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        data, etag = self.objects[Key]
        head: dict[str, Any] = {"ContentLength": len(data), "ETag": etag}
        if Key in self.versions:
            head["VersionId"] = self.versions[Key]
        return head

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
        assert len(Entries) <= 10
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
    message_ids: dict[str, list[str]] = field(default_factory=dict)  # user -> ids sent
    attempts: int = 0
    started: list[float] = field(default_factory=list)  # when each attempt began
    latency_s: float = 0.0  # how long each attempt takes

    def send_batch(self, body: bytes) -> None:
        self.attempts += 1
        self.started.append(self.clock.now)
        self.clock.now += self.latency_s
        self.refuse(self.attempts)
        messages = json.loads(body)["batch"]
        for m in messages:
            self.message_ids.setdefault(m["userId"], []).append(m["messageId"])
        self.sent.append((self.clock.now, [m["userId"] for m in messages]))

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
        self.s3.clock = self.clock
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

    def output(
        self, job: str, users: list[str], name: str = "users.json.out", data: bytes | None = None
    ) -> str:
        """An output file of these users (or ``data``) uploaded, and split."""
        key = f"output/{job}/{name}"
        self.s3.put(key, data if data is not None else b"".join(line(u) for u in users))
        created = splitter.ObjectCreated(BUCKET, key)
        splitter.split(created, self.s3, self.sqs, QUEUE, self.settings.chunk_bytes)
        return key

    def process(self, message: chunks.ChunkMessage, deadline: float) -> writer.Outcome:
        """One chunk message, its hand-over queued as the handler does."""
        outcome = writer.process(message, self.settings, self.ports, deadline)
        if outcome.handoff is not None:
            self.sqs.bodies.append(outcome.handoff.body())
        return outcome

    def run(self, deadline_s: float = 1e6, rounds: int = 500) -> list[writer.Outcome]:
        """Process the queued chunk messages (and their continuations) until none is left."""
        outcomes = []
        for _ in range(rounds):
            pending = self.sqs.take()
            if not pending:
                return outcomes
            for message in pending:
                outcomes.append(self.process(message, self.clock.now + deadline_s))
        raise AssertionError("chunks did not finish")


def line(user: str, items: list[str] | None = None) -> bytes:
    items = items if items is not None else [f"{user}-item-{k}" for k in range(3)]
    record = {"input": {"userId": user}, "output": {"recommendedItems": items}, "error": None}
    return json.dumps(record).encode() + b"\n"


def settings(**changes: str) -> Settings:
    return load({**ENV, **changes})


class Context:
    aws_request_id = "req-1"

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def container(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> tuple[runtime.Runtime, list[dict[str, float]]]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    state = runtime.Runtime(ENV)
    state.clock = world.clock
    monkeypatch.setattr(state, "ports", lambda: world.ports)
    monkeypatch.setattr(state, "prefetch_write_key", lambda: None)
    flushed: list[dict[str, float]] = []
    monkeypatch.setattr(
        state.metrics, "flush", lambda **_: flushed.append(state.metrics.snapshot())
    )
    return state, flushed


def event(*messages: chunks.ChunkMessage, receives: int = 1) -> dict[str, Any]:
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
