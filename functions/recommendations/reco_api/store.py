"""The user's purchases from the user-state store (:mod:`common.userstate`), read in the
background while Personalize answers, under the same budget as the Profile API read it
replaces: one GetItem, and no Profile API call.

The read is eventually consistent: half the read units of a strongly consistent one, and a
purchase the traits sync merged is seen within about a second
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html),
far less than the stream's own delivery delay before it is merged at all.

A user whose stored purchases reached the store's cap (``UserState.capped``: the store
stopped adding to them) is read from the Profile API too when this function has it
configured, and the two sets are joined; without it, or when that read fails, the stored set
is excluded (every purchase it holds is real; only those past the cap can be missed).

Never an error, like the Profile API read: a store failure (throttled after botocore's
retries, 5xx, a timeout) serves the unfiltered list with ``exclusion_reason``
``store_unavailable``; a missing table or a denied read (``store_misconfigured``) also logs
one ERROR line naming ``USER_STATE_TABLE`` and pauses the reads for a while.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Protocol

from common.recommend import Purchases
from common.userstate import StoreError, UserState
from reco_api.exclusion import CONFIG_PROBLEM_COOLDOWN_S, Pending, PurchaseReader


class StateSource(Protocol):
    """What is read of the store (:class:`common.userstate.UserStateStore`, or a fake)."""

    def get(self, user_id: str, *, consistent: bool = False) -> UserState: ...


class StoredPurchases:
    def __init__(
        self,
        store: StateSource,
        budget_s: float,
        executor: Callable[[], Executor],
        *,
        profile: PurchaseReader | None,
        on_config_problem: Callable[[str, str], None],
        clock: Callable[[], float] = time.monotonic,
        cooldown_s: float = CONFIG_PROBLEM_COOLDOWN_S,
    ) -> None:
        self._store = store
        self._budget = budget_s
        self._executor = executor
        self._profile = profile  # a capped user's second source, or None
        self._on_config_problem = on_config_problem
        self._clock = clock
        self._cooldown = cooldown_s
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def start(self, user_id: str) -> Pending:
        with self._lock:
            if self._clock() < self._paused_until:
                return Pending(None, self._budget, Purchases(None, "store_misconfigured"))
        return Pending(self._executor().submit(self._read, user_id), self._budget)

    def _read(self, user_id: str) -> Purchases:
        try:
            state = self._store.get(user_id, consistent=False)
        except StoreError as exc:
            if exc.kind == "misconfigured":
                self._pause(exc.detail)
            return Purchases(None, f"store_{exc.kind}")
        except Exception as exc:  # noqa: BLE001 - exclusion must never fail the request
            return Purchases(None, f"error:{type(exc).__name__}")
        if not state.capped or self._profile is None:
            return Purchases(state.purchased)
        traits = self._profile.read(user_id)
        if traits.ids is None:
            return Purchases(state.purchased)
        return Purchases(state.purchased | traits.ids, malformed=traits.malformed)

    def _pause(self, detail: str) -> None:
        with self._lock:
            first = self._clock() >= self._paused_until
            self._paused_until = self._clock() + self._cooldown
        if first:
            self._on_config_problem("USER_STATE_TABLE", detail)
