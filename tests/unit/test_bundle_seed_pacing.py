"""`bundle seed` with fakes: the users file, the rate, resumability, 429s waited out for every
worker, the stops (token refused, store failing, 429 that persists), the summary; and the
smoke command's store check."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from bundle_cli import commands, seed
from bundle_cli.main import build_parser
from bundle_cli.seed import (
    Seeder,
    SeedError,
    ThrottleGate,
    choose_rps,
    count_users,
    rate_limited,
    users_in,
)
from bundle_cli.target import Target

from common.profiles import ProfileClient, ProfileError
from common.userstate import StoreError, UserState

TRAIT = "purchased_products"


class Clock:
    """A fake clock whose sleep advances it (thread-safe)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        # At least a nanosecond: a real sleep always lets time pass, and the token bucket's
        # last tiny wait (a float rounding residue) must not leave the clock where it was.
        with self._lock:
            self.now += max(1e-9, seconds)


class FakeProfiles:
    def __init__(self, traits: dict[str, Any] | None = None, error: Exception | None = None):
        self.traits_of = traits or {}
        self.error = error
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def traits(self, user_id: str, include: list[str], **_: Any) -> dict[str, Any]:
        with self._lock:
            self.calls.append(user_id)
        if self.error is not None:
            raise self.error
        value = self.traits_of.get(user_id)
        return {} if value is None else {TRAIT: value}


class FakeStore:
    def __init__(self, fail_seed: bool = False) -> None:
        self.states: dict[str, UserState] = {}
        self.fail_seed = fail_seed
        self.gets = 0
        self._lock = threading.Lock()

    def get_many(
        self, user_ids: list[str], deadline: float, *, consistent: bool = True
    ) -> dict[str, UserState]:
        self.gets += 1
        return {u: self.states.get(u, UserState(u)) for u in user_ids}

    def seed(self, user_id: str, items: list[str]) -> UserState:
        if self.fail_seed:
            raise StoreError("unavailable", "DynamoDB: InternalServerError")
        with self._lock:
            old = self.states.get(user_id, UserState(user_id))
            new = UserState(
                user_id, purchased=old.purchased | set(items), seeded_at=1.0, ver=old.ver + 1
            )
            self.states[user_id] = new
            return new


def users_file(tmp_path: Path, users: list[str], name: str = "users.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(json.dumps({"userId": u}) + "\n" for u in users), encoding="utf-8")
    return path


def run(seeder: Seeder, users: list[str]) -> seed.Tally:
    return seeder.run(iter(users), len(users))


# -- the users file and the rate --------------------------------------------------------------


def test_the_users_file_is_backfills_format_and_a_bad_line_is_named(tmp_path: Path) -> None:
    path = users_file(tmp_path, ["a", "b"])
    path.write_text(path.read_text() + "\n", encoding="utf-8")  # a blank line is ignored
    assert list(users_in(path)) == ["a", "b"] and count_users(path) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"userId": "a"}\n{"user": "b"}\n', encoding="utf-8")
    with pytest.raises(SeedError, match=r"bad.jsonl line 2: expected \{\"userId\""):
        count_users(bad)
    bad.write_text("{oops\n", encoding="utf-8")
    with pytest.raises(SeedError, match="line 1: not JSON"):
        count_users(bad)
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(SeedError, match="holds no users"):
        count_users(tmp_path / "empty.jsonl")


def test_the_rate_defaults_to_the_budget_at_most_90_and_never_above_100() -> None:
    assert choose_rps(None, None) == 90
    assert choose_rps(None, 45.0) == 45
    assert choose_rps(None, 400.0) == 90
    assert choose_rps(100, None) == 100
    for wrong in (100.5, 0, -1, float("nan")):
        with pytest.raises(SeedError, match="at most 100"):
            choose_rps(wrong, None)


