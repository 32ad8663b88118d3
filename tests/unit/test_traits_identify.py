"""Identify messages: deterministic ids, the 32 KB cut, the 475 KB batch packing."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime

from traits_sync import identify

T = datetime(2024, 3, 10, 10, 0, 0, 500000, tzinfo=UTC)


def build(user: str, items: list[str], mid: str = "personalize-traits-x") -> identify.Identify:
    return identify.build(
        user,
        items,
        trait="recommended_products",
        message_id=mid,
        timestamp=T,
        integrations={"Amazon Kinesis": False},
    )


def test_message_id_is_deterministic_bounded_and_never_an_incoming_id() -> None:
    incoming = ["ajs-1", "ajs-2", "ajs-3"]
    items = ["A", "B"]
    trait = "recommended_products"
    first = identify.message_id("u-1", incoming, trait, items)
    assert first == identify.message_id("u-1", list(reversed(incoming)), trait, items)
    assert first == identify.message_id("u-1", [*incoming, "ajs-1"], trait, items)
    assert len(first) <= 100
    assert first not in incoming
    assert first != identify.message_id("u-2", incoming, trait, items)
    assert first != identify.message_id("u-1", incoming[:2], trait, items)


def test_a_changed_list_gets_a_new_message_id() -> None:
    """A retried batch whose recommendations changed must not be deduplicated away: Segment
    would drop the new list as a duplicate and keep the stale one for good."""
    incoming = ["ajs-1"]
    trait = "recommended_products"
    assert identify.message_id("u-1", incoming, trait, ["A", "B"]) != identify.message_id(
        "u-1", incoming, trait, ["B", "A"]
    )


def test_message_shape() -> None:
    message = json.loads(build("u-1", ["A", "B"]).body)
    assert message == {
        "type": "identify",
        "userId": "u-1",
        "traits": {"recommended_products": ["A", "B"]},
        "messageId": "personalize-traits-x",
        "timestamp": "2024-03-10T10:00:00.500Z",
        "integrations": {"Amazon Kinesis": False},
        "context": {"library": {"name": "segment-personalize-activation", "version": "0.1.0"}},
    }


def test_a_message_over_32_kb_keeps_the_longest_ranked_prefix() -> None:
    items = [f"{i:04d}-" + "x" * 245 for i in range(500)]  # 500 x 250 chars: ~128 KB
    result = build("u-1", items)
    assert len(result.body) <= identify.MAX_MESSAGE_BYTES
    assert 0 < len(result.items) < len(items)
    assert result.items == items[: len(result.items)]
    # One more item would not have fitted: it gets cut back to the same list.
    assert build("u-1", items[: len(result.items) + 1]).items == result.items
    assert len(result.body) + len(json.dumps(items[0])) + 1 > identify.MAX_MESSAGE_BYTES
    assert json.loads(result.body)["traits"]["recommended_products"] == result.items


def test_a_message_under_the_limit_is_untouched() -> None:
    items = [f"SKU-{i:04d}" for i in range(500)]
    result = build("u-1", items)
    assert result.items == items


def test_batches_stay_under_475_kb_and_keep_every_message_in_order() -> None:
    messages = [
        build(f"user-{i:04d}", [f"{j:03d}-" + "y" * 240 for j in range(120)]) for i in range(40)
    ]
    assert all(len(m.body) <= identify.MAX_MESSAGE_BYTES for m in messages)
    chunks = identify.batches(messages)
    assert len(chunks) > 1
    for chunk in chunks:
        body = identify.batch_body(chunk)
        assert len(body) <= identify.MAX_BATCH_BYTES
        assert [m["userId"] for m in json.loads(body)["batch"]] == [m.user_id for m in chunk]
    assert [m for chunk in chunks for m in chunk] == messages
    # Greedy: each chunk but the last could not take the next message.
    for chunk, following in itertools.pairwise(chunks):
        assert len(identify.batch_body([*chunk, following[0]])) > identify.MAX_BATCH_BYTES


def sized(size: int) -> identify.Identify:
    """A message of exactly ``size`` bytes."""
    message = build("u", ["z" * (size - len(build("u", [""]).body))])
    assert len(message.body) == size
    return message


def test_batch_exactly_at_the_byte_limit_is_one_request() -> None:
    fillers = [sized(30_000)] * 15
    overhead = len(b'{"batch":[') + len(b"]}") + 15  # 15 commas between 16 messages
    last = identify.MAX_BATCH_BYTES - overhead - 15 * 30_000
    exact = [*fillers, sized(last)]
    assert len(identify.batch_body(exact)) == identify.MAX_BATCH_BYTES
    assert len(identify.batches(exact)) == 1
    assert [len(c) for c in identify.batches([*fillers, sized(last + 1)])] == [15, 1]


def test_at_most_2500_messages_per_batch() -> None:
    tiny = identify.Identify("u", [], b"{}")  # real identifies are too big to reach 2,500
    chunks = identify.batches([tiny] * 2501)
    assert [len(c) for c in chunks] == [2500, 1]
