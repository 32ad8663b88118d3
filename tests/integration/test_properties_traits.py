"""Property-based: hostile Kinesis batches through the traits handler, on the emulators
(Personalize and Segment over loopback HTTP, moto's server for SQS and SSM).

Whatever a record holds (any Unicode including lone surrogates, extreme or malformed
timestamps, wrong JSON types in every field, huge values), the handler answers a partial
batch response without raising, and every record ends exactly one way: processed (its
events accepted by Personalize, its user's identify sent), reported for retry, or
dead-lettered with a reason. With healthy services nothing is reported for retry.

Examples: ``property_examples`` in tests/conftest.py (``--hypothesis-profile=long`` for more).
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from types import ModuleType
from typing import Any

import hypothesis
import pytest
from conftest import property_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.aws import traits_resources
from devkit.context import LambdaContext
from devkit.events import kinesis_record
from devkit.loader import load_app
from emulators.personalize import PersonalizeEmulator
from emulators.segment import SegmentEmulator
from traits_sync import runtime
from traits_sync.kinesis import records as kinesis_records
from traits_sync.messages import Rules, TrackedEvent, classify
from traits_sync.plan import personalize_events

REGION = "us-east-1"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/properties"
TRACKED = ("Product Viewed", "Product Added")
PURCHASES = ("Order Completed",)
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
_sequence = itertools.count(1)


# -- servers (one set for all examples: every example uses fresh ids) -----------------------


@pytest.fixture
def deployment(
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
    personalize_env: PersonalizeEmulator,
    segment_emulator: SegmentEmulator,
) -> Iterator[tuple[ModuleType, Any, str]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", moto_url)
    made = traits_resources(moto_url, "properties", write_key=segment_emulator.write_key)
    sqs, queue_url = made.sqs, made.queue_url
    env = {
        **made.env(),
        "PERSONALIZE_CAMPAIGN_ARN": personalize_env.campaign_arn,
        "PERSONALIZE_TRACKING_ID": personalize_env.tracking_id,
        "NUM_RESULTS": "5",
        "SEGMENT_API_URL": f"{segment_emulator.url}/v1",
        "TRACKED_EVENTS": ",".join(TRACKED),
        "PURCHASE_EVENTS": ",".join(PURCHASES),
        "LOG_LEVEL": "ERROR",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("SEGMENT_SPACE_ID", "SEGMENT_PROFILE_TOKEN_PARAMETER"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    yield load_app("update_traits"), sqs, queue_url
    runtime.reset()


Context = partial(LambdaContext, 60_000, aws_request_id="properties")


# -- strategies -----------------------------------------------------------------------------

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
any_text = st.text(st.one_of(st.characters(), surrogates), max_size=40)
huge_text = st.text(st.characters(max_codepoint=0x2FF), min_size=257, max_size=3000)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    any_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=8,
)
offsets = st.sampled_from([timezone(timedelta(minutes=m)) for m in (-720, -60, 0, 60, 840)])
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=offsets
    ).map(lambda d: d.isoformat()),
    st.datetimes(timezones=offsets).map(lambda d: d.isoformat()),  # years 1 .. 9999
    st.sampled_from(
        ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "0820-02-15T00:25:31Z"]
    ),
    any_text,
    json_values,
)
user_ids = st.one_of(
    st.sampled_from(["u-1", "u-2", "u-3", "42", "user/with+odd chars", "ünïcødé"]),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
    any_text,
    huge_text,
    json_values,
)


def message_ids() -> st.SearchStrategy[Any]:
    # A small pool so that "M#1" and a two-product "M" meet in one batch.
    return st.one_of(
        st.sampled_from(["M", "M#1", "M#2", "ajs-1"]),
        st.uuids().map(str),
        any_text,
        huge_text,
        json_values,
    )


def properties(item_ids: list[str]) -> st.SearchStrategy[Any]:
    items = st.one_of(st.sampled_from(item_ids), any_text, huge_text, json_values)
    return st.one_of(
        st.fixed_dictionaries({"sku": items}),
        st.fixed_dictionaries(
            {"products": st.lists(st.one_of(st.fixed_dictionaries({"sku": items}), json_values))}
        ),
        json_values,
    )


good_times = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2026, 1, 1), timezones=offsets
).map(lambda d: d.isoformat())


def good_messages(item_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Relevant events as Segment sends them (some users anonymous, some orders)."""
    item = st.sampled_from(item_ids)
    return st.fixed_dictionaries(
        {
            "type": st.just("track"),
            "event": st.sampled_from(TRACKED + PURCHASES),
            "anonymousId": st.sampled_from(["a-1", "a-2", "a-3"]),
            "messageId": st.one_of(st.sampled_from(["M", "M#1", "M#2"]), st.uuids().map(str)),
            "timestamp": good_times,
            "properties": st.one_of(
                st.fixed_dictionaries({"sku": item}),
                st.fixed_dictionaries(
                    {"products": st.lists(st.fixed_dictionaries({"sku": item}), max_size=3)}
                ),
            ),
        },
        optional={"userId": st.sampled_from(["u-1", "u-2", "u-3", 42, "ünï/cø+dé"])},
    )


