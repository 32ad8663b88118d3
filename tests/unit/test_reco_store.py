"""The API's purchases from the user-state store (USER_STATE_TABLE), with a fake store: the
stored set is excluded, no Profile API call is made (but for a capped user), and a store
failure serves the list unfiltered as a Profile API failure does."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from conftest import FIXTURES
from test_reco_exclusion import FakeProfiles
from test_reco_handler import FakePersonalize

from common.profiles import ProfileError
from common.userstate import StoreError, UserState
from devkit.aws import fake_aws_env
from devkit.context import LambdaContext
from reco_api.exclusion import PurchaseReader
from reco_api.handler import handle_with
from reco_api.runtime import Runtime
from reco_api.store import StoredPurchases

CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
RANKING = "arn:aws:personalize:us-east-1:123456789012:campaign/shop-ranking"
PROFILE = {"SEGMENT_SPACE_ID": "spa_1", "SEGMENT_PROFILE_TOKEN_PARAMETER": "/t"}
ENV = {
    "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
    "PERSONALIZE_RANKING_CAMPAIGN_ARN": RANKING,
    "USER_STATE_TABLE": "shop-user-state",
    **PROFILE,
}
TRAIT = "purchased_products"

Context = partial(LambdaContext, aws_request_id="lambda-req-store")


class FakeStore:
    """UserStateStore.get: the states given, an empty one for anyone else, or an error."""

    def __init__(
        self,
        states: dict[str, UserState] | None = None,
        error: Exception | None = None,
        release: threading.Event | None = None,
    ) -> None:
        self.states = states or {}
        self.error = error
        self.release = release
        self.calls: list[tuple[str, bool]] = []

    def get(self, user_id: str, *, consistent: bool = False) -> UserState:
        self.calls.append((user_id, consistent))
        if self.release is not None:
            self.release.wait(5)
        if self.error is not None:
            raise self.error
        return self.states.get(user_id, UserState(user_id))


def stored(user: str, *items: str, capped: bool = False) -> UserState:
    return UserState(user, purchased=frozenset(items), capped=capped, ver=1)


def store_reader(
    store: FakeStore,
    pool: ThreadPoolExecutor,
    profiles: FakeProfiles | None = None,
    budget: float = 1.0,
) -> tuple[StoredPurchases, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    profile = (
        PurchaseReader(profiles, TRAIT, budget, lambda: pool, on_config_problem=lambda s, d: None)
        if profiles is not None
        else None
    )
    reader = StoredPurchases(
        store,
        budget,
        lambda: pool,
        profile=profile,
        on_config_problem=lambda setting, detail: problems.append((setting, detail)),
    )
    return reader, problems


def fixture(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / "apigw" / name).read_text(encoding="utf-8"))
    return value


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


# -- the reader ------------------------------------------------------------------------------


def test_the_stored_purchases_are_read_eventually_consistent(pool: ThreadPoolExecutor) -> None:
    store = FakeStore({"u": stored("u", "A", "B")})
    profiles = FakeProfiles({TRAIT: ["Z"]})
    reader, _ = store_reader(store, pool, profiles)
    purchases = reader.start("u").wait()
    assert purchases.ids == {"A", "B"}
    assert store.calls == [("u", False)]
    assert profiles.calls == []  # the Profile API is not read for a user below the cap


def test_an_unknown_user_has_no_purchases(pool: ThreadPoolExecutor) -> None:
    purchases = store_reader(FakeStore(), pool)[0].start("new").wait()
    assert (purchases.ids, purchases.reason) == (frozenset(), None)


def test_a_capped_user_also_reads_the_profile_api_when_configured(
    pool: ThreadPoolExecutor,
) -> None:
    store = FakeStore({"u": stored("u", "A", "B", capped=True)})
    profiles = FakeProfiles({TRAIT: ["B", "C"]})
    purchases = store_reader(store, pool, profiles)[0].start("u").wait()
    assert purchases.ids == {"A", "B", "C"}
    assert [call[0] for call in profiles.calls] == ["u"]


def test_a_capped_user_gets_the_stored_set_without_the_profile_api(
    pool: ThreadPoolExecutor,
) -> None:
    store = FakeStore({"u": stored("u", "A", capped=True)})
    assert store_reader(store, pool)[0].start("u").wait().ids == {"A"}
    # ... and when the Profile API read fails: what is stored is real, so it is excluded.
    failing = FakeProfiles(ProfileError("unavailable", "HTTP 503"))
    purchases = store_reader(store, pool, failing)[0].start("u").wait()
    assert (purchases.ids, purchases.reason) == ({"A"}, None)
    assert len(failing.calls) == 1


@pytest.mark.parametrize("kind", ["unavailable", "timeout"])
def test_a_store_failure_is_unavailable_not_paused(pool: ThreadPoolExecutor, kind: str) -> None:
    store = FakeStore(error=StoreError(kind, "DynamoDB: ThrottlingException"))
    reader, problems = store_reader(store, pool)
    for _ in range(2):
        purchases = reader.start("u").wait()
        assert (purchases.ids, purchases.reason) == (None, f"store_{kind}")
    assert len(store.calls) == 2 and problems == []


def test_a_missing_table_is_named_once_and_pauses_the_reads(pool: ThreadPoolExecutor) -> None:
    store = FakeStore(error=StoreError("misconfigured", "DynamoDB: ResourceNotFoundException"))
    reader, problems = store_reader(store, pool)
    assert reader.start("u").wait().reason == "store_misconfigured"
    assert reader.start("u").wait().reason == "store_misconfigured"
    assert len(store.calls) == 1  # the second request did not ask the store
    assert problems == [("USER_STATE_TABLE", "DynamoDB: ResourceNotFoundException")]


def test_a_bug_in_the_read_is_contained(pool: ThreadPoolExecutor) -> None:
    purchases = store_reader(FakeStore(error=KeyError("user_id")), pool)[0].start("u").wait()
    assert (purchases.ids, purchases.reason) == (None, "error:KeyError")


def test_a_slow_store_gives_up_at_the_budget(pool: ThreadPoolExecutor) -> None:
    gate = threading.Event()
    reader, _ = store_reader(FakeStore(release=gate), pool, budget=0.05)
    try:
        assert reader.start("u").wait().reason == "timeout"
    finally:
        gate.set()


# -- through the handler ---------------------------------------------------------------------


def runtime(
    store: FakeStore, profiles: FakeProfiles, pool: ThreadPoolExecutor, fake: Any
) -> Runtime:
    reader, _ = store_reader(store, pool, profiles)
    return Runtime(ENV, personalize=lambda: fake, purchases=reader)


def test_recommendations_exclude_the_stored_purchases_and_read_no_profile(
    pool: ThreadPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakePersonalize()
    profiles = FakeProfiles({TRAIT: ["i1"]})
    rt = runtime(FakeStore({"user-0042": stored("user-0042", "i0", "i2")}), profiles, pool, fake)
    response = handle_with(rt, fixture("get_user.json"), Context())
    items = [item["itemId"] for item in json.loads(response["body"])["items"]]
    assert items == ["i1", "i3", "i4", "i5", "i6"]  # i1 is only in the Profile API: not read
    pool.shutdown(wait=True)
    assert profiles.calls == []
    out = lines(capsys)
    log = next(line for line in out if line.get("message") == "request")
    assert (log["exclusion"], log["purchased"], log["excluded"]) == ("applied", 2, 2)


def test_a_store_failure_serves_unfiltered_as_a_profile_failure_does(
    pool: ThreadPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    store = FakeStore(error=StoreError("unavailable", "DynamoDB: InternalServerError"))
    profiles = FakeProfiles({TRAIT: ["i0"]})
    response = handle_with(
        runtime(store, profiles, pool, FakePersonalize()), fixture("get_user.json"), Context()
    )
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["items"][0]["itemId"] == "i0"
    out = lines(capsys)
    emf = next(line for line in out if "_aws" in line)
    assert emf["ExclusionUnavailable"] == 1
    assert emf["exclusion_reason"] == "store_unavailable"
    log = next(line for line in out if line.get("message") == "request")
    assert (log["level"], log["exclusion"]) == ("WARNING", "unavailable")
    assert profiles.calls == []  # no fallback to the Profile API for a failed store


def test_rankings_exclude_the_stored_purchases(pool: ThreadPoolExecutor) -> None:
    event = fixture("post_rankings.json")
    event["body"] = json.dumps(
        {"userId": "u", "itemIds": ["a", "b", "c"], "excludePurchased": True}
    )

    class Ranker:
        def get_personalized_ranking(self, **params: Any) -> Any:
            items = [{"itemId": i, "score": 0.1} for i in params["inputList"]]
            return {"personalizedRanking": items, "recommendationId": "RID-1"}

    profiles = FakeProfiles({TRAIT: ["a"]})
    rt = runtime(FakeStore({"u": stored("u", "b")}), profiles, pool, Ranker())
    response = handle_with(rt, event, Context())
    assert [i["itemId"] for i in json.loads(response["body"])["items"]] == ["a", "c"]
    assert profiles.calls == []


# -- which reader the settings choose ----------------------------------------------------------


def test_the_settings_choose_the_store_and_keep_the_profile_api_for_capped_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in fake_aws_env().items():
        monkeypatch.setenv(name, value)
    with_store = Runtime(ENV).purchases()
    assert isinstance(with_store, StoredPurchases)
    assert isinstance(with_store._profile, PurchaseReader)
    only_store = Runtime({k: v for k, v in ENV.items() if k not in PROFILE}).purchases()
    assert isinstance(only_store, StoredPurchases) and only_store._profile is None
    without = Runtime({k: v for k, v in ENV.items() if k != "USER_STATE_TABLE"}).purchases()
    assert isinstance(without, PurchaseReader)
