"""Capacity and cost of the traits sync with the user-state store at a shop's event rate.

    PYTHONPATH=scripts:functions .venv/bin/python scripts/bench/capacity.py [--rate 2000]
        [--seconds 120] [--intervals 0 30] [--keys userId messageId] [--json build/bench.json]

Pure computation, no emulators, deterministic (one seed), seconds to run. A Zipf(s=1.1)
stream of browsing sessions at ``--rate`` events/s goes through a model of the deployment:

- **Kinesis**: each event to a shard by its partition key (userId, or messageId: Segment's
  newer destination), within the shard to one of ``parallelization_factor`` slots by key
  (Lambda keeps order per partition key); a slot's batch closes at ``batch_size`` records or
  ``batching_window`` seconds after its first record, as the event source mapping does.
- **The traits sync with the store** (``traits_sync/refresh.py``): per batch one
  BatchGetItem per 100 distinct users (strongly consistent: one read unit per item of at most
  4 KB), PutEvents per user (10 events a call), an UpdateItem per buyer (the purchase),
  and the coalescing rule: a user who bought nothing and was refreshed less than ``T`` ago is
  deferred to the refresh queue (one message, delayed until the window ends); every other
  user is refreshed (GetRecommendations, a claim UpdateItem, an identify). A user the store
  has not seen is seeded: one Profile API read and one UpdateItem.
- **The refresh queue**: a message is delivered ``queue_latency`` after its delay; the
  function takes up to 10 a batch (one BatchGetItem), drops a message when the user was
  refreshed after it was sent (superseded) and refreshes the user otherwise.

Counted over ``--seconds`` after a ``--warmup`` (the store starts empty at the warm-up's
start, so the seeding rate is a cold store's, an upper bound for a warm one): calls per
event and per second, DynamoDB read and write units, SQS requests, Lambda invocations and
their modelled durations (latency path or CPU path, whichever is longer), and from those the
concurrency, the shards and parallelization needed and the cost per million events.
Every constant the model assumes is an option or a named constant below.
"""

from __future__ import annotations

import argparse
import bisect
import heapq
import itertools
import math
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT / "functions", ROOT / "functions" / "update_traits", ROOT / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from common.userstate import BATCH_GET_KEYS, item_size  # noqa: E402 - after the path setup
from traits_sync.refresh import SEED_PATIENCE_S  # noqa: E402

# -- limits the table is checked against --------------------------------------------------
# Kinesis: a shard takes 1 MiB/s or 1,000 records/s of writes
# (https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html).
SHARD_BYTES_PER_S = 1024 * 1024
SHARD_RECORDS_PER_S = 1000
# Personalize: GetRecommendations 500 TPS per campaign, PutEvents 1,000 requests/s per
# dataset group (https://docs.aws.amazon.com/personalize/latest/dg/limits.html).
GET_RECOMMENDATIONS_TPS = 500
PUT_EVENTS_RPS = 1000
PUT_EVENTS_PER_CALL = 10
# Segment: the Profile API 100 requests/s per space, the traits' share of it 90
# (terraform/README.md), Engage's inbound data throughput 1,000 events/s for everything
# that reaches the space, the sources' own events included
# (https://www.twilio.com/docs/segment/engage/product-limits), the Tracking API 1,000
# requests/s per workspace
# (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#rate-limits).
PROFILE_API_RPS = 100
PROFILE_API_BUDGET = 90
ENGAGE_INBOUND_PER_S = 1000
TRACKING_API_RPS = 1000
SQS_BATCH = 10  # SendMessageBatch entries, and the refresh queue's batch_size
LAMBDA_VCPU_MB = 1769  # memory at which a function has one full vCPU