def test_reads_leave_at_most_rps_per_second() -> None:
    clock = Clock()
    limiter = rate_limited(10.0, ThrottleGate(clock, clock.sleep), clock, clock.sleep)
    sent = []
    for _ in range(21):
        limiter.acquire(float("inf"))
        sent.append(clock())
    assert sent[-1] - sent[0] == pytest.approx(2.0)  # 21 reads: 20 intervals of 0.1 s


# -- seeding ----------------------------------------------------------------------------------


def test_each_user_is_seeded_once_and_a_second_run_skips_them(tmp_path: Path) -> None:
    profiles = FakeProfiles({"a": ["1", 2, 3.0], "b": []})
    store = FakeStore()
    users = ["a", "b", "c", "a"]  # c has no profile (404: seeded with nothing); a twice
    tally = run(Seeder(profiles, store, TRAIT, workers=3), users)
    assert (tally.seeded, tally.skipped, tally.with_purchases, tally.items) == (3, 1, 1, 3)
    assert sorted(profiles.calls) == ["a", "b", "c"]
    assert store.states["a"].purchased == {"1", "2", "3"}
    assert all(store.states[u].seeded_at is not None for u in "abc")

    again = FakeProfiles({"a": ["9"]})
    tally = run(Seeder(again, store, TRAIT), users)
    assert (tally.seeded, tally.skipped, again.calls) == (0, 4, [])
    forced = run(Seeder(again, store, TRAIT, force=True, workers=1), ["a", "b"])
    assert forced.seeded == 2 and again.calls == ["a", "b"]
    assert store.states["a"].purchased == {"1", "2", "3", "9"}  # merged, nothing lost


def test_a_refused_token_stops_the_run_and_leaves_users_unseeded() -> None:
    store = FakeStore()
    profiles = FakeProfiles(error=ProfileError("auth", "HTTP 401"))
    tally = run(Seeder(profiles, store, TRAIT, workers=1), [f"u{n}" for n in range(1200)])
    assert tally.stopped is not None and "refused the token" in tally.stopped
    assert len(profiles.calls) == 1  # stopped at once, not 1200 rejected reads
    assert store.states == {}


def test_transient_failures_are_counted_and_a_down_profile_api_stops_the_run() -> None:
    profiles = FakeProfiles(error=ProfileError("unavailable", "HTTP 503"))
    tally = run(Seeder(profiles, FakeStore(), TRAIT, workers=1), [f"u{n}" for n in range(600)])
    assert tally.failed["unavailable"] == seed.MAX_CONSECUTIVE_FAILURES
    assert tally.stopped == f"{seed.MAX_CONSECUTIVE_FAILURES} Profile API reads failed in a row"


def test_a_failing_store_stops_the_run() -> None:
    tally = run(Seeder(FakeProfiles(), FakeStore(fail_seed=True), TRAIT, workers=1), ["a", "b"])
    assert tally.stopped is not None and "InternalServerError" in tally.stopped
    assert tally.seeded == 0


# -- 429 --------------------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, body: Any = None, retry_after: str | None = None) -> None:
        self.status_code = status
        self._body = body
        self.headers = {"Retry-After": retry_after} if retry_after else {}

    def json(self) -> Any:
        return self._body


class Session:
    """The Profile API: answers in order, recording the fake time of each request."""

    def __init__(self, clock: Clock, answers: list[Response]) -> None:
        self.clock = clock
        self.answers = answers
        self.sent: list[float] = []

    def get(self, url: str, **_: Any) -> Response:
        self.sent.append(self.clock())
        return self.answers.pop(0) if self.answers else Response(200, {"traits": {}})


def client(clock: Clock, session: Session, gate: ThrottleGate, rps: float = 50.0) -> Any:
    return ProfileClient(
        session=session,  # type: ignore[arg-type]
        base_url="http://profiles",
        space_id="spa",
        token=lambda: "t",
        limiter=rate_limited(rps, gate, clock, clock.sleep),
        max_throttle_retries=seed.MAX_THROTTLE_WAITS,
        clock=clock,
        sleep=gate.hold,
    )


