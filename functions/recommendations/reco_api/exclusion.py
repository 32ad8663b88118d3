"""The user's purchased items from the Segment Profile API, read in the background while
Personalize answers, under a strict time budget: it never slows the response by more than
the budget, and never fails it. Any problem yields "unavailable" with a reason, and the
caller serves the unfiltered list.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Protocol

from common.profiles import ProfileClient, ProfileError, item_ids
from common.recommend import Purchases
from common.secrets import SecretError

# After a problem only the operator can fix (token rejected, parameter missing), stop
# asking for a while: every request would otherwise pay the call and flood SSM/Segment.
CONFIG_PROBLEM_COOLDOWN_S = 60.0


# Most users whose purchases are kept between requests (per container).
CACHE_MAX_USERS = 10_000


class Pending:
    """A read in flight. :meth:`wait` is called once Personalize has answered and waits at
    most the budget more: exclusion never adds more than the budget to a response, and the
    read gets Personalize's whole answer time on top (a cold start's token fetch fits)."""

    def __init__(
        self,
        future: Future[Purchases] | None,
        budget_s: float,
        ready: Purchases | None = None,
    ) -> None:
        self._future = future
        self._budget = budget_s
        self._ready = ready

    def wait(self) -> Purchases:
        if self._ready is not None:
            return self._ready
        assert self._future is not None
        try:
            return self._future.result(timeout=self._budget)
        except TimeoutError:
            # Not started yet (pool busy with earlier slow reads): don't start it at all.
            self._future.cancel()
            return Purchases(None, "timeout")


class Reader(Protocol):
    """Starts a user's purchases read (the Profile API's :class:`PurchaseReader`, or the
    store's :class:`reco_api.store.StoredPurchases`)."""

    def start(self, user_id: str) -> Pending: ...


class PurchaseReader:
    def __init__(
        self,
        source: ProfileClient,  # or a test's fake with the same traits()
        trait: str,
        budget_s: float,
        executor: Callable[[], Executor],
        *,
        on_config_problem: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
        cooldown_s: float = CONFIG_PROBLEM_COOLDOWN_S,
        cache_ttl_s: float = 0.0,
    ) -> None:
        self._source = source
        self._trait = trait
        self._budget = budget_s
        self._executor = executor
        self._on_config_problem = on_config_problem
        self._clock = clock
        self._cooldown = cooldown_s
        self._paused_until = 0.0
        self._paused_reason = ""
        self._lock = threading.Lock()
        self._cache_ttl = cache_ttl_s
        self._cache: OrderedDict[str, tuple[float, Purchases]] = OrderedDict()

    def start(self, user_id: str) -> Pending:
        known = self._known(user_id)
        if known is not None:
            return Pending(None, self._budget, known)
        return Pending(self._executor().submit(self._read, user_id), self._budget)

    def read(self, user_id: str) -> Purchases:
        """The same read in the caller's thread, within the budget (the store's reader
        asks it for a capped user from its own background thread)."""
        known = self._known(user_id)
        return known if known is not None else self._read(user_id)

    def _known(self, user_id: str) -> Purchases | None:
        """What is known without a call: paused, or read within the cache's TTL."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return Purchases(None, self._paused_reason)
            cached = self._cache.get(user_id)
            if cached is not None and cached[0] > now:
                return cached[1]
        return None

    def _remember(self, user_id: str, purchases: Purchases) -> Purchases:
        if self._cache_ttl > 0:
            with self._lock:
                self._cache[user_id] = (self._clock() + self._cache_ttl, purchases)
                self._cache.move_to_end(user_id)
                while len(self._cache) > CACHE_MAX_USERS:
                    self._cache.popitem(last=False)
        return purchases

    def _read(self, user_id: str) -> Purchases:
        # Socket timeouts no longer than the budget, so a hung read frees its thread soon;
        # no waiting longer than the budget for a turn of the container's rate share.
        timeout = (min(self._budget, 1.0), self._budget)
        try:
            traits = self._source.traits(
                user_id, [self._trait], timeout=timeout, deadline=self._clock() + self._budget
            )
        except ProfileError as exc:
            if exc.kind == "auth":  # ProfileClient forgot the token: a rotated one is read
                self._pause("auth", "SEGMENT_PROFILE_TOKEN_PARAMETER", f"Profile API {exc.detail}")
            return Purchases(None, exc.kind)
        except SecretError as exc:
            if exc.permanent:
                self._pause("token", "SEGMENT_PROFILE_TOKEN_PARAMETER", exc.reason)
                return Purchases(None, "token")
            return Purchases(None, "token_unavailable")
        except Exception as exc:  # noqa: BLE001 - exclusion must never fail the request
            return Purchases(None, f"error:{type(exc).__name__}")
        ids, well_formed = item_ids(traits.get(self._trait))
        return self._remember(user_id, Purchases(frozenset(ids), malformed=not well_formed))

    def _pause(self, reason: str, setting: str, detail: str) -> None:
        with self._lock:
            first = self._clock() >= self._paused_until
            self._paused_until = self._clock() + self._cooldown
            self._paused_reason = reason
        if first:
            self._on_config_problem(setting, detail)