# -- prices, us-east-1 ----------------------------------------------------------------------
# DynamoDB on-demand, Standard table class: $0.625 per million write request units, $0.125
# per million read request units since the 2024-11-01 price cut (half the earlier $1.25 /
# $0.25); a strongly consistent read of up to 4 KB is one read unit, a write of up to 1 KB
# one write unit (https://aws.amazon.com/dynamodb/pricing/on-demand/).
DYNAMODB_WRU_USD = 0.625e-6
DYNAMODB_RRU_USD = 0.125e-6
# Lambda arm64 and the rest as terraform/README.md's cost section has them (Kinesis and
# PutEvents there are marked as assumptions).
LAMBDA_REQUEST_USD = 0.20e-6
LAMBDA_GB_S_USD = 0.0000133334
KINESIS_IN_GB_USD = 0.08
KINESIS_OUT_GB_USD = 0.04
SQS_REQUEST_USD = 0.40e-6
PUT_EVENTS_GB_USD = 0.05

# -- the latency and CPU model of one invocation (assumptions) -------------------------------
PUT_EVENTS_MS = 20.0
GET_RECOMMENDATIONS_MS = 25.0
DYNAMODB_WRITE_MS = 5.0
DYNAMODB_BATCH_GET_MS = 10.0
SEGMENT_BATCH_MS = 40.0
SQS_SEND_MS = 10.0
INVOCATION_OVERHEAD_MS = 10.0
# Client-side CPU of one AWS or HTTP call (botocore or requests: serialise, sign, parse) at
# one full vCPU; scaled by LAMBDA_VCPU_MB / memory.
CPU_PER_CALL_MS = 1.5


@dataclass(frozen=True)
class Workload:
    rate: float = 2000.0  # events/s
    seconds: float = 60.0  # counted
    warmup: float = 60.0  # simulated before counting (the store starts empty)
    users: int = 1_000_000  # returning users the Zipf draws from
    zipf_s: float = 1.1
    session_s: tuple[float, float] = (40.0, 80.0)
    gap_s: float = 2.0  # mean time between a session's events (exponential)
    buy_share: float = 0.05  # sessions that end in an Order Completed
    record_kb: int = 1  # Kinesis bills whole KB per record
    put_events_kb: float = 0.5
    seed: int = 20


@dataclass(frozen=True)
class Deployment:
    interval_s: float = 30.0  # MIN_REFRESH_INTERVAL_S (T)
    key: str = "userId"  # the stream's partition key: userId or messageId
    shards: int = 4
    parallelization: int = 1
    # Terraform's default is 100: at 2,000 events/s a slot's 100 records span under a second,
    # so nearly every event costs a PutEvents call of its own (over Personalize's 1,000/s).
    batch_size: int = 1000
    batching_window_s: float = 5.0
    worker_threads: int = 8
    # Terraform's default is 256 MB (0.14 vCPU): there the calls' client-side CPU, not
    # their latency, bounds a batch; 1024 MB is what this table recommends at 2,000/s.
    memory_mb: int = 1024
    refresh_consumers: int = 2  # refresh_max_concurrency (at least this many)
    queue_latency_s: float = 1.0  # a due message reaches the function this much later
    target_utilisation: float = 0.7  # of each shard slot's time, for the parallelization
    # A what-if, not what refresh.py does today: send a deferral only when the user has no
    # message for the same window on the queue yet (the store would record its due time).
    one_message_per_window: bool = False


@dataclass
class Event:
    time: float
    user: int
    buy: bool


@dataclass
class Tally:
    """What the counted window cost."""

    events: int = 0
    kinesis_batches: int = 0
    queue_batches: int = 0
    put_events_calls: int = 0
    get_recommendations: int = 0
    refreshes: int = 0
    trailing_refreshes: int = 0
    deferred: int = 0
    superseded: int = 0
    identifies: int = 0
    tracking_requests: int = 0
    batch_get_requests: int = 0
    read_units: int = 0
    purchase_writes: int = 0
    claim_writes: int = 0
    seed_writes: int = 0
    profile_reads: int = 0
    seeds_deferred: int = 0
    deferrals_merged: int = 0
    sqs_sends: int = 0
    sqs_receives: int = 0
    sqs_deletes: int = 0
    kinesis_busy_s: float = 0.0
    queue_busy_s: float = 0.0
    slot_busy_s: dict[tuple[int, int], float] = field(default_factory=lambda: defaultdict(float))
    slot_events: Counter[tuple[int, int]] = field(default_factory=Counter)
    profile_per_second: Counter[int] = field(default_factory=Counter)

    @property
    def writes(self) -> int:
        return self.purchase_writes + self.claim_writes + self.seed_writes