def test_a_429_is_waited_out_for_its_retry_after_before_any_request() -> None:
    clock = Clock()
    gate = ThrottleGate(clock, clock.sleep)
    answers = [Response(429, retry_after="3"), Response(200, {"traits": {TRAIT: ["x"]}})]
    session = Session(clock, answers)
    store = FakeStore()
    tally = run(
        Seeder(client(clock, session, gate), store, TRAIT, workers=1, gate=gate), ["a", "b"]
    )
    assert tally.seeded == 2 and store.states["a"].purchased == {"x"}
    first, retry, second = session.sent
    assert retry - first >= 3.0  # not retried into: Retry-After passed first
    assert second - retry >= 1 / 50 - 1e-9  # and the rate still holds after it
    assert (gate.throttles, gate.waited_s) == (1, pytest.approx(3.0))


def test_the_pause_holds_every_worker() -> None:
    clock = Clock()
    gate = ThrottleGate(clock, clock.sleep)
    gate.hold(2.0)  # one worker got a 429 at 1000.0
    assert clock() == pytest.approx(1002.0)
    gate.hold(0.5)  # another at 1002.0 with a shorter Retry-After
    assert clock() == pytest.approx(1002.5)
    limiter = rate_limited(100.0, gate, clock, clock.sleep)
    with gate._lock:
        gate._resume_at = clock() + 4.0  # a third worker's 429, just now
    limiter.acquire(float("inf"))  # any worker's next turn waits for it
    assert clock() >= 1006.5


def test_a_turn_taken_during_a_pause_is_taken_again_after_it() -> None:
    """Workers that got their turn while a 429's pause began must not all send when it
    ends: each takes a new turn, so they leave 1/rps apart again."""
    clock = Clock()
    gate = ThrottleGate(clock, clock.sleep)
    paused = {"done": False}

    def sleep(seconds: float) -> None:
        if not paused["done"]:  # another worker's 429 arrives while this one waits a turn
            paused["done"] = True
            with gate._lock:
                gate._resume_at = clock() + 2.0
        clock.sleep(seconds)

    limiter = rate_limited(10.0, gate, clock, sleep)
    limiter.acquire(float("inf"))  # the bucket's one token: at 1000.0
    limiter.acquire(float("inf"))  # waits 0.1 s for a turn; the pause began meanwhile
    assert clock() == pytest.approx(1002.0)  # not at 1000.1: its turn was taken again
    limiter.acquire(float("inf"))  # and that new turn counts: the next one is 1/rps later
    assert clock() == pytest.approx(1002.1)


def test_a_429_that_persists_stops_the_run() -> None:
    clock = Clock()
    gate = ThrottleGate(clock, clock.sleep)
    session = Session(clock, [Response(429, retry_after="1") for _ in range(50)])
    seeder = Seeder(client(clock, session, gate), FakeStore(), TRAIT, workers=1, gate=gate)
    tally = run(seeder, ["a", "b", "c"])
    assert tally.stopped == "the Profile API kept answering 429 after waiting it out"
    assert len(session.sent) == seed.MAX_THROTTLE_WAITS + 1  # one user, then the stop
    assert gate.throttles == seed.MAX_THROTTLE_WAITS


# -- the command ------------------------------------------------------------------------------


def sandbox_target(**extra: Any) -> Target:
    values: dict[str, Any] = {
        "kind": "sandbox",
        "region": "us-east-1",
        "stream_name": "s",
        "dead_letter_queue_url": "http://127.0.0.1:1/q",
        "on_failure_queue_url": "http://127.0.0.1:1/f",
        "api_url": None,
        "api_key": None,
        "write_key_parameter": None,
        "profile_token_parameter": "/p",
        "profile_api_url": "http://127.0.0.1:2/v1",
        "space_id": "spa",
        "user_state_table": "sandbox-user-state",
        "profile_api_rps": 90.0,
        **extra,
    }
    return Target(**values)


