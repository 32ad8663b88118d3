"""Hostile input and edge semantics of the traits sync (issue 12), with fake clients: no
record can crash a batch, block a shard, or vanish."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_traits_processor import ENV, World, kinesis_event, sequences, track

from traits_sync.kinesis import records
from traits_sync.messages import Bad, Rules, TrackedEvent, classify
from traits_sync.settings import load
from traits_sync.timestamps import event_time, iso_z, parse

RULES = Rules(
    frozenset({"Product Viewed", "Order Completed"}), frozenset({"Order Completed"}), "sku"
)


@pytest.fixture(scope="module")
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(8)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def world(executor: ThreadPoolExecutor) -> World:
    return World(executor)


def classified(message: Any, rules: Rules = RULES) -> Any:
    (record,) = records(kinesis_event([message]))
    return classify(record, rules)


# -- defects 1 and 3: event times -----------------------------------------------------------

OUT_OF_RANGE = [
    "9999-12-31T23:59:59-01:00",  # no UTC datetime: OverflowError in astimezone
    "0001-01-01T00:00:00+01:00",  # the same below year 1
    "0820-02-15T00:25:31Z",  # would print as "820-02-15T00:25:31.000Z", sentAt negative
    "1969-12-31T23:59:59.999Z",  # negative epoch
    "2999-01-01T00:00:00Z",  # far future
]


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_a_time_outside_the_usable_range_counts_as_absent(text: str) -> None:
    assert parse(text) is None


def test_the_range_ends_24_hours_after_processing_time() -> None:
    now = datetime(2024, 3, 10, 10, tzinfo=UTC)
    limit = now + timedelta(hours=24)
    assert parse("2024-03-11T10:00:00Z", limit) == limit
    assert parse("2024-03-11T10:00:00.001Z", limit) is None
    assert parse("1970-01-01T00:00:00Z", limit) == datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("position", [0, 1, 2])
@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_an_unusable_time_counts_as_absent_and_the_next_field_is_tried(
    position: int, text: str
) -> None:
    fields = ["timestamp", "originalTimestamp", "receivedAt"]
    message = {fields[position]: text}
    message.update(dict.fromkeys(fields[position + 1 :], "2024-03-10T10:00:00Z"))
    expected = None if position == 2 else datetime(2024, 3, 10, 10, tzinfo=UTC)
    assert event_time(message) == expected


@pytest.mark.parametrize("text", OUT_OF_RANGE)
def test_a_record_with_no_usable_time_is_dead_lettered_and_the_batch_goes_on(
    world: World, text: str
) -> None:
    bad = track(2, "u-2", timestamp=text, originalTimestamp=text, receivedAt=text)
    messages = [track(1, "u-1"), bad, track(3, "u-3")]
    assert world.run(messages) == []
    (letter,) = world.dead_letters.sent
    assert letter.record.sequence_number == sequences(messages, lambda m: m is bad)[0]
    assert letter.reason == "no valid timestamp, originalTimestamp or receivedAt"
    assert sorted(m["userId"] for m in world.tracking.identifies) == ["u-1", "u-3"]


def test_every_sent_at_and_identify_timestamp_is_inside_the_range(world: World) -> None:
    messages = [
        track(
            1,
            "u-1",
            timestamp="0001-01-01T00:00:00+01:00",
            originalTimestamp="1970-01-01T00:00:00Z",
        ),
        track(2, "u-1", timestamp="9999-12-31T23:59:59-01:00", receivedAt="2024-03-10T10:00:00Z"),
    ]
    assert world.run(messages) == []
    sent = [e["sentAt"] for call in world.events.calls for e in call["eventList"]]
    assert sorted(s.timestamp() for s in sent) == [0.0, 1710064800.0]
    (identify,) = world.tracking.identifies
    assert identify["timestamp"] == "2024-03-10T10:00:00.000Z"
    assert iso_z(datetime(1970, 1, 1, tzinfo=UTC)) == "1970-01-01T00:00:00.000Z"


# -- defect 2: ids that cannot be encoded as UTF-8 ------------------------------------------

LONE = "\ud800"


def raw_json(message: dict[str, Any]) -> bytes:
    """JSON as a JavaScript source may write it: a lone surrogate as an escape."""
    return json.dumps(message).encode()


@pytest.mark.parametrize("field", ["userId", "anonymousId", "messageId"])
def test_an_unencodable_id_is_a_dead_letter_reason(field: str) -> None:
    result = classified(raw_json(track(1, "u-1", **{field: f"x{LONE}y"})))
    assert isinstance(result, Bad)
    assert result.reason == f"{field} is not valid Unicode (cannot be encoded as UTF-8)"


def test_an_unencodable_item_id_is_not_an_item() -> None:
    message = track(1, "u-1", event="Order Completed", items=(f"I{LONE}", "I-002"))
    result = classified(raw_json(message))
    assert isinstance(result, TrackedEvent)
    assert result.item_ids == ("I-002",)


def test_unencodable_ids_do_not_fail_the_batch(world: World) -> None:
    messages: list[Any] = [
        track(1, "u-1"),
        raw_json(track(2, f"u{LONE}")),
        raw_json(track(3, "u-3", messageId=f"m{LONE}")),
    ]
    assert world.run(messages) == []
    assert [b.reason.split(" ")[0] for b in world.dead_letters.sent] == ["userId", "messageId"]
    assert [m["userId"] for m in world.tracking.identifies] == ["u-1"]


def test_an_unforeseen_error_while_classifying_dead_letters_only_that_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from traits_sync import messages

    def explode(*_: Any) -> Any:
        raise OverflowError("boom")

    monkeypatch.setattr(messages, "classify_message", explode)
    result = classified(track(1, "u-1"))
    assert isinstance(result, Bad)
    assert result.reason == "record could not be classified: OverflowError"


def test_raw_json_helper_really_carries_a_lone_surrogate() -> None:
    data = kinesis_event([raw_json(track(2, f"u{LONE}"))])["Records"][0]["kinesis"]["data"]
    assert b"\\ud800" in base64.b64decode(data)


# -- defect 5: purchases outside TRACKED_EVENTS ---------------------------------------------


def test_an_untracked_purchase_still_excludes_its_items(executor: ThreadPoolExecutor) -> None:
    settings = replace(load(ENV), tracked_events=frozenset({"Product Viewed"}))
    world = World(executor, settings)
    messages = [
        track(1, "u-1", items=("I-003",)),
        track(2, "u-1", "Order Completed", ("I-000", "I-001")),
        track(3, "u-2", "Order Completed", ("I-002",)),  # nothing tracked for u-2 at all
    ]
    assert world.run(messages) == []
    # Only the tracked view goes to Personalize; the orders are not sent.
    assert [e["itemId"] for c in world.events.calls for e in c["eventList"]] == ["I-003"]
    traits = {m["userId"]: m["traits"]["recommended_products"] for m in world.tracking.identifies}
    assert traits == {
        "u-1": ["I-002", "I-003", "I-004", "I-005", "I-006"],
        "u-2": ["I-000", "I-001", "I-003", "I-004", "I-005"],
    }
    assert world.stats["Relevant"] == 3
