"""This container's share of a rate budget shared with other containers (the Segment Profile
API's 100 requests/s per space, split by Terraform): one token bucket for all its threads.

The bucket holds one token by default, so requests leave at most one every ``1/rate``
seconds and never in a burst: in any sliding second a container sends at most
``ceil(rate)`` requests, and the shares of all containers add up to the budget. A caller
sleeps until the next token is due and takes it when it wakes; one that would only get it
after its deadline takes nothing and gives up at once (the work is retried later, never
squeezed in).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        rate: float,
        capacity: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        full: bool = True,
    ) -> None:
        """``full=False`` starts empty: a container that has just started sends nothing
        before its first share has accrued (with a capacity above one token, the containers
        that start together would otherwise add their whole capacities to the first second)."""
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError("rate must be a positive number of requests per second")
        if not (math.isfinite(capacity) and capacity >= 1):
            raise ValueError("capacity must be at least one token")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = capacity if full else 0.0
        self._at = clock()

    def acquire(self, deadline: float, cost: float = 1.0) -> float | None:
        """Wait for ``cost`` tokens; the seconds waited, or None (nothing taken) when they
        would only be there after ``deadline`` (a time on this bucket's clock).

        The tokens are taken when the caller is about to send, not when it starts
        waiting: a thread that wakes late (a busy machine) cannot send together with the
        next one, so requests stay ``1/rate`` apart when they actually leave.

        A ``cost`` above the capacity (or negative, or NaN) is a ValueError: the bucket never
        holds that many tokens, so the wait could only end at the deadline, with nothing.
        """
        if not 0 <= cost <= self.capacity:
            raise ValueError(f"cost must be 0..{self.capacity:g} tokens (the capacity), got {cost}")
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
                self._at = now
                self._tokens = tokens
                wait = max(0.0, (cost - tokens) / self.rate)
                if now + wait > deadline:
                    return None
                if wait == 0.0:
                    self._tokens = tokens - cost
                    return waited
            self._sleep(wait)
            waited += wait
