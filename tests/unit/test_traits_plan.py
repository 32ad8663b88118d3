"""Grouping per (userId, sessionId) and PutEvents chunking at the 10-event limit."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from traits_sync.kinesis import KinesisRecord
from traits_sync.messages import TrackedEvent
from traits_sync.plan import build, derived_base

T0 = datetime(2024, 3, 10, 10, tzinfo=UTC)


def event(
    n: int,
    user: str | None = "u-1",
    session: str = "s-1",
    items: tuple[str, ...] = ("SKU-1",),
    kind: str = "Product Viewed",
    message_id: str | None = None,
    minutes: int | None = None,
) -> TrackedEvent:
    record = KinesisRecord(str(n), "", None, None, None)
    return TrackedEvent(
        record=record,
        user_id=user,
        session_id=session,
        message_id=message_id or f"m-{n}",
        event_type=kind,
        item_ids=items,
        sent_at=T0 + timedelta(minutes=n if minutes is None else minutes),
        purchase=kind == "Order Completed",
    )


@pytest.mark.parametrize("n", [1, 9, 10, 11, 20, 21, 95])
def test_a_session_takes_exactly_ceil_n_over_10_calls(n: int) -> None:
    plan = build([event(i) for i in range(n)])
    calls = plan.users[0].groups["s-1"].calls()
    assert len(calls) == math.ceil(n / 10)
    assert all(1 <= len(call) <= 10 for call in calls)
    assert sum(len(call) for call in calls) == n


def test_eleven_events_are_ten_then_one_in_time_order() -> None:
    # Delivered out of order (Kinesis does not promise order across retries).
    plan = build([event(i, minutes=10 - i) for i in range(11)])
    calls = plan.users[0].groups["s-1"].calls()
    assert [len(c) for c in calls] == [10, 1]
    times = [e.sent_at for call in calls for e in call]
    assert times == sorted(times)


def test_groups_per_user_and_session_and_anonymous_sessions_apart() -> None:
    plan = build(
        [
            event(1, "u-1", "s-1"),
            event(2, "u-1", "s-2"),
            event(3, "u-2", "s-3"),
            event(4, None, "anon-1"),
            event(5, "u-1", "s-1"),
            event(6, None, "anon-1"),
        ]
    )
    by_user = {u.user_id: u for u in plan.users}
    assert set(by_user) == {"u-1", "u-2"}
    assert set(by_user["u-1"].groups) == {"s-1", "s-2"}
    assert [r.sequence_number for r in by_user["u-1"].records] == ["1", "2", "5"]
    assert [(g.user_id, g.session_id, len(g.events)) for g in plan.anonymous] == [
        (None, "anon-1", 2)
    ]
    assert len(plan.session_groups) == 4


def test_several_products_give_derived_event_ids_unique_within_the_call() -> None:
    plan = build([event(1, items=("A", "B", "C"), kind="Order Completed", message_id="msg")])
    (call,) = plan.users[0].groups["s-1"].calls()
    base = derived_base("msg")
    assert [(e.event_id, e.item_id) for e in call] == [
        (f"{base}#1", "A"),
        (f"{base}#2", "B"),
        (f"{base}#3", "C"),
    ]
    assert plan.users[0].purchased == {"A", "B", "C"}


def test_derived_event_ids_cannot_collide_with_a_segment_message_id() -> None:
    # "M#1" is a real messageId; the two-product order "M" used to derive "M#1" too.
    plan = build(
        [
            event(1, message_id="M#1"),
            event(2, items=("A", "B"), kind="Order Completed", message_id="M"),
        ]
    )
    ids = [e.event_id for e in plan.users[0].groups["s-1"].events]
    assert len(ids) == len(set(ids)) == 3
    assert ids[0] == "M#1"  # a one-item message keeps its messageId
    assert all(100 < len(i) <= 256 for i in ids[1:])  # longer than any Segment messageId


def test_duplicate_deliveries_are_one_event_but_both_records_are_tracked() -> None:
    plan = build([event(1, message_id="same"), event(2, message_id="same")])
    group = plan.users[0].groups["s-1"]
    assert [e.event_id for e in group.events] == ["same"]
    assert [r.sequence_number for r in plan.users[0].records] == ["1", "2"]


def test_only_purchase_events_feed_the_exclusion_and_latest_time_is_kept() -> None:
    plan = build(
        [
            event(1, items=("VIEWED",)),
            event(2, items=("BOUGHT",), kind="Order Completed"),
            event(3, items=("ALSO-VIEWED",), minutes=-5),
        ]
    )
    work = plan.users[0]
    assert work.purchased == {"BOUGHT"}
    assert work.latest == T0 + timedelta(minutes=2)
    assert work.message_ids == {"m-1", "m-2", "m-3"}


def test_a_very_long_message_id_still_gives_valid_event_ids() -> None:
    plan = build([event(1, items=("A", "B"), message_id="x" * 300)])
    ids = [e.event_id for e in plan.users[0].groups["s-1"].events]
    assert len(set(ids)) == 2
    assert all(100 < len(i) <= 256 for i in ids)


def test_a_one_item_message_id_over_100_characters_is_derived_too() -> None:
    plan = build([event(1, message_id="y" * 101)])
    (only,) = plan.users[0].groups["s-1"].events
    assert only.event_id == derived_base("y" * 101) + "#1"
