"""Hostile input and edge semantics of the traits sync (issue 12), with fake clients: no
record can crash a batch, block a shard, or vanish."""

from __future__ import annotations

import base64
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_traits_processor import (
    ENV,
    FakeDeadLetters,
    FakeEvents,
    FakeProfiles,
    FakeRuntime,
    FakeTracking,
    World,
    executor_fixture,  # noqa: F401  (the fixture `executor`)
    many,
    sequences,
    track,
    world_fixture,  # noqa: F401  (the fixture `world`)
)
from test_traits_processor import (
    Context as HandlerContext,
)

from common.log import Logger
from common.profiles import ProfileClient, ProfileError
from devkit.events import kinesis_event
from traits_sync import handler, runtime
from traits_sync.budget import Budget
from traits_sync.kinesis import records
from traits_sync.messages import Bad, Rules, TrackedEvent, classify
from traits_sync.ports import Ports
from traits_sync.processor import process
from traits_sync.settings import load
from traits_sync.stats import Stats
from traits_sync.timestamps import event_time, iso_z, parse
from traits_sync.tracking import TrackingError

RULES = Rules(
    frozenset({"Product Viewed", "Order Completed"}), frozenset({"Order Completed"}), "sku"
)


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


# -- defect 7: refusals that no retry can fix -----------------------------------------------


def invalid_input(message: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "InvalidInputException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        "PutEvents",
    )


