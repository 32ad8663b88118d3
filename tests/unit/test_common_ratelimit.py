"""common.ratelimit and the Profile API client's budget: a fake clock, no sleeping, no I/O.

A bucket of one token at rate r lets requests leave at most one every 1/r seconds, in the
order the turns were taken, never past the caller's deadline; the client takes a turn for
every request it sends (a retry after 429 too) and waits out Retry-After only within the
deadline.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.config import ConfigError
from common.profiles import ProfileClient, ProfileError
from common.ratelimit import TokenBucket
from common.settings import env_profile_api
from emulators.ratelimit import peak_in_window


@dataclass
class FakeTime:
    """A clock that only moves when something sleeps: waits are exact and instant."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clock(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


def bucket(rate: float, fake: FakeTime, capacity: float = 1.0) -> TokenBucket:
    return TokenBucket(rate, capacity, clock=fake.clock, sleep=fake.sleep)


def test_requests_are_spaced_one_interval_apart() -> None:
    fake = FakeTime()
    limiter = bucket(4.0, fake)
    starts = []
    for _ in range(9):
        assert limiter.acquire(deadline=fake.now + 60) is not None
        starts.append(fake.now)
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(starts)]
    assert gaps == [0.25] * 8
    # Never more than the rate in any sliding second.
    assert peak_in_window(starts) == 4


def test_idle_time_does_not_bank_a_burst() -> None:
    fake = FakeTime()
    limiter = bucket(2.0, fake)
    limiter.acquire(fake.now + 1)
    fake.now += 100.0  # a long idle period
    first = limiter.acquire(fake.now + 1)
    second = limiter.acquire(fake.now + 1)
    assert (first, second) == (0.0, 0.5)


def test_a_turn_past_the_deadline_is_refused_and_takes_nothing() -> None:
    fake = FakeTime()
    limiter = bucket(1.0, fake)
    assert limiter.acquire(fake.now + 10) == 0.0
    # The next turn is 1 s away: a deadline sooner refuses without reserving it...
    assert limiter.acquire(fake.now + 0.5) is None
    assert fake.sleeps == []
    # ...so the turn is still there for a caller that can wait.
    assert limiter.acquire(fake.now + 5) == pytest.approx(1.0)


def test_capacity_allows_that_many_at_once() -> None:
    fake = FakeTime()
    limiter = bucket(10.0, fake, capacity=3)
    waits = [limiter.acquire(fake.now + 10) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3] == pytest.approx(0.1)


def test_threads_share_one_bucket_and_leave_one_interval_apart() -> None:
    fake = FakeTime()
    limiter = bucket(5.0, fake)
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        assert limiter.acquire(fake.clock() + 100) is not None
        with lock:
            taken.append(fake.clock())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    # Eight threads at once, one bucket: every token taken 0.2 s or more after the last.
    assert len(taken) == 8
    ordered = sorted(taken)
    assert all(b - a >= 0.2 - 1e-9 for a, b in itertools.pairwise(ordered))


def test_a_late_waker_cannot_send_together_with_the_next() -> None:
    """Tokens are taken on waking, not reserved: a thread that wakes late (a busy machine)
    leaves no burst behind it."""
    fake = FakeTime()
    limiter = bucket(10.0, fake)
    assert limiter.acquire(fake.now + 10) == 0.0
    fake.now += 0.35  # the next caller comes late
    assert limiter.acquire(fake.now + 10) == 0.0
    # ...and the one after it still waits a full interval from that late send.
    assert limiter.acquire(fake.now + 10) == pytest.approx(0.1)


@pytest.mark.parametrize("cost", [1.5, 2.0, float("inf"), -1.0, float("nan")])
def test_a_cost_the_bucket_can_never_hold_is_refused(cost: float) -> None:
    """A cost above the capacity never accrues: waiting for it would sleep until the
    deadline (or forever without one) and take nothing."""
    fake = FakeTime()
    with pytest.raises(ValueError, match="cost"):
        bucket(1.0, fake).acquire(deadline=fake.now + 10, cost=cost)
    assert fake.sleeps == []


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
def test_rate_must_be_positive_and_finite(rate: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate)


# -- SEGMENT_PROFILE_API_RPS ----------------------------------------------------------------

PROFILE_ENV = {"SEGMENT_SPACE_ID": "spa_1", "SEGMENT_PROFILE_TOKEN_PARAMETER": "/t"}


@pytest.mark.parametrize(("raw", "rate"), [(None, None), ("", None), ("2.5", 2.5), ("100", 100)])
def test_rps_setting(raw: str | None, rate: float | None) -> None:
    env = dict(PROFILE_ENV)
    if raw is not None:
        env["SEGMENT_PROFILE_API_RPS"] = raw
    settings = env_profile_api(env)
    assert settings is not None and settings.requests_per_second == rate


