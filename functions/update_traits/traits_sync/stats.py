"""Counts of one invocation, updated from worker threads, published as EMF metrics."""

from __future__ import annotations

import threading
from collections import Counter

# Metric names (CloudWatch, namespace from METRICS_NAMESPACE, dimension service).
METRICS = (
    "Records",
    "Relevant",
    "Skipped",
    "DeadLettered",
    "PutEventsCalls",
    "RecommendationCalls",
    "ProfileReads",
    "IdentifiesSent",
    "BatchRequests",
    "Unchanged",
    "FailedUsers",
    "FailedRecords",
    "TraitCut",
    "MalformedPurchasedTrait",
    "ConfigurationErrors",
    "Attributed",
    "AttributionDropped",
    # The user-state store (USER_STATE_TABLE; functions/update_traits/README.md).
    "StoreReads",
    "PurchasesMerged",
    "RefreshesClaimed",
    "ClaimsLost",
    "RefreshesSuperseded",
    "RefreshesDeferred",
    "RefreshesQueued",
    "RefreshesRequeued",
    "TrailingRefreshes",
    "Seeded",
    "SeedsDeferred",
    "SeedRefreshes",
    "ClaimsReleased",
    "ClaimReleasesFailed",
)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self.skip_reasons: Counter[str] = Counter()
        self.failure_reasons: Counter[str] = Counter()

    def add(self, name: str, value: int = 1) -> None:
        with self._lock:
            self._counts[name] += value

    def skipped(self, reason: str) -> None:
        with self._lock:
            self._counts["Skipped"] += 1
            self.skip_reasons[reason] += 1

    def failed(self, reason: str, records: int, user: bool) -> None:
        with self._lock:
            self._counts["FailedRecords"] += records
            if user:
                self._counts["FailedUsers"] += 1
            self.failure_reasons[reason] += 1

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {name: self._counts[name] for name in METRICS}