def hostile_values(item_ids: list[str]) -> dict[str, st.SearchStrategy[Any]]:
    """For each field, what a hostile or broken source may put there."""
    return {
        "type": json_values,
        "event": json_values,
        "userId": user_ids,
        "anonymousId": user_ids,
        "messageId": message_ids(),
        "timestamp": timestamps,
        "originalTimestamp": timestamps,
        "receivedAt": timestamps,
        "properties": properties(item_ids),
        "context": st.one_of(
            st.just({"personas": {}}),
            st.just({"library": {"name": "segment-personalize-activation"}}),
            json_values,
        ),
    }


def corrupted_messages(item_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A good message with one to three fields replaced by hostile values."""
    hostile = hostile_values(item_ids)
    return st.tuples(
        good_messages(item_ids),
        st.dictionaries(st.sampled_from(sorted(hostile)), st.none(), min_size=1, max_size=3),
        st.data(),
    ).map(lambda t: {**t[0], **{f: t[2].draw(hostile[f]) for f in t[1]}})


EXTREME_TIMES = [
    "9999-12-31T23:59:59-01:00",  # no UTC datetime
    "0001-01-01T00:00:00+01:00",
    "0820-02-15T00:25:31Z",  # year < 1000
    "1969-12-31T23:59:59Z",
    "2999-01-01T00:00:00Z",
    "2024-13-01T00:00:00Z",
]
EDGES: list[dict[str, Any]] = [
    *({name: t} for t in EXTREME_TIMES for name in ("timestamp", "originalTimestamp")),
    {"timestamp": EXTREME_TIMES[0], "originalTimestamp": EXTREME_TIMES[1], "receivedAt": None},
    {"userId": "u\ud800"},
    {"anonymousId": "\udfff", "userId": None},
    {"messageId": "m\ud800"},
    {"userId": 10**30},
    {"userId": 7.0},
    {"userId": True},
    {"userId": "x" * 257},
    {"messageId": "M#1"},
    {"messageId": "M", "properties": {"products": [{"sku": "SKU-0001"}, {"sku": "SKU-0002"}]}},
]


def edge_messages(item_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A good message with one of the edges that broke the handler before (issue 12)."""
    return st.tuples(good_messages(item_ids), st.sampled_from(EDGES)).map(
        lambda t: {k: v for k, v in {**t[0], **t[1]}.items() if v is not None}
    )


def wild_messages(item_ids: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=hostile_values(item_ids))


def record_data(item_ids: list[str]) -> st.SearchStrategy[str]:
    def encoded(value: Any) -> str:
        return base64.b64encode(json.dumps(value).encode()).decode()

    return st.one_of(
        good_messages(item_ids).map(encoded),
        good_messages(item_ids).map(encoded),
        corrupted_messages(item_ids).map(encoded),
        edge_messages(item_ids).map(encoded),
        edge_messages(item_ids).map(encoded),
        wild_messages(item_ids).map(encoded),
        json_values.map(encoded),
        st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
        any_text,  # not base64 at all
    )


def envelope(data: str, extra: dict[str, Any]) -> dict[str, Any]:
    record = kinesis_record(data, sequence=f"4959{next(_sequence):052d}", stream_arn=STREAM_ARN)
    record.update(extra)
    return record


def batches(item_ids: list[str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    odd_envelope = st.fixed_dictionaries(
        {}, optional={"eventSourceARN": json_values, "eventID": json_values}
    )
    records = st.lists(st.tuples(record_data(item_ids), odd_envelope), min_size=1, max_size=12)
    return st.one_of(records, st.tuples(records, collision_pair(item_ids)).map(sum_lists))


def sum_lists(parts: tuple[list[Any], list[Any]]) -> list[Any]:
    return parts[0] + parts[1]


def collision_pair(item_ids: list[str]) -> st.SearchStrategy[list[tuple[str, dict[str, Any]]]]:
    """Message ``M#1`` (one product) and a two-product order ``M`` of the same session."""

    def pair(user: str) -> list[tuple[str, dict[str, Any]]]:
        base = {"type": "track", "userId": user, "anonymousId": f"anon-{user}"}
        base["timestamp"] = "2024-03-10T10:00:00Z"
        one = {**base, "event": "Product Viewed", "messageId": "M#1"}
        one["properties"] = {"sku": item_ids[0]}
        order = {**base, "event": "Order Completed", "messageId": "M"}
        order["properties"] = {"products": [{"sku": item_ids[1]}, {"sku": item_ids[2]}]}
        return [(encode(m), {}) for m in (one, order)]

    return st.sampled_from(["u-1", "u-2"]).map(pair)


def encode(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


# -- the property ---------------------------------------------------------------------------


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every dead letter sent since the last drain (read and deleted: the queue stays small)."""
    letters: list[dict[str, Any]] = []
    for _ in range(100):  # bounded: at most 12 records per example
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = response.get("Messages", [])
        if not messages:
            break
        letters += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )
    return letters


@settings(
    max_examples=property_examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_record_is_processed_retried_or_dead_lettered(
    data: st.DataObject,
    deployment: tuple[ModuleType, Any, str],
    personalize_env: PersonalizeEmulator,
    segment_emulator: SegmentEmulator,
) -> None:
    app, sqs, queue_url = deployment
    drawn = data.draw(batches(personalize_env.catalogue_item_ids[:20]))
    event = {"Records": [envelope(payload, extra) for payload, extra in drawn]}
    sequences = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
    personalize_env.reset_stats()
    segment_emulator.reset_stats()
    started = datetime.now(UTC)

    result = app.lambda_handler(event, Context())

    # A partial batch response naming only records of this batch, each once.
    assert set(result) == {"batchItemFailures"}
    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert len(failed) == len(set(failed)) and set(failed) <= set(sequences)
    assert failed == [], "healthy services: nothing is left for a retry"

    letters = drain(sqs, queue_url)
    lettered = {m["sequenceNumber"]: m for m in letters}
    assert len(lettered) == len(letters), "at most one dead letter per record"
    for record in event["Records"]:
        letter = lettered.get(record["kinesis"]["sequenceNumber"])
        if letter is not None:
            assert isinstance(letter["reason"], str) and letter["reason"]
            assert letter["data"] == record["kinesis"]["data"]
            assert isinstance(letter["deduplicationId"], str)

    # Everything not dead-lettered is processed: its events reached Personalize, its user
    # got an identify, and every time sent is inside 1970 .. now + 24 h.
    latest = started + timedelta(hours=24, seconds=5)
    calls = [r.body for r in personalize_env.request_log() if r.operation == "PutEvents"]
    assert all(r.status == 200 for r in personalize_env.request_log())
    sent = {e["eventId"]: e for call in calls for e in call["eventList"]}
    assert all(len(e["eventList"]) <= 10 for e in calls)
    for e in sent.values():
        assert 0 <= e["sentAt"] <= latest.timestamp()
        assert 1 <= len(e["eventId"]) <= 256
    identifies = {
        m["userId"]: m
        for r in segment_emulator.request_log()
        if r.operation == "batch"
        for m in r.body["batch"]
    }
    assert all(r.status == 200 for r in segment_emulator.request_log())
    for m in identifies.values():
        assert ISO_Z.match(m["timestamp"]), m["timestamp"]
        moment = datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
        assert datetime(1970, 1, 1, tzinfo=UTC) <= moment <= latest
        assert len(m["messageId"]) <= 100

    rules = Rules(frozenset(TRACKED), frozenset(PURCHASES), "sku")
    owners: dict[str, set[str]] = {}  # eventId -> the messageIds it stands for
    for record in kinesis_records(event):
        if record.sequence_number in lettered:
            hypothesis.event("record dead-lettered")
            continue
        outcome = classify(record, rules)
        hypothesis.event(f"record {type(outcome).__name__}")
        if not isinstance(outcome, TrackedEvent):
            continue  # skipped: counted, not an error
        if outcome.tracked:
            for expected in personalize_events(outcome):
                assert expected.event_id in sent
                owners.setdefault(expected.event_id, set()).add(outcome.message_id)
        if outcome.user_id is not None:
            assert outcome.user_id in identifies
    # One messageId is one message (redeliveries share it); an eventId that two messageIds
    # map to would make Personalize drop one of the events as a duplicate.
    assert {e: ids for e, ids in owners.items() if len(ids) > 1} == {}
