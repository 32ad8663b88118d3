"""The Profile API read: bounded by its budget, never an error, paused on config problems."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from common.profiles import ProfileError
from common.secrets import SecretError
from reco_api.exclusion import PurchaseReader

TRAIT = "purchased_products"


class FakeProfiles:
    def __init__(self, answer: Any = None, release: threading.Event | None = None) -> None:
        self.answer = answer if answer is not None else {}
        self.release = release
        self.calls: list[tuple[str, list[str], tuple[float, float] | None]] = []

    def traits(
        self,
        user_id: str,
        include: Iterable[str],
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        self.calls.append((user_id, list(include), timeout))
        if self.release is not None:
            self.release.wait(5)
        if isinstance(self.answer, BaseException):
            raise self.answer
        return dict(self.answer)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reader(
    source: FakeProfiles,
    pool: ThreadPoolExecutor,
    budget: float = 1.0,
    clock: Any = time.monotonic,
) -> tuple[PurchaseReader, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    return (
        PurchaseReader(
            source,
            TRAIT,
            budget,
            lambda: pool,
            on_config_problem=lambda setting, detail: problems.append((setting, detail)),
            clock=clock,
            cooldown_s=60.0,
        ),
        problems,
    )


def test_reads_the_trait_and_normalises_ids(pool: ThreadPoolExecutor) -> None:
    source = FakeProfiles({TRAIT: ["sku-1", 42, 7.0]})
    purchases = reader(source, pool)[0].start("user+1/a").wait()
    assert purchases.ids == {"sku-1", "42", "7"}
    assert not purchases.malformed
    user, include, timeout = source.calls[0]
    assert (user, include) == ("user+1/a", [TRAIT])
    assert timeout is not None and timeout[1] <= 1.0  # the HTTP read never outlives the budget


def test_unknown_profile_is_no_purchases(pool: ThreadPoolExecutor) -> None:
    purchases = reader(FakeProfiles({}), pool)[0].start("new-user").wait()
    assert purchases.ids == frozenset()
    assert purchases.reason is None


def test_malformed_trait_is_flagged(pool: ThreadPoolExecutor) -> None:
    purchases = reader(FakeProfiles({TRAIT: "sku-1,sku-2"}), pool)[0].start("u").wait()
    assert purchases.ids == frozenset()
    assert purchases.malformed


def test_slow_profile_api_gives_up_at_the_budget(pool: ThreadPoolExecutor) -> None:
    release = threading.Event()
    source = FakeProfiles({TRAIT: ["a"]}, release=release)
    started = time.monotonic()
    purchases = reader(source, pool, budget=0.05)[0].start("u").wait()
    elapsed = time.monotonic() - started
    release.set()
    assert purchases.ids is None
    assert purchases.reason == "timeout"
    assert 0.04 <= elapsed < 0.5


def test_a_queued_read_past_its_deadline_never_runs() -> None:
    single = ThreadPoolExecutor(1)
    release = threading.Event()
    source = FakeProfiles({}, release=release)
    try:
        slow, _ = reader(source, single, budget=0.05)
        assert slow.start("first").wait().reason == "timeout"  # still holds the only worker
        assert slow.start("second").wait().reason == "timeout"
        release.set()
    finally:
        single.shutdown(wait=True)
    assert [call[0] for call in source.calls] == ["first"]


@pytest.mark.parametrize("kind", ["unavailable", "throttled", "bad_response"])
def test_transient_profile_errors_are_unavailable_not_paused(
    pool: ThreadPoolExecutor, kind: str
) -> None:
    source = FakeProfiles(ProfileError(kind, "HTTP 503"))
    purchases_reader, problems = reader(source, pool)
    assert purchases_reader.start("u").wait().reason == kind
    assert purchases_reader.start("u").wait().reason == kind
    assert len(source.calls) == 2
    assert problems == []


def test_rejected_token_pauses_reads(pool: ThreadPoolExecutor) -> None:
    # The token itself is forgotten by ProfileClient (tests/unit/test_common_profiles.py).
    clock = Clock()
    source = FakeProfiles(ProfileError("auth", "HTTP 401"))
    purchases_reader, problems = reader(source, pool, clock=clock)
    assert purchases_reader.start("u").wait().reason == "auth"
    assert problems == [("SEGMENT_PROFILE_TOKEN_PARAMETER", "Profile API HTTP 401")]
    clock.now += 30
    assert purchases_reader.start("u").wait().reason == "auth"
    assert len(source.calls) == 1  # paused: not asked again
    clock.now += 31
    source.answer = {TRAIT: ["a"]}
    assert purchases_reader.start("u").wait().ids == {"a"}
    assert len(problems) == 1


def test_missing_token_parameter_pauses(pool: ThreadPoolExecutor) -> None:
    source = FakeProfiles(SecretError("/t", True, "ParameterNotFound"))
    purchases_reader, problems = reader(source, pool, clock=Clock())
    assert purchases_reader.start("u").wait().reason == "token"
    assert purchases_reader.start("u").wait().reason == "token"
    assert len(source.calls) == 1
    assert problems == [("SEGMENT_PROFILE_TOKEN_PARAMETER", "ParameterNotFound")]


def test_transient_token_failure_is_retried_next_time(pool: ThreadPoolExecutor) -> None:
    source = FakeProfiles(SecretError("/t", False, "ThrottlingException"))
    purchases_reader, problems = reader(source, pool)
    assert purchases_reader.start("u").wait().reason == "token_unavailable"
    assert purchases_reader.start("u").wait().reason == "token_unavailable"
    assert len(source.calls) == 2
    assert problems == []


def test_a_bug_in_the_read_is_contained(pool: ThreadPoolExecutor) -> None:
    purchases = reader(FakeProfiles(ValueError("boom")), pool)[0].start("u").wait()
    assert (purchases.ids, purchases.reason) == (None, "error:ValueError")


def test_the_purchases_cache_forgets_expired_users() -> None:
    """Entries past their TTL are dropped as reads come in, not only once 10,000 users are
    cached: a container serving many users once each keeps only the last TTL's worth."""
    clock = Clock()
    inline = ThreadPoolExecutor(1)
    source = FakeProfiles({TRAIT: ["a"]})
    purchases = PurchaseReader(
        source,
        TRAIT,
        1.0,
        lambda: inline,
        on_config_problem=lambda setting, detail: None,
        clock=clock,
        cache_ttl_s=5.0,
    )
    try:
        for user in ("u1", "u2", "u3"):
            assert purchases.start(user).wait().ids == frozenset({"a"})
        assert purchases.cached_users() == 3
        clock.now += 4.0
        purchases.start("u1").wait()  # still fresh: served from the cache, not read again
        assert len(source.calls) == 3
        clock.now += 2.0  # u1..u3 are past their TTL now
        purchases.start("u4").wait()
        assert purchases.cached_users() == 1
        purchases.start("u2").wait()  # expired: read again
        assert len(source.calls) == 5
    finally:
        inline.shutdown()
