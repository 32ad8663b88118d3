"""Replays generated Segment messages as an app would send them: through Segment's official
Python library (segment-analytics-python) to the Segment emulator's tracking URL, which
delivers them to the stream as Segment's Amazon Kinesis destination does. Nothing here
writes to the stream.

Messages are re-stamped to the moment they are sent (the generator's clock starts in 2024).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

_TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")
SHUTDOWN_FLUSH_S = 5.0
QUEUE_WAIT_S = 10.0


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
    sent: int = 0  # handed to the library
    refused: int = 0  # the library refused the message (its own validation)


@dataclass
class Replayer:
    """Hands ``messages`` to ``send`` at ``rate`` per second (0 = as fast as it takes them)."""

    messages: Iterator[dict[str, Any]]
    rate: float
    send: Callable[[dict[str, Any]], None]
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    stop: threading.Event = field(default_factory=threading.Event)
    tick_s: float = 0.2
    burst: int = 500  # most messages per step when unpaced
    stats: ReplayStats = field(default_factory=ReplayStats)
    finished: bool = False
    _started: float | None = None

    def _due(self) -> int:
        """How many messages should have been handed over by now."""
        assert self._started is not None
        done = self.stats.sent + self.stats.refused
        if self.rate <= 0:
            return done + self.burst
        return int((self.clock() - self._started) * self.rate) + 1

    def step(self) -> float:
        """Send what is due; returns how long to wait before the next step."""
        if self._started is None:
            self._started = self.clock()
        want = self._due() - (self.stats.sent + self.stats.refused)
        now = self.wall_clock()
        for _ in range(max(0, want)):
            message = next(self.messages, None)
            if message is None:
                self.finished = True
                return 0.0
            try:
                self.send(restamp(message, now))
            except (TypeError, ValueError, AssertionError, RuntimeError):
                # The library validates before queueing (ids, types, 32 KB): counted.
                self.stats.refused += 1
            else:
                self.stats.sent += 1
        return 0.0 if self.rate <= 0 else self.tick_s

    def run(self) -> None:
        while not self.stop.is_set() and not self.finished:
            pause = self.step()
            if pause > 0:
                self.stop.wait(pause)


class SegmentLibrary:
    """segment-analytics-python's client pointed at a tracking URL: each generated message
    becomes the library call an app would make (``track``, ``identify``, ``page``...), and the
    library batches, gzips and retries as it does for any app."""

    def __init__(
        self,
        tracking_url: str,
        write_key: str,
        *,
        gzip: bool = True,
        upload_interval_s: float = 0.25,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        if client_factory is None:
            from segment.analytics import Client  # type: ignore[import-untyped]

            client_factory = Client
        self.failed_batches = 0
        self.failed_messages = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self.client = client_factory(
            write_key,
            host=tracking_url,
            gzip=gzip,
            upload_interval=upload_interval_s,
            on_error=self._on_error,
            max_retries=3,
            timeout=5,
        )
        # The library logs each failed upload at ERROR on the "segment" logger; the sandbox
        # counts them instead (on_error) and shows them in its totals.
        logging.getLogger("segment").setLevel(logging.CRITICAL)

    def _on_error(self, error: Exception, batch: list[Any]) -> None:
        with self._lock:
            self.failed_batches += 1
            self.failed_messages += len(batch)
            self.last_error = str(error)[:200]

    def __call__(self, message: Mapping[str, Any]) -> None:
        kind = message.get("type")
        common: dict[str, Any] = {
            "context": {k: v for k, v in (message.get("context") or {}).items() if k != "library"},
            "timestamp": _parse(message.get("timestamp")),
            "integrations": message.get("integrations") or None,
            "message_id": message.get("messageId"),
        }
        user_id, anonymous_id = message.get("userId"), message.get("anonymousId")
        client = self.client
        # Backpressure when replaying unpaced: wait (bounded) for room in the library's queue
        # rather than have it drop the message.
        deadline = time.monotonic() + QUEUE_WAIT_S
        while client.queue.full() and time.monotonic() < deadline:
            time.sleep(0.01)
        queued: Any = None
        if kind == "track":
            queued = client.track(user_id, message.get("event"), message.get("properties"),
                         anonymous_id=anonymous_id, **common)  # fmt: skip
        elif kind == "identify":
            queued = client.identify(
                user_id, message.get("traits"), anonymous_id=anonymous_id, **common
            )
        elif kind in ("page", "screen"):
            call = client.page if kind == "page" else client.screen
            queued = call(user_id, message.get("category"), message.get("name"),
                 message.get("properties"), anonymous_id=anonymous_id, **common)  # fmt: skip
        elif kind == "group":
            queued = client.group(user_id, message.get("groupId"), message.get("traits"),
                         anonymous_id=anonymous_id, **common)  # fmt: skip
        elif kind == "alias":
            queued = client.alias(message.get("previousId"), user_id, **common)
        else:
            raise ValueError(f"not a Segment call type: {kind!r}")
        if isinstance(queued, tuple) and queued and queued[0] is False:
            raise RuntimeError("the library's queue is full")

    def pending(self) -> int:
        return int(self.client.queue.unfinished_tasks)

    def close(self, timeout_s: float = SHUTDOWN_FLUSH_S) -> int:
        """Upload what is queued (bounded: the library's own flush() has no deadline), stop
        its thread; returns how many messages were still queued."""
        deadline = time.monotonic() + timeout_s
        while self.pending() and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.pending()
        self.client.join()
        return left


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