@pytest.mark.parametrize("raw", ["0", "-1", "abc", "nan", "inf", "1e9"])
def test_rps_setting_rejects_nonsense(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        env_profile_api({**PROFILE_ENV, "SEGMENT_PROFILE_API_RPS": raw})
    assert caught.value.name == "SEGMENT_PROFILE_API_RPS"
    assert caught.value.reason == "must be a number of requests per second, 0.001..100000"


# -- the Profile API client under the budget ------------------------------------------------


@dataclass
class FakeResponse:
    status_code: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return self.payload


class FakeSession:
    def __init__(self, fake: FakeTime, answers: list[FakeResponse]) -> None:
        self.fake = fake
        self.answers = answers
        self.sent: list[float] = []

    def get(self, url: str, **kwargs: Any) -> FakeResponse:
        self.sent.append(self.fake.now)
        return self.answers.pop(0)


def profile_client(fake: FakeTime, answers: list[FakeResponse], rate: float | None) -> Any:
    session = FakeSession(fake, answers)
    client = ProfileClient(
        session=session,  # type: ignore[arg-type]
        base_url="http://127.0.0.1:9/v1",
        space_id="spa_1",
        token=lambda: "t",
        limiter=bucket(rate, fake) if rate else None,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    return client, session


OK = FakeResponse(200, {"traits": {"purchased_products": ["a"]}})


def test_every_read_takes_a_turn() -> None:
    fake = FakeTime()
    client, session = profile_client(fake, [OK, OK, OK], rate=2.0)
    for _ in range(3):
        assert client.traits("u", ["purchased_products"], deadline=fake.now + 10) == {
            "purchased_products": ["a"]
        }
    assert [round(t - session.sent[0], 6) for t in session.sent] == [0.0, 0.5, 1.0]


def test_no_turn_before_the_deadline_sends_nothing() -> None:
    fake = FakeTime()
    client, session = profile_client(fake, [OK, OK], rate=1.0)
    client.traits("u", ["x"], deadline=fake.now + 10)
    with pytest.raises(ProfileError) as caught:
        client.traits("u", ["x"], deadline=fake.now + 0.5)
    assert caught.value.kind == "budget"
    assert len(session.sent) == 1


def test_429_waits_retry_after_then_takes_a_new_turn() -> None:
    fake = FakeTime()
    throttled = FakeResponse(429, {"error": {"code": "rate_limit_error"}}, {"Retry-After": "2"})
    client, session = profile_client(fake, [throttled, OK], rate=10.0)
    assert client.traits("u", ["purchased_products"], deadline=fake.now + 10)
    assert session.sent[1] - session.sent[0] == pytest.approx(2.0)
    assert 2.0 in fake.sleeps


def test_429_whose_retry_after_passes_the_deadline_fails_at_once() -> None:
    fake = FakeTime()
    throttled = FakeResponse(429, None, {"Retry-After": "5"})
    client, session = profile_client(fake, [throttled, OK], rate=None)
    with pytest.raises(ProfileError) as caught:
        client.traits("u", ["x"], deadline=fake.now + 3)
    assert caught.value.kind == "throttled"
    assert len(session.sent) == 1 and fake.sleeps == []


def test_persistent_429_stops_after_the_retry_limit() -> None:
    fake = FakeTime()
    throttled = FakeResponse(429, None, {})  # no header: 0.5 s, then 1 s backoff
    client, session = profile_client(fake, [throttled] * 5, rate=None)
    with pytest.raises(ProfileError) as caught:
        client.traits("u", ["x"], deadline=fake.now + 60)
    assert caught.value.kind == "throttled"
    assert len(session.sent) == 1 + client.max_throttle_retries
    assert fake.sleeps == [0.5, 1.0]


def test_an_empty_bucket_sends_nothing_before_its_first_share_has_accrued() -> None:
    fake = FakeTime()
    bucket = TokenBucket(10.0, capacity=10.0, clock=fake.clock, sleep=fake.sleep, full=False)
    # One second's share (10 tokens) is not there within half a second...
    assert bucket.acquire(deadline=fake.clock() + 0.5, cost=10.0) is None
    # ...and is after one second; a full bucket would give it at once.
    assert bucket.acquire(deadline=fake.clock() + 5.0, cost=10.0) == pytest.approx(1.0)
    full = TokenBucket(10.0, capacity=10.0, clock=fake.clock, sleep=fake.sleep)
    assert full.acquire(deadline=fake.clock(), cost=10.0) == 0.0
