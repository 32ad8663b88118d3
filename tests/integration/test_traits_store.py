"""The traits sync with the user-state store (moto's DynamoDB and SQS, in-process) and fakes
for Personalize, the Profile API and Segment: purchases from the stream, seeding off the hot
path, coalescing with a trailing refresh, claims that lose to a concurrent purchase."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from moto import mock_aws

from common.log import Logger
from common.profiles import ProfileError
from common.userstate import MAX_PURCHASES, UserStateStore
from devkit.aws import fake_aws_env
from devkit.events import kinesis_event, sqs_event
from traits_sync import refreshqueue
from traits_sync.budget import Budget
from traits_sync.kinesis import records
from traits_sync.messages import Bad
from traits_sync.ports import Ports
from traits_sync.processor import process, process_refreshes
from traits_sync.refreshqueue import RefreshQueue
from traits_sync.settings import Settings, load
from traits_sync.stats import Stats

TABLE = "test-user-state"
ACCOUNT = "123456789012"
CATALOGUE = [f"I-{i:03d}" for i in range(60)]
ENV = {
    "PERSONALIZE_CAMPAIGN_ARN": f"arn:aws:personalize:us-east-1:{ACCOUNT}:campaign/shop",
    "PERSONALIZE_TRACKING_ID": "tracking-1",
    "SEGMENT_WRITE_KEY_PARAMETER": "/segment/write-key",
    "SEGMENT_PROFILE_TOKEN_PARAMETER": "/segment/profile-token",
    "SEGMENT_SPACE_ID": "spa_test",
    "DEAD_LETTER_QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/dlq",
    "NUM_RESULTS": "5",
    "USER_STATE_TABLE": TABLE,
    "MIN_REFRESH_INTERVAL_S": "0",
}


def track(n: int, user: str, event: str = "Product Viewed", items: Sequence[str] = ("I-001",)):
    properties: dict[str, Any]
    if event == "Order Completed":
        properties = {"products": [{"sku": i} for i in items]}
    else:
        properties = {"sku": items[0]}
    return {
        "type": "track",
        "event": event,
        "messageId": f"m-{n:05d}",
        "anonymousId": f"anon-{user}",
        "userId": user,
        "timestamp": f"2024-03-10T10:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
        "properties": properties,
    }


class Events:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_events(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        return {}


class Runtime:
    """Personalize's ranking is the catalogue's order; ``during_call`` runs inside a call
    (another container's write, say)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.during_call: Any = None
        self.lock = threading.Lock()

    def get_recommendations(self, **params: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append(params)
            hook, self.during_call = self.during_call, None
        if hook is not None:
            hook(params["userId"])
        ranked = CATALOGUE[: params["numResults"]]
        return {"itemList": [{"itemId": i} for i in ranked], "recommendationId": "RID"}


class Profiles:
    def __init__(self, purchased: dict[str, list[str]] | None = None) -> None:
        self.purchased = purchased or {}
        self.calls: list[str] = []
        self.gate: threading.Event | None = None  # when set, a read waits for it
        self.fail = False
        self.no_turn = False  # no turn of the rate share comes: wait out the deadline
        self.never = threading.Event()

    def traits(self, user_id: str, include: Any, deadline: float | None = None) -> dict[str, Any]:
        self.calls.append(user_id)
        if self.gate is not None and not self.gate.wait(5):
            raise ProfileError("timeout", "gate never opened")
        if self.fail:
            raise ProfileError("unavailable", "HTTP 503")
        if self.no_turn:
            assert deadline is not None
            self.never.wait(max(0.0, min(30.0, deadline - time.monotonic())))
            raise ProfileError("budget", "no Profile API turn before the deadline")
        return {"purchased_products": self.purchased.get(user_id, [])}


class Tracking:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.sent = threading.Event()

    def send_batch(self, body: bytes) -> None:
        self.bodies.append(json.loads(body))
        self.sent.set()

    @property
    def lists(self) -> dict[str, list[list[str]]]:
        out: dict[str, list[list[str]]] = {}
        for body in self.bodies:
            for message in body["batch"]:
                out.setdefault(message["userId"], []).append(
                    message["traits"]["recommended_products"]
                )
        return out


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[Bad] = []

    def send(self, bad: Sequence[Bad]) -> tuple[list[Bad], list[tuple[Bad, str]]]:
        self.sent += bad
        return list(bad), []


class World:
    def __init__(self, aws: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.settings: Settings = load({**ENV, **(env or {})})
        self.events = Events()
        self.runtime = Runtime()
        self.profiles = Profiles()
        self.tracking = Tracking()
        self.dead_letters = DeadLetters()
        self.sqs = aws["sqs"]
        self.queue_url = aws["queue_url"]
        self.now = 1_800_000_000.0
        self.store = UserStateStore(aws["dynamodb"], TABLE, wall=lambda: self.now)
        self.stats = Stats()
        self.pools = [ThreadPoolExecutor(4) for _ in range(3)]

    def ports(self) -> Ports:
        units, profile_reads, store_reads = self.pools
        return Ports(
            personalize_events=self.events,  # type: ignore[arg-type]
            personalize_runtime=self.runtime,  # type: ignore[arg-type]
            profiles=self.profiles,
            profile_reads=profile_reads,
            tracking=self.tracking,
            dead_letters=self.dead_letters,
            executor=units,
            store=self.store,
            store_reads=store_reads,
            refresh_queue=RefreshQueue(self.sqs, self.queue_url),
            wall=lambda: self.now,
        )

    def run(self, messages: Sequence[Any], seconds: float = 20.0) -> list[str]:
        self.stats = Stats()
        return process(
            records(kinesis_event(messages)),
            self.settings,
            self.ports(),
            Budget(time.monotonic() + seconds),
            self.stats,
            Logger("test", "ERROR"),
        )

    def run_queue(self, bodies: Sequence[Any]) -> list[str]:
        self.stats = Stats()
        return process_refreshes(
            refreshqueue.records(sqs_event(bodies)),
            self.settings,
            self.ports(),
            Budget(time.monotonic() + 20),
            self.stats,
            Logger("test", "ERROR"),
        )

    def queued(self) -> list[tuple[dict[str, Any], int]]:
        """Messages on the refresh queue (delays included) with the delay they were sent
        with (moto reports none: read back from our own send below)."""
        out = []
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        for message in response.get("Messages", []):
            out.append((json.loads(message["Body"]), 0))
        return out

    def close(self) -> None:
        for pool in self.pools:
            pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in fake_aws_env().items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="refresh")["QueueUrl"]
        yield {"dynamodb": dynamodb, "sqs": sqs, "queue_url": queue_url}


@pytest.fixture
def world(aws: dict[str, Any]) -> Iterator[World]:
    w = World(aws)
    yield w
    w.close()


def make(aws: dict[str, Any], **env: str) -> World:
    return World(aws, env)


# -- purchases from the stream --------------------------------------------------------------


def test_a_purchase_is_stored_and_excluded_from_every_later_refresh(world: World) -> None:
    world.profiles.purchased = {}
    assert world.run([track(1, "u", "Order Completed", ["I-000", "I-002"])]) == []
    assert world.store.get("u", consistent=True).purchased == {"I-000", "I-002"}
    assert world.tracking.lists["u"][-1] == ["I-001", "I-003", "I-004", "I-005", "I-006"]
    world.run([track(2, "u")])  # a view, in a later batch: the store still excludes them
    assert world.tracking.lists["u"][-1] == ["I-001", "I-003", "I-004", "I-005", "I-006"]
    # Redelivered, the purchase record adds nothing.
    world.run([track(1, "u", "Order Completed", ["I-000", "I-002"])])
    assert world.store.get("u", consistent=True).purchased == {"I-000", "I-002"}


def test_the_profile_api_is_read_once_per_user_not_once_per_refresh(world: World) -> None:
    world.profiles.purchased = {"u": ["I-003"]}
    for n in range(4):
        assert world.run([track(n, "u"), track(100 + n, "v")]) == []
    assert sorted(world.profiles.calls) == ["u", "v"]
    assert world.store.get("u", consistent=True).seeded_at == world.now
    assert "I-003" not in world.tracking.lists["u"][-1]


def test_one_batch_read_serves_every_user_without_a_purchase(world: World) -> None:
    world.run([track(n, f"user-{n}") for n in range(30)])
    assert world.stats["StoreReads"] == 1
    assert world.stats["RefreshesClaimed"] == 30


# -- seeding off the hot path ---------------------------------------------------------------


def test_the_refresh_does_not_wait_for_the_seed(world: World) -> None:
    """The seed's read is held until the identify was sent: a refresh that waited for it
    would never send, and the read would time out."""
    world.profiles.gate = world.tracking.sent
    world.profiles.purchased = {"u": ["I-040"]}
    assert world.run([track(1, "u")]) == []
    assert world.tracking.lists["u"] == [["I-000", "I-001", "I-002", "I-003", "I-004"]]
    assert world.stats["Seeded"] == 1
    assert world.store.get("u", consistent=True).purchased == {"I-040"}


def test_a_seed_that_finds_a_written_item_refreshes_the_user_again(world: World) -> None:
    world.profiles.gate = world.tracking.sent
    world.profiles.purchased = {"u": ["I-002"]}  # in the list the first refresh writes
    assert world.run([track(1, "u")]) == []
    assert world.stats["SeedRefreshes"] == 1
    queued = world.queued()
    assert [body["userId"] for body, _ in queued] == ["u"]
    world.now += 1
    assert world.run_queue([queued[0][0]]) == []
    assert world.tracking.lists["u"][-1] == ["I-000", "I-001", "I-003", "I-004", "I-005"]


def test_a_failed_seed_costs_no_record_and_is_tried_at_the_next_refresh(world: World) -> None:
    world.profiles.fail = True
    assert world.run([track(1, "u")]) == []
    assert world.stats["SeedsDeferred"] == 1
    world.profiles.fail = False
    world.run([track(2, "u")])
    assert world.profiles.calls == ["u", "u"]
    assert world.store.get("u", consistent=True).seeded_at is not None


def test_strict_seeding_waits_for_the_first_read(aws: dict[str, Any]) -> None:
    world = make(aws, SEED_WAIT="true")
    try:
        world.profiles.purchased = {"u": ["I-000", "I-001"]}
        assert world.run([track(1, "u")]) == []
        assert world.tracking.lists["u"] == [["I-002", "I-003", "I-004", "I-005", "I-006"]]
        assert world.queued() == []  # nothing to refresh again
        world.run([track(2, "u")])
        assert world.profiles.calls == ["u"]
    finally:
        world.close()


def test_a_reseed_interval_reads_the_trait_again(aws: dict[str, Any]) -> None:
    world = make(aws, RESEED_INTERVAL_SECONDS="3600")
    try:
        world.run([track(1, "u")])
        world.now += 1800
        world.run([track(2, "u")])
        assert world.profiles.calls == ["u"]
        world.now += 1800
        world.run([track(3, "u")])
        assert world.profiles.calls == ["u", "u"]
    finally:
        world.close()


def test_a_capped_user_reads_the_profile_api_on_every_refresh(world: World) -> None:
    world.store.add_purchases("u", [f"X-{n}" for n in range(MAX_PURCHASES)])
    world.store.add_purchases("u", ["I-000"])  # past the cap: not stored
    assert world.store.get("u", consistent=True).capped
    world.profiles.purchased = {"u": ["I-000"]}
    for n in range(2):
        world.run([track(n, "u")])
        assert "I-000" not in world.tracking.lists["u"][-1]
    assert world.profiles.calls == ["u", "u"]


# -- coalescing -----------------------------------------------------------------------------


def test_a_user_refreshed_moments_ago_is_deferred_to_a_trailing_refresh(
    aws: dict[str, Any],
) -> None:
    world = make(aws, MIN_REFRESH_INTERVAL_S="30", REFRESH_QUEUE_URL=aws["queue_url"])
    try:
        world.run([track(1, "u")])
        assert len(world.runtime.calls) == 1
        world.now += 10
        sent: list[dict[str, Any]] = []
        real = world.sqs.send_message_batch

        def spy(**params: Any) -> Any:
            sent.extend(params["Entries"])
            return real(**params)

        world.sqs.send_message_batch = spy  # type: ignore[method-assign]
        assert world.run([track(2, "u")]) == []
        assert len(world.runtime.calls) == 1  # no GetRecommendations, no identify
        assert len(world.events.calls) == 2  # but the events went to Personalize at once
        assert [e["DelaySeconds"] for e in sent] == [20]
        body = json.loads(sent[0]["MessageBody"])
        assert body["userId"] == "u" and body["after"] == world.now
        # The trailing refresh, when it comes, covers the second event.
        world.now += 20
        assert world.run_queue([body]) == []
        assert len(world.runtime.calls) == 2 and len(world.tracking.lists["u"]) == 2
        # The same message again (redelivered): a newer refresh covered it.
        assert world.run_queue([body]) == []
        assert world.stats["RefreshesSuperseded"] == 1 and len(world.runtime.calls) == 2
    finally:
        world.close()


def test_a_purchase_refreshes_at_once_inside_the_window(aws: dict[str, Any]) -> None:
    world = make(aws, MIN_REFRESH_INTERVAL_S="30", REFRESH_QUEUE_URL=aws["queue_url"])
    try:
        world.run([track(1, "u")])
        world.now += 1
        world.run([track(2, "u", "Order Completed", ["I-000"])])
        assert len(world.runtime.calls) == 2
        assert world.tracking.lists["u"][-1][0] == "I-001"
        assert world.queued() == []
    finally:
        world.close()


def test_a_queue_send_that_fails_reports_the_users_records(aws: dict[str, Any]) -> None:
    world = make(aws, MIN_REFRESH_INTERVAL_S="30", REFRESH_QUEUE_URL=aws["queue_url"])
    try:
        world.run([track(1, "u")])
        world.now += 1
        world.queue_url = world.queue_url + "-gone"
        failed = world.run([track(2, "u"), track(3, "v")])
        assert len(failed) == 1  # u's record; v was refreshed
        assert world.stats.failure_reasons
    finally:
        world.close()


# -- claims ---------------------------------------------------------------------------------


def test_a_purchase_merged_during_the_refresh_wins_over_the_stale_list(world: World) -> None:
    """Another container merges a purchase of I-000 while this refresh asks Personalize:
    the claim loses, and the list written is computed again without it."""
    world.runtime.during_call = lambda user: world.store.add_purchases(user, ["I-000"])
    assert world.run([track(1, "u")]) == []
    assert world.stats["ClaimsLost"] == 1
    assert world.tracking.lists["u"] == [["I-001", "I-002", "I-003", "I-004", "I-005"]]
    assert world.store.get("u", consistent=True).items == tuple(world.tracking.lists["u"][-1])


def test_a_lost_claim_to_a_newer_refresh_sends_nothing(world: World) -> None:
    """Another container's refresh, started after this unit's events reached Personalize and
    knowing every purchase, is claimed first: this one has nothing to add."""

    def other_refresh(user: str) -> None:
        from common.userstate import Claim

        state = world.store.get(user, consistent=True)
        world.store.claim(Claim(user, state.ver, world.now + 0.5, 1, 0, ("I-009",)))

    world.runtime.during_call = other_refresh
    assert world.run([track(1, "u")]) == []
    assert world.stats["RefreshesSuperseded"] == 1
    assert world.tracking.bodies == []


def test_the_store_unavailable_reports_the_users_records(world: World) -> None:
    world.store.table = "no-such-table"
    failed = world.run([track(1, "u"), track(2, "v")])
    assert len(failed) == 2


def test_a_refresh_message_we_did_not_write_is_dead_lettered(world: World) -> None:
    assert world.run_queue(["not json", {"v": 9, "userId": "u"}]) == []
    assert [b.code for b in world.dead_letters.sent] == ["BadRefreshMessage"] * 2


def test_seeds_without_a_turn_do_not_hold_the_batch(world: World) -> None:
    """No Profile API turn comes: the seeds give up after their patience, not at the
    invocation's deadline (60 s here), and the refreshes are sent all the same."""
    world.profiles.no_turn = True
    started = time.monotonic()
    assert world.run([track(n, f"user-{n}") for n in range(20)], seconds=60.0) == []
    elapsed = time.monotonic() - started
    assert elapsed < 10.0, elapsed
    assert world.stats["SeedsDeferred"] == 20 and len(world.tracking.lists) == 20


def test_a_refresh_queue_batch_without_the_store_is_a_configuration_error(
    aws: dict[str, Any],
) -> None:
    from devkit.context import LambdaContext
    from traits_sync import handler
    from traits_sync.runtime import Runtime

    env = {k: v for k, v in ENV.items() if k != "USER_STATE_TABLE"}
    rt = Runtime({**env, "AWS_DEFAULT_REGION": "us-east-1"})
    event = sqs_event([{"v": 1, "userId": "u", "after": 1.0, "watermark": None}] * 2)
    answer = handler.handle_with(rt, event, LambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]}


def test_concurrent_containers_never_write_a_list_with_a_processed_purchase(
    world: World,
) -> None:
    """Four containers process one user's events at once (the stream keyed by messageId):
    views and purchases interleave. Every identify claimed after a purchase was merged must
    exclude it, and the last list stored excludes every purchase. The store's order of
    claims is the ground truth: a list is checked against the purchases merged before it
    was claimed."""
    import random

    rng = random.Random(7)
    merged: list[tuple[int, str]] = []  # (store version after the merge, item)
    claimed: list[tuple[int, tuple[str, ...]]] = []
    lock = threading.Lock()
    real_add, real_claim = world.store.add_purchases, world.store.claim

    def add(user_id: str, items: Any) -> Any:
        state = real_add(user_id, items)
        with lock:
            merged.extend((state.ver, item) for item in items)
        return state

    def claim(c: Any) -> Any:
        state = real_claim(c)
        if state is not None:
            with lock:
                claimed.append((state.ver, state.items))
        return state

    world.store.add_purchases = add  # type: ignore[method-assign]
    world.store.claim = claim  # type: ignore[method-assign]
    batches = []
    for b in range(24):
        if b % 3 == 0:
            batches.append([track(1000 + b, "u", "Order Completed", [CATALOGUE[b // 3]])])
        else:
            batches.append([track(1000 + b, "u", items=[rng.choice(CATALOGUE)])])
    failures: list[list[str]] = []

    def container(mine: list[list[dict[str, Any]]]) -> None:
        for batch in mine:
            failures.append(world.run(batch))

    threads = [threading.Thread(target=container, args=(batches[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(not t.is_alive() for t in threads)
    assert all(f == [] for f in failures)
    bought = {item for _, item in merged}
    assert len(bought) == 8
    for version, items in claimed:
        before = {item for ver, item in merged if ver < version}
        assert not before & set(items), (version, items, before)
    final = world.store.get("u", consistent=True)
    assert final.purchased == bought and not bought & set(final.items)
