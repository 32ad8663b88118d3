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
  rest of the range (with the counts so far) is enqueued: the chunk then succeeds. The same
  when time stops a batch (no events/s token before the deadline, a Retry-After past it):
  the continuation starts at that batch's first line. A send after the deadline gets one
  attempt. An attempt that could not finish one line fails instead (SQS retries it).
- One user's Profile API refusal (400, an unreadable answer) counts ``profile_failed`` for
  that user; the chunk goes on.
- State is kept per output file (a job may have several, and a re-upload has the same key):
  ``state/<job>/<file id>/plan.json`` and ``.../chunks/<index>.json`` with the object's ETag;
  the report covers every file of the job.
"""

from __future__ import annotations

import hashlib
import re
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
    """This attempt failed (SQS retries it). ``counts``: the chunk's counts so far, carried
    ones included; ``own``: this invocation's part only (for metrics)."""

    def __init__(self, reason: str, counts: Counts, own: Counts | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.counts = counts
        self.own = own if own is not None else counts


class _OutOfTime(Exception):
    """Raised inside the loop: hand the rest over to a continuation."""


class _Stalled(Exception):
    """A batch could not be sent in time (no events/s token before the deadline, a
    Retry-After past it, a 429 on the one attempt left after it): continue from the batch's
    first line, with the counts from before it."""

    def __init__(self, reason: str, mark: _Mark, size: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark
        self.size = size


@dataclass(frozen=True)
class _Mark:
    """Where a batch's first line starts, and the counts just before it."""

    offset: int
    counts: Counts


@dataclass(frozen=True)
class Outcome:
    status: str  # done | duplicate | continued
    counts: Counts  # the chunk's, carried ones included
    report_written: bool = False
    continued_at: int | None = None
    own: Counts = field(default_factory=Counts)  # this invocation's part (for metrics)


def max_batch_messages(events_per_s: float) -> int:
    """At most one second of the budget per request (and Segment's 2,500)."""
    return max(1, min(segment_batch.MAX_BATCH_MESSAGES, int(events_per_s)))


def _done_before(previous: dict[str, Any] | None, message: ChunkMessage) -> bool:
    """A state object of this very object's chunk (same ETag) that is done."""
    return (
        previous is not None
        and previous.get("status") == "done"
        and previous.get("etag") == message.etag
    )


def process(message: ChunkMessage, settings: Settings, ports: Ports, deadline: float) -> Outcome:
    """One chunk message; raises ChunkFailed (retry) with the counts of this attempt. An
    exception from writing the report (the chunk is done) is raised as it is: the retry
    finds the chunk done and writes the report then."""
    state_key = chunks.chunk_key(message.job, message.key, message.index)
    previous = get_json(ports.s3, message.bucket, state_key)
    if _done_before(previous, message):
        # The report may have failed after this chunk was recorded: write it if missing.
        written = not _reported(message, ports) and maybe_report(
            ports.s3, message.bucket, message.job, message
        )
        return Outcome("duplicate", Counts(), report_written=written)
    counts = Counts()
    if message.carried is not None:
        counts.merge(message.carried)
    writer = _Writer(message, settings, ports, deadline, counts)
    try:
        resume_at = writer.run()
    except TrackingError as exc:
        raise _failed(f"segment {exc.kind}: {exc.detail}", writer.counts, message) from exc
    except ProfileError as exc:
        raise _failed(f"profile api {exc.kind}", writer.counts, message) from exc
    except Exception as exc:  # S3 (file changed: PreconditionFailed), anything unforeseen
        raise _failed(f"{type(exc).__name__}: {_code(exc)}", writer.counts, message) from exc
    counts = writer.counts
    own = counts.minus(message.carried)
    if resume_at is not None:
        rest = message.continuation(resume_at, counts)
        try:
            ports.sqs.send_message(QueueUrl=settings.chunk_queue_url, MessageBody=rest.body())
        except Exception as exc:  # the retry redoes this part (same messageIds: no duplicates)
            raise _failed(f"continuation not queued: {_code(exc)}", counts, message) from exc
        return Outcome("continued", counts, continued_at=resume_at, own=own)
    try:
        finish(message, ports, chunks.chunk_state(message, "done", counts))
    except Exception as exc:
        raise _failed(f"chunk state not written: {_code(exc)}", counts, message) from exc
    written = maybe_report(ports.s3, message.bucket, message.job, message)
    return Outcome("done", counts, report_written=written, own=own)


def _failed(reason: str, counts: Counts, message: ChunkMessage) -> ChunkFailed:
    return ChunkFailed(reason, counts, counts.minus(message.carried))


def _reported(message: ChunkMessage, ports: Ports) -> bool:
    """The job's report exists and covers this output file (this ETag)."""
    report = get_json(ports.s3, message.bucket, chunks.report_key(message.job))
    sources = report.get("sources") if report is not None else None
    return isinstance(sources, list) and any(
        isinstance(s, dict) and s.get("key") == message.key and s.get("etag") == message.etag
        for s in sources
    )


def record_failure(message: ChunkMessage, ports: Ports, failure: ChunkFailed) -> bool:
    """The last attempt failed: record the chunk as failed (so the report can be written and
    names its range); the message itself goes on to the dead-letter queue. A chunk already
    done (only its report failed) keeps its state; the report is tried again."""
    previous = get_json(
        ports.s3, message.bucket, chunks.chunk_key(message.job, message.key, message.index)
    )
    if not _done_before(previous, message):
        state = chunks.chunk_state(message, "failed", failure.counts, failure.reason)
        finish(message, ports, state)
    return maybe_report(ports.s3, message.bucket, message.job, message)


def finish(message: ChunkMessage, ports: Ports, state: dict[str, Any]) -> None:
    key = chunks.chunk_key(message.job, message.key, message.index)
    put_json(ports.s3, message.bucket, key, state)


# Under state/<job>/: <file id>/plan.json or <file id>/chunks/<index>.json (nothing else).
_FILE_STATE = re.compile(r"^(?P<file>[0-9a-f]{12})/(?:plan\.json|chunks/\d+\.json)$")


@dataclass(frozen=True)
class _File:
    key: str
    etag: str
    total: int
    source: dict[str, Any]


def maybe_report(s3: Any, bucket: str, job: str, current: ChunkMessage | None = None) -> bool:
    """Write the job's report when every output file of the job that has been seen is
    complete: each has its plan (or, for ``current``'s file, the message), and a state
    object for each of its chunks, all of the file's current ETag. True if written now.

    Every file finishing rewrites the report over all of them, so a job whose files are
    split one after the other ends with the report of all its files."""
    prefix = chunks.job_prefix(job)
    # Listing first: the states are read only by the chunks that find the set complete.
    names = set(keys(s3, bucket, prefix))
    ids = {match["file"] for name in names if (match := _FILE_STATE.match(name[len(prefix) :]))}
    files: list[_File] = []
    if current is not None:
        ids.add(chunks.file_id(current.key))
    for fid in sorted(ids):
        plan_name = f"{prefix}{fid}/plan.json"
        plan = get_json(s3, bucket, plan_name) if plan_name in names else None
        if current is not None and fid == chunks.file_id(current.key):
            same = plan is not None and plan.get("etag") == current.etag
            source: dict[str, Any] = {
                "bucket": bucket,
                "key": current.key,
                "etag": current.etag,
                "size": plan.get("size") if plan is not None and same else None,
            }
            files.append(_File(current.key, current.etag, current.total, source))
        elif plan is not None:
            total = plan.get("chunks")
            if not isinstance(total, int) or isinstance(total, bool):
                return False
            files.append(_File(str(plan.get("key")), str(plan.get("etag")), total, plan))
        else:
            return False  # a file still being split: its plan is to come
    wanted = {f.key: [chunks.chunk_key(job, f.key, i) for i in range(f.total)] for f in files}
    if not all(set(w) <= names for w in wanted.values()):
        return False
    states: list[dict[str, Any]] = []
    for f in files:
        got = list(objects(s3, bucket, wanted[f.key]))
        if len(got) != f.total or any(s.get("etag") != f.etag for s in got):
            return False  # a state of an older object with this key: not this one's
        states += got
    report = chunks.report(job, [f.source for f in files], states)
    report["finished_at"] = segment_batch.iso_z(datetime.now(UTC))
    put_json(s3, bucket, chunks.report_key(job), report)
    return True


# Counted when a batch is sent, not per line.
_SEND_COUNTS = (chunks.WRITTEN, chunks.SEGMENT_FAILED)


class _ProfileFailed(Exception):
    """One user's Profile API read was refused for good: that user is not written."""


@dataclass
class _Writer:
    message: ChunkMessage
    settings: Settings
    ports: Ports
    deadline: float
    counts: Counts
    packer: Chunker[segment_batch.Identify] = field(init=False)
    now: datetime = field(init=False)
    mark: _Mark | None = field(init=False, default=None)  # the queued batch's first line
    first: int | None = field(init=False, default=None)  # this attempt's first line

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
            return self._lines(parser.owned(_blocks(body), message.start, message.end))
        except _Stalled as stall:
            # Nothing of the batch was written: its lines are the continuation's. The counts
            # of lines go back to before its first line; what was sent (written) stays.
            sent = {k: self.counts.values[k] for k in _SEND_COUNTS}
            self.counts.values = {**stall.mark.counts.values, **sent}
            if self.first is None or stall.mark.offset <= self.first:
                # Not one line done in this attempt: fail (SQS retries it later, bounded by
                # maxReceiveCount) rather than hand the very same range on for ever.
                self.counts.add(chunks.SEGMENT_FAILED, stall.size)
                raise TrackingError("unavailable", stall.reason) from stall
            return stall.mark.offset
        finally:
            body.close()

    def _lines(self, lines: Iterator[parser.Line]) -> int | None:
        for line in lines:
            if self.first is None:
                self.first = line.offset
            # At least one line per attempt: a continuation always makes progress.
            elif self.ports.clock() >= self.deadline:
                self._send(self.packer.drain())
                return line.offset
            try:
                self._line(line)
            except _OutOfTime as exc:
                if line.offset <= self.first:  # not one line done: fail, as above
                    raise ProfileError("budget", "no turn before the deadline") from exc
                return line.offset
        self._send(self.packer.drain())
        return None

    def _line(self, line: parser.Line) -> None:
        outcome = parser.classify(line)
        if isinstance(outcome, parser.NotWritten):
            self.counts.add("lines")
            self.counts.add(outcome.reason)
            return
        items = outcome.items
        if self.ports.profiles is not None:
            try:
                items = self._exclude_purchased(outcome.user_id, items)
            except _ProfileFailed:
                self.counts.add("lines")
                self.counts.add(chunks.PROFILE_FAILED)
                return
        identify = segment_batch.build(
            outcome.user_id,
            items,
            trait=self.settings.recommended_trait,
            message_id=message_id(self.message.job, outcome.user_id),
            timestamp=self.now,
            integrations=INTEGRATIONS,
        )
        closed = self.mark
        opens = not self.packer.pending
        full = self.packer.add(identify)
        if full or opens:
            # This line now begins the queued batch.
            self.mark = _Mark(line.offset, self.counts.copy())
        # Counted only now: a line handed to a continuation is counted there.
        self.counts.add("lines")
        if full:
            self._send(full, closed)

    def _exclude_purchased(self, user_id: str, items: list[str]) -> list[str]:
        assert self.ports.profiles is not None
        trait = self.settings.purchased_trait
        try:
            traits = self.ports.profiles.traits(user_id, [trait], deadline=self.deadline)
        except ProfileError as exc:
            if exc.kind == "budget":  # no turn of the Profile API share before the deadline
                self._send(self.packer.drain())
                raise _OutOfTime from exc
            if exc.kind in ("rejected", "bad_response"):
                # This user only (a 400 for an odd userId): no retry would fix it.
                raise _ProfileFailed from exc
            raise
        purchased, _ = item_ids(traits.get(trait))
        return [i for i in items if i not in purchased]

    def _send(self, batch: list[segment_batch.Identify], mark: _Mark | None = None) -> None:
        """Send one batch within the budget. Raises _Stalled when time is the cause (the
        batch is then the continuation's), TrackingError for a real Segment error."""
        if not batch:
            return
        mark = mark or self.mark
        assert mark is not None
        body = segment_batch.batch_body(batch)
        ports = self.ports
        attempt = 0
        while True:
            # After the deadline (the last batch before a continuation): one attempt only.
            late = ports.clock() >= self.deadline
            if (
                ports.bucket.acquire(
                    self.deadline + self.settings.time_margin_ms / 1000, len(batch)
                )
                is None
            ):
                raise _Stalled("no events/s budget before the deadline", mark, len(batch))
            try:
                ports.tracking.send_batch(body)
            except TrackingError as exc:
                attempt += 1
                if exc.kind == "rejected":
                    self._failed(batch)
                    raise
                if exc.retry_after is not None:  # 429: Segment says when; time is the cause
                    if (
                        late
                        or attempt >= SEND_ATTEMPTS
                        or ports.clock() + exc.retry_after > self.deadline
                    ):
                        reason = f"segment {exc.detail}: no retry before the deadline"
                        raise _Stalled(reason, mark, len(batch)) from exc
                    wait = exc.retry_after
                else:
                    wait = BACKOFF_S * 2 ** (attempt - 1)
                    if late or attempt >= SEND_ATTEMPTS or ports.clock() + wait > self.deadline:
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
