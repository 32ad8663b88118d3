"""Every classification of a Kinesis record: relevant, skipped (with its reason), bad."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from traits_sync.kinesis import BatchShapeError, KinesisRecord, records
from traits_sync.messages import Bad, Rules, Skipped, TrackedEvent, classify

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kinesis"
RULES = Rules(
    tracked_events=frozenset(
        {"Product Viewed", "Product Clicked", "Product Added", "Order Completed"}
    ),
    purchase_events=frozenset({"Order Completed"}),
    item_id_property="sku",
)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def record_of(message: Any) -> KinesisRecord:
    data = base64.b64encode(json.dumps(message).encode()).decode()
    return KinesisRecord("1", data, "arn:aws:kinesis:us-east-1:1:stream/s", "shardId-0:1", None)


def track(**fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "m-1",
        "userId": "u-1",
        "anonymousId": "a-1",
        "timestamp": "2024-03-10T10:00:00Z",
        "properties": {"sku": "SKU-1"},
    }
    message.update(fields)
    return {k: v for k, v in message.items() if v is not ...}


def test_relevant_fixture_records() -> None:
    result = [classify(r, RULES) for r in records(fixture("relevant.json"))]
    assert all(isinstance(r, TrackedEvent) for r in result)
    viewed, added, ordered, clicked = result
    assert isinstance(viewed, TrackedEvent)
    assert (viewed.user_id, viewed.session_id) == (
        "user-0001",
        "4f1c2a4e-8e0b-4f43-9f57-2b2d3a1c9e10",
    )
    assert viewed.item_ids == ("SKU-0001",)
    assert viewed.message_id == "ajs-next-6c1b9c2e4f0a4c6f8d3e2b1a0f9e8d7c"
    assert viewed.sent_at == datetime(2024, 3, 10, 12, 0, 0, 123000, tzinfo=UTC)
    assert not viewed.purchase
    assert viewed.record.shard_id == "shardId-000000000000"
    # A numeric userId is its decimal string, and also the session without an anonymousId.
    assert isinstance(added, TrackedEvent)
    assert (added.user_id, added.session_id) == ("12345", "12345")
    assert added.sent_at == datetime(2024, 3, 10, 11, 0, tzinfo=UTC)  # 13:00+02:00
    assert isinstance(ordered, TrackedEvent)
    assert ordered.item_ids == ("SKU-0003", "SKU-0004")
    assert ordered.purchase
    # Anonymous only: a session, no user; a numeric sku is its decimal string.
    assert isinstance(clicked, TrackedEvent)
    assert clicked.user_id is None
    assert clicked.session_id == "a9f3e2d1-7c6b-4a5e-8d9c-0b1a2f3e4d5c"
    assert clicked.item_ids == ("1007",)


@pytest.mark.parametrize("name", ["skipped.json", "bad.json"])
def test_fixture_records_classify_as_expected(name: str) -> None:
    expected = fixture("expected.json")[name]
    result = [classify(r, RULES) for r in records(fixture(name))]
    kind = Skipped if name == "skipped.json" else Bad
    assert [type(r) for r in result] == [kind] * len(expected)
    assert [r.reason for r in result if isinstance(r, Skipped | Bad)] == expected


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (track(type="page"), "not_track"),
        (track(type=None), "not_track"),
        (track(event="Checkout Started"), "untracked_event"),
        (track(event=42), "untracked_event"),
        (track(properties={"product_id": "p-1"}), "no_item_id"),
        (track(properties="SKU-1"), "no_item_id"),
        (track(properties={"sku": True}), "no_item_id"),
        (track(properties={"sku": "x" * 257}), "no_item_id"),
        (track(properties={"products": "SKU-1"}), "no_item_id"),
        (track(context={"personas": {"computation_class": "audience"}}), "engage"),
        (track(context={"library": {"name": "segment-personalize-activation"}}), "own_message"),
        # Fields of an irrelevant message are not validated: skipped, not dead-lettered.
        (track(type="identify", userId={"weird": True}), "not_track"),
    ],
)
def test_skipped(message: dict[str, Any], reason: str) -> None:
    result = classify(record_of(message), RULES)
    assert isinstance(result, Skipped)
    assert result.reason == reason


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (track(userId=["u-1"]), "userId is neither a string nor a number"),
        (track(userId=False), "userId is neither a string nor a number"),
        (track(anonymousId={"a": 1}), "anonymousId is neither a string nor a number"),
        (track(userId="u" * 257), "userId is longer than 256 characters"),
        (track(userId=None, anonymousId=...), "no userId or anonymousId"),
        (track(messageId=17), "messageId is not a string"),
        (track(timestamp="soon"), "no valid timestamp, originalTimestamp or receivedAt"),
    ],
)
def test_bad(message: dict[str, Any], reason: str) -> None:
    result = classify(record_of(message), RULES)
    assert isinstance(result, Bad)
    assert result.reason == reason


def test_item_ids_flat_and_products_unique_in_order() -> None:
    message = track(
        event="Order Completed",
        properties={
            "sku": "SKU-9",
            "products": [{"sku": "SKU-1"}, {"sku": 2}, "junk", {"sku": "SKU-1"}, {"name": "x"}],
        },
    )
    result = classify(record_of(message), RULES)
    assert isinstance(result, TrackedEvent)
    assert result.item_ids == ("SKU-9", "SKU-1", "2")
    assert result.purchase


def test_item_id_property_is_configurable() -> None:
    rules = Rules(RULES.tracked_events, RULES.purchase_events, "product_id")
    result = classify(record_of(track(properties={"sku": "S", "product_id": "P"})), rules)
    assert isinstance(result, TrackedEvent)
    assert result.item_ids == ("P",)


def test_numbers_as_decimal_strings() -> None:
    result = classify(record_of(track(userId=7.0, properties={"sku": 12.5})), RULES)
    assert isinstance(result, TrackedEvent)
    assert (result.user_id, result.item_ids) == ("7", ("12.5",))


def test_missing_message_id_gets_a_stable_stand_in() -> None:
    message = track(messageId=...)
    first = classify(record_of(message), RULES)
    second = classify(record_of(message), RULES)
    assert isinstance(first, TrackedEvent)
    assert isinstance(second, TrackedEvent)
    assert first.message_id == second.message_id
    assert first.message_id.startswith("kinesis-")


def test_an_event_without_sequence_numbers_is_refused_whole() -> None:
    with pytest.raises(BatchShapeError):
        records({"Records": [{"kinesis": {"data": "e30="}}]})
    with pytest.raises(BatchShapeError):
        records({"body": "an SQS event"})
