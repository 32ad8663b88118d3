"""A user's refresh with the user-state store (``USER_STATE_TABLE``), on a worker thread.

For a user of a Kinesis batch (:func:`user_refresh`):

1. PutEvents for the user's events, at once, always.
2. The user's state: this batch's purchases merged into the store first (set union: the
   write returns the state after it), else the batch's one BatchGetItem (:class:`StoreView`).
3. The Profile API, off the hot path: a user never seeded (or due for a re-seed) gets one
   read, started here and merged later (:class:`Outstanding`); the refresh does not wait for it
   unless ``SEED_WAIT`` is set, or the user's purchases passed the store's cap (then every
   refresh reads the trait, as before the store).
4. Coalescing: a user refreshed less than ``MIN_REFRESH_INTERVAL_S`` ago who bought
   nothing in this batch is not refreshed now; a :class:`Deferred` asks the refresh queue for
   a trailing refresh when the window ends.
5. Otherwise GetRecommendations, the stored and this batch's purchases removed, then a
   *claim*: a write conditioned on the state's version being unchanged since it was read.
   Lost (a purchase, seed or other refresh came in between), the state is read again: if
   the winner's refresh started after this unit's events reached Personalize and knew every
   stored purchase, there is nothing to add (superseded); else the refresh is computed again.

A refresh-queue message (:func:`queued_refresh`) runs steps 3 and 5, unless a refresh that
started after the message's ``after`` already happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from common.personalize import Recommendations
from common.profiles import item_ids
from common.recommend import Known, Purchases, recommend
from common.userstate import Claim, StoreError, UserState, UserStateStore
from traits_sync import identify
from traits_sync.budget import Budget, OutOfTime
from traits_sync.plan import UserWork
from traits_sync.ports import Ports
from traits_sync.refreshqueue import Deferred
from traits_sync.settings import Settings, StoreSettings
from traits_sync.stats import Stats
from traits_sync.work import StepFailed, fetch_recommendations, put_events, trait_identify

STEP = "UserState"
# How long a seed beside a refresh may wait for a turn of the container's Profile API share
# (and be waited for at the end of the batch): seeds take the turns that come while the
# batch runs, and a user who gets none is read at their next refresh. Without this bound a
# batch of new users would hold the invocation until its deadline, one turn at a time.
SEED_PATIENCE_S = 0.5


def store_step(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except StoreError as exc:
        raise StepFailed(STEP, exc.kind) from exc


class StoreView:
    """The batch's one read of the store (BatchGetItem, consistent), started before the
    units and waited for by each after its PutEvents."""

    def __init__(self, future: Future[dict[str, UserState]]) -> None:
        self._future = future

    def state(self, user_id: str, budget: Budget) -> UserState:
        try:
            states = self._future.result(timeout=budget.remaining())
        except FutureTimeout:
            raise OutOfTime() from None
        except StoreError as exc:
            raise StepFailed(STEP, exc.kind) from exc
        return states.get(user_id) or UserState(user_id)


def read_states(ports: Ports, user_ids: Iterable[str], budget: Budget, stats: Stats) -> StoreView:
    store = _store(ports)
    users = list(user_ids)

    def read() -> dict[str, UserState]:
        if not users:
            return {}
        stats.add("StoreReads")
        return store.get_many(users, budget.deadline)

    assert ports.store_reads is not None, "the store needs its read pool"
    return StoreView(ports.store_reads.submit(read))


@dataclass
class Seed:
    user_id: str
    future: Future[dict[str, Any]]
    written: tuple[str, ...]  # the list this batch wrote (or the stored one): refresh again
    # if the seed finds one of these purchased


@dataclass
class Outstanding:
    """What a batch's refreshes leave for after its identifies are sent: the Profile API
    reads running beside them (merged into the store at the end), and each claim's version
    (released if its identify could not be sent, so the retry is not coalesced away)."""

    items: list[Seed] = field(default_factory=list)
    claimed: dict[str, float] = field(default_factory=dict)  # user -> the claim's refreshed_at
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seed: Seed) -> None:
        with self._lock:
            self.items.append(seed)

    def claim(self, user_id: str, refreshed_at: float) -> None:
        with self._lock:
            self.claimed[user_id] = refreshed_at


def start_seed(
    user_id: str,
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    *,
    beside: bool = False,
) -> Future[dict[str, Any]] | None:
    """The user's purchased trait, read on the Profile reads' pool. ``beside``: a seed that
    nothing waits for, bounded by :data:`SEED_PATIENCE_S`."""
    profiles = ports.profiles
    if profiles is None or ports.profile_reads is None:
        return None
    include = [settings.purchased_trait]
    deadline = budget.deadline
    if beside:
        deadline = min(deadline, budget.clock() + SEED_PATIENCE_S)

    def read() -> dict[str, Any]:
        budget.check()
        stats.add("ProfileReads")
        return profiles.traits(user_id, include, deadline=deadline)

    return ports.profile_reads.submit(read)


def _trait_items(traits: dict[str, Any], settings: Settings, stats: Stats) -> frozenset[str]:
    purchased, well_formed = item_ids(traits.get(settings.purchased_trait))
    if not well_formed:
        stats.add("MalformedPurchasedTrait")
    return frozenset(purchased)


def _wait_profile(future: Future[dict[str, Any]], budget: Budget) -> dict[str, Any]:
    try:
        return future.result(timeout=budget.remaining())
    except FutureTimeout:
        future.cancel()
        raise OutOfTime() from None
    except OutOfTime:
        raise
    except Exception as exc:  # ProfileError, SecretError, ...: retried later
        raise StepFailed("ProfileAPI", getattr(exc, "kind", type(exc).__name__)) from exc


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Request:
    """What a refresh must cover: the user, this batch's purchases and messageIds, when its
    events had reached Personalize (``after``), and the newest event time."""

    user_id: str
    purchased: frozenset[str]
    message_ids: frozenset[str]
    after: float
    watermark: int | None
    timestamp: datetime


def user_refresh(
    work: UserWork,
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    view: StoreView,
    seeds: Outstanding,
) -> Prepared | Deferred:
    """The refresh to claim and send, or a deferral for the refresh queue."""
    conf = _conf(settings)
    store = _store(ports)
    for group in work.groups.values():
        put_events(group, settings, ports, budget, stats)
    assert work.latest is not None  # a unit has at least one event
    request = Request(
        work.user_id,
        frozenset(work.purchased),
        frozenset(work.message_ids),
        after=ports.wall(),
        watermark=epoch_ms(work.latest),
        timestamp=work.latest,
    )
    budget.check()
    if work.purchased:
        stats.add("PurchasesMerged")
        state = store_step(lambda: store.add_purchases(work.user_id, work.purchased))
    else:
        state = view.state(work.user_id, budget)

    window = conf.min_refresh_interval_s
    if (
        not work.purchased
        and window > 0
        and state.refreshed_at is not None
        and request.after - state.refreshed_at < window
    ):
        stats.add("RefreshesDeferred")
        _seed_beside(state, request, settings, ports, budget, stats, seeds, state.items)
        return Deferred(
            work.user_id,
            after=request.after,
            delay_s=state.refreshed_at + window - request.after,
            watermark=max(request.watermark or 0, state.watermark or 0) or None,
        )
    return _refresh(request, state, settings, ports, budget, stats, seeds)


def queued_refresh(
    deferred: Deferred,
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    view: StoreView,
    seeds: Outstanding,
    message_id: str,
) -> Prepared | None:
    """A trailing refresh from the queue; None when a newer refresh already covered it."""
    state = view.state(deferred.user_id, budget)
    if state.refreshed_at is not None and state.refreshed_at > deferred.after:
        stats.add("RefreshesSuperseded")
        return None
    stats.add("TrailingRefreshes")
    watermark = deferred.watermark or state.watermark
    moment = (
        datetime.fromtimestamp(watermark / 1000, UTC)
        if watermark
        else datetime.fromtimestamp(ports.wall(), UTC)
    )
    request = Request(
        deferred.user_id,
        frozenset(),
        frozenset({message_id}),
        after=deferred.after,
        watermark=watermark,
        timestamp=moment,
    )
    return _refresh(request, state, settings, ports, budget, stats, seeds)


@dataclass
class _ProfileFirst:
    """Purchases of a refresh that reads the Profile API (a strict first seed, or a capped
    user's every refresh): waited for after the first page. A seed is merged into the store
    before the claim, so the claim is conditioned on the version that includes it."""

    future: Future[dict[str, Any]]
    state: UserState
    request: Request
    settings: Settings
    store: UserStateStore
    budget: Budget
    stats: Stats

    def wait(self) -> Purchases:
        trait = _trait_items(_wait_profile(self.future, self.budget), self.settings, self.stats)
        if not self.state.capped:
            user = self.request.user_id
            # The state the seed's write returns: it holds any purchase another container
            # merged while the Profile API answered, and the claim is conditioned on it.
            self.state = store_step(lambda: self.store.seed(user, trait))
            self.stats.add("Seeded")
        return Purchases(frozenset(self.state.purchased | self.request.purchased | trait))


@dataclass(frozen=True)
class Prepared:
    """A refresh computed and not yet claimed: the claim is made just before its identify
    is sent (:func:`claim`), so another container's purchase merged meanwhile still wins."""

    message: identify.Identify
    claim: Claim
    request: Request


def _refresh(
    request: Request,
    state: UserState,
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    seeds: Outstanding,
) -> Prepared:
    conf = _conf(settings)
    store = _store(ports)
    due = state.seed_due(ports.wall(), conf.reseed_interval_s)
    started = ports.wall()
    future = None
    if state.capped or (conf.seed_wait and due):
        future = start_seed(request.user_id, settings, ports, budget, stats)
    pending: _ProfileFirst | Known
    if future is not None:
        pending = _ProfileFirst(future, state, request, settings, store, budget, stats)
        headroom = settings.exclusion_headroom + len(request.purchased)
    else:
        known = state.purchased | request.purchased
        pending = Known(Purchases(frozenset(known)))
        headroom = min(len(known), settings.exclusion_headroom)
    try:
        served = recommend(
            lambda count: _fetch(request.user_id, count, settings, ports, budget, stats),
            settings.num_results,
            pending,
            headroom,
        )
    except BaseException:
        if future is not None:
            future.cancel()
        raise
    current = pending.state if isinstance(pending, _ProfileFirst) else state
    message = _identify(request, [item.item_id for item in served.items], settings, stats)
    if future is None and due and not current.capped:
        _seed_beside(state, request, settings, ports, budget, stats, seeds, tuple(message.items))
    claim = Claim(
        request.user_id,
        current.ver,
        refreshed_at=started,
        watermark=max(request.watermark or 0, current.watermark or 0) or None,
        excluded=len(current.purchased | request.purchased),
        items=tuple(message.items),
    )
    return Prepared(message, claim, request)


def claim(
    prepared: Prepared, ports: Ports, stats: Stats, seeds: Outstanding
) -> identify.Identify | Deferred | None:
    """Claim a prepared refresh (a write conditioned on the version it was computed from):
    the identify to send now; None when a newer refresh, started after this one's events
    reached Personalize and knowing every stored purchase, already covers it; else a
    refresh through the queue at once (a purchase or seed came in between)."""
    store = _store(ports)
    user = prepared.request.user_id
    won: UserState | None = store_step(partial(store.claim, prepared.claim))
    if won is not None:
        stats.add("RefreshesClaimed")
        seeds.claim(user, prepared.claim.refreshed_at)
        return prepared.message
    stats.add("ClaimsLost")
    state = store_step(lambda: store.get(user, consistent=True))
    if _superseded(state, prepared.request):
        stats.add("RefreshesSuperseded")
        return None
    stats.add("RefreshesRequeued")
    request = prepared.request
    return Deferred(user, after=request.after, delay_s=0, watermark=request.watermark)


def _superseded(state: UserState, request: Request) -> bool:
    """Whether the stored refresh already covers this one: it started after this unit's
    events reached Personalize, and it excluded every purchase now stored (this batch's
    were merged before, so they are among them)."""
    return (
        state.refreshed_at is not None
        and state.refreshed_at > request.after
        and state.excluded >= len(state.purchased)
        and request.purchased <= state.purchased
    )


def _identify(
    request: Request, items: list[str], settings: Settings, stats: Stats
) -> identify.Identify:
    return trait_identify(
        request.user_id, request.message_ids, items, request.timestamp, settings, stats
    )


def _seed_beside(
    state: UserState,
    request: Request,
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    seeds: Outstanding,
    written: tuple[str, ...],
) -> None:
    conf = _conf(settings)
    if state.capped or not state.seed_due(ports.wall(), conf.reseed_interval_s):
        return
    future = start_seed(request.user_id, settings, ports, budget, stats, beside=True)
    if future is not None:
        seeds.add(Seed(request.user_id, future, written))


def release_claims(
    users: Iterable[str], seeds: Outstanding, ports: Ports, budget: Budget, stats: Stats
) -> None:
    """Undo the claims of users whose identify was not sent (their records are retried):
    the retry must refresh them at once, not find a fresh claim and defer, and no trailing
    refresh may be dropped as covered by a list Segment never got. Each release is
    conditioned on the claim's ``refreshed_at`` still being the stored one (only another
    claim changes it); they run in parallel, within the time budget. A release that fails
    leaves the retry to a trailing refresh (the records are still retried)."""
    store = _store(ports)
    claimed = [(user, seeds.claimed[user]) for user in users if user in seeds.claimed]
    if not claimed or budget.expired():
        stats.add("ClaimReleasesFailed", len(claimed))
        return
    futures = [ports.executor.submit(store.release, user, at) for user, at in claimed]
    for future in futures:
        try:
            future.result(timeout=budget.remaining())
            stats.add("ClaimsReleased")
        except Exception:  # noqa: BLE001 - StoreError, timeout: the retry is deferred instead
            future.cancel()
            stats.add("ClaimReleasesFailed")


def finish_seeds(
    seeds: Outstanding, settings: Settings, ports: Ports, budget: Budget, stats: Stats
) -> list[Deferred]:
    """Merge the seeds that answered in time, each on the units' pool (the merges overlap);
    a user whose seed found an item of the list just written (or stored) gets a refresh
    through the queue at once. A seed that did not answer leaves the user unseeded, to be
    read at their next refresh: no record waits."""
    if not seeds.items:
        return []
    # Each seed gave up on its own by SEED_PATIENCE_S; a read that answers later is left.
    patience = Budget(min(budget.deadline, budget.clock() + SEED_PATIENCE_S + 3.0), budget.clock)
    merges = [
        ports.executor.submit(_merge_seed, seed, settings, ports, patience, stats)
        for seed in seeds.items
    ]
    again: list[Deferred] = []
    for merge in merges:
        try:
            found = merge.result(timeout=patience.remaining())
        except Exception:  # noqa: BLE001 - a merge that did not finish: read again next time
            merge.cancel()
            stats.add("SeedsDeferred")
            continue
        if found is not None:
            again.append(found)
    return again


def _merge_seed(
    seed: Seed, settings: Settings, ports: Ports, patience: Budget, stats: Stats
) -> Deferred | None:
    try:
        traits = seed.future.result(timeout=patience.remaining())
    except FutureTimeout:
        seed.future.cancel()
        stats.add("SeedsDeferred")
        return None
    except Exception:  # noqa: BLE001 - ProfileError, OutOfTime, ...: read again next time
        stats.add("SeedsDeferred")
        return None
    trait = _trait_items(traits, settings, stats)
    try:
        state = _store(ports).seed(seed.user_id, trait)
    except StoreError:
        stats.add("SeedsDeferred")
        return None
    stats.add("Seeded")
    if not trait & set(seed.written):
        return None
    stats.add("SeedRefreshes")
    return Deferred(seed.user_id, after=ports.wall(), delay_s=0, watermark=state.watermark)


def _fetch(
    user_id: str, count: int, settings: Settings, ports: Ports, budget: Budget, stats: Stats
) -> Recommendations:
    return fetch_recommendations(user_id, count, settings, ports, budget, stats)


def _conf(settings: Settings) -> StoreSettings:
    assert settings.store is not None, "the store path needs USER_STATE_TABLE"
    return settings.store


def _store(ports: Ports) -> UserStateStore:
    assert ports.store is not None, "the store path needs the store"
    return ports.store
