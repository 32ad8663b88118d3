"""A small, real recommender standing in for Personalize's models.

Item-to-item co-occurrence weighted by event type (an order says more than a view), cosine
normalised; a user's score for an item sums the similarities to the items in their history;
unknown users and unknown items get popularity (Personalize's cold start). Every new
interaction updates the matrix at once, so PutEvents changes recommendations in real time.
Deterministic: ties break on a seeded hash of the item id, never on dict or set order.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence

EVENT_WEIGHTS = {
    "Order Completed": 4.0,
    "Product Added": 3.0,
    "Product Clicked": 2.0,
    "Product Viewed": 1.0,
}
DEFAULT_EVENT_WEIGHT = 1.0
# Personalize filters look at the most recent interactions per user and event type.
FILTER_HISTORY = 100
# A sliver of popularity ranks items the user's history says nothing about.
POPULARITY_BLEND = 1e-3
# Like Personalize's session-aware recipes, the latest interactions count extra: this is
# what makes a handful of real-time events visibly move a long-standing user's list.
RECENT_WINDOW = 10
RECENT_BOOST = 4.0


class Recommender:
    """Thread-safe; all public methods take the lock."""

    def __init__(self, seed: int = 0, catalogue: Iterable[str] = ()) -> None:
        self.seed = seed
        self._lock = threading.RLock()
        self._recommendable: set[str] = set(catalogue)
        self._user_items: dict[str, dict[str, float]] = defaultdict(dict)
        self._cooc: dict[str, dict[str, float]] = defaultdict(dict)
        self._norm2: dict[str, float] = defaultdict(float)
        self._popularity: dict[str, float] = defaultdict(float)
        self._history: dict[tuple[str, str], deque[str]] = {}
        self._recent: dict[str, deque[tuple[str, float]]] = {}
        self._tiebreak: dict[str, float] = {}

    # -- training / updates ------------------------------------------------------------------

    def fit(self, rows: Iterable[Sequence[object]]) -> None:
        """Train on ``(user_id, item_id, event_type, timestamp)`` rows, oldest first (an
        import file need not be sorted; recency matters to the scores)."""
        ordered = sorted(rows, key=_timestamp)
        with self._lock:
            for user, item, event_type, *_ in ordered:
                self._recommendable.add(str(item))
                self._add(str(user), str(item), str(event_type))

    def add_interaction(self, user_id: str | None, item_id: str | None, event_type: str) -> None:
        """A real-time event. Items unseen at training are remembered (filters see them) but
        only become recommendable at a retraining, as in Personalize."""
        if not item_id:
            return
        with self._lock:
            if user_id:
                self._add(user_id, item_id, event_type)
            else:
                self._popularity[item_id] += EVENT_WEIGHTS.get(event_type, DEFAULT_EVENT_WEIGHT)

    def _add(self, user: str, item: str, event_type: str) -> None:
        weight = EVENT_WEIGHTS.get(event_type, DEFAULT_EVENT_WEIGHT)
        history = self._user_items[user]
        old = history.get(item, 0.0)
        new = old + weight
        delta = new - old
        # C[i][j] = sum over users of w_ui * w_uj: only the row/column of `item` moves.
        for other, other_weight in history.items():
            if other == item:
                continue
            change = delta * other_weight
            self._cooc[item][other] = self._cooc[item].get(other, 0.0) + change
            self._cooc[other][item] = self._cooc[other].get(item, 0.0) + change
        history[item] = new
        self._norm2[item] += new * new - old * old
        self._popularity[item] += weight
        latest = self._recent.get(user)
        if latest is None:
            latest = self._recent[user] = deque(maxlen=RECENT_WINDOW)
        latest.append((item, weight))
        key = (user, event_type)
        recent = self._history.get(key)
        if recent is None:
            recent = self._history[key] = deque(maxlen=FILTER_HISTORY)
        recent.append(item)

    # -- queries -----------------------------------------------------------------------------

    @property
    def item_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._recommendable)

    def knows_user(self, user_id: str) -> bool:
        with self._lock:
            return bool(self._user_items.get(user_id))

    def knows_item(self, item_id: str) -> bool:
        with self._lock:
            return item_id in self._recommendable and bool(self._cooc.get(item_id))

    def recent_items(self, user_id: str, event_types: Iterable[str] | None) -> set[str]:
        """Items in the user's last FILTER_HISTORY interactions of these types (all if None)."""
        with self._lock:
            found: set[str] = set()
            for (user, event_type), items in self._history.items():
                if user == user_id and (event_types is None or event_type in event_types):
                    found.update(items)
            return found

    def for_user(self, user_id: str | None) -> list[tuple[str, float]]:
        """Every recommendable item, best first, for this user (popularity if unknown)."""
        with self._lock:
            history = self._user_items.get(user_id) if user_id else None
            if not history:
                return self._ranked(self._popularity_scores())
            weights = dict(history)
            for item, weight in self._recent.get(user_id or "", ()):
                weights[item] += RECENT_BOOST * weight
            scores = self._popularity_scores(scale=POPULARITY_BLEND)
            for item, weight in weights.items():
                for other, similarity in self._similar(item):
                    if other in scores:
                        scores[other] += weight * similarity
            return self._ranked(scores)

    def related(self, item_id: str) -> list[tuple[str, float]]:
        """Items that co-occur with ``item_id``, best first (popularity if the item is cold)."""
        with self._lock:
            if not self.knows_item(item_id):
                return self._ranked(self._popularity_scores())
            scores = self._popularity_scores(scale=POPULARITY_BLEND)
            scores.pop(item_id, None)
            for other, similarity in self._similar(item_id):
                if other in scores:
                    scores[other] += similarity
            return self._ranked(scores)

    def _similar(self, item: str) -> Iterable[tuple[str, float]]:
        norm_i = math.sqrt(self._norm2.get(item, 0.0)) or 1.0
        for other, value in self._cooc.get(item, {}).items():
            norm_j = math.sqrt(self._norm2.get(other, 0.0)) or 1.0
            yield other, value / (norm_i * norm_j)

    def _popularity_scores(self, scale: float = 1.0) -> dict[str, float]:
        top = max((self._popularity.get(i, 0.0) for i in self._recommendable), default=0.0) or 1.0
        return {i: scale * self._popularity.get(i, 0.0) / top for i in self._recommendable}

    def _ranked(self, scores: dict[str, float]) -> list[tuple[str, float]]:
        """Scores normalised to sum to 1 (like Personalize's), highest first."""
        total = sum(scores.values()) or 1.0
        ordered = sorted(scores.items(), key=lambda kv: (-kv[1], self._tie(kv[0])))
        return [(item, round(score / total, 7)) for item, score in ordered]

    def _tie(self, item: str) -> float:
        value = self._tiebreak.get(item)
        if value is None:
            digest = hashlib.sha256(f"{self.seed}:{item}".encode()).digest()
            value = self._tiebreak[item] = int.from_bytes(digest[:8], "big") / 2**64
        return value


def _timestamp(row: Sequence[object]) -> float:
    try:
        return float(row[3])  # type: ignore[arg-type]
    except (IndexError, TypeError, ValueError):
        return 0.0