# -- the workload ---------------------------------------------------------------------------


def zipf_cumulative(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(k**-s for k in range(1, n + 1)))


def generate(w: Workload) -> list[Event]:
    """Sessions starting as a Poisson process (rate / events per session), each a user drawn
    Zipf(s) from ``users``, lasting U(session_s), an event every Exp(gap_s); a share of them
    ends in an order. Events from ``-warmup`` to ``seconds``, in time order."""
    rng = random.Random(w.seed)
    cumulative = zipf_cumulative(w.users, w.zipf_s)
    total = cumulative[-1]
    low, high = w.session_s
    per_session = (low + high) / 2 / w.gap_s
    session_rate = w.rate / per_session
    start, end = -w.warmup - high, w.seconds
    events: list[Event] = []
    t = start
    while True:
        t += rng.expovariate(session_rate)
        if t >= end:
            break
        user = bisect.bisect_left(cumulative, rng.random() * total)
        stop = t + rng.uniform(low, high)
        moment = t
        session: list[Event] = []
        while (moment := moment + rng.expovariate(1 / w.gap_s)) < stop:
            session.append(Event(moment, user, False))
        if session and rng.random() < w.buy_share:
            session[-1].buy = True
        events += [e for e in session if -w.warmup <= e.time < end]
    events.sort(key=lambda e: e.time)
    return events


# -- the deployment -------------------------------------------------------------------------


def _mix(n: int) -> int:
    """A fixed integer hash (the partition key's MD5 in Kinesis; any uniform one will do)."""
    n = (n ^ (n >> 16)) * 0x45D9F3B & 0xFFFFFFFF
    n = (n ^ (n >> 16)) * 0x45D9F3B & 0xFFFFFFFF
    return n ^ (n >> 16)


@dataclass
class Batch:
    time: float
    slot: tuple[int, int]
    events: list[Event]


