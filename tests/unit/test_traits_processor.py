"""The batch logic with fake clients (no I/O): calls per batch, exclusion, failures reported
per user, the time budget, dead letters, and the handler's configuration failures."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.log import Logger
from common.profiles import ProfileError
from devkit.context import LambdaContext
from devkit.events import kinesis_event
from traits_sync import handler
from traits_sync.budget import Budget
from traits_sync.kinesis import records
from traits_sync.messages import Bad
from traits_sync.plan import derived_base
from traits_sync.ports import Ports
from traits_sync.processor import process
from traits_sync.runtime import Runtime
from traits_sync.settings import Settings, load
from traits_sync.stats import Stats
from traits_sync.tracking import TrackingError

ENV = {
    "PERSONALIZE_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/shop",
    "PERSONALIZE_TRACKING_ID": "tracking-1",
    "SEGMENT_WRITE_KEY_PARAMETER": "/segment/write-key",
    "SEGMENT_PROFILE_TOKEN_PARAMETER": "/segment/profile-token",
    "SEGMENT_SPACE_ID": "spa_test",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    "NUM_RESULTS": "5",
}
CATALOGUE = [f"I-{i:03d}" for i in range(60)]


def track(
    n: int,
    user: Any,
    event: str = "Product Viewed",
    items: Sequence[str] = ("I-001",),
    **extra: Any,
) -> dict[str, Any]:
    properties: dict[str, Any]
    if event == "Order Completed":
        properties = {"order_id": f"O-{n}", "products": [{"sku": i, "quantity": 1} for i in items]}
    else:
        properties = {"sku": items[0]}
    message = {
        "type": "track",
        "event": event,
        "messageId": f"ajs-{n:05d}",
        "anonymousId": f"anon-{user}",
        "userId": user,
        "timestamp": f"2024-03-10T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
        "properties": properties,
        "context": {"library": {"name": "analytics.js", "version": "3.7.1"}},
    }
    message.update(extra)
    return message


def many(n_records: int, n_users: int) -> list[dict[str, Any]]:
    return [
        track(
            i,
            f"user-{i % n_users:03d}",
            "Order Completed" if i % 25 == 0 else "Product Viewed",
            (CATALOGUE[i % 7],),
        )
        for i in range(n_records)
    ]


# -- fakes ----------------------------------------------------------------------------------


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


class FakeEvents:
    def __init__(self, fail_users: set[str] = frozenset()) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.fail_users = fail_users

    def put_events(self, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append(params)
        if params.get("userId") in self.fail_users:
            raise client_error("ThrottlingException", 400)
        return {}


class FakeRuntime:
    def __init__(
        self, fail_users: set[str] = frozenset(), block_users: set[str] = frozenset()
    ) -> None:
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.fail_users = fail_users
        self.block_users = block_users
        self.release = threading.Event()

    def get_recommendations(self, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append(params)
        user = params["userId"]
        if user in self.block_users:
            self.release.wait(10)
        if user in self.fail_users:
            raise client_error("InternalFailure", 500)
        ranked = CATALOGUE[: params["numResults"]]
        return {
            "itemList": [{"itemId": i, "score": 1.0 / (k + 1)} for k, i in enumerate(ranked)],
            "recommendationId": "RID-1",
        }


class FakeProfiles:
    def __init__(
        self, traits: dict[str, dict[str, Any]] | None = None, fail: set[str] = frozenset()
    ):
        self.data = traits or {}
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.fail = fail

    def traits(self, user_id: str, include: Any, deadline: float | None = None) -> dict[str, Any]:
        with self.lock:
            self.calls.append(user_id)
        if user_id in self.fail:
            raise ProfileError("unavailable", "HTTP 503")
        names = list(include)
        return {k: v for k, v in self.data.get(user_id, {}).items() if k in names}


class FakeTracking:
    def __init__(self, fail: bool = False) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail = fail

    def send_batch(self, body: bytes) -> None:
        self.bodies.append(json.loads(body))
        if self.fail:
            raise TrackingError("unavailable", "HTTP 503")

    @property
    def identifies(self) -> list[dict[str, Any]]:
        return [m for b in self.bodies for m in b["batch"]]


class FakeDeadLetters:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[Bad] = []
        self.fail = fail

    def send(self, bad: Sequence[Bad]) -> tuple[list[Bad], list[tuple[Bad, str]]]:
        if self.fail:
            return [], [(b, "ServiceUnavailable") for b in bad]
        self.sent += bad
        return list(bad), []


# The Profile reads' own pool, as in the runtime (never the units' pool).
PROFILE_READS = ThreadPoolExecutor(8, thread_name_prefix="test-profile")


class World:
    """Fakes for every dependency, and a way to run one batch through the logic."""

    def __init__(self, executor: ThreadPoolExecutor, settings: Settings | None = None) -> None:
        self.settings = settings or load(ENV)
        self.events = FakeEvents()
        self.runtime = FakeRuntime()
        self.profiles: FakeProfiles | None = FakeProfiles()
        self.tracking = FakeTracking()
        self.dead_letters = FakeDeadLetters()
        self.executor = executor
        self.stats = Stats()

    def run(self, messages: Sequence[Any], seconds: float = 30.0) -> list[str]:
        event = kinesis_event(messages)
        batch = records(event)
        ports = Ports(
            personalize_events=self.events,
            personalize_runtime=self.runtime,
            profiles=self.profiles,
            profile_reads=PROFILE_READS,
            tracking=self.tracking,
            dead_letters=self.dead_letters,
            executor=self.executor,
        )
        self.stats = Stats()
        return process(
            batch,
            self.settings,
            ports,
            Budget(time.monotonic() + seconds),
            self.stats,
            Logger("test", "ERROR"),
        )


# Named fixtures (``name=``) so that test_traits_hostile can import them without shadowing.
@pytest.fixture(scope="module", name="executor")
def executor_fixture() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(8)
    yield pool
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(name="world")
def world_fixture(executor: ThreadPoolExecutor) -> World:
    return World(executor)


def sequences(event_messages: Sequence[Any], predicate: Any) -> list[str]:
    event = kinesis_event(event_messages)
    return [
        r["kinesis"]["sequenceNumber"]
        for r, m in zip(event["Records"], event_messages, strict=True)
        if predicate(m)
    ]


# -- calls per batch ------------------------------------------------------------------------


def test_500_records_from_50_users_make_50_recommendation_calls(world: World) -> None:
    messages = many(500, 50)
    assert world.run(messages) == []
    assert len(world.runtime.calls) == 50
    assert sorted(c["userId"] for c in world.runtime.calls) == [f"user-{u:03d}" for u in range(50)]
    assert world.profiles is not None and len(world.profiles.calls) == 50
    # Each user: one session, 10 events (one product each): one PutEvents call.
    per_session = Counter((c["userId"], c["sessionId"]) for c in world.events.calls)
    assert len(per_session) == 50 and set(per_session.values()) == {1}
    assert all(1 <= len(c["eventList"]) <= 10 for c in world.events.calls)
    assert len(world.tracking.bodies) == 1
    assert len(world.tracking.identifies) == 50
    snapshot = world.stats.snapshot()
    assert snapshot["Records"] == snapshot["Relevant"] == 500
    assert snapshot["PutEventsCalls"] == 50
    assert snapshot["RecommendationCalls"] == 50
    assert snapshot["IdentifiesSent"] == 50
    assert snapshot["BatchRequests"] == 1
    assert snapshot["FailedUsers"] == snapshot["FailedRecords"] == 0


def test_eleven_events_of_a_session_take_two_put_events_calls(world: World) -> None:
    assert world.run([track(i, "u-1") for i in range(11)]) == []
    assert [len(c["eventList"]) for c in world.events.calls] == [10, 1]
    assert len(world.runtime.calls) == 1
    # The recommendation comes after the user's events were sent.
    assert world.stats["PutEventsCalls"] == 2


def test_put_events_payload(world: World) -> None:
    message = track(1, 12345, "Order Completed", ("I-007", "I-008"))
    message["timestamp"] = "2024-03-10T12:00:00+02:00"
    assert world.run([message]) == []
    (call,) = world.events.calls
    assert call["trackingId"] == "tracking-1"
    assert call["userId"] == "12345"
    assert call["sessionId"] == "anon-12345"
    events = call["eventList"]
    assert [(e["eventId"], e["eventType"], e["itemId"]) for e in events] == [
        (derived_base("ajs-00001") + "#1", "Order Completed", "I-007"),
        (derived_base("ajs-00001") + "#2", "Order Completed", "I-008"),
    ]
    assert all(e["sentAt"].timestamp() == 1710064800.0 for e in events)  # 10:00Z
    assert all("properties" not in e for e in events)
    (identify,) = world.tracking.identifies
    assert identify["userId"] == "12345"
    assert identify["timestamp"] == "2024-03-10T10:00:00.000Z"


def test_without_a_tracking_id_no_put_events(executor: ThreadPoolExecutor) -> None:
    world = World(executor, replace(load(ENV), tracking_id=None))
    assert world.run(many(30, 3)) == []
    assert world.events.calls == []
    assert len(world.runtime.calls) == 3


def test_anonymous_only_events_are_sent_but_nobody_is_identified(world: World) -> None:
    anonymous = [track(i, None) for i in range(3)]
    for message in anonymous:
        message["anonymousId"] = "anon-x"
    assert world.run(anonymous) == []
    (call,) = world.events.calls
    assert "userId" not in call
    assert call["sessionId"] == "anon-x"
    assert world.runtime.calls == []
    assert world.tracking.bodies == []


# -- exclusion and identify ---------------------------------------------------------------


def test_exclusion_of_profile_purchases_and_this_batch_purchases(world: World) -> None:
    world.profiles = FakeProfiles({"u-1": {"purchased_products": ["I-000", 2]}})
    messages = [track(1, "u-1"), track(2, "u-1", "Order Completed", ("I-001", "I-003"))]
    assert world.run(messages) == []
    (call,) = world.runtime.calls
    # Asked before the profile answered: 5 wanted + 25 headroom + this batch's 2 purchases;
    # the 4 purchases (I-000, "2", I-001, I-003) fit in that page, so no second call.
    assert call["numResults"] == 5 + 25 + 2
    (identify,) = world.tracking.identifies
    assert identify["traits"] == {
        "recommended_products": ["I-002", "I-004", "I-005", "I-006", "I-007"]
    }
    assert identify["integrations"] == {"Amazon Kinesis": False}
    assert identify["messageId"].startswith("personalize-traits-")
    assert identify["messageId"] not in {m["messageId"] for m in messages}


def test_refills_when_more_purchases_than_headroom_sat_in_the_page(world: World) -> None:
    world.settings = replace(world.settings, exclusion_headroom=2)
    world.profiles = FakeProfiles({"u-1": {"purchased_products": CATALOGUE[:10]}})
    assert world.run([track(1, "u-1")]) == []
    # First page: 5 + 2 = 7 items, all purchased; the refill asks for 5 + 10.
    assert [c["numResults"] for c in world.runtime.calls] == [7, 15]
    (identify,) = world.tracking.identifies
    assert identify["traits"]["recommended_products"] == CATALOGUE[10:15]


def test_profile_read_overlaps_put_events_and_recommendation(world: World) -> None:
    """The read is in flight while PutEvents and GetRecommendations run: a read that waits
    for both to have started would deadlock if it ran before them."""
    started = {"put": threading.Event(), "reco": threading.Event()}
    original_put, original_get = world.events.put_events, world.runtime.get_recommendations

    def put_events(**params: Any) -> Any:
        started["put"].set()
        return original_put(**params)

    def get_recommendations(**params: Any) -> Any:
        started["reco"].set()
        return original_get(**params)

    class WaitingProfiles(FakeProfiles):
        def traits(self, user_id: str, include: Any, deadline: float | None = None) -> Any:
            assert started["put"].wait(5) and started["reco"].wait(5), "not overlapped"
            return super().traits(user_id, include, deadline)

    world.events.put_events = put_events  # type: ignore[method-assign]
    world.runtime.get_recommendations = get_recommendations  # type: ignore[method-assign]
    world.profiles = WaitingProfiles({"u-1": {"purchased_products": ["I-000"]}})
    assert world.run([track(1, "u-1")]) == []
    (identify,) = world.tracking.identifies
    assert identify["traits"]["recommended_products"] == CATALOGUE[1:6]


def test_unchanged_list_sends_no_identify(world: World) -> None:
    current = ["I-000", "I-001", "I-002", "I-003", "I-004"]
    world.profiles = FakeProfiles(
        {"u-1": {"recommended_products": current}, "u-2": {"recommended_products": current[:4]}}
    )
    assert world.run([track(1, "u-1"), track(2, "u-2")]) == []
    assert [m["userId"] for m in world.tracking.identifies] == ["u-2"]
    assert world.stats["Unchanged"] == 1


def test_without_profile_api_every_user_is_identified(world: World) -> None:
    world.profiles = None
    assert world.run([track(1, "u-1", "Order Completed", ("I-000",))]) == []
    (identify,) = world.tracking.identifies
    assert identify["traits"]["recommended_products"] == [
        "I-001",
        "I-002",
        "I-003",
        "I-004",
        "I-005",
    ]


def test_same_batch_twice_gives_the_same_message_ids(world: World) -> None:
    messages = many(60, 6)
    world.run(messages)
    first = [m["messageId"] for m in world.tracking.identifies]
    world.tracking = FakeTracking()
    world.run(list(reversed(messages)))
    second = [m["messageId"] for m in world.tracking.identifies]
    assert sorted(first) == sorted(second)
    assert len(set(first)) == 6


# -- failures -------------------------------------------------------------------------------


def test_a_failing_recommendation_reports_exactly_that_users_records(world: World) -> None:
    world.runtime = FakeRuntime(fail_users={"user-003"})
    messages = many(100, 10)
    failed = world.run(messages)
    assert failed == sequences(messages, lambda m: m["userId"] == "user-003")
    assert len(failed) == 10
    assert len(world.tracking.identifies) == 9
    assert "user-003" not in {m["userId"] for m in world.tracking.identifies}
    assert world.stats["FailedUsers"] == 1
    assert world.stats.failure_reasons == {"GetRecommendations:unavailable": 1}


def test_a_failing_put_events_reports_that_users_records_and_skips_their_identify(
    world: World,
) -> None:
    world.events = FakeEvents(fail_users={"user-001"})
    messages = many(40, 4)
    failed = world.run(messages)
    assert failed == sequences(messages, lambda m: m["userId"] == "user-001")
    assert "user-001" not in {c["userId"] for c in world.runtime.calls}
    assert world.stats.failure_reasons == {"PutEvents:throttled": 1}


def test_a_failing_profile_read_reports_that_user_and_writes_nothing_unfiltered(
    world: World,
) -> None:
    world.profiles = FakeProfiles(fail={"user-002"})
    messages = many(40, 4)
    failed = world.run(messages)
    assert failed == sequences(messages, lambda m: m["userId"] == "user-002")
    assert "user-002" not in {m["userId"] for m in world.tracking.identifies}


def test_a_failing_batch_request_reports_its_users(world: World) -> None:
    world.tracking = FakeTracking(fail=True)
    messages = [*many(20, 4), track(99, None)]
    failed = world.run(messages)
    assert failed == sequences(messages, lambda m: m["userId"] is not None)
    assert world.stats["FailedUsers"] == 4


def test_exhausted_budget_reports_every_relevant_record_and_calls_nothing(world: World) -> None:
    messages = [*many(20, 4), "not base64!!", {"type": "page", "userId": "u"}]
    failed = world.run(messages, seconds=-1.0)
    assert failed == sequences(messages, lambda m: isinstance(m, str) or m["type"] == "track")
    assert world.events.calls == []
    assert world.runtime.calls == []
    assert world.tracking.bodies == []
    assert world.dead_letters.sent == []


def test_a_user_still_running_at_the_deadline_is_reported_the_rest_is_sent(
    world: World,
) -> None:
    world.runtime = FakeRuntime(block_users={"user-000"})
    messages = many(20, 4)
    try:
        failed = world.run(messages, seconds=0.5)
    finally:
        world.runtime.release.set()
    assert failed == sequences(messages, lambda m: m["userId"] == "user-000")
    assert sorted(m["userId"] for m in world.tracking.identifies) == [
        "user-001",
        "user-002",
        "user-003",
    ]
    assert world.stats.failure_reasons == {"time_budget": 1}


# -- dead letters ---------------------------------------------------------------------------


def test_bad_records_are_dead_lettered_not_retried(world: World) -> None:
    messages: list[Any] = [track(1, "u-1"), "%%%", b"[1, 2]", track(2, ["not", "an", "id"])]
    assert world.run(messages) == []
    assert [b.reason for b in world.dead_letters.sent] == [
        "data is not base64",
        "data is not a JSON object",
        "userId is neither a string nor a number",
    ]
    assert world.stats["DeadLettered"] == 3


def test_a_failed_dead_letter_send_is_reported_for_retry(world: World) -> None:
    world.dead_letters = FakeDeadLetters(fail=True)
    messages: list[Any] = [track(1, "u-1"), "%%%"]
    assert world.run(messages) == sequences(messages, lambda m: isinstance(m, str))


def test_skipped_records_are_counted_by_reason(world: World) -> None:
    messages: list[Any] = [
        {"type": "page", "userId": "u-1", "messageId": "p"},
        track(1, "u-1", "Checkout Started"),
        track(2, "u-1", context={"personas": {}}),
        {
            "type": "identify",
            "userId": "u-1",
            "context": {"library": {"name": "segment-personalize-activation"}},
        },
    ]
    assert world.run(messages) == []
    assert world.stats["Skipped"] == 4
    assert world.stats.skip_reasons == {
        "not_track": 1,
        "untracked_event": 1,
        "engage": 1,
        "own_message": 1,
    }
    assert world.events.calls == world.runtime.calls == []


# -- the handler: configuration problems ----------------------------------------------------


Context = partial(LambdaContext, 60_000, aws_request_id="req-1")


@pytest.mark.parametrize(
    ("missing", "setting"),
    [
        ("PERSONALIZE_CAMPAIGN_ARN", "PERSONALIZE_CAMPAIGN_ARN"),
        ("DEAD_LETTER_QUEUE_URL", "DEAD_LETTER_QUEUE_URL"),
        ("SEGMENT_SPACE_ID", "SEGMENT_SPACE_ID"),
    ],
)
def test_invalid_setting_retries_every_record_with_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], missing: str, setting: str
) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    messages: list[Any] = [track(1, "u-1"), "%%%", {"type": "page", "userId": "u-1"}]
    result = handler.handle_with(Runtime(env), kinesis_event(messages), Context())
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": r["kinesis"]["sequenceNumber"]}
            for r in kinesis_event(messages)["Records"]
        ]
    }
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    errors = [line for line in lines if line.get("level") == "ERROR"]
    assert len(errors) == 1
    assert errors[0]["setting"] == setting
    assert errors[0]["requestId"] == "req-1"
    assert "Traceback" not in json.dumps(lines)