def args(path: Path, *more: str) -> argparse.Namespace:
    return build_parser().parse_args(["seed", "--users-file", str(path), *more])


def test_the_command_prints_progress_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = users_file(tmp_path, ["a", "b"])
    seeder = Seeder(FakeProfiles({"a": ["1"]}), FakeStore(), TRAIT, workers=1)
    assert seed.seed(sandbox_target(), args(path), seeder) == 0
    out, err = capsys.readouterr()
    assert "seeding 2 users of" in err and "at most 90 requests/s" in err
    assert "  2/2 users: 2 seeded, 0 already seeded, 0 failed" in err
    assert "  seeded now      2 (1 with purchases, 1 items;" in out
    assert "  Profile API     2 reads in " in out

    seeder = Seeder(FakeProfiles(), seeder.store, TRAIT, workers=1)
    assert seed.seed(sandbox_target(), args(path, "--json"), seeder) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["seeded"], summary["skipped"], summary["stopped"]) == (0, 2, None)


def test_a_stopped_run_fails_the_command_and_says_to_run_it_again(tmp_path: Path) -> None:
    seeder = Seeder(FakeProfiles(error=ProfileError("auth", "HTTP 403")), FakeStore(), TRAIT)
    with pytest.raises(SeedError, match="run it again to go on"):
        seed.seed(sandbox_target(), args(users_file(tmp_path, ["a"])), seeder)


def test_a_target_without_the_store_or_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = users_file(tmp_path, ["a"])
    with pytest.raises(SeedError, match="no user-state store"):
        seed.seed(sandbox_target(user_state_table=None), args(path))
    with pytest.raises(SeedError, match="at most 100"):
        seed.seed(sandbox_target(), args(path, "--rps", "150"))


# -- smoke's store check ----------------------------------------------------------------------


class FakeDynamo:
    def __init__(self, items: list[dict[str, Any] | None]) -> None:
        self.items = items

    def get_item(self, **params: Any) -> dict[str, Any]:
        assert params["ConsistentRead"] is True
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        return {"Item": item} if item is not None else {}


class StoreTarget:
    def __init__(self, table: str | None, dynamo: FakeDynamo) -> None:
        self.user_state_table = table
        self.dynamo = dynamo

    def client(self, service: str) -> Any:
        assert service == "dynamodb"
        return self.dynamo


def item(**attributes: dict[str, Any]) -> dict[str, Any]:
    return {"user_id": {"S": "u"}, "ver": {"N": "2"}, **attributes}


def test_smoke_waits_for_the_refresh_record_in_the_store() -> None:
    dynamo = FakeDynamo([None, item(), item(refreshed_at={"N": "1800000000.5"})])
    found, line = commands._store_check(StoreTarget("t", dynamo), "u", float("inf"), 0.0)  # type: ignore[arg-type]
    assert found == {"table": "t", "refreshed_at": 1800000000.5, "seeded": False}
    assert line == "store ok: u's refresh is recorded in t"


def test_smoke_fails_without_the_refresh_and_is_tolerant_only_without_a_table() -> None:
    found, line = commands._store_check(StoreTarget("t", FakeDynamo([item()])), "u", 0.0, 0.0)  # type: ignore[arg-type]
    assert found is None
    assert line.startswith("smoke failed: the trait was written but t holds an item without")
    found, line = commands._store_check(StoreTarget("t", FakeDynamo([None])), "u", 0.0, 0.0)  # type: ignore[arg-type]
    assert "holds no item for u" in line
    found, line = commands._store_check(StoreTarget(None, FakeDynamo([None])), "u", 0.0, 0.0)  # type: ignore[arg-type]
    assert (found, line) == (None, "store not checked (the deployment reports no USER_STATE_TABLE)")