def batches(events: Sequence[Event], d: Deployment, seed: int) -> list[Batch]:
    """Each slot's records cut as the event source mapping cuts them: at batch_size records
    or batching_window seconds after the first one, whichever comes first."""
    rng = random.Random(seed + 1)
    open_: dict[tuple[int, int], Batch] = {}
    closed: list[Batch] = []
    for event in events:
        if d.key == "userId":
            h = _mix(event.user)
            slot = (h % d.shards, (h // d.shards) % d.parallelization)
        else:
            slot = (rng.randrange(d.shards), rng.randrange(d.parallelization))
        current = open_.get(slot)
        if current is not None and event.time >= current.time:
            closed.append(current)  # the window ended before this record came
            current = None
        if current is None:
            current = open_[slot] = Batch(event.time + d.batching_window_s, slot, [])
        current.events.append(event)
        if len(current.events) >= d.batch_size:
            current.time = event.time
            closed.append(current)
            del open_[slot]
    closed += open_.values()
    closed.sort(key=lambda b: b.time)
    return closed


class Model:
    """The store's state per user and the calls the traits sync makes."""

    def __init__(self, d: Deployment, start_counting: float) -> None:
        self.d = d
        self.start = start_counting
        self.refreshed_at: dict[int, float] = {}
        self.seeded: set[int] = set()
        self.queue: list[tuple[float, int, float]] = []  # (due, user, after)
        self.profile_seconds: Counter[int] = Counter()
        self.pending: dict[int, float] = {}  # user -> due time of their queued message
        self.tally = Tally()

    def counting(self, t: float) -> bool:
        return t >= self.start

    def _profile_turn(self, t: float) -> int | None:
        """The second a seed's Profile read goes out: the containers' token buckets let at
        most the traits' budget through in any second, and a seed waits at most
        SEED_PATIENCE_S for its turn (traits_sync/refresh.py)."""
        for second in range(int(t), int(t) + math.ceil(SEED_PATIENCE_S) + 1):
            if self.profile_seconds[second] < PROFILE_API_BUDGET:
                self.profile_seconds[second] += 1
                return second
        return None

    # -- one Kinesis batch --------------------------------------------------------------

    def kinesis(self, batch: Batch) -> None:
        t, d = batch.time, self.d
        by_user: dict[int, list[Event]] = defaultdict(list)
        for event in batch.events:
            by_user[event.user].append(event)
        counted = self.counting(t)
        calls = 0
        unit_ms = 0.0
        refreshed = deferred = seeds = 0
        for user, own in by_user.items():
            bought = any(e.buy for e in own)
            put_calls = math.ceil(len(own) / PUT_EVENTS_PER_CALL)
            ms = PUT_EVENTS_MS * put_calls
            calls += put_calls
            if bought:
                calls += 1
                ms += DYNAMODB_WRITE_MS
                if counted:
                    self.tally.purchase_writes += 1
            last = self.refreshed_at.get(user)
            if not bought and d.interval_s > 0 and last is not None and t - last < d.interval_s:
                due = last + d.interval_s + d.queue_latency_s
                if d.one_message_per_window and self.pending.get(user) == due:
                    if counted:  # this window's message is on the queue already
                        self.tally.deferrals_merged += 1
                else:
                    self.pending[user] = due
                    deferred += 1
                    heapq.heappush(self.queue, (due, user, t))
            else:
                refreshed += 1
                self.refreshed_at[user] = t
                calls += 2  # GetRecommendations, the claim
                ms += GET_RECOMMENDATIONS_MS + DYNAMODB_WRITE_MS
            unit_ms += ms
            if user not in self.seeded:
                second = self._profile_turn(t)
                if second is None:  # no turn within the patience: read at a later refresh
                    if counted:
                        self.tally.seeds_deferred += 1
                else:
                    self.seeded.add(user)
                    seeds += 1
                    calls += 2  # the Profile read (beside), the seed's UpdateItem
                    if counted:
                        self.tally.profile_per_second[second] += 1
        n_users = len(by_user)
        gets = math.ceil(n_users / BATCH_GET_KEYS)
        sends = math.ceil(deferred / SQS_BATCH)
        calls += gets + sends + (1 if refreshed else 0)
        latency_ms = (
            INVOCATION_OVERHEAD_MS
            + DYNAMODB_BATCH_GET_MS  # started first; the units wait for it
            + unit_ms / min(d.worker_threads, max(1, n_users))  # the units on the pool
            + (SEGMENT_BATCH_MS if refreshed else 0.0)
            + seeds * DYNAMODB_WRITE_MS  # finish_seeds merges them one after another
            + (SQS_SEND_MS * sends)
        )
        duration = max(latency_ms, calls * CPU_PER_CALL_MS * LAMBDA_VCPU_MB / d.memory_mb) / 1000
        if not counted:
            return
        tl = self.tally
        tl.events += len(batch.events)
        tl.kinesis_batches += 1
        tl.put_events_calls += sum(
            math.ceil(len(o) / PUT_EVENTS_PER_CALL) for o in by_user.values()
        )
        tl.get_recommendations += refreshed
        tl.refreshes += refreshed
        tl.claim_writes += refreshed
        tl.identifies += refreshed
        tl.tracking_requests += 1 if refreshed else 0
        tl.deferred += deferred
        tl.batch_get_requests += gets
        tl.read_units += n_users
        tl.seed_writes += seeds
        tl.profile_reads += seeds
        tl.sqs_sends += sends
        tl.kinesis_busy_s += duration
        tl.slot_busy_s[batch.slot] += duration
        tl.slot_events[batch.slot] += len(batch.events)

    # -- the refresh queue ----------------------------------------------------------------

    def deliver_until(self, now: float) -> None:
        """Messages due by ``now``, in one-second rounds of up to 10 a batch."""
        while self.queue and self.queue[0][0] <= now:
            second = math.floor(self.queue[0][0]) + 1.0
            due: list[tuple[float, int, float]] = []
            while self.queue and self.queue[0][0] < second:
                due.append(heapq.heappop(self.queue))
            for start in range(0, len(due), SQS_BATCH):
                self._queue_batch(due[start : start + SQS_BATCH], second)

    def _queue_batch(self, messages: list[tuple[float, int, float]], t: float) -> None:
        newest: dict[int, float] = {}
        for _, user, after in messages:
            newest[user] = max(after, newest.get(user, after))
        refreshed = 0
        for user, after in newest.items():
            if self.refreshed_at.get(user, -math.inf) > after:
                if self.counting(t):
                    self.tally.superseded += 1
                continue
            refreshed += 1
            self.refreshed_at[user] = t
        if not self.counting(t):
            return
        calls = 1 + 2 * refreshed + (1 if refreshed else 0)
        latency_ms = (
            INVOCATION_OVERHEAD_MS
            + DYNAMODB_BATCH_GET_MS
            + (GET_RECOMMENDATIONS_MS + DYNAMODB_WRITE_MS)
            * math.ceil(refreshed / self.d.worker_threads)
            + (SEGMENT_BATCH_MS if refreshed else 0.0)
        )
        cpu_ms = calls * CPU_PER_CALL_MS * LAMBDA_VCPU_MB / self.d.memory_mb
        tl = self.tally
        tl.queue_batches += 1
        tl.sqs_receives += 1
        tl.sqs_deletes += 1
        tl.batch_get_requests += 1
        tl.read_units += len(newest)
        tl.get_recommendations += refreshed
        tl.refreshes += refreshed
        tl.trailing_refreshes += refreshed
        tl.claim_writes += refreshed
        tl.identifies += refreshed
        tl.tracking_requests += 1 if refreshed else 0
        tl.queue_busy_s += max(latency_ms, cpu_ms) / 1000


def simulate(events: Sequence[Event], w: Workload, d: Deployment) -> Model:
    """Every batch and refresh-queue delivery before ``w.seconds``, in time order."""
    model = Model(d, start_counting=0.0)
    for batch in batches(events, d, w.seed):
        if batch.time >= w.seconds:
            break
        model.deliver_until(batch.time)
        model.kinesis(batch)
    model.deliver_until(w.seconds)
    return model


# -- from counts to the tables --------------------------------------------------------------


def typical_item_kb() -> tuple[int, int]:
    """Read and write units of a typical stored user (25 recommended ids, 5 purchases, all
    fields set), from the store's own size rule: (read units, write units)."""
    skus = [f"SKU-{n:04d}" for n in range(25)]
    item = {
        "user_id": {"S": "user-000000000001"},
        "purchased": {"SS": skus[:5]},
        "seeded_at": {"N": "1767225600.123"},
        "refreshed_at": {"N": "1767225600.456"},
        "watermark": {"N": "1767225600456"},
        "excluded": {"N": "5"},
        "digest": {"S": "0" * 24},
        "items": {"L": [{"S": s} for s in skus]},
        "ver": {"N": "42"},
        "expires_at": {"N": "1801785600"},
    }
    size = item_size(item)
    return math.ceil(size / 4096), math.ceil(size / 1024)


def row(w: Workload, d: Deployment, t: Tally) -> dict[str, Any]:
    s = w.seconds
    per_event = 1 / t.events
    read_units_per_item, write_units_per_item = typical_item_kb()
    rru = t.read_units * read_units_per_item
    wru = t.writes * write_units_per_item
    kinesis_invocations = t.kinesis_batches
    invocations = kinesis_invocations + t.queue_batches
    gb = d.memory_mb / 1024
    lambda_gb_s = (t.kinesis_busy_s + t.queue_busy_s) * gb
    sqs_requests = t.sqs_sends + t.sqs_receives + t.sqs_deletes
    million = 1_000_000 * per_event
    record_bytes = w.record_kb * 1024
    cost = {
        "kinesis": 1_000_000 * w.record_kb / 1024**2 * (KINESIS_IN_GB_USD + KINESIS_OUT_GB_USD),
        "lambda": million * (invocations * LAMBDA_REQUEST_USD + lambda_gb_s * LAMBDA_GB_S_USD),
        "dynamodb": million * (rru * DYNAMODB_RRU_USD + wru * DYNAMODB_WRU_USD),
        "sqs": million * sqs_requests * SQS_REQUEST_USD,
        "personalize_put_events": 1_000_000 * w.put_events_kb / 1024**2 * PUT_EVENTS_GB_USD,
    }
    cost["total"] = sum(cost.values())
    slot_utilisation = max(t.slot_busy_s.values(), default=0.0) / s
    refresh_consumers = max(
        d.refresh_consumers, math.ceil(t.queue_busy_s / s / d.target_utilisation)
    )
    profile_peak = max(t.profile_per_second.values(), default=0)
    return {
        "interval_s": d.interval_s,
        "key": d.key,
        "events": t.events,
        "events_per_s": round(t.events / s, 1),
        "shards_min": max(
            math.ceil(w.rate * record_bytes / SHARD_BYTES_PER_S),
            math.ceil(w.rate / SHARD_RECORDS_PER_S),
        ),
        "shards": d.shards,
        "parallelization": d.parallelization,
        "slot_utilisation": round(slot_utilisation, 3),
        "kinesis_concurrency_mean": round(t.kinesis_busy_s / s, 2),
        "refresh_concurrency_mean": round(t.queue_busy_s / s, 2),
        "refresh_consumers": refresh_consumers,
        "lambda_concurrency": d.shards * d.parallelization + refresh_consumers,
        "busiest_slot_events_share": round(
            max(t.slot_events.values(), default=0) / max(1, t.events), 3
        ),
        "invocations_per_s": round(invocations / s, 1),
        "invocation_s": round(t.kinesis_busy_s / max(1, kinesis_invocations), 3),
        "per_event": {
            "refreshes": round(t.refreshes * per_event, 4),
            "get_recommendations": round(t.get_recommendations * per_event, 4),
            "identifies": round(t.identifies * per_event, 4),
            "put_events_calls": round(t.put_events_calls * per_event, 4),
            "dynamodb_requests": round((t.batch_get_requests + t.writes) * per_event, 4),
            "read_units": round(rru * per_event, 4),
            "write_units": round(wru * per_event, 4),
            "sqs_requests": round(sqs_requests * per_event, 4),
        },
        "per_second": {
            "get_recommendations": round(t.get_recommendations / s, 1),
            "put_events": round(t.put_events_calls / s, 1),
            "identifies": round(t.identifies / s, 1),
            "tracking_requests": round(t.tracking_requests / s, 1),
            "batch_get_requests": round(t.batch_get_requests / s, 1),
            "read_units": round(rru / s, 1),
            "update_items": round(t.writes / s, 1),
            "write_units": round(wru / s, 1),
            "purchase_writes": round(t.purchase_writes / s, 1),
            "claim_writes": round(t.claim_writes / s, 1),
            "seed_writes": round(t.seed_writes / s, 1),
            "profile_reads": round(t.profile_reads / s, 1),
            "profile_reads_peak": profile_peak,
            "seeds_deferred": round(t.seeds_deferred / s, 1),
            "deferred": round(t.deferred / s, 1),
            "trailing_refreshes": round(t.trailing_refreshes / s, 1),
            "superseded": round(t.superseded / s, 1),
            "sqs_requests": round(sqs_requests / s, 1),
        },
        "cost_per_million_events_usd": {k: round(v, 4) for k, v in cost.items()},
    }


def plan(events: Sequence[Event], w: Workload, d: Deployment) -> tuple[Deployment, Tally]:
    """The parallelization that keeps every shard slot below the target utilisation (the
    work per slot falls with the factor), then the counts at it."""
    tally = simulate(events, w, d).tally
    busiest = max(tally.slot_busy_s.values(), default=0.0) / w.seconds
    factor = min(10, max(1, math.ceil(busiest * d.parallelization / d.target_utilisation)))
    if factor != d.parallelization:
        d = replace(d, parallelization=factor)
        tally = simulate(events, w, d).tally
    return d, tally


# -- printing -------------------------------------------------------------------------------


def print_tables(rows: Sequence[dict[str, Any]], w: Workload) -> None:
    label = [f"T={r['interval_s']:g}s {r['key']}" for r in rows]
    width = 24

    def table(title: str, lines: Sequence[tuple[str, Sequence[str]]]) -> None:
        print(f"\n{title}")
        header = f"{'':<44}" + "".join(f"{name:>{width}}" for name in label)
        print(header)
        print("-" * len(header))
        for name, values in lines:
            print(f"{name:<44}" + "".join(f"{v:>{width}}" for v in values))

    ps = [r["per_second"] for r in rows]
    pe = [r["per_event"] for r in rows]
    table(
        f"capacity at {w.rate:g} events/s (Zipf s={w.zipf_s:g} over {w.users:,} users, "
        f"sessions {w.session_s[0]:g}-{w.session_s[1]:g} s, an event every {w.gap_s:g} s, "
        f"{w.buy_share:.0%} end in an order)",
        [
            ("events/s (counted)", [f"{r['events_per_s']:,.0f}" for r in rows]),
            (
                "Kinesis shards (minimum / used)",
                [f"{r['shards_min']} / {r['shards']}" for r in rows],
            ),
            (
                "parallelization factor (busiest slot's use)",
                [f"{r['parallelization']} ({r['slot_utilisation']:.0%})" for r in rows],
            ),
            (
                "  busiest slot's share of the events",
                [f"{r['busiest_slot_events_share']:.1%}" for r in rows],
            ),
            (
                "Lambda concurrency: shards x factor + refresh",
                [
                    f"{r['shards'] * r['parallelization']} + {r['refresh_consumers']}"
                    f" = {r['lambda_concurrency']}"
                    for r in rows
                ],
            ),
            (
                "  mean busy: Kinesis + refresh queue",
                [
                    f"{r['kinesis_concurrency_mean']:.1f} + {r['refresh_concurrency_mean']:.1f}"
                    for r in rows
                ],
            ),
            (
                "invocations/s (mean duration)",
                [f"{r['invocations_per_s']:.0f} ({r['invocation_s']:.2f} s)" for r in rows],
            ),
            (
                "DynamoDB BatchGetItem/s (read units/s)",
                [f"{p['batch_get_requests']:.0f} ({p['read_units']:,.0f})" for p in ps],
            ),
            (
                "DynamoDB UpdateItem/s (write units/s)",
                [f"{p['update_items']:,.0f} ({p['write_units']:,.0f})" for p in ps],
            ),
            (
                "  purchase / claim / seed",
                [
                    f"{p['purchase_writes']:.0f} / {p['claim_writes']:,.0f}"
                    f" / {p['seed_writes']:.0f}"
                    for p in ps
                ],
            ),
            (
                f"GetRecommendations/s (limit {GET_RECOMMENDATIONS_TPS}/campaign)",
                [f"{p['get_recommendations']:,.0f}" for p in ps],
            ),
            (
                f"PutEvents/s (limit {PUT_EVENTS_RPS}/dataset group)",
                [f"{p['put_events']:,.0f}" for p in ps],
            ),
            (
                f"identifies/s (Engage inbound {ENGAGE_INBOUND_PER_S}/s)",
                [f"{p['identifies']:,.0f}" for p in ps],
            ),
            (
                f"Tracking API requests/s (limit {TRACKING_API_RPS})",
                [f"{p['tracking_requests']:.0f}" for p in ps],
            ),
            (
                f"Profile API seeds/s, peak second (budget {PROFILE_API_BUDGET}); put off/s",
                [
                    f"{p['profile_reads']:.0f} ({p['profile_reads_peak']});"
                    f" {p['seeds_deferred']:.0f}"
                    for p in ps
                ],
            ),
            (
                "refresh queue: deferred / trailing / superseded per s",
                [
                    f"{p['deferred']:,.0f} / {p['trailing_refreshes']:.0f} / {p['superseded']:.0f}"
                    for p in ps
                ],
            ),
        ],
    )
    costs = [r["cost_per_million_events_usd"] for r in rows]
    table(
        "per event and cost per million events (USD, us-east-1, free tiers ignored)",
        [
            (
                "refreshes = GetRecommendations = identifies",
                [f"{e['get_recommendations']:.3f}" for e in pe],
            ),
            ("PutEvents calls", [f"{e['put_events_calls']:.3f}" for e in pe]),
            (
                "DynamoDB requests (read / write units)",
                [
                    f"{e['dynamodb_requests']:.3f} ({e['read_units']:.2f} / {e['write_units']:.2f})"
                    for e in pe
                ],
            ),
            ("SQS requests", [f"{e['sqs_requests']:.3f}" for e in pe]),
            ("Kinesis in + out", [f"${c['kinesis']:.3f}" for c in costs]),
            ("Lambda requests + GB-s", [f"${c['lambda']:.3f}" for c in costs]),
            ("DynamoDB on-demand", [f"${c['dynamodb']:.3f}" for c in costs]),
            ("SQS", [f"${c['sqs']:.3f}" for c in costs]),
            (
                "Personalize PutEvents ingestion",
                [f"${c['personalize_put_events']:.3f}" for c in costs],
            ),
            ("total (without Personalize inference)", [f"${c['total']:.2f}" for c in costs]),
            (
                "GetRecommendations per million events",
                [f"{e['get_recommendations'] * 1e6:,.0f}" for e in pe],
            ),
        ],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=Workload.rate, help="events/s")
    parser.add_argument("--seconds", type=float, default=Workload.seconds, help="counted")
    parser.add_argument("--warmup", type=float, default=Workload.warmup)
    parser.add_argument("--users", type=int, default=Workload.users)
    parser.add_argument("--zipf", type=float, default=Workload.zipf_s)
    parser.add_argument("--buy-share", type=float, default=Workload.buy_share)
    parser.add_argument("--intervals", type=float, nargs="+", default=[0.0, 30.0], help="T, s")
    parser.add_argument(
        "--keys", nargs="+", choices=("userId", "messageId"), default=["userId", "messageId"]
    )
    parser.add_argument("--shards", type=int, default=Deployment.shards)
    parser.add_argument("--batch-size", type=int, default=Deployment.batch_size)
    parser.add_argument("--window", type=float, default=Deployment.batching_window_s)
    parser.add_argument("--memory", type=int, default=Deployment.memory_mb)
    parser.add_argument(
        "--one-message-per-window",
        action="store_true",
        help="what if a deferral were sent only once per user and window",
    )
    parser.add_argument("--smoke", action="store_true", help="200 events/s for 20 s")
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    args = parser.parse_args(argv)
    w = Workload(
        rate=args.rate,
        seconds=args.seconds,
        warmup=args.warmup,
        users=args.users,
        zipf_s=args.zipf,
        buy_share=args.buy_share,
    )
    if args.smoke:
        w = replace(w, rate=200.0, seconds=20.0, warmup=20.0, users=20_000)
    base = Deployment(
        shards=args.shards,
        batch_size=args.batch_size,
        batching_window_s=args.window,
        memory_mb=args.memory,
        one_message_per_window=args.one_message_per_window,
    )
    started = time.perf_counter()
    events = generate(w)
    rows = []
    for key in args.keys:
        for interval in args.intervals:
            d, tally = plan(events, w, replace(base, interval_s=interval, key=key))
            rows.append(row(w, d, tally))
    print(
        f"deployment: {base.shards} shards keyed by the key below, batch_size {base.batch_size}"
        f", batching window {base.batching_window_s:g} s, WORKER_THREADS "
        f"{base.worker_threads}, {base.memory_mb} MB, the parallelization factor chosen to "
        f"keep each shard slot below {base.target_utilisation:.0%} busy (at most 10)"
    )
    print_tables(rows, w)
    print(
        f"\n({len(events):,} events simulated in {time.perf_counter() - started:.1f} s; "
        f"the latency and CPU model's constants are in {Path(__file__).name})"
    )
    if args.json:
        from bench.traits import merge_json

        merge_json(
            args.json,
            "capacity",
            {"workload": asdict(w), "deployment": asdict(base), "rows": rows},
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
