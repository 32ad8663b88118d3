"""`bundle seed --users-file F`: pre-seed the user-state store for a migration. Each user's
purchased trait is read from the Segment Profile API at a bounded rate and merged into the
store (``UserStateStore.seed``: a set union that marks the user seeded), so update_traits
never has to read that user's profile on its hot path.

- Resumable: a user the store already marks seeded (``seeded_at``) is skipped unless
  ``--force``; a run stopped anywhere is simply run again.
- The rate: one token bucket shared by every worker thread (``common.ratelimit``), at most
  ``--rps`` requests in any second; never above the space's 100.
- A 429 is waited out: its ``Retry-After`` (else Segment's backoff) pauses every worker,
  not only the one that got it, before any request is sent again. A user still throttled
  after :data:`MAX_THROTTLE_WAITS` waits stops the run (run it again later).

The Profile API and the store sit behind small protocols, so the logic is tested with fakes
(tests/unit/test_bundle_seed_pacing.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from bundle_cli.target import Target, with_function_settings

MAX_ID = 256  # Segment's and Personalize's longest user id (as `backfill --users-file`)
SPACE_LIMIT_RPS = 100.0  # the Profile API's limit per space
DEFAULT_MAX_RPS = 90.0  # Terraform's default budget: 10% left for jitter and other clients
DEFAULT_WORKERS = 16  # requests in flight: 90/s at up to ~170 ms a read
WINDOW = 500  # users looked up in the store (BatchGetItem, 100 a call) before reading them
MAX_THROTTLE_WAITS = 5  # waits after a 429 for one user before the run stops
MAX_CONSECUTIVE_FAILURES = 50  # reads failing in a row: the Profile API is down, stop
PROGRESS_EVERY_S = 2.0
STORE_DEADLINE_S = 30.0  # one BatchGetItem window, unprocessed keys retried until then


class SeedError(Exception):
    """The one line the operator sees (exit 1)."""


class Profiles(Protocol):
    """The purchased trait of one user (``ProfileClient.traits``, or a test's fake)."""

    def traits(
        self,
        user_id: str,
        include: list[str],
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]: ...


class State(Protocol):
    seeded_at: float | None
    purchased: frozenset[str]
    capped: bool


class Store(Protocol):
    """``common.userstate.UserStateStore``'s calls the seed uses."""

    def get_many(
        self, user_ids: list[str], deadline: float, *, consistent: bool = True
    ) -> dict[str, Any]: ...
    def seed(self, user_id: str, items: list[str]) -> Any: ...


# -- the users file ---------------------------------------------------------------------------


def users_in(path: Path) -> Iterator[str]:
    """The user ids of a users file, the format `backfill start --users-file` takes: JSON
    lines of ``{"userId": "..."}`` (blank lines ignored). A bad line raises SeedError
    naming it."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise SeedError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except (UnicodeDecodeError, ValueError):
                raise SeedError(f"{path} line {number}: not JSON") from None
            user = line.get("userId") if isinstance(line, dict) else None
            if not isinstance(user, str) or not 1 <= len(user) <= MAX_ID:
                raise SeedError(
                    f'{path} line {number}: expected {{"userId": "<1 to 256 characters>"}}'
                )
            yield user


def count_users(path: Path) -> int:
    """Checks the whole file first (nothing is read from Segment if a line is bad)."""
    total = sum(1 for _ in users_in(path))
    if total == 0:
        raise SeedError(f"{path} holds no users")
    return total


# -- a shared pause after 429 ---------------------------------------------------------------


class ThrottleGate:
    """After a 429, no worker sends before ``Retry-After`` has passed: ``hold`` (the
    ProfileClient's sleep after a 429) moves the resume time; ``wait`` (before every
    request) sleeps until it."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self.throttles = 0
        self.waited_s = 0.0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self.throttles += 1
            self._resume_at = max(self._resume_at, self._clock() + max(0.0, seconds))
        self.wait()

    def paused(self) -> bool:
        with self._lock:
            return self._resume_at > self._clock()

    def wait(self) -> None:
        # Bounded: each pass sleeps until the latest resume time; a new 429 can only push
        # it forward by its own Retry-After, and MAX_THROTTLE_WAITS ends a throttled run.
        while True:
            with self._lock:
                left = self._resume_at - self._clock()
            if left <= 0:
                return
            self._sleep(left)
            with self._lock:
                self.waited_s += left


def rate_limited(
    rps: float,
    gate: ThrottleGate,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """A TokenBucket at ``rps`` whose turns wait out the gate. A turn taken while a 429's
    pause began is given up and taken again after it: else every worker that got its turn
    during the pause would send at the same instant when it ends, a burst into the limit."""
    from common.ratelimit import TokenBucket

    class GatedBucket(TokenBucket):
        def acquire(self, deadline: float, cost: float = 1.0) -> float | None:
            while True:  # each pass needs a new 429, and MAX_THROTTLE_WAITS bounds those
                gate.wait()
                waited = super().acquire(deadline, cost)
                if waited is None or not gate.paused():
                    return waited

    return GatedBucket(rps, clock=clock, sleep=sleep)


# -- the run --------------------------------------------------------------------------------


@dataclass
class Tally:
    users: int = 0  # in the file
    done: int = 0  # looked at so far (seeded, skipped or failed)
    seeded: int = 0
    skipped: int = 0  # already seeded
    with_purchases: int = 0
    items: int = 0  # purchased items read from the Profile API
    capped: int = 0
    malformed: int = 0
    reads: int = 0  # Profile API reads
    failed: Counter[str] = field(default_factory=Counter)
    stopped: str | None = None  # why the run ended early
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)

    def fail(self, kind: str) -> None:
        with self._lock:
            self.failed[kind] += 1
            self.done += 1

    def as_json(self, throttles: int, waited_s: float) -> dict[str, Any]:
        elapsed = max(1e-9, time.monotonic() - self.started)
        return {
            "users": self.users,
            "seeded": self.seeded,
            "skipped": self.skipped,
            "failed": sum(self.failed.values()),
            "failed_by_reason": dict(sorted(self.failed.items())),
            "with_purchases": self.with_purchases,
            "items": self.items,
            "capped": self.capped,
            "malformed": self.malformed,
            "profile_reads": self.reads,
            "reads_per_second": round(self.reads / elapsed, 1),
            "throttled": throttles,
            "throttle_wait_seconds": round(waited_s, 1),
            "seconds": round(elapsed, 1),
            "stopped": self.stopped,
        }


class Seeder:
    def __init__(
        self,
        profiles: Profiles,
        store: Store,
        trait: str,
        *,
        workers: int = DEFAULT_WORKERS,
        force: bool = False,
        gate: ThrottleGate | None = None,
        on_progress: Callable[[Tally], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.profiles = profiles
        self.store = store
        self.trait = trait
        self.workers = workers
        self.force = force
        self.gate = gate or ThrottleGate()
        self.on_progress = on_progress
        self.clock = clock
        self.tally = Tally()
        self._stop = threading.Event()
        self._consecutive = 0
        self._lock = threading.Lock()

    def run(self, users: Iterator[str], total: int) -> Tally:
        """Seeds ``users`` (``total`` of them, for the progress); a KeyboardInterrupt stops
        the workers before their next user and is raised again once they have."""
        self.tally.users = total
        window: list[str] = []
        with ThreadPoolExecutor(self.workers, thread_name_prefix="seed") as pool:
            try:
                for user in users:
                    window.append(user)
                    if len(window) >= WINDOW:
                        self._window(pool, window)
                        window = []
                    if self._stop.is_set():
                        break
                if window and not self._stop.is_set():
                    self._window(pool, window)
            except KeyboardInterrupt:
                self._halt("interrupted")
                raise
        return self.tally

    def _window(self, pool: ThreadPoolExecutor, users: list[str]) -> None:
        wanted = list(dict.fromkeys(users))
        self.tally.add(done=len(users) - len(wanted), skipped=len(users) - len(wanted))
        if not self.force:
            from common.userstate import StoreError

            try:
                states = self.store.get_many(
                    wanted, self.clock() + STORE_DEADLINE_S, consistent=False
                )
            except StoreError as exc:
                self._halt(f"the store failed: {exc.detail}")
                return
            already = [u for u in wanted if states[u].seeded_at is not None]
            self.tally.add(done=len(already), skipped=len(already))
            wanted = [u for u in wanted if states[u].seeded_at is None]
        for future in [pool.submit(self._one, user) for user in wanted]:
            future.result()
        if self.on_progress is not None:
            self.on_progress(self.tally)

    def _one(self, user: str) -> None:
        from common.profiles import ProfileError, item_ids
        from common.userstate import StoreError

        if self._stop.is_set():
            return
        try:
            traits = self.profiles.traits(user, [self.trait])
        except ProfileError as exc:
            self.tally.add(reads=1)
            self._failed(exc.kind)
            if exc.kind == "auth":
                self._halt(f"the Profile API refused the token ({exc.detail}): set-secrets")
            elif exc.kind == "throttled":
                self._halt("the Profile API kept answering 429 after waiting it out")
            return
        self.tally.add(reads=1)
        ids, well_formed = item_ids(traits.get(self.trait))
        try:
            state = self.store.seed(user, sorted(ids))
        except StoreError as exc:
            self._failed("store")
            self._halt(f"the store failed: {exc.detail}")
            return
        with self._lock:
            self._consecutive = 0
        self.tally.add(
            done=1,
            seeded=1,
            with_purchases=1 if ids else 0,
            items=len(ids),
            capped=1 if getattr(state, "capped", False) else 0,
            malformed=0 if well_formed else 1,
        )

    def _failed(self, kind: str) -> None:
        self.tally.fail(kind)
        with self._lock:
            self._consecutive += 1
            down = self._consecutive >= MAX_CONSECUTIVE_FAILURES
        if down:
            self._halt(f"{MAX_CONSECUTIVE_FAILURES} Profile API reads failed in a row")

    def _halt(self, why: str) -> None:
        with self._lock:
            if self.tally.stopped is None:
                self.tally.stopped = why
        self._stop.set()


# -- the command ----------------------------------------------------------------------------


def _out(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout, flush=True)


def choose_rps(asked: float | None, budget: float | None) -> float:
    """``--rps``, else the deployment's Profile API budget, at most 90; never above 100."""
    if asked is not None:
        if not (math.isfinite(asked) and 0 < asked <= SPACE_LIMIT_RPS):
            raise SeedError(
                f"--rps {asked:g}: must be above 0 and at most {SPACE_LIMIT_RPS:g} (the "
                "Profile API's limit per space; leave room for the deployment's own reads)"
            )
        return asked
    return min(DEFAULT_MAX_RPS, budget) if budget else DEFAULT_MAX_RPS


def profile_client(target: Target, token: str, rps: float, gate: ThrottleGate) -> Any:
    from common.http import HttpPolicy, session
    from common.profiles import ProfileClient

    assert target.profile_api_url is not None and target.space_id is not None
    # No status retries in the session: every request, a retry after 429 included, takes a
    # turn of the rate first (ProfileClient does the 429 retries, after the gate's wait).
    policy = HttpPolicy(
        connect_timeout=3.0,
        read_timeout=10.0,
        retries=2,
        status_retries=0,
        backoff_factor=0.5,
        pool_maxsize=DEFAULT_WORKERS,
    )
    return ProfileClient(
        session=session(policy),
        base_url=target.profile_api_url.rstrip("/"),
        space_id=target.space_id,
        token=lambda: token,
        timeout=policy.timeout,
        limiter=rate_limited(rps, gate),
        max_throttle_retries=MAX_THROTTLE_WAITS,
        sleep=gate.hold,
    )


def seed(target: Target, args: argparse.Namespace, seeder: Seeder | None = None) -> int:
    from bundle_cli.commands import _secret

    target = with_function_settings(target)
    if args.users_file is None:
        raise SeedError("--users-file is required")
    rps = choose_rps(args.rps, target.profile_api_rps)
    if not 1 <= args.workers <= 64:
        raise SeedError(f"--workers {args.workers}: must be 1 to 64")
    total = count_users(args.users_file)
    if seeder is None:
        if target.user_state_table is None:
            where = "the sandbox" if target.kind == "sandbox" else "the deployed update_traits"
            raise SeedError(f"{where} has no user-state store (USER_STATE_TABLE): nothing to seed")
        if not (target.profile_api_url and target.space_id and target.profile_token_parameter):
            raise SeedError("needs the Profile API (segment_space_id and its token)")
        token = _secret(target, target.profile_token_parameter)
        if token is None:
            raise SeedError(f"{target.profile_token_parameter} holds no token (set-secrets)")
        from common.userstate import UserStateStore

        gate = ThrottleGate()
        seeder = Seeder(
            profile_client(target, token, rps, gate),
            UserStateStore(
                target.client("dynamodb"), target.user_state_table, target.user_state_ttl_days
            ),
            target.purchased_trait,
            workers=args.workers,
            force=args.force,
            gate=gate,
        )
    table = target.user_state_table or "the store"
    _out(
        f"seeding {total} users of {args.users_file} into {table} from the Profile API "
        f"trait {target.purchased_trait} at most {rps:g} requests/s"
        + (" (--force: seeded users too)" if seeder.force else ""),
        sys.stderr,
    )
    last = [0.0]

    def progress(t: Tally) -> None:
        now = time.monotonic()
        if now - last[0] < PROGRESS_EVERY_S and t.done < t.users:
            return
        last[0] = now
        rate = t.reads / max(1e-9, now - t.started)
        _out(
            f"  {t.done}/{t.users} users: {t.seeded} seeded, {t.skipped} already seeded, "
            f"{sum(t.failed.values())} failed ({rate:.1f} reads/s)",
            sys.stderr,
        )

    seeder.on_progress = progress
    try:
        tally = seeder.run(users_in(args.users_file), total)
    except KeyboardInterrupt:
        _report(seeder.tally, seeder.gate, args.json)
        raise
    summary = _report(tally, seeder.gate, args.json)
    if tally.stopped is not None:
        raise SeedError(
            f"stopped: {tally.stopped}; run it again to go on (seeded users are skipped)"
        )
    if summary["failed"]:
        raise SeedError(f"{summary['failed']} user(s) not seeded; run it again to retry them")
    return 0


def _report(tally: Tally, gate: ThrottleGate, as_json: bool) -> dict[str, Any]:
    summary = tally.as_json(gate.throttles, gate.waited_s)
    if as_json:
        _out(json.dumps(summary, sort_keys=True))
    else:
        for line in summary_lines(summary):
            _out(line)
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    failed = summary["failed_by_reason"]
    lines = [
        f"  users           {summary['users']}",
        f"  seeded now      {summary['seeded']} ({summary['with_purchases']} with purchases, "
        f"{summary['items']} items; {summary['capped']} capped, {summary['malformed']} "
        "malformed traits)",
        f"  already seeded  {summary['skipped']} (skipped)",
        f"  failed          {summary['failed']}",
    ]
    lines += [f"    {reason:<14} {count}" for reason, count in failed.items()]
    lines.append(
        f"  Profile API     {summary['profile_reads']} reads in {summary['seconds']:g} s "
        f"({summary['reads_per_second']:g}/s), {summary['throttled']} answered 429 "
        f"(waited {summary['throttle_wait_seconds']:g} s)"
    )
    return lines
