"""Replays generated Segment messages into the stream as Segment's Amazon Kinesis destination
writes them: one message per record, JSON data, partition key ``userId || anonymousId``.

Messages are re-stamped to the moment they are sent (the generator's clock starts in 2024),
and optionally also delivered to the Segment emulator's tracking API first, as the source
would: that is how a profile's computed ``purchased_products`` stays current.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
PUT_ATTEMPTS = 5
_TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")


def partition_key(message: dict[str, Any]) -> str:
    """``userId || anonymousId``, as Segment's Kinesis destination uses."""
    user = message.get("userId")
    if user is not None and str(user) != "":
        return str(user)
    return str(message.get("anonymousId") or message.get("messageId") or "unknown")


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def restamp(message: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A copy whose ``timestamp`` is ``now``, the other time fields keeping their offsets."""
    anchor = _parse(message.get("timestamp"))
    if anchor is None:
        return dict(message)
    shift: timedelta = now - anchor
    out = dict(message)
    for name in _TIME_FIELDS:
        moment = _parse(message.get(name))
        if moment is not None:
            out[name] = _iso(moment + shift)
    return out


@dataclass
class ReplayStats:
    sent: int = 0
    failed: int = 0
    calls: int = 0
    profile_errors: int = 0


@dataclass
class Replayer:
    """Sends ``messages`` at ``rate`` per second (0 = as fast as PutRecords allows)."""

    kinesis: Any
    stream_name: str
    messages: Iterator[dict[str, Any]]
    rate: float
    to_profiles: Callable[[Sequence[dict[str, Any]]], None] | None = None
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    stop: threading.Event = field(default_factory=threading.Event)
    tick_s: float = 0.2
    stats: ReplayStats = field(default_factory=ReplayStats)
    finished: bool = False
    _started: float | None = None
    _pending: dict[str, Any] | None = None

    def _due(self) -> int:
        """How many messages should have been sent by now."""
        assert self._started is not None
        if self.rate <= 0:
            return self.stats.sent + self.stats.failed + MAX_RECORDS_PER_CALL
        return int((self.clock() - self._started) * self.rate) + 1

    def _next(self) -> dict[str, Any] | None:
        if self._pending is not None:
            message, self._pending = self._pending, None
            return message
        return next(self.messages, None)

    def step(self) -> float:
        """Send what is due; returns how long to wait before the next step."""
        if self._started is None:
            self._started = self.clock()
        want = self._due() - (self.stats.sent + self.stats.failed)
        chunk: list[dict[str, Any]] = []
        entries: list[dict[str, Any]] = []
        size = 0
        now = self.wall_clock()
        while len(entries) < min(want, MAX_RECORDS_PER_CALL):
            message = self._next()
            if message is None:
                self.finished = True
                break
            message = restamp(message, now)
            data = json.dumps(message, separators=(",", ":")).encode("utf-8")
            key = partition_key(message)
            if entries and size + len(data) + len(key) > MAX_BYTES_PER_CALL:
                self._pending = message
                break
            size += len(data) + len(key)
            chunk.append(message)
            entries.append({"Data": data, "PartitionKey": key})
        if entries:
            if self.to_profiles is not None:
                try:
                    self.to_profiles(chunk)
                except Exception:
                    self.stats.profile_errors += 1
            self._put(entries)
        if self.finished:
            return 0.0
        return 0.0 if self.rate <= 0 else self.tick_s

    def _put(self, entries: list[dict[str, Any]]) -> None:
        """PutRecords, re-sending only the entries that failed (throttling), in order."""
        todo = entries
        for attempt in range(PUT_ATTEMPTS):
            self.stats.calls += 1
            try:
                response = self.kinesis.put_records(StreamName=self.stream_name, Records=todo)
            except Exception:
                if attempt == PUT_ATTEMPTS - 1 or self.stop.wait(0.2 * (attempt + 1)):
                    break
                continue
            results = response.get("Records") or []
            retry = [e for e, r in zip(todo, results, strict=False) if r.get("ErrorCode")]
            self.stats.sent += len(todo) - len(retry)
            todo = retry
            if not todo or self.stop.wait(0.2 * (attempt + 1)):
                break
        self.stats.failed += len(todo)

    def run(self) -> None:
        while not self.stop.is_set() and not self.finished:
            pause = self.step()
            if pause > 0:
                self.stop.wait(pause)


def endless(
    make: Callable[[int], Iterator[dict[str, Any]]], limit: int
) -> Iterator[dict[str, Any]]:
    """``limit`` messages (0 = no end), drawing further rounds from ``make(round)``."""
    produced = 0
    round_no = 0
    while True:
        fresh = False
        for message in make(round_no):
            fresh = True
            yield message
            produced += 1
            if limit and produced >= limit:
                return
        if not fresh:
            return
        round_no += 1
