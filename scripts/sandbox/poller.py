"""A local Kinesis event-source mapping: reads each shard with GetShardIterator/GetRecords and
invokes a handler with the event Lambda builds, with Lambda's batch semantics:

- a batch is at most ``batch_size`` records (and under the 6 MB invoke payload); with a
  batching window the poller waits up to that long to fill it, without one it invokes as soon
  as records arrive;
- the response may report failures (``ReportBatchItemFailures`` on): a null/empty list is
  success; otherwise the batch is checkpointed before the *lowest* failed sequence number
  and everything from it is retried; an empty/null ``itemIdentifier``, a wrong key, a
  sequence number outside the batch or an exception fails the whole batch;
- retries are bounded by ``max_retries`` (-1 = until it succeeds, Lambda's default);
  while a batch is retried, the shard waits (in-order processing);
- when retries run out, an on-failure record shaped like Lambda's
  (``condition: RetryAttemptsExhausted`` + ``KinesisBatchInfo``) goes to the on-failure
  destination and the shard moves past the batch.

Choices where Lambda's behaviour is not documented precisely: the retry count is per
checkpoint (progress from a partial failure starts a new count); a retry re-sends exactly the
records from the checkpoint to the end of the failed batch; retries back off exponentially
from ``retry_base_s`` up to ``retry_max_s``. Bisecting, tumbling windows, filters and
maximum record age are not emulated.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devkit.events import kinesis_record

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
GET_RECORDS_MAX = 10_000


@dataclass(frozen=True)
class MappingSettings:
    batch_size: int = 100
    batching_window_s: float = 0.0
    max_retries: int = 3
    starting_position: str = "TRIM_HORIZON"  # or LATEST
    poll_interval_s: float = 0.25  # Lambda polls a shard about once a second
    retry_base_s: float = 0.5
    retry_max_s: float = 5.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("batch size must be 1..10000")
        if not 0 <= self.batching_window_s <= 300:
            raise ValueError("batching window must be 0..300 seconds")
        if self.max_retries < -1 or self.max_retries > 10_000:
            raise ValueError("max retries must be -1..10000")
        if self.starting_position not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError("starting position must be TRIM_HORIZON or LATEST")


@dataclass(frozen=True)
class Stream:
    name: str
    arn: str
    region: str
    invoke_identity_arn: str


@dataclass
class BatchOutcome:
    """What one invocation did, for the console line and for tests."""

    shard_id: str
    records: list[dict[str, Any]]  # GetRecords records of the invoked batch
    attempt: int  # 1 for the first invocation of these records' checkpoint
    failed_from: str | None  # lowest failed sequence number, None on success
    whole_batch_failed: bool
    error: str | None  # why the whole batch failed
    gave_up: bool  # retries exhausted: on-failure record sent, batch skipped
    duration_s: float
    retry_number: int | None = None  # which retry of the failed records comes next

    @property
    def failed_records(self) -> int:
        if self.failed_from is None:
            return 0
        start = int(self.failed_from)
        return sum(1 for r in self.records if int(r["SequenceNumber"]) >= start)


def _iso_ms(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _arrival(record: dict[str, Any]) -> datetime:
    value = record.get("ApproximateArrivalTimestamp")
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)


def kinesis_event(
    records: Sequence[dict[str, Any]], stream: Stream, shard_id: str
) -> dict[str, Any]:
    """The event Lambda passes to a function for a batch of GetRecords records."""
    out = []
    for record in records:
        data = record["Data"]
        if isinstance(data, str):
            data = data.encode("utf-8")
        out.append(
            kinesis_record(
                base64.b64encode(data).decode("ascii"),
                sequence=str(record["SequenceNumber"]),
                partition_key=record["PartitionKey"],
                arrival=round(_arrival(record).timestamp(), 3),
                stream_arn=stream.arn,
                region=stream.region,
                shard_id=shard_id,
                invoke_identity_arn=stream.invoke_identity_arn,
            )
        )
    return {"Records": out}


def lowest_failure(response: Any, batch_seqs: Sequence[str]) -> tuple[str | None, str | None]:
    """(lowest failed sequence number, None) for a partial failure, (None, None) for success,
    (None, reason) when the response fails the whole batch."""
    if response is None or not isinstance(response, dict):
        # A non-dict return is no EventResponse: Lambda cannot read failures from it.
        return (None, None) if response is None else (None, "response is not an object")
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return None, None
    if not isinstance(failures, list):
        return None, "batchItemFailures is not a list"
    known = {int(s) for s in batch_seqs}
    lowest: int | None = None
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return None, "batchItemFailures entry without itemIdentifier"
        ident = item["itemIdentifier"]
        if ident is None or ident == "":
            return None, "empty or null itemIdentifier"
        try:
            value = int(str(ident))
        except ValueError:
            return None, f"itemIdentifier {str(ident)[:60]!r} is not a sequence number"
        if value not in known:
            return None, f"itemIdentifier {str(ident)[:60]!r} is not in the batch"
        lowest = value if lowest is None else min(lowest, value)
    return str(lowest), None


def on_failure_record(
    *,
    records: Sequence[dict[str, Any]],
    shard_id: str,
    stream: Stream,
    function_arn: str,
    invoke_count: int,
    function_error: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The metadata record Lambda sends to an SQS/SNS on-failure destination for Kinesis."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if function_error:
        response_context["functionError"] = function_error
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": _iso_ms(now),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": str(records[0]["SequenceNumber"]),
            "endSequenceNumber": str(records[-1]["SequenceNumber"]),
            "approximateArrivalOfFirstRecord": _iso_ms(_arrival(records[0])),
            "approximateArrivalOfLastRecord": _iso_ms(_arrival(records[-1])),
            "batchSize": len(records),
            "streamArn": stream.arn,
        },
    }


def _record_size(record: dict[str, Any]) -> int:
    # base64 grows data by 4/3; the rest of an event record is about 400 bytes.
    return len(record["Data"]) * 4 // 3 + 400


@dataclass
class ShardPoller:
    """Consumes one shard in order. ``step()`` does one unit of work and is what tests drive;
    ``run()`` loops it in a thread until ``stop`` is set."""

    kinesis: Any
    stream: Stream
    shard_id: str
    invoke: Callable[[dict[str, Any]], Any]
    function_arn: str
    send_on_failure: Callable[[dict[str, Any]], None]
    settings: MappingSettings = field(default_factory=MappingSettings)
    on_batch: Callable[[BatchOutcome], None] | None = None
    clock: Callable[[], float] = time.monotonic
    stop: threading.Event = field(default_factory=threading.Event)
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # state
    iterator: str | None = None
    buffer: list[dict[str, Any]] = field(default_factory=list)
    buffered_since: float | None = None
    retry: list[dict[str, Any]] | None = None  # records waiting to be retried
    retry_at: float = 0.0
    attempts: int = 0  # failed invocations at the current checkpoint
    last_error: str | None = None
    last_fetched: str | None = None  # highest sequence number read (to renew an iterator)
    checkpoint: str | None = None  # highest sequence number done with (processed or given up)
    closed: bool = False  # the shard ended (resharding) and everything read is done
    invocations: int = 0
    invoking: list[dict[str, Any]] | None = None  # the batch being invoked right now
    millis_behind_latest: int = 0  # from the last GetRecords

    def lag_s(self) -> float:
        """How far behind the stream's tip this shard is: the age of the oldest record read
        but not yet done, or, with nothing pending, GetRecords' ``MillisBehindLatest``.
        Safe to call from another thread (it only reads)."""
        for pending in (self.retry, self.invoking, self.buffer):
            if pending:
                age = self.wall_clock() - _arrival(pending[0])
                return max(0.0, age.total_seconds())
        return self.millis_behind_latest / 1000.0

    def new_iterator(self) -> str | None:
        if self.last_fetched is not None:
            kwargs: dict[str, Any] = {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": self.last_fetched,
            }
        else:
            kwargs = {"ShardIteratorType": self.settings.starting_position}
        response = self.kinesis.get_shard_iterator(
            StreamName=self.stream.name, ShardId=self.shard_id, **kwargs
        )
        return response.get("ShardIterator")  # type: ignore[no-any-return]

    def _fetch(self) -> int:
        """Read more records into the buffer; the number read."""
        if self.iterator is None:
            self.iterator = self.new_iterator()
            if self.iterator is None:
                return 0
        room = self.settings.batch_size - len(self.buffer)
        try:
            response = self.kinesis.get_records(
                ShardIterator=self.iterator, Limit=min(room, GET_RECORDS_MAX)
            )
        except Exception as exc:
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
            if code == "ExpiredIteratorException":
                self.iterator = None  # renewed after the last record read, on the next step
                return 0
            raise
        records = list(response.get("Records") or [])
        self.iterator = response.get("NextShardIterator")
        self.millis_behind_latest = int(response.get("MillisBehindLatest") or 0)
        if records:
            if self.buffered_since is None:
                self.buffered_since = self.clock()
            self.buffer.extend(records)
            self.last_fetched = str(records[-1]["SequenceNumber"])
        if self.iterator is None and not self.buffer:
            self.closed = True
        return len(records)

    def _take_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        size = 0
        for record in self.buffer[: self.settings.batch_size]:
            size += _record_size(record)
            if batch and size > MAX_PAYLOAD_BYTES:
                break
            batch.append(record)
        self.buffer = self.buffer[len(batch) :]
        self.buffered_since = self.clock() if self.buffer else None
        return batch

    def _ready(self) -> bool:
        if not self.buffer:
            return False
        if len(self.buffer) >= self.settings.batch_size or self.iterator is None:
            return True
        assert self.buffered_since is not None
        return self.clock() - self.buffered_since >= self.settings.batching_window_s

    def step(self) -> float:
        """Do one unit of work; returns how long the caller may sleep before the next step."""
        if self.retry is not None:
            wait = self.retry_at - self.clock()
            if wait > 0:
                return wait
            batch, self.retry = self.retry, None
            self._invoke(batch)
            return 0.0
        read = 0 if self.closed else self._fetch()
        if self._ready():
            self._invoke(self._take_batch())
            return 0.0
        if read:
            # Records are waiting for the batching window: poll again when it ends, sooner if
            # the batch may fill up.
            assert self.buffered_since is not None
            left = self.settings.batching_window_s - (self.clock() - self.buffered_since)
            return max(0.0, min(left, self.settings.poll_interval_s))
        return self.settings.poll_interval_s

    def _invoke(self, batch: list[dict[str, Any]]) -> None:
        seqs = [str(r["SequenceNumber"]) for r in batch]
        started = self.clock()
        error: str | None = None
        failed_from: str | None = None
        function_error: str | None = None
        self.invocations += 1
        self.invoking = batch
        try:
            response = self.invoke(kinesis_event(batch, self.stream, self.shard_id))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:200]
            function_error = "Unhandled"
        else:
            failed_from, error = lowest_failure(response, seqs)
        finally:
            self.invoking = None
        duration = self.clock() - started
        whole = error is not None
        if whole:
            failed_from = seqs[0]
        attempt = self.attempts + 1
        gave_up = False
        retry_number: int | None = None
        if failed_from is None:
            self.attempts = 0
            self.checkpoint = seqs[-1]
        else:
            if failed_from != seqs[0]:
                # Progress: the records before the lowest failure are done, and the count of
                # attempts starts again at the new checkpoint.
                done_upto = seqs[seqs.index(failed_from) - 1]
                self.checkpoint = done_upto
                self.attempts = 1
            else:
                self.attempts += 1
            remaining = batch[seqs.index(failed_from) :]
            retries_done = self.attempts - 1
            exhausted = (
                self.settings.max_retries != -1 and retries_done >= self.settings.max_retries
            )
            if exhausted and self._give_up(remaining, function_error):
                gave_up = True
                self.attempts = 0
                self.checkpoint = seqs[-1]
            elif exhausted:
                # The on-failure destination is unreachable: keep the records (no loss without
                # a trace) and try again later.
                self.retry = remaining
                self.retry_at = self.clock() + self.settings.retry_max_s
            else:
                self.retry = remaining
                retry_number = self.attempts
                backoff = self.settings.retry_base_s * (2 ** max(0, self.attempts - 1))
                self.retry_at = self.clock() + min(self.settings.retry_max_s, backoff)
        self.last_error = error
        if self.on_batch is not None:
            self._report(
                BatchOutcome(
                    shard_id=self.shard_id,
                    records=batch,
                    attempt=attempt,
                    failed_from=failed_from,
                    whole_batch_failed=whole,
                    error=error,
                    gave_up=gave_up,
                    duration_s=duration,
                    retry_number=retry_number,
                )
            )

    def _give_up(self, records: list[dict[str, Any]], function_error: str | None) -> bool:
        record = on_failure_record(
            records=records,
            shard_id=self.shard_id,
            stream=self.stream,
            function_arn=self.function_arn,
            invoke_count=self.attempts,
            function_error=function_error,
            now=self.wall_clock(),
        )
        try:
            self.send_on_failure(record)
        except Exception:
            return False
        return True

    def _report(self, outcome: BatchOutcome) -> None:
        assert self.on_batch is not None
        with contextlib.suppress(Exception):  # a console problem must not stop the shard
            self.on_batch(outcome)

    def run(self) -> None:
        while not self.stop.is_set() and not (self.closed and self.retry is None):
            try:
                pause = self.step()
            except Exception:
                # A Kinesis hiccup (the emulator restarting, a throttle): poll again later.
                self.iterator = None
                pause = 1.0
            if pause > 0:
                self.stop.wait(pause)


class EventSourceMapping:
    """One poller thread per shard of the stream (parallelization factor 1)."""

    def __init__(
        self,
        kinesis: Any,
        stream: Stream,
        invoke: Callable[[dict[str, Any]], Any],
        function_arn: str,
        send_on_failure: Callable[[dict[str, Any]], None],
        settings: MappingSettings,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.stop_event = threading.Event()
        shards = kinesis.list_shards(StreamName=stream.name)["Shards"]
        self.pollers = [
            ShardPoller(
                kinesis=kinesis,
                stream=stream,
                shard_id=shard["ShardId"],
                invoke=invoke,
                function_arn=function_arn,
                send_on_failure=send_on_failure,
                settings=settings,
                on_batch=on_batch,
                stop=self.stop_event,
            )
            for shard in shards
        ]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for poller in self.pollers:
            # Position each iterator now, so LATEST means "from when the sandbox was ready".
            poller.iterator = poller.new_iterator()
            thread = threading.Thread(
                target=poller.run, name=f"poller-{poller.shard_id}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))


def decode_user_ids(records: Sequence[dict[str, Any]]) -> set[str]:
    """Distinct userIds in a batch (for the console line; bad records are just not counted)."""
    users: set[str] = set()
    for record in records:
        try:
            message = json.loads(record["Data"])
        except (ValueError, TypeError):
            continue
        if isinstance(message, dict):
            user = message.get("userId")
            if isinstance(user, str | int) and not isinstance(user, bool) and str(user):
                users.add(str(user))
    return users