class RefusingEvents(FakeEvents):
    """Personalize refuses a whole call when one of its events names a refused item."""

    def __init__(self, refused_items: set[str] | None = None) -> None:
        super().__init__()
        self.refused_items = refused_items  # None: every call (a wrong tracking id)

    def put_events(self, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append(params)
        items = {e["itemId"] for e in params["eventList"]}
        if self.refused_items is None:
            raise invalid_input("Could not find an event tracker for tracking-1.")
        if items & self.refused_items:
            raise invalid_input("eventList[0].itemId failed to satisfy constraint.")
        return {}


class RefusingTracking(FakeTracking):
    """Segment answers 400 to any request carrying an identify of a refused user."""

    def __init__(self, refused_users: set[str] | None = None) -> None:
        super().__init__()
        self.refused_users = refused_users
        self.accepted: list[dict[str, Any]] = []

    def send_batch(self, body: bytes) -> None:
        batch = json.loads(body)["batch"]
        self.bodies.append({"batch": batch})
        users = {m["userId"] for m in batch}
        if self.refused_users is None or users & self.refused_users:
            raise TrackingError("rejected", "HTTP 400: a message in the batch is over 32 KB")
        self.accepted += batch


class RefusingRuntime(FakeRuntime):
    def __init__(self, refused_users: set[str] | None, code: str = "InvalidInputException"):
        super().__init__()
        self.refused_users = refused_users
        self.code = code

    def get_recommendations(self, **params: Any) -> dict[str, Any]:
        if self.refused_users is None or params["userId"] in self.refused_users:
            raise ClientError(
                {
                    "Error": {"Code": self.code, "Message": "refused"},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "GetRecommendations",
            )
        return super().get_recommendations(**params)


def error_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [line for line in lines if line.get("level") == "ERROR"]


def test_an_event_personalize_refuses_is_dead_lettered_alone(world: World) -> None:
    world.events = RefusingEvents({"I-BAD"})
    messages = [track(i, "u-1", items=("I-BAD" if i == 4 else f"I-{i:03d}",)) for i in range(10)]
    messages.append(track(10, "u-2"))
    assert world.run(messages) == []
    (letter,) = world.dead_letters.sent
    assert letter.record.sequence_number == sequences(messages, lambda m: m is messages[4])[0]
    assert letter.reason == (
        "PutEvents rejected the event: InvalidInputException: "
        "eventList[0].itemId failed to satisfy constraint."
    )
    accepted = [e["itemId"] for c in world.events.calls[1:] for e in c["eventList"]]
    assert sorted(accepted) == sorted(
        [f"I-{i:03d}" for i in range(10) if i != 4] + ["I-BAD", "I-001"]
    )
    # The user's other events went through and their trait was written.
    assert sorted(m["userId"] for m in world.tracking.identifies) == ["u-1", "u-2"]
    assert world.stats["ConfigurationErrors"] == 0


def test_put_events_refused_for_everyone_is_a_configuration_error(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.events = RefusingEvents(None)
    messages = many(30, 3)
    failed = world.run(messages)
    assert failed == sequences(messages, lambda m: True)
    assert world.dead_letters.sent == []
    assert world.stats["ConfigurationErrors"] == 1
    (line,) = error_lines(capsys)
    assert (line["message"], line["setting"], line["step"]) == (
        "invalid configuration",
        "PERSONALIZE_TRACKING_ID",
        "PutEvents",
    )
    # The code, never the service's message (it may quote the data).
    assert line["reason"] == "every call was refused: InvalidInputException"


def test_an_identify_segment_refuses_is_found_by_halving_and_dead_lettered(world: World) -> None:
    world.tracking = RefusingTracking({"user-005"})
    messages = many(80, 8)
    assert world.run(messages) == []
    assert sorted(b.record.sequence_number for b in world.dead_letters.sent) == sorted(
        sequences(messages, lambda m: m["userId"] == "user-005")
    )
    assert {b.reason for b in world.dead_letters.sent} == {
        "Segment rejected the identify: HTTP 400: a message in the batch is over 32 KB"
    }
    assert sorted(m["userId"] for m in world.tracking.accepted) == [
        f"user-{u:03d}" for u in range(8) if u != 5
    ]
    # 8 identifies: 1 + 2 + 2 + 2 requests to isolate one.
    assert len(world.tracking.bodies) == 7


def test_segment_refusing_every_request_is_a_configuration_error(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.tracking = RefusingTracking(None)
    messages = [*many(20, 4), track(99, None)]
    failed = world.run(messages)
    assert failed == sequences(messages, lambda m: m["userId"] is not None)
    assert world.dead_letters.sent == []
    assert world.stats["ConfigurationErrors"] == 1
    assert [line["setting"] for line in error_lines(capsys)] == ["SEGMENT_API_URL"]


def test_a_user_personalize_refuses_is_dead_lettered(world: World) -> None:
    world.runtime = RefusingRuntime({"user-002"})
    messages = many(40, 4)
    assert world.run(messages) == []
    assert sorted(b.record.sequence_number for b in world.dead_letters.sent) == sorted(
        sequences(messages, lambda m: m["userId"] == "user-002")
    )
    assert {b.reason for b in world.dead_letters.sent} == {
        "GetRecommendations rejected the user: InvalidInputException: refused"
    }


@pytest.mark.parametrize(
    ("refused", "code"),
    [(None, "InvalidInputException"), ({"user-002"}, "ResourceNotFoundException")],
)
def test_a_refusal_that_means_misconfiguration_is_retried(
    world: World, capsys: pytest.CaptureFixture[str], refused: set[str] | None, code: str
) -> None:
    world.runtime = RefusingRuntime(refused, code)
    messages = many(40, 4)
    failed = world.run(messages)
    refused_users = refused or {f"user-{u:03d}" for u in range(4)}
    assert failed == sequences(messages, lambda m: m["userId"] in refused_users)
    assert world.dead_letters.sent == []
    assert world.stats["ConfigurationErrors"] == 1
    assert [line["setting"] for line in error_lines(capsys)] == ["PERSONALIZE_CAMPAIGN_ARN"]


def test_a_profile_api_400_for_one_user_is_dead_lettered(world: World) -> None:
    class Refusing(FakeProfiles):
        def traits(
            self, user_id: str, include: Any, deadline: float | None = None
        ) -> dict[str, Any]:
            if user_id == "user-001":
                raise ProfileError("rejected", "HTTP 400")
            return super().traits(user_id, include)

    world.profiles = Refusing()
    messages = many(20, 4)
    assert world.run(messages) == []
    assert {b.reason for b in world.dead_letters.sent} == {"ProfileAPI rejected the user: HTTP 400"}
    assert len(world.dead_letters.sent) == 5


def test_profile_client_classifies_a_400_as_rejected() -> None:
    class Answer:
        status_code = 400

    class Session:
        def get(self, *_: Any, **__: Any) -> Answer:
            return Answer()

    client = ProfileClient(Session(), "https://p", "spa", lambda: "t")
    with pytest.raises(ProfileError) as info:
        client.traits("u-1", ["a"])
    assert info.value.kind == "rejected"


# -- defect 9: every invocation moves the checkpoint forward --------------------------------


class Ticking:
    """A clock that advances one second per service call: a deterministic tight budget."""

    def __init__(self) -> None:
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def tick(self) -> None:
        with self.lock:
            self.now += 1.0


def test_a_tight_budget_still_finishes_the_first_records(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = Ticking()
    calls: list[str] = []

    class Events(FakeEvents):
        def put_events(self, **params: Any) -> dict[str, Any]:
            calls.append(f"PutEvents:{params.get('userId') or params['sessionId']}")
            clock.tick()
            return super().put_events(**params)

    class Runtime(FakeRuntime):
        def get_recommendations(self, **params: Any) -> dict[str, Any]:
            calls.append(f"GetRecommendations:{params['userId']}")
            clock.tick()
            return super().get_recommendations(**params)

    anonymous = track(0, None, anonymousId="anon-first")
    messages = [anonymous, *[track(n, f"u-{n}") for n in range(1, 7)]]
    batch = records(kinesis_event(messages))
    settings = load(ENV)
    with ThreadPoolExecutor(1) as one_worker:  # submission order is execution order
        ports = Ports(
            personalize_events=Events(),
            personalize_runtime=Runtime(),
            profiles=None,
            profile_reads=None,
            tracking=FakeTracking(),
            dead_letters=FakeDeadLetters(),
            executor=one_worker,
        )
        failed = process(
            batch,
            settings,
            ports,
            Budget(10.0, clock),  # 8 s for the units (2 s kept for the identifies)
            Stats(),
            Logger("test", "ERROR"),
        )
    # The first record's unit ran first; only later records wait for the retry, so the
    # checkpoint (the lowest reported sequence number) moves past the first records.
    assert calls[0] == "PutEvents:anon-first"
    assert failed, "the budget was meant to be too short for the whole batch"
    order = [r.sequence_number for r in batch]
    assert order.index(failed[0]) >= 3
    assert failed == order[order.index(failed[0]) :]


# -- defect 10: what the runtime says is what botocore does ---------------------------------


@pytest.fixture
def no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    runtime.reset()


def test_a_missing_region_names_the_variable_botocore_reads(
    no_region: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # not enough: botocore does not read it
    messages = [track(1, "u-1")]
    result = handler.handle_with(runtime.Runtime(ENV), kinesis_event(messages), HandlerContext())
    assert result == {
        "batchItemFailures": [{"itemIdentifier": s} for s in sequences(messages, bool)]
    }
    (line,) = error_lines(capsys)
    assert line["setting"] == "AWS_DEFAULT_REGION"
    assert "AWS_REGION" in line["reason"]
    runtime.reset()


def test_personalize_calls_make_the_attempts_the_runtime_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    state = runtime.Runtime(ENV)
    try:
        client: Any = state.ports().personalize_runtime
        # botocore's own resolution of the policy: attempts in all, the first included.
        assert client.meta.config.retries["total_max_attempts"] == runtime.PERSONALIZE_ATTEMPTS
        assert runtime.PERSONALIZE_ATTEMPTS == 4
    finally:
        state.close()
