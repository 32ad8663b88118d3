"""The chunk worker: read one byte range of an output file, write each user's trait through
``/v1/batch`` within the events/s budget, record the chunk, and write the report when it was
the last one.

- messageIds are derived from (job, userId): a redelivered or continued chunk sends the
  same ids, and Segment drops the duplicates.
- Every request takes ``len(batch)`` tokens of this container's events/s share first; a
  request holds at most one second of that share, so the bucket never waits forever.
- 429: Retry-After is honoured if it ends before the deadline; 5xx and connection errors are
  retried with backoff; what still fails fails the chunk (SQS retries it, then the DLQ).
- When the time left gets short, what is queued is sent, and a continuation message for the
  rest of the range (with the counts so far) is enqueued: the chunk then succeeds.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from backfill import chunks, parser
from backfill.chunks import ChunkMessage, Counts
from backfill.settings import Settings
from backfill.store import get_json, keys, objects, put_json
from common import segment_batch
from common.chunks import Chunker
from common.profiles import ProfileError, item_ids
from common.ratelimit import TokenBucket
from common.tracking import TrackingError

MESSAGE_ID_PREFIX = "bt-"
READ_BLOCK = 1024 * 1024
INTEGRATIONS = {"Amazon Kinesis": False}  # our own identifies must not loop back to the sync
SEND_ATTEMPTS = 4
BACKOFF_S = 0.5


def message_id(job: str, user_id: str) -> str:
    """Deterministic per (job, user): 43 characters, within Segment's 100. The job's length
    leads, so no (job, user) pair can spell another's input."""
    digest = hashlib.sha256(f"{len(job)}:{job}\0{user_id}".encode()).hexdigest()
    return MESSAGE_ID_PREFIX + digest[:40]


class Deadline(Protocol):
    def at(self) -> float:
        """The monotonic time by which the chunk must have handed over its rest."""
        ...


class Tracking(Protocol):
    def send_batch(self, body: bytes) -> None: ...


class Profiles(Protocol):
    def traits(
        self, user_id: str, include: list[str], *, deadline: float | None = None
    ) -> dict[str, Any]: ...


@dataclass
class Ports:
    s3: Any
    sqs: Any
    tracking: Tracking
    bucket: TokenBucket  # this container's events/s share
    profiles: Profiles | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


class ChunkFailed(Exception):
    def __init__(self, reason: str, counts: Counts) -> None:
        super().__init__(reason)
        self.reason = reason
        self.counts = counts


class _OutOfTime(Exception):
    """Raised inside the loop: hand the rest over to a continuation."""


@dataclass(frozen=True)
class Outcome:
    status: str  # done | duplicate | continued
    counts: Counts
    report_written: bool = False
    continued_at: int | None = None


def max_batch_messages(events_per_s: float) -> int:
    """At most one second of the budget per request (and Segment's 2,500)."""
    return max(1, min(segment_batch.MAX_BATCH_MESSAGES, int(events_per_s)))


def process(message: ChunkMessage, settings: Settings, ports: Ports, deadline: float) -> Outcome:
    """One chunk message; raises ChunkFailed (retry) with the counts of this attempt."""
    state_key = chunks.chunk_key(message.job, message.index)
    previous = get_json(ports.s3, message.bucket, state_key)
    if previous is not None and previous.get("status") == "done":
        return Outcome("duplicate", Counts())
    counts = Counts()
    if message.carried is not None:
        counts.merge(message.carried)
    writer = _Writer(message, settings, ports, deadline, counts)
    try:
        resume_at = writer.run()
    except TrackingError as exc:
        raise ChunkFailed(f"segment {exc.kind}: {exc.detail}", counts) from exc
    except ProfileError as exc:
        raise ChunkFailed(f"profile api {exc.kind}", counts) from exc
    except Exception as exc:  # S3 (file changed: PreconditionFailed), anything unforeseen
        raise ChunkFailed(f"{type(exc).__name__}: {_code(exc)}", counts) from exc
    if resume_at is not None:
        rest = message.continuation(resume_at, counts)
        ports.sqs.send_message(QueueUrl=settings.chunk_queue_url, MessageBody=rest.body())
        return Outcome("continued", counts, continued_at=resume_at)
    finish(message, ports, chunks.chunk_state(message, "done", counts))
    return Outcome("done", counts, report_written=maybe_report(message, ports))


def record_failure(message: ChunkMessage, ports: Ports, failure: ChunkFailed) -> bool:
    """The last attempt failed: record the chunk as failed (so the report can be written and
    names its range); the message itself goes on to the dead-letter queue."""
    finish(message, ports, chunks.chunk_state(message, "failed", failure.counts, failure.reason))
    return maybe_report(message, ports)


