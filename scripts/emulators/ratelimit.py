"""The emulated services' rate limits: token buckets keyed by what the real service keys its
limit on (a Segment space, a Personalize campaign, a dataset group's tracking id).

A request that finds too few tokens is refused at once, as the real services refuse it, and
learns how long until it would have been admitted (the ``Retry-After`` the emulators send).
Limits are changeable while the server runs; a refused request takes no tokens.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RateLimit:
    """``rate`` tokens per second into a bucket of ``burst`` tokens (default: one second's)."""

    rate: float
    burst: float

    @classmethod
    def per_second(cls, rate: float, burst: float | None = None) -> RateLimit:
        rate = float(rate)
        if not math.isfinite(rate) or rate <= 0:
            raise ValueError("a rate limit must be a positive number of requests per second")
        size = float(burst) if burst is not None else max(1.0, rate)
        if not math.isfinite(size) or size < 1:
            raise ValueError("a burst must be at least 1")
        return cls(rate, size)

    @classmethod
    def parse(cls, value: Any) -> RateLimit | None:
        """``None``/``0``/``"off"`` (no limit), a number (per second), or ``{rate, burst}``."""
        if value is None or value is False or value == 0 or value == "off":
            return None
        if isinstance(value, Mapping):
            return cls.per_second(value["rate"], value.get("burst"))
        if isinstance(value, bool):
            raise ValueError("a rate limit must be a number, {rate, burst} or null")
        return cls.per_second(float(value))

    def as_json(self) -> dict[str, float]:
        return {"rate": self.rate, "burst": self.burst}


@dataclass(frozen=True)
class Charge:
    """What one request costs against one limit: ``cost`` tokens from bucket ``key``."""

    limit: str
    key: str
    cost: float = 1.0


@dataclass(frozen=True)
class Refusal:
    limit: str
    retry_after_s: float


class RateLimiter:
    """Named limits over keyed token buckets. ``admit`` takes every charge or none."""

    def __init__(
        self,
        defaults: Mapping[str, RateLimit | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._defaults = dict(defaults)
        self._clock = clock
        self._lock = threading.Lock()
        self.limits: dict[str, RateLimit | None] = dict(self._defaults)
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # tokens, at

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._defaults)

    def defaults(self) -> dict[str, RateLimit | None]:
        return dict(self._defaults)

    def reset(self) -> None:
        with self._lock:
            self.limits = dict(self._defaults)
            self._buckets.clear()

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Change some limits (a value as :meth:`RateLimit.parse` takes); others keep theirs."""
        parsed: dict[str, RateLimit | None] = {}
        for name, value in changes.items():
            if name not in self._defaults:
                raise ValueError(f"unknown rate limit {name!r}; one of {self.names}")
            parsed[name] = RateLimit.parse(value)
        with self._lock:
            self.limits.update(parsed)
            for name in parsed:  # a new limit starts with a full bucket
                for bucket in [b for b in self._buckets if b[0] == name]:
                    del self._buckets[bucket]

    def disable(self) -> None:
        self.configure(dict.fromkeys(self._defaults))

    def snapshot(self) -> dict[str, dict[str, float] | None]:
        with self._lock:
            return {n: (v.as_json() if v else None) for n, v in self.limits.items()}

    def admit(self, charges: Iterable[Charge]) -> Refusal | None:
        """Take the tokens of every charge, or none and say which limit refused and for how
        long (the first moment all of that limit's tokens would be there)."""
        now = self._clock()
        with self._lock:
            taken: list[tuple[tuple[str, str], float]] = []
            for charge in charges:
                limit = self.limits.get(charge.limit)
                if limit is None:
                    continue
                bucket = (charge.limit, charge.key)
                tokens, at = self._buckets.get(bucket, (limit.burst, now))
                tokens = min(limit.burst, tokens + (now - at) * limit.rate)
                if tokens < charge.cost:
                    return Refusal(charge.limit, (charge.cost - tokens) / limit.rate)
                taken.append((bucket, tokens - charge.cost))
            for bucket, tokens in taken:
                self._buckets[bucket] = (tokens, now)
        return None


def peak_in_window(times: Iterable[float], window_s: float = 1.0) -> int:
    """The most events in any half-open window ``[t, t + window_s)`` (a sliding second)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best
