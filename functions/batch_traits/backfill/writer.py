"""The chunk worker: read one byte range of an output file, write each user's trait through
``/v1/batch`` within the events/s budget, record the chunk, and write the report when it was
the last one.

- messageIds are derived from (job, object version, userId): a redelivered or continued
  chunk sends the same ids, and Segment drops the duplicates; a corrected re-upload of the
  file (another version) sends new ones, so Segment does not drop it as a duplicate.
- Every request takes ``len(batch)`` tokens of this container's events/s share first; a
  request holds at most one second of that share, so the bucket never waits forever.
- 429: Retry-After is honoured if it ends before the deadline; 5xx and connection errors are
  retried with backoff; what still fails fails the chunk (SQS retries it, then the DLQ).
- When the time left gets short, what is queued is sent, and the rest of the range is handed
  over as a continuation (with the counts so far): the chunk then succeeds. The same when
  time stops a batch (no events/s token before the deadline, a Retry-After past it): the
  continuation starts at that batch's first line. An attempt that could not finish one line
  fails instead (SQS retries it), unless its turn came late in an SQS batch
  (``deferrable``): then it goes back unchanged (see :mod:`backfill.handler`).
- After the deadline at most this happens: the I/O call already in flight ends, ONE send (one
  attempt, a token wait of at most LATE_TOKEN_WAIT_S) if no call straddled the deadline, then
  the handler queues the hand-overs (one SendMessageBatch). S3 bookkeeping (the chunk state,
  the report) is never started after the deadline: a chunk that finished its lines too late
  hands over an empty continuation that records it. ``backfill.runtime.worst_after_deadline_s``
  adds this up from the clients' timeouts and retries; TIME_MARGIN_MS must hold it.
- One user's Profile API refusal (400, an unreadable answer) counts ``profile_failed`` for
  that user; the chunk goes on.
- State is kept per output file and per version of it (a job may have several files, and a
  re-upload has the same key): ``state/<job>/<file id>/plan.json`` and
  ``.../<version id>/chunks/<index>.json``; the report covers every file of the job, each at
  its current version. A chunk of a replaced object (GetObject IfMatch refused) is dropped:
  the new object was split again and has chunks of its own.
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
from backfill.store import get_json, keys, put_json
from common import segment_batch
from common.aws import error_code
from common.chunks import Chunker
from common.profiles import ProfileError, item_ids
from common.ratelimit import TokenBucket
from common.tracking import TrackingError

MESSAGE_ID_PREFIX = "bt-"
READ_BLOCK = 1024 * 1024
INTEGRATIONS = {"Amazon Kinesis": False}  # our own identifies must not loop back to the sync
SEND_ATTEMPTS = 4
BACKOFF_S = 0.5
# The one send after the deadline waits at most this long for its events/s tokens (a batch
# holds at most one second of the share), else its lines go to the continuation.
LATE_TOKEN_WAIT_S = 1.0
# The state a chunk gets at the start of its last receive, overwritten when that receive
# ends: what the report says if the invocation is killed (timeout, out of memory).
LAST_RECEIVE_REASON = (
    "its last receive did not finish (still running, or killed: timeout, out of memory)"
)


def message_id(job: str, version: str, user_id: str) -> str:
    """Deterministic per (job, object version, user): 43 characters, within Segment's 100.
    Lengths lead, so no (job, version, user) can spell another's input."""
    text = f"{len(job)}:{job}\0{len(version)}:{version}\0{user_id}"
    return MESSAGE_ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:40]


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


class OutOfTime(Exception):
    """The deadline has passed: an S3 call of the bookkeeping is not started."""


def checker(clock: Callable[[], float], deadline: float) -> Callable[[], None]:
    """A check to call before each S3 call that may be left to a later invocation."""

    def check() -> None:
        if clock() >= deadline:
            raise OutOfTime

    return check


def _no_check() -> None:
    return None


class _OutOfTime(Exception):
    """Raised inside the loop: hand the rest over to a continuation."""


