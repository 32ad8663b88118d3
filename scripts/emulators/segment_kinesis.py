"""Segment's Amazon Kinesis destination, emulated: what the Segment emulator accepts is put on
a Kinesis stream the way the real destination writes it.

- one message per record, ``Data`` the full message JSON; ``PartitionKey`` is
  ``userId || anonymousId``, or ``messageId`` with the destination's ``useMessageId`` option;
- PutRecords batches (at most 500 records and 5 MiB per call); entries the stream refuses
  (``ErrorCode``, e.g. throttling) and calls that fail are sent again with capped backoff:
  nothing is dropped while the emulator runs (Segment retries for hours);
- at least once: with ``duplicate_rate`` a delivered record is delivered again later, as
  Segment's retried stream batches do; reordering follows from the retries;
- a message whose ``integrations`` turn the destination off (``"Amazon Kinesis": false``, or
  ``"All": false`` without ``"Amazon Kinesis": true``) is not delivered.

The PutRecords calls go to whatever client is given (boto3 against moto's server in the
sandbox and the tests); :func:`loopback_kinesis_client` refuses anything but 127.0.0.1.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from devkit.aws import local_client

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024  # partition key + data
MAX_PARTITION_KEY = 256
DESTINATION_NAME = "Amazon Kinesis"


def partition_key(message: Mapping[str, Any], use_message_id: bool = False) -> str:
    """``useMessageId ? messageId : userId || anonymousId`` (JavaScript truthiness: an empty
    userId falls through to the anonymousId); ids are sent as strings."""
    if use_message_id:
        return _text(message.get("messageId"))
    user = _text(message.get("userId"))
    return user or _text(message.get("anonymousId"))


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    return str(value)


def routed_to_kinesis(integrations: Any) -> bool:
    """Segment's ``integrations`` routing for this destination (names are case-sensitive)."""
    if not isinstance(integrations, Mapping):
        return True
    own = integrations.get(DESTINATION_NAME)
    if own is not None:
        return own is not False
    return integrations.get("All") is not False


@dataclass
class _Entry:
    data: bytes
    key: str
    duplicate: bool = False  # a redelivery: not itself duplicated again

    @property
    def size(self) -> int:
        return len(self.data) + len(self.key.encode())


class DestinationOptions(TypedDict, total=False):
    """The destination's settings in Segment (what the sandbox lets a user change)."""

    use_message_id: bool  # partition key messageId instead of userId || anonymousId
    duplicate_rate: float  # probability that a delivered record is delivered again


