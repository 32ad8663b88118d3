"""common.http and common.aws against the emulators over loopback: retries and their limits."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from common import aws
from common.http import HttpPolicy, session
from common.personalize import PersonalizeError, get_recommendations
from devkit.fixtures import started_segment, use_fake_aws
from emulators.controls import Controls
from emulators.personalize import PersonalizeEmulator
from emulators.segment import SegmentEmulator


@pytest.fixture
def segment() -> Iterator[SegmentEmulator]:
    with started_segment() as emu:
        emu.set_traits("u1", {"plan": "plus"})
        yield emu


def profile_url(segment: SegmentEmulator) -> str:
    return (
        f"{segment.url}/v1/spaces/{segment.space_id}/collections/users/profiles/user_id:u1/traits"
    )


def seed_for(sequence: list[str | None], rate: dict[str, float], operation: str) -> int:
    for seed in range(1000):
        controls = Controls(seed)
        controls.set(fault_rate=rate)
        if [controls.decide(operation, ()).fault for _ in sequence] == sequence:
            return seed
    raise AssertionError("no seed gives that sequence")


def test_retry_after_within_the_cap_is_waited_then_retried(segment: SegmentEmulator) -> None:
    rate = {"429": 0.5}
    segment.controls.set(
        fault_rate=rate, retry_after_s=1, seed=seed_for(["429", None], rate, "profile")
    )
    http = session(HttpPolicy(retries=1, backoff_factor=0.0, max_retry_after=1.0))
    started = time.monotonic()
    response = http.get(profile_url(segment), auth=(segment.profile_token, ""), timeout=(1, 2))
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert [r.status for r in segment.request_log()] == [429, 200]
    assert elapsed >= 1.0, elapsed  # the server's time, not earlier


def test_retry_after_longer_than_the_cap_is_not_retried(segment: SegmentEmulator) -> None:
    """Retrying after the cap would come before the server's time and only be refused again:
    the caller gets the 429 at once and its deadline logic decides."""
    rate = {"429": 0.5}
    segment.controls.set(
        fault_rate=rate, retry_after_s=5, seed=seed_for(["429", None], rate, "profile")
    )
    http = session(HttpPolicy(retries=2, backoff_factor=0.0, max_retry_after=0.3))
    started = time.monotonic()
    response = http.get(profile_url(segment), auth=(segment.profile_token, ""), timeout=(1, 2))
    elapsed = time.monotonic() - started
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert [r.status for r in segment.request_log()] == [429]
    assert elapsed < 0.3, elapsed  # not even the cap was slept


def test_retries_stop_after_the_policy(segment: SegmentEmulator) -> None:
    segment.controls.set(fault_rate={"503": 1.0})
    http = session(HttpPolicy(retries=2, backoff_factor=0.0))
    response = http.get(profile_url(segment), auth=(segment.profile_token, ""), timeout=(1, 2))
    assert response.status_code == 503  # the last answer, not an exception
    assert len(segment.request_log()) == 3


@pytest.fixture
def personalize(monkeypatch: pytest.MonkeyPatch) -> Iterator[PersonalizeEmulator]:
    with PersonalizeEmulator(interactions=[("u1", "i1", "Product Viewed", 1)], seed=0) as emu:
        use_fake_aws(monkeypatch, endpoints={"personalize-runtime": emu.url})
        yield emu


@pytest.mark.parametrize(("max_attempts", "calls"), [(0, 1), (1, 2), (2, 3)])
def test_client_policy_max_attempts_counts_retries(
    personalize: PersonalizeEmulator, max_attempts: int, calls: int
) -> None:
    """botocore's ``max_attempts`` is the number of retries after the first call."""
    personalize.controls.set(fault_rate={"503": 1.0})
    policy = aws.ClientPolicy(max_attempts=max_attempts)
    client = aws.Clients().personalize_runtime(policy)
    with pytest.raises(PersonalizeError) as info:
        get_recommendations(client, personalize.campaign_arn, user_id="u1", num_results=5)
    assert info.value.kind == "unavailable"
    assert personalize.counters["GetRecommendations"] == calls


def test_clients_are_cached_per_policy(personalize: PersonalizeEmulator) -> None:
    fast = aws.ClientPolicy(read_timeout=1.0)
    clients = aws.Clients()
    assert clients.personalize_runtime(fast) is clients.personalize_runtime(fast)
    assert clients.personalize_runtime(fast) is not clients.personalize_runtime(aws.ClientPolicy())
