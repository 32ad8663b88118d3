"""The capacity model of scripts/bench/capacity.py: the coalescing rule as refresh.py has it
(a refresh per user per batch at T = 0; at T > 0 a deferred user's trailing refresh comes
within T of the last event, and a purchase refreshes at once), the event source mapping's
batches, and the partition keys."""

from __future__ import annotations

import pytest
from bench.capacity import (
    Deployment,
    Event,
    Workload,
    batches,
    generate,
    simulate,
    zipf_cumulative,
)

W = Workload(seconds=300.0, warmup=0.0)


def session(user: int = 7, start: float = 0.0, n: int = 30, gap: float = 2.0) -> list[Event]:
    return [Event(start + i * gap, user, False) for i in range(n)]


def one_slot(interval: float, **kw: float) -> Deployment:
    return Deployment(interval_s=interval, shards=1, parallelization=1, batching_window_s=5.0, **kw)


def test_without_a_window_every_batch_refreshes_its_users() -> None:
    events = session()  # 0..58 s, one every 2 s: batches of 3 in the 5 s window
    model = simulate(events, W, one_slot(0.0))
    assert model.tally.kinesis_batches == 10
    assert model.tally.refreshes == model.tally.identifies == 10
    assert model.tally.deferred == 0


def test_a_window_coalesces_and_the_trailing_refresh_covers_the_last_event() -> None:
    events = session()
    d = one_slot(30.0)
    model = simulate(events, W, d)
    tally = model.tally
    assert tally.refreshes <= 3
    assert tally.trailing_refreshes >= 1
    assert tally.deferred + tally.refreshes - tally.trailing_refreshes == 10  # every batch
    last_event = events[-1].time
    last_refresh = model.refreshed_at[7]
    # The trait reflects every event within T (plus the queue's delivery) of the last one.
    assert last_event <= last_refresh <= last_event + d.batching_window_s + 30.0 + 2.0


def test_a_purchase_refreshes_at_once_inside_the_window() -> None:
    events = session(n=10)
    events[5].buy = True  # at 10 s, in the batch closing at 15 s
    model = simulate(events, W, one_slot(30.0))
    assert model.tally.purchase_writes == 1
    # The first batch (5 s), the purchase's (15 s), and one trailing refresh after it.
    assert model.tally.refreshes - model.tally.trailing_refreshes == 2


def test_a_newer_refresh_supersedes_a_deferred_message() -> None:
    events = session(n=30)
    events[20].buy = True  # at 40 s: the purchase refreshes before the trailing one is due
    model = simulate(events, W, one_slot(30.0))
    assert model.tally.superseded >= 1


def test_a_user_is_seeded_once() -> None:
    model = simulate(session(n=30) + session(user=8, n=3), W, one_slot(0.0))
    assert model.tally.profile_reads == model.tally.seed_writes == 2


def test_batches_close_at_the_size_or_the_window() -> None:
    events = [Event(i * 0.01, i, False) for i in range(250)]  # 100/s, different users
    cut = batches(events, Deployment(shards=1, batch_size=100, batching_window_s=5.0), 0)
    assert [len(b.events) for b in cut] == [100, 100, 50]
    assert cut[0].time == pytest.approx(0.99)  # full at the 100th record
    assert cut[2].time == pytest.approx(2.0 + 5.0)  # the rest waits out the window


def test_userid_keys_keep_a_user_on_one_slot_and_messageids_spread_them() -> None:
    events = session(n=60, gap=0.5)
    by_user = {b.slot for b in batches(events, Deployment(shards=4, parallelization=2), 0)}
    assert len(by_user) == 1
    by_message = batches(events, Deployment(shards=4, parallelization=2, key="messageId"), 0)
    assert len({b.slot for b in by_message}) > 4


def test_the_workload_is_deterministic_and_zipf() -> None:
    w = Workload(rate=200.0, seconds=30.0, warmup=10.0, users=10_000)
    first, again = generate(w), generate(w)
    assert [(e.time, e.user) for e in first] == [(e.time, e.user) for e in again]
    assert all(-w.warmup <= e.time < w.seconds for e in first)
    cumulative = zipf_cumulative(w.users, w.zipf_s)
    head = cumulative[0] / cumulative[-1]  # the most active user's share of the sessions
    assert head == pytest.approx(1 / sum(k**-1.1 for k in range(1, 10_001)))
    assert len(first) == pytest.approx(w.rate * (w.seconds + w.warmup), rel=0.15)