def finish(message: ChunkMessage, ports: Ports, state: dict[str, Any]) -> None:
    put_json(ports.s3, message.bucket, chunks.chunk_key(message.job, message.index), state)


def maybe_report(message: ChunkMessage, ports: Ports) -> bool:
    """Write the report when every chunk has a state object; True if written now."""
    # Listing first: the states are read only by the chunks that find the set complete.
    names = keys(ports.s3, message.bucket, chunks.chunks_prefix(message.job))
    wanted = {chunks.chunk_key(message.job, i) for i in range(message.total)}
    if not wanted <= set(names):
        return False
    states = list(objects(ports.s3, message.bucket, sorted(wanted)))
    plan = get_json(ports.s3, message.bucket, chunks.plan_key(message.job))
    report = chunks.report(message.job, plan, states)
    report["finished_at"] = segment_batch.iso_z(datetime.now(UTC))
    put_json(ports.s3, message.bucket, chunks.report_key(message.job), report)
    return True


@dataclass
class _Writer:
    message: ChunkMessage
    settings: Settings
    ports: Ports
    deadline: float
    counts: Counts
    packer: Chunker[segment_batch.Identify] = field(init=False)
    now: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.packer = segment_batch.packer(max_batch_messages(self.settings.events_per_s))
        self.now = datetime.now(UTC)

    def run(self) -> int | None:
        """Write the range; the offset to continue from if time ran short, else None."""
        message = self.message
        response = self.ports.s3.get_object(
            Bucket=message.bucket,
            Key=message.key,
            Range=f"bytes={parser.read_offset(message.start)}-",
            IfMatch=message.etag,
        )
        body = response["Body"]
        try:
            for line in parser.owned(_blocks(body), message.start, message.end):
                # At least one line per attempt: a continuation always makes progress.
                if line.offset > message.start and self.ports.clock() >= self.deadline:
                    self._send(self.packer.drain())
                    return line.offset
                try:
                    self._line(line)
                except _OutOfTime:
                    return line.offset
            self._send(self.packer.drain())
        finally:
            body.close()
        return None

    def _line(self, line: parser.Line) -> None:
        outcome = parser.classify(line)
        if isinstance(outcome, parser.NotWritten):
            self.counts.add("lines")
            self.counts.add(outcome.reason)
            return
        items = outcome.items
        if self.ports.profiles is not None:
            items = self._exclude_purchased(outcome.user_id, items)
        identify = segment_batch.build(
            outcome.user_id,
            items,
            trait=self.settings.recommended_trait,
            message_id=message_id(self.message.job, outcome.user_id),
            timestamp=self.now,
            integrations=INTEGRATIONS,
        )
        full = self.packer.add(identify)
        # Counted only now: a line handed to a continuation is counted there.
        self.counts.add("lines")
        if full:
            self._send(full)

    def _exclude_purchased(self, user_id: str, items: list[str]) -> list[str]:
        assert self.ports.profiles is not None
        trait = self.settings.purchased_trait
        try:
            traits = self.ports.profiles.traits(user_id, [trait], deadline=self.deadline)
        except ProfileError as exc:
            if exc.kind == "budget":  # no turn of the Profile API share before the deadline
                self._send(self.packer.drain())
                raise _OutOfTime from exc
            raise
        purchased, _ = item_ids(traits.get(trait))
        return [i for i in items if i not in purchased]

    def _send(self, batch: list[segment_batch.Identify]) -> None:
        if not batch:
            return
        body = segment_batch.batch_body(batch)
        ports = self.ports
        attempt = 0
        while True:
            if (
                ports.bucket.acquire(
                    self.deadline + self.settings.time_margin_ms / 1000, len(batch)
                )
                is None
            ):
                self._failed(batch)
                raise TrackingError("unavailable", "no events/s budget before the deadline")
            try:
                ports.tracking.send_batch(body)
            except TrackingError as exc:
                attempt += 1
                wait = (
                    exc.retry_after
                    if exc.retry_after is not None
                    else BACKOFF_S * 2 ** (attempt - 1)
                )
                if (
                    exc.kind == "rejected"
                    or attempt >= SEND_ATTEMPTS
                    or ports.clock() + wait > self.deadline
                ):
                    self._failed(batch)
                    raise
                ports.sleep(wait)
                continue
            self.counts.add(chunks.WRITTEN, len(batch))
            return

    def _failed(self, batch: list[segment_batch.Identify]) -> None:
        self.counts.add(chunks.SEGMENT_FAILED, len(batch))


def _blocks(body: Any) -> Iterator[bytes]:
    yield from body.iter_chunks(READ_BLOCK)


def _code(exc: BaseException) -> str:
    from common.aws import error_code

    return error_code(exc) or "error"
