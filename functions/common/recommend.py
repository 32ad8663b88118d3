"""Recommendations with purchased items removed, Personalize's ranking kept, refilled to N;
used by the API (per request) and update_traits (per user of a batch).

The purchases are only known once the Profile API has answered, which runs concurrently
with Personalize. So the first call asks for N + headroom; only when more purchased items
than that sat in the page (and Personalize had a full page to give) does a second call ask
for N + len(purchased) (at most 500).

With a promotion, Personalize's promoted share is of the items it was asked for (N + headroom):
the N served still hold the share of N (``promoted_share``; see :func:`common.personalize.top`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from common.personalize import (
    Item,
    PersonalizeError,
    Recommendations,
    exclude,
    fetch_size,
    top,
)

Fetch = Callable[[int], Recommendations]


class OutOfTime(Exception):
    """A call the caller's deadline does not cover (raised by ``fetch``): the first call
    fails the answer, a refill is done without. Work with a budget of its own (the traits
    sync) raises its own exception instead, and no short list is ever kept."""


class TimeLeft(Protocol):
    def allows(self, seconds: float) -> bool: ...


@dataclass(frozen=True)
class Purchases:
    """``ids`` is None when the purchases could not be known (``reason`` says why)."""

    ids: frozenset[str] | None
    reason: str | None = None
    malformed: bool = False


class Pending(Protocol):
    """Purchases being read while Personalize answers; ``wait`` is called once, after the
    first page (it may raise to abandon the whole recommendation)."""

    def wait(self) -> Purchases: ...


@dataclass(frozen=True)
class Known:
    """Purchases known before any call (no read in flight)."""

    purchases: Purchases

    def wait(self) -> Purchases:
        return self.purchases


@dataclass(frozen=True)
class Served:
    items: list[Item]
    recommendation_id: str | None
    exclusion: str  # "off", "applied" or "unavailable"
    reason: str | None = None
    purchased: int = 0  # size of the user's purchased trait
    excluded: int = 0  # purchased items Personalize returned (and we dropped)
    calls: int = 1
    refill_failed: str | None = None
    malformed_trait: bool = False


def recommend(
    fetch: Fetch,
    limit: int,
    pending: Pending | None,
    headroom: int,
    deadline: TimeLeft | None = None,
    profile_wait_s: float = 0.0,
    promoted_share: int = 0,
) -> Served:
    """``fetch`` raises :class:`OutOfTime` when the deadline does not cover a call: the first
    one fails the request (503), a refill is done without. The purchases are not waited for
    when the deadline does not cover ``profile_wait_s``: the answer is then unfiltered.
    ``promoted_share``: promoted items the N served hold at least, when Personalize gave them."""
    if pending is None:
        recs = fetch(limit)
        return Served(top(recs.items, limit, promoted_share), recs.recommendation_id, "off")

    asked = fetch_size(limit, headroom)
    recs = fetch(asked)
    if deadline is not None and not deadline.allows(profile_wait_s):
        first = top(recs.items, limit, promoted_share)
        return Served(first, recs.recommendation_id, "unavailable", "time_budget")
    purchases = pending.wait()
    if purchases.ids is None:
        first = top(recs.items, limit, promoted_share)
        return Served(first, recs.recommendation_id, "unavailable", purchases.reason)

    purchased = purchases.ids

    def kept_of(items: list[Item]) -> list[Item]:
        return top(exclude(items, set(purchased), len(items)), limit, promoted_share)

    kept = kept_of(recs.items)
    calls = 1
    refill_failed = None
    needed = fetch_size(limit, len(purchased))
    # A short page means Personalize has nothing more to give; asking again is pointless.
    if len(kept) < limit and len(recs.items) >= asked and needed > asked:
        calls = 2
        try:
            recs = fetch(needed)
            kept = kept_of(recs.items)
        except PersonalizeError as exc:
            # The first page, filtered, is still a good answer.
            refill_failed = exc.kind
        except OutOfTime:
            refill_failed = "time_budget"
    return Served(
        kept,
        recs.recommendation_id,
        "applied",
        purchased=len(purchased),
        excluded=sum(1 for item in recs.items if item.item_id in purchased),
        calls=calls,
        refill_failed=refill_failed,
        malformed_trait=purchases.malformed,
    )
