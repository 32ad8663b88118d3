"""Running totals of what the sandbox does, for the console's periodic line and the summary
printed at exit. Pure bookkeeping: the runner feeds it, nothing here does I/O."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.store_counts import StoreCounts


@dataclass(frozen=True)
class Counts:
    """Cumulative counts at one moment (rates come from two of them)."""

    records_in: int = 0  # put on the stream by Segment's Amazon Kinesis destination
    records_out: int = 0  # done by the event-source poller (processed, or skipped on give-up)
    invocations: int = 0
    identifies: int = 0  # identify calls with the recommended trait that reached Segment
    failed_records: int = 0  # records reported for retry, per invocation
    on_failure: int = 0  # batches given up (on-failure record sent)
    dead_letters: int = 0
    profile_requests: int = 0
    # Like Lambda's IteratorAge: the age of the oldest record read and not yet done, else
    # GetRecords' MillisBehindLatest.
    lag_s: float = 0.0
    store: StoreCounts | None = None  # None: the sandbox runs without the user-state store


class MonotonicCount:
    """A total kept across resets of the counter it reads (an emulator's stats reset)."""

    def __init__(self) -> None:
        self.total = 0
        self._last = 0

    def update(self, current: int) -> int:
        self.total += current - self._last if current >= self._last else current
        self._last = current
        return self.total


@dataclass
class Totals:
    """Thread-safe: the poller threads, the log tap and the console thread all write here."""

    _counts: Counts = field(default_factory=Counts)
    api_statuses: Counter[int] = field(default_factory=Counter)
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **deltas: int) -> None:
        with self._lock:
            values = {name: getattr(self._counts, name) + n for name, n in deltas.items()}
            self._counts = replace(self._counts, **values)

    def set(self, **values: Any) -> None:
        with self._lock:
            self._counts = replace(self._counts, **values)

    def dead_letter(self, reason: str) -> None:
        with self._lock:
            self.dead_letter_reasons[reason] += 1
            self._counts = replace(self._counts, dead_letters=self._counts.dead_letters + 1)

    def api_request(self, status: int) -> None:
        with self._lock:
            self.api_statuses[status] += 1

    def snapshot(self) -> Counts:
        with self._lock:
            return self._counts


def _rate(now: int, before: int, seconds: float, unit: str = "/s") -> str:
    return f"{(now - before) / seconds:.1f}{unit}" if seconds > 0 else "-"


def totals_line(before: Counts, now: Counts, seconds: float) -> str:
    """One line: rates over the last ``seconds``, totals since the start."""
    behind = max(0, now.records_in - now.records_out)
    return (
        f"totals in {_rate(now.records_in, before.records_in, seconds)} "
        f"out {_rate(now.records_out, before.records_out, seconds)} "
        f"lag {behind} records (iterator age {now.lag_s:.1f} s) "
        f"identifies {now.identifies} failures {now.failed_records} "
        f"dead-letters {now.dead_letters} "
        f"profile-api {_rate(now.profile_requests, before.profile_requests, seconds, ' req/s')}"
        + (_store_short(now.store) if now.store is not None else "")
    )


def _store_short(store: StoreCounts) -> str:
    more = "" if store.complete else "+"
    return (
        f" store {store.users}{more} users ({store.seeded}{more} seeded) "
        f"deferred {store.deferred} ({store.waiting} waiting)"
    )


def _store_long(store: StoreCounts) -> str:
    more = "" if store.complete else " (scan cut short)"
    return (
        f"; store {store.users} users, {store.seeded} seeded, {store.refreshed} refreshed, "
        f"{store.capped} capped{more}; {store.deferred} refreshes deferred "
        f"({store.trailing} trailing refreshes run, {store.waiting} waiting)"
    )


def summary_lines(
    counts: Counts,
    seconds: float,
    *,
    replay: dict[str, Any] | None,
    destination: dict[str, Any] | None,
    api_statuses: Counter[int],
    dead_letter_reasons: Counter[str],
) -> list[str]:
    lines = [f"sandbox: summary after {seconds:.1f} s"]
    if replay is not None:
        lines.append(
            f"  Segment   {replay['sent']} events sent with analytics-python "
            f"({replay['refused']} refused by the library, {replay['failed']} in failed "
            f"uploads, {replay['left']} still queued at stop)"
        )
    if destination is not None:
        undeliverable = sum(destination.get("undeliverable", {}).values())
        lines.append(
            f"  Kinesis   {destination['delivered']} records put by the Amazon Kinesis "
            f"destination in {destination['put_calls']} PutRecords calls "
            f"({destination['duplicates']} duplicates, {undeliverable} undeliverable, "
            f"{destination.get('left_at_stop', destination.get('pending', 0))} left at stop)"
        )
    reasons = ", ".join(f"{r}: {n}" for r, n in sorted(dead_letter_reasons.items()))
    lines.append(
        f"  traits    {counts.records_out} records done in {counts.invocations} invocations, "
        f"{counts.identifies} identifies, {counts.failed_records} failed records, "
        f"{counts.on_failure} on-failure records, {counts.dead_letters} dead-lettered"
        + (f" ({reasons})" if reasons else "")
    )
    statuses = ", ".join(f"{s}: {n}" for s, n in sorted(api_statuses.items()))
    lines.append(
        f"  API       {sum(api_statuses.values())} requests"
        + (f" ({statuses})" if statuses else "")
    )
    # The store's counters on the Profile line: seeding is what the Profile API is for now.
    lines.append(
        f"  Profile   {counts.profile_requests} Profile API requests"
        + (_store_long(counts.store) if counts.store is not None else "")
    )
    return lines
