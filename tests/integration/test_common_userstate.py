"""common.userstate against moto's DynamoDB (in-process): merges, seeds, claims, the cap."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from common.userstate import (
    MAX_ITEM_BYTES,
    MAX_ITEM_ID_BYTES,
    MAX_LIST,
    MAX_LIST_BYTES,
    MAX_PURCHASES,
    Claim,
    StoreError,
    UserStateStore,
    item_size,
    list_digest,
)
from devkit.aws import fake_aws_env

TABLE = "test-user-state"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
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
        yield dynamodb


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def store(client: Any, clock: Clock | None = None) -> UserStateStore:
    clock = clock or Clock()
    return UserStateStore(
        client,
        TABLE,
        clock=clock,
        wall=lambda: 1_800_000_000.0,
        sleep=clock.sleep,
        rng=random.Random(1),
    )


def test_an_unknown_user_has_an_empty_state(client: Any) -> None:
    states = store(client).get_many(["a", "b"], deadline=2000.0)
    assert set(states) == {"a", "b"}
    assert not states["a"].exists and states["a"].purchased == frozenset()
    assert states["a"].seed_due(now=0, reseed_interval_s=0)


def test_purchases_merge_as_a_set_and_a_redelivery_adds_nothing(client: Any) -> None:
    s = store(client)
    first = s.add_purchases("u", ["A", "B"])
    again = s.add_purchases("u", ["B", "A"])
    more = s.add_purchases("u", ["C"])
    assert first.purchased == {"A", "B"} and again.purchased == {"A", "B"}
    assert more.purchased == {"A", "B", "C"}
    assert [first.ver, again.ver, more.ver] == [1, 2, 3]
    item = client.get_item(TableName=TABLE, Key={"user_id": {"S": "u"}})["Item"]
    assert int(item["expires_at"]["N"]) == 1_800_000_000 + 400 * 86_400


def test_get_many_reads_more_than_one_request_holds(client: Any) -> None:
    s = store(client)
    users = [f"user-{n}" for n in range(250)]
    for user in users[::50]:
        s.add_purchases(user, [f"item-{user}"])
    states = s.get_many(users, deadline=2000.0)
    assert len(states) == 250
    assert {u for u, st in states.items() if st.exists} == set(users[::50])
    assert states["user-50"].purchased == {"item-user-50"}


class Unprocessing:
    """A client whose BatchGetItem leaves every key unprocessed ``times`` times."""

    def __init__(self, real: Any, times: int) -> None:
        self.real, self.times, self.calls = real, times, 0

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.times:
            return {"Responses": {TABLE: []}, "UnprocessedKeys": RequestItems}
        return dict(self.real.batch_get_item(RequestItems=RequestItems))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_unprocessed_keys_are_asked_again_with_a_growing_wait(client: Any) -> None:
    store(client).add_purchases("u", ["A"])
    clock = Clock()
    flaky = Unprocessing(client, times=3)
    states = store(flaky, clock).get_many(["u"], deadline=clock.now + 10)
    assert states["u"].purchased == {"A"}
    assert flaky.calls == 4 and len(clock.slept) == 3


def test_unprocessed_keys_at_the_deadline_are_a_timeout(client: Any) -> None:
    clock = Clock()
    flaky = Unprocessing(client, times=1000)
    with pytest.raises(StoreError) as raised:
        store(flaky, clock).get_many(["u"], deadline=clock.now + 0.5)
    assert raised.value.kind == "timeout"
    assert clock.now <= 1000.5


def test_a_missing_table_is_a_configuration_error(client: Any) -> None:
    s = UserStateStore(client, "no-such-table")
    with pytest.raises(StoreError) as raised:
        s.get_many(["u"], deadline=float("inf"))
    assert raised.value.kind == "misconfigured"


def test_a_claim_wins_once_per_version(client: Any) -> None:
    s = store(client)
    state = s.add_purchases("u", ["A"])
    claim = Claim("u", state.ver, 1_800_000_000.5, 1234, 1, ("X", "Y"))
    won = s.claim(claim)
    assert won is not None and won.items == ("X", "Y") and won.digest == list_digest(["X", "Y"])
    assert won.refreshed_at == 1_800_000_000.5 and won.watermark == 1234 and won.excluded == 1
    assert s.claim(claim) is None  # the same version again: someone (this one) wrote since


def test_a_purchase_merged_after_the_read_loses_the_claim(client: Any) -> None:
    s = store(client)
    read = s.get_many(["u"], deadline=float("inf"))["u"]
    assert read.ver == 0
    s.add_purchases("u", ["X"])  # another container processed the purchase meanwhile
    assert s.claim(Claim("u", read.ver, 1.0, 5, 0, ("X",))) is None
    now = s.get("u", consistent=True)
    assert now.items == () and now.purchased == {"X"}


def test_a_first_claim_needs_the_user_to_be_absent(client: Any) -> None:
    s = store(client)
    assert s.claim(Claim("new", 0, 1.0, None, 0, ("A",))) is not None
    assert s.claim(Claim("new", 0, 2.0, None, 0, ("B",))) is None


def test_seed_merges_the_trait_and_marks_the_time(client: Any) -> None:
    s = store(client)
    s.add_purchases("u", ["A"])
    seeded = s.seed("u", ["B", "C"])
    assert seeded.purchased == {"A", "B", "C"} and seeded.seeded_at == 1_800_000_000.0
    assert not seeded.seed_due(now=1_800_000_010.0, reseed_interval_s=0)
    assert seeded.seed_due(now=1_800_003_600.0, reseed_interval_s=3600)
    empty = s.seed("v", [])
    assert empty.seeded_at == 1_800_000_000.0 and empty.purchased == frozenset()


def test_the_cap_keeps_the_item_whole_and_marks_the_user(client: Any) -> None:
    s = store(client)
    s.add_purchases("u", [f"i{n}" for n in range(MAX_PURCHASES - 1)])
    full = s.add_purchases("u", ["last"])
    assert len(full.purchased) == MAX_PURCHASES and not full.capped
    assert s.add_purchases("u", ["i3"]).capped is False  # already stored: a no-op
    over = s.add_purchases("u", ["one-too-many"])
    assert over.capped and "one-too-many" not in over.purchased
    assert len(over.purchased) == MAX_PURCHASES
    assert s.seed("w", [f"s{n}" for n in range(MAX_PURCHASES + 1)]).capped


def test_the_largest_item_fits_dynamodbs_limit() -> None:
    longest = "x" * MAX_ITEM_ID_BYTES
    item = {
        "user_id": {"S": "u" * 256},
        "purchased": {"SS": [f"{n:05d}{longest[5:]}" for n in range(MAX_PURCHASES)]},
        "capped": {"BOOL": True},
        "seeded_at": {"N": "1800000000.123"},
        "refreshed_at": {"N": "1800000000.123"},
        "watermark": {"N": "1800000000123"},
        "excluded": {"N": str(MAX_PURCHASES)},
        "digest": {"S": list_digest(["a"])},
        "items": {"L": [{"S": longest} for _ in range(MAX_LIST)]},
        "ver": {"N": "99999999999"},
        "expires_at": {"N": "1834560000"},
    }
    assert item_size(item) < MAX_ITEM_BYTES, item_size(item)


def test_a_release_undoes_only_the_claim_it_names(client: Any) -> None:
    s = store(client)
    won = s.claim(Claim("u", 0, 5.0, 1, 0, ("A",)))
    assert won is not None
    s.add_purchases("u", ["B"])  # a purchase since: the claim is still the last one
    again = s.claim(Claim("u", s.get("u", consistent=True).ver, 6.0, 2, 1, ("C",)))
    assert again is not None
    assert s.release("u", 5.0) is False  # another claim came since: not this one's to undo
    assert s.get("u", consistent=True).refreshed_at == 6.0
    s.add_purchases("u", ["D"])
    assert s.release("u", 6.0) is True
    released = s.get("u", consistent=True)
    assert released.refreshed_at is None and released.items == () and released.digest is None
    assert released.purchased == {"B", "D"}


def test_a_union_within_the_cap_is_stored_though_the_batch_overlaps(client: Any) -> None:
    s = store(client)
    s.add_purchases("u", [f"i{n}" for n in range(MAX_PURCHASES - 1)])
    # One stored item and one new: the condition counts the stored set, the union fits.
    after = s.add_purchases("u", ["i0", "new"])
    assert not after.capped and "new" in after.purchased
    assert len(after.purchased) == MAX_PURCHASES


def test_an_id_too_long_in_bytes_is_not_stored_and_marks_the_user_capped(client: Any) -> None:
    s = store(client)
    wide = "\U0001f600" * 100  # 100 characters, 400 UTF-8 bytes
    state = s.add_purchases("u", [wide, "ok"])
    assert state.capped and state.purchased == {"ok"}
    seeded = s.seed("v", [wide])
    assert seeded.capped and seeded.seeded_at is not None and seeded.purchased == frozenset()


def test_the_stored_list_keeps_its_first_items_within_its_byte_bound(client: Any) -> None:
    wide = "\U0001f600" * 256  # Personalize's longest id, 1 KB in UTF-8
    won = store(client).claim(Claim("u", 0, 1.0, None, 0, tuple([wide] * MAX_LIST)))
    assert won is not None
    assert 0 < len(won.items) < MAX_LIST
    assert sum(len(i.encode()) + 1 for i in won.items) <= MAX_LIST_BYTES