class _Deferred(Exception):
    """Not one line could be done in time, and the record may go back unchanged."""


class _Superseded(Exception):
    """The object was replaced (GetObject IfMatch refused): this chunk is obsolete."""


class _Stalled(Exception):
    """A batch could not be sent in time (no events/s token before the deadline, a
    Retry-After past it, a 429 on the one attempt left after it): continue from the batch's
    first line, with the counts from before it. ``by_time``: the deadline was the cause
    (not Segment refusing every attempt)."""

    def __init__(self, reason: str, mark: _Mark, size: int, *, by_time: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark
        self.size = size
        self.by_time = by_time


@dataclass(frozen=True)
class _Mark:
    """Where a batch's first line starts, and the counts just before it."""

    offset: int
    counts: Counts


@dataclass(frozen=True)
class Outcome:
    # done | duplicate | continued | deferred (nothing done: back unchanged) | superseded
    status: str
    counts: Counts  # the chunk's, carried ones included
    report_written: bool = False
    continued_at: int | None = None
    own: Counts = field(default_factory=Counts)  # this invocation's part (for metrics)
    # To put on the chunk queue (the handler sends them together): a continuation, or the
    # message itself when it was deferred.
    handoff: ChunkMessage | None = None


def max_batch_messages(events_per_s: float) -> int:
    """At most one second of the budget per request (and Segment's 2,500)."""
    return max(1, min(segment_batch.MAX_BATCH_MESSAGES, int(events_per_s)))


def _done_before(previous: dict[str, Any] | None, message: ChunkMessage) -> bool:
    """A state object of this very object's chunk (same version) that is done."""
    return (
        previous is not None
        and previous.get("status") == "done"
        and previous.get("etag") == message.etag
        and previous.get("version", message.version) == message.version
    )


def process(
    message: ChunkMessage,
    settings: Settings,
    ports: Ports,
    deadline: float,
    *,
    deferrable: bool = False,
    before_first_send: Callable[[], None] | None = None,
) -> Outcome:
    """One chunk message; raises ChunkFailed (retry) with the counts of this attempt. An
    exception from writing the report (the chunk is done) is raised as it is: the retry
    finds the chunk done and writes the report then.

    ``deferrable``: the record's turn came after others of its SQS batch; if it cannot do
    one line in time it is handed back unchanged (status ``deferred``) instead of failing.
    ``before_first_send`` runs once, before this attempt's first request to Segment (the
    point after which it can no longer be handed back unchanged)."""
    late = ports.clock() >= deadline
    if late and deferrable:
        return Outcome("deferred", Counts(), handoff=message)
    # A record that had no time at all from the start (the first of an invocation that began
    # inside its margin) still takes one step, its bookkeeping included, or it would hand the
    # same work on for ever.
    check = _no_check if late else checker(ports.clock, deadline)
    previous = get_json(ports.s3, message.bucket, message.state_key())
    if _done_before(previous, message):
        # The report may have failed after this chunk was recorded: write it if missing.
        try:
            written = not _reported(message, ports, check) and maybe_report(
                ports.s3, message.bucket, message.job, message, check=check
            )
        except OutOfTime:
            return Outcome("duplicate", Counts(), handoff=message)
        return Outcome("duplicate", Counts(), report_written=written)
    counts = Counts()
    if message.carried is not None:
        counts.merge(message.carried)
    writer = _Writer(message, settings, ports, deadline, counts, deferrable, before_first_send)
    try:
        resume_at = writer.run()
    except _Deferred:
        return Outcome("deferred", Counts(), handoff=message)
    except _Superseded:
        return Outcome("superseded", Counts())
    except TrackingError as exc:
        raise _failed(f"segment {exc.kind}: {exc.detail}", writer.counts, message) from exc
    except ProfileError as exc:
        raise _failed(f"profile api {exc.kind}", writer.counts, message) from exc
    except Exception as exc:  # S3, anything unforeseen
        raise _failed(f"{type(exc).__name__}: {_code(exc)}", writer.counts, message) from exc
    counts = writer.counts
    own = counts.minus(message.carried)
    if resume_at is None and not late and ports.clock() >= deadline:
        # Every line is done but no time is left to record it: an empty continuation does.
        resume_at = message.end
    if resume_at is not None:
        rest = message.continuation(resume_at, counts)
        return Outcome("continued", counts, continued_at=resume_at, own=own, handoff=rest)
    try:
        check()
        finish(message, ports, chunks.chunk_state(message, "done", counts))
    except OutOfTime:
        rest = message.continuation(message.end, counts)
        return Outcome("continued", counts, continued_at=message.end, own=own, handoff=rest)
    except Exception as exc:
        raise _failed(f"chunk state not written: {_code(exc)}", counts, message) from exc
    try:
        written = maybe_report(ports.s3, message.bucket, message.job, message, check=check)
    except OutOfTime:
        # Recorded done: the message again finds it so and writes the report.
        return Outcome("done", counts, own=own, handoff=message.continuation(message.end, counts))
    return Outcome("done", counts, report_written=written, own=own)


def _failed(reason: str, counts: Counts, message: ChunkMessage) -> ChunkFailed:
    return ChunkFailed(reason, counts, counts.minus(message.carried))


def _reported(message: ChunkMessage, ports: Ports, check: Callable[[], None]) -> bool:
    """The job's report exists and covers this output file (this version)."""
    check()
    report = get_json(ports.s3, message.bucket, chunks.report_key(message.job))
    sources = report.get("sources") if report is not None else None
    return isinstance(sources, list) and any(
        isinstance(s, dict)
        and s.get("key") == message.key
        and s.get("etag") == message.etag
        and s.get("version", message.version) in (message.version, None)
        for s in sources
    )


def record_failure(
    message: ChunkMessage,
    ports: Ports,
    failure: ChunkFailed,
    check: Callable[[], None] = _no_check,
) -> bool:
    """Record the chunk as failed (its last attempt failed, or has just begun: see
    LAST_RECEIVE_REASON), so the report can be written and names its range; the message
    itself goes on to the dead-letter queue. A chunk already done (only its report failed)
    keeps its state; the report is tried again. Raises OutOfTime past the deadline."""
    check()
    previous = get_json(ports.s3, message.bucket, message.state_key())
    if not _done_before(previous, message):
        state = chunks.chunk_state(message, "failed", failure.counts, failure.reason)
        check()
        finish(message, ports, state)
    return maybe_report(ports.s3, message.bucket, message.job, message, check=check)


def finish(message: ChunkMessage, ports: Ports, state: dict[str, Any]) -> None:
    put_json(ports.s3, message.bucket, message.state_key(), state)


# Under state/<job>/: <file id>/plan.json, <file id>/<version id>/chunks/<index>.json, or
# <file id>/chunks/<index>.json (before states were kept per version; still read).
_FILE_STATE = re.compile(
    r"^(?P<file>[0-9a-f]{12})/(?:plan\.json|(?:[0-9a-f]{12}/)?chunks/\d+\.json)$"
)


@dataclass(frozen=True)
class _File:
    key: str
    etag: str
    version: str
    total: int
    source: dict[str, Any]


def _current_object(s3: Any, message: ChunkMessage) -> bool:
    """Whether the message's object is still the one under its key (HeadObject)."""
    head = s3.head_object(Bucket=message.bucket, Key=message.key)
    if message.version_tag is not None:
        return chunks.object_version(head) == message.version_tag
    return str(head.get("ETag")) == message.etag


def maybe_report(
    s3: Any,
    bucket: str,
    job: str,
    current: ChunkMessage | None = None,
    *,
    check: Callable[[], None] = _no_check,
) -> bool:
    """Write the job's report when every output file of the job that has been seen is
    complete: each has its plan (or, for ``current``'s file, the message), and a state
    object for each of its chunks, all of the file's current version. True if written now.
    ``check`` runs before each S3 call (it raises OutOfTime past the deadline).

    Every file finishing rewrites the report over all of them, so a job whose files are
    split one after the other ends with the report of all its files. A chunk of an object
    that was replaced since (its plan names another version, and HeadObject says the key
    holds another object) writes no report: the new object's chunks will."""
    prefix = chunks.job_prefix(job)
    # Listing first: the states are read only by the chunks that find the set complete.
    names = set(keys(s3, bucket, prefix, check))
    ids = {match["file"] for name in names if (match := _FILE_STATE.match(name[len(prefix) :]))}
    files: list[_File] = []
    if current is not None:
        ids.add(chunks.file_id(current.key))
    for fid in sorted(ids):
        plan_name = f"{prefix}{fid}/plan.json"
        check()
        plan = get_json(s3, bucket, plan_name) if plan_name in names else None
        if current is not None and fid == chunks.file_id(current.key):
            same = plan is not None and chunks.plan_version(plan) == current.version
            if plan is not None and not same:
                check()
                if not _current_object(s3, current):
                    return False  # this chunk's object was replaced: not its report
            source: dict[str, Any] = {
                "bucket": bucket,
                "key": current.key,
                "etag": current.etag,
                "version": current.version,
                "size": plan.get("size") if plan is not None and same else None,
            }
            files.append(_File(current.key, current.etag, current.version, current.total, source))
        elif plan is not None:
            total = plan.get("chunks")
            if not isinstance(total, int) or isinstance(total, bool):
                return False
            version = chunks.plan_version(plan)
            files.append(_File(str(plan.get("key")), str(plan.get("etag")), version, total, plan))
        else:
            return False  # a file still being split: its plan is to come
    wanted: dict[str, list[str]] = {}
    for f in files:
        found = []
        for index in range(f.total):
            name = chunks.chunk_key(job, f.key, index, version=f.version)
            legacy = f"{chunks.file_prefix(job, f.key)}chunks/{index}.json"
            if name not in names and legacy not in names:
                return False
            found.append(name if name in names else legacy)
        wanted[f.key] = found
    states: list[dict[str, Any]] = []
    for f in files:
        got = []
        for name in wanted[f.key]:
            check()
            state = get_json(s3, bucket, name)
            if state is not None:
                got.append(state)
        if len(got) != f.total or any(
            s.get("etag") != f.etag or s.get("version", f.version) != f.version for s in got
        ):
            return False  # a state of an older object with this key: not this one's
        states += got
    report = chunks.report(job, [f.source for f in files], states)
    report["finished_at"] = segment_batch.iso_z(datetime.now(UTC))
    check()
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
    deferrable: bool = False
    before_first_send: Callable[[], None] | None = None
    packer: Chunker[segment_batch.Identify] = field(init=False)
    now: datetime = field(init=False)
    mark: _Mark | None = field(init=False, default=None)  # the queued batch's first line
    first: int | None = field(init=False, default=None)  # this attempt's first line
    # The one send allowed after the deadline is spent (or a call that began before the
    # deadline ended after it, which takes its place).
    late_used: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.packer = segment_batch.packer(max_batch_messages(self.settings.events_per_s))
        self.now = datetime.now(UTC)

    def _ended(self, began: float) -> None:
        """After an I/O call that began at ``began``: did it straddle the deadline?"""
        if began < self.deadline <= self.ports.clock():
            self.late_used = True

    def run(self) -> int | None:
        """Write the range; the offset to continue from if time ran short, else None."""
        message = self.message
        if message.start >= message.end:
            return None  # an empty rest: only the bookkeeping is left
        began = self.ports.clock()
        try:
            response = self.ports.s3.get_object(
                Bucket=message.bucket,
                Key=message.key,
                Range=parser.read_range(message.start, message.end),
                IfMatch=message.etag,
            )
        except Exception as exc:
            if error_code(exc) in ("PreconditionFailed", "412"):
                raise _Superseded from exc
            raise
        self._ended(began)
        body = response["Body"]
        try:
            return self._lines(parser.owned(self._blocks(body), message.start, message.end))
        except _Stalled as stall:
            # Nothing of the batch was written: its lines are the continuation's. The counts
            # of lines go back to before its first line; what was sent (written) stays.
            sent = {k: self.counts.values[k] for k in _SEND_COUNTS}
            self.counts.values = {**stall.mark.counts.values, **sent}
            if self.first is None or stall.mark.offset <= self.first:
                if self.deferrable and stall.by_time:
                    raise _Deferred from stall
                # Not one line done in this attempt: fail (SQS retries it later, bounded by
                # maxReceiveCount) rather than hand the very same range on for ever.
                self.counts.add(chunks.SEGMENT_FAILED, stall.size)
                raise TrackingError("unavailable", stall.reason) from stall
            return stall.mark.offset
        finally:
            body.close()

    def _blocks(self, body: Any) -> Iterator[bytes]:
        stream = body.iter_chunks(READ_BLOCK)
        while True:
            began = self.ports.clock()
            block = next(stream, None)
            self._ended(began)
            if block is None:
                return
            yield block

    def _lines(self, lines: Iterator[parser.Line]) -> int | None:
        for line in lines:
            if self.ports.clock() >= self.deadline:
                if self.first is not None:
                    self._send(self.packer.drain())
                    return line.offset
                if self.deferrable:
                    raise _Deferred  # its turn came too late: back unchanged
                # Otherwise at least one line per attempt: a continuation makes progress.
            if self.first is None:
                self.first = line.offset
            try:
                self._line(line)
            except _OutOfTime as exc:
                if line.offset <= self.first:  # not one line done: fail, as above
                    if self.deferrable:
                        raise _Deferred from exc
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
            message_id=message_id(self.message.job, self.message.version, outcome.user_id),
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
        began = self.ports.clock()
        try:
            traits = self.ports.profiles.traits(user_id, [trait], deadline=self.deadline)
        except ProfileError as exc:
            self._ended(began)
            if exc.kind == "budget":  # no turn of the Profile API share before the deadline
                self._send(self.packer.drain())
                raise _OutOfTime from exc
            if exc.kind in ("rejected", "bad_response"):
                # This user only (a 400 for an odd userId): no retry would fix it.
                raise _ProfileFailed from exc
            raise
        self._ended(began)
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
            now = ports.clock()
            # After the deadline (the last batch before a continuation): one attempt only,
            # and only if nothing else has run past the deadline already.
            late = now >= self.deadline
            if late and self.late_used:
                raise _Stalled("no send left after the deadline", mark, len(batch))
            until = now + LATE_TOKEN_WAIT_S if late else self.deadline
            if ports.bucket.acquire(until, len(batch)) is None:
                raise _Stalled("no events/s budget before the deadline", mark, len(batch))
            if self.before_first_send is not None:
                hook, self.before_first_send = self.before_first_send, None
                began = ports.clock()
                hook()
                self._ended(began)
            began = ports.clock()
            if began >= self.deadline:
                self.late_used = True
            try:
                ports.tracking.send_batch(body)
            except TrackingError as exc:
                self._ended(began)
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
                        by_time = late or attempt < SEND_ATTEMPTS
                        raise _Stalled(reason, mark, len(batch), by_time=by_time) from exc
                    wait = exc.retry_after
                else:
                    wait = BACKOFF_S * 2 ** (attempt - 1)
                    if late or attempt >= SEND_ATTEMPTS or ports.clock() + wait > self.deadline:
                        self._failed(batch)
                        raise
                ports.sleep(wait)
                continue
            self._ended(began)
            self.counts.add(chunks.WRITTEN, len(batch))
            return

    def _failed(self, batch: list[segment_batch.Identify]) -> None:
        self.counts.add(chunks.SEGMENT_FAILED, len(batch))


def _code(exc: BaseException) -> str:
    return error_code(exc) or "error"