class KinesisDestination:
    """Delivers messages to one stream from a background thread (``start``/``stop``);
    ``deliver`` only queues, so the Tracking API answers without waiting for Kinesis."""

    def __init__(
        self,
        kinesis: KinesisClient,
        stream_name: str,
        *,
        use_message_id: bool = False,
        duplicate_rate: float = 0.0,
        seed: int = 0,
        linger_s: float = 0.05,
        retry_base_s: float = 0.1,
        retry_max_s: float = 5.0,
    ) -> None:
        self.kinesis = kinesis
        self.stream_name = stream_name
        self.use_message_id = use_message_id
        self.duplicate_rate = _rate(duplicate_rate)
        self.linger_s = linger_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self._rng = random.Random(f"kinesis-duplicates:{seed}")
        self._queue: deque[_Entry] = deque()
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures_in_a_row = 0
        self._drain_until = 0.0
        # counters (under _cond)
        self.accepted = 0
        self.delivered = 0
        self.duplicates = 0
        self.put_calls = 0
        self.refused_entries = 0  # entries with an ErrorCode, sent again
        self.failed_calls = 0  # calls that raised, sent again
        self.undeliverable: Counter[str] = Counter()
        self.last_error: str | None = None
        self.left_at_stop = 0

    # -- settings and stats ------------------------------------------------------------------

    def configure(
        self, *, use_message_id: bool | None = None, duplicate_rate: float | None = None
    ) -> None:
        with self._cond:
            if use_message_id is not None:
                if not isinstance(use_message_id, bool):
                    raise ValueError("use_message_id must be true or false")
                self.use_message_id = use_message_id
            if duplicate_rate is not None:
                self.duplicate_rate = _rate(duplicate_rate)

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "stream_name": self.stream_name,
                "use_message_id": self.use_message_id,
                "duplicate_rate": self.duplicate_rate,
                "accepted": self.accepted,
                "delivered": self.delivered,
                "duplicates": self.duplicates,
                "pending": len(self._queue) + self._in_flight,
                "put_calls": self.put_calls,
                "refused_entries": self.refused_entries,
                "failed_calls": self.failed_calls,
                "undeliverable": dict(self.undeliverable),
                "last_error": self.last_error,
            }

    # -- delivery ----------------------------------------------------------------------------

    def deliver(self, message: Mapping[str, Any]) -> None:
        """Queue one accepted message (cheap; called while the emulator ingests)."""
        with self._cond:
            key = partition_key(message, self.use_message_id)
            if not key:
                self.undeliverable["no_partition_key"] += 1
                return
            if len(key) > MAX_PARTITION_KEY:
                # Kinesis refuses the whole call for one such key: kept out of the batch.
                self.undeliverable["partition_key_over_256"] += 1
                return
            entry = _Entry(json.dumps(message, separators=(",", ":")).encode("utf-8"), key)
            if entry.size > MAX_RECORD_BYTES:
                self.undeliverable["record_over_1_mib"] += 1
                return
            self.accepted += 1
            self._queue.append(entry)
            self._cond.notify()

    def step(self) -> float:
        """One PutRecords call with what is queued; returns how long to wait before the next
        one (the backoff after a failure, else 0). Tests drive this directly."""
        with self._cond:
            batch: list[_Entry] = []
            size = 0
            while self._queue and len(batch) < MAX_RECORDS_PER_CALL:
                entry = self._queue[0]
                if batch and size + entry.size > MAX_BYTES_PER_CALL:
                    break
                batch.append(self._queue.popleft())
                size += entry.size
            self._in_flight = len(batch)
        if not batch:
            return 0.0
        refused: list[_Entry] = []
        error: str | None = None
        call_failed = False
        try:
            response = self.kinesis.put_records(
                StreamName=self.stream_name,
                Records=[{"Data": e.data, "PartitionKey": e.key} for e in batch],
            )
            results = list(response.get("Records") or [])
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} records")
            refused = [e for e, r in zip(batch, results, strict=True) if r.get("ErrorCode")]
            if refused:
                codes = {str(r["ErrorCode"]) for r in results if r.get("ErrorCode")}
                error = f"entries refused: {', '.join(sorted(codes))}"
        except Exception as exc:  # every failure is retried, none is fatal
            refused, call_failed = batch, True
            error = f"{type(exc).__name__}: {exc}"[:300]
        with self._cond:
            self.put_calls += 1
            self.delivered += len(batch) - len(refused)
            if call_failed:
                self.failed_calls += 1
            else:
                self.refused_entries += len(refused)
            # Refused entries go first again: the next call retries them before newer ones.
            self._queue.extendleft(reversed(refused))
            self._in_flight = 0
            if self.duplicate_rate > 0:
                refused_ids = {id(e) for e in refused}
                for entry in batch:
                    if id(entry) in refused_ids or entry.duplicate:
                        continue
                    if self._rng.random() < self.duplicate_rate:
                        self.duplicates += 1
                        self.accepted += 1
                        self._queue.append(_Entry(entry.data, entry.key, duplicate=True))
            if error is None:
                self._failures_in_a_row = 0
                return 0.0
            self.last_error = error
            self._failures_in_a_row += 1
            backoff = self.retry_base_s * 2 ** min(20, self._failures_in_a_row - 1)
            return float(min(self.retry_max_s, backoff))

    def flush(self, timeout_s: float) -> bool:
        """Wait (bounded) until everything queued is delivered, doing the calls in this thread
        when no delivery thread runs; True if nothing is left."""
        deadline = time.monotonic() + timeout_s
        while self.pending():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._thread is None:
                pause = self.step()
                if pause:
                    time.sleep(min(pause, left))  # the retry backoff itself
            else:
                with self._cond:
                    self._cond.wait(timeout=min(0.05, left))
        return True

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> KinesisDestination:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._run, name=f"kinesis-destination-{self.stream_name}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued for up to ``timeout_s``, then stop; what is left is counted
        in ``left_at_stop``."""
        thread = self._thread
        if thread is not None:
            self._drain_until = time.monotonic() + timeout_s
            self._stopping.set()
            with self._cond:
                self._cond.notify_all()
            thread.join(timeout=timeout_s + 2.0)
            self._thread = None
        with self._cond:
            self.left_at_stop = len(self._queue) + self._in_flight

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping.is_set():
                    self._cond.wait(timeout=0.5)
                if not self._queue:
                    return
                full = len(self._queue) >= MAX_RECORDS_PER_CALL
            stopping = self._stopping.is_set()
            if stopping and time.monotonic() > self._drain_until:
                return
            if not stopping and not full and self.linger_s > 0:
                # A short linger gathers a stream batch instead of one call per message.
                self._stopping.wait(self.linger_s)
            pause = self.step()
            with self._cond:
                self._cond.notify_all()  # wakes flush()
            if pause > 0:
                if self._stopping.is_set():
                    # Draining: keep backing off, but never past the stop deadline.
                    time.sleep(max(0.0, min(pause, self._drain_until - time.monotonic())))
                else:
                    self._stopping.wait(pause)


def _rate(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("duplicate_rate must be a number from 0 to 1")
    rate = float(value)
    if not 0.0 <= rate <= 1.0:
        raise ValueError("duplicate_rate must be a number from 0 to 1")
    return rate


def loopback_kinesis_client(endpoint_url: str, region: str) -> KinesisClient:
    """A boto3 Kinesis client for a local AWS emulator; anything but loopback is refused, so
    the emulator can never write to a real AWS account."""
    return local_client("kinesis", endpoint_url, region)
