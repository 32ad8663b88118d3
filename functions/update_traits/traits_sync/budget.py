"""The invocation's time budget: Lambda's remaining time minus a safety margin.

Work not finished by the deadline is reported for retry, never dropped, and the handler
returns before Lambda's timeout would fail the whole batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Without a Lambda context (local runs) the batch gets this long.
DEFAULT_REMAINING_MS = 60_000


class OutOfTime(Exception):
    """Raised at a checkpoint once the deadline has passed."""


@dataclass(frozen=True)
class Budget:
    deadline: float
    clock: Callable[[], float] = field(default=time.monotonic)

    @classmethod
    def from_context(
        cls, context: Any, margin_ms: int, clock: Callable[[], float] = time.monotonic
    ) -> Budget:
        getter = getattr(context, "get_remaining_time_in_millis", None)
        remaining_ms = float(getter()) if callable(getter) else float(DEFAULT_REMAINING_MS)
        return cls(clock() + (remaining_ms - margin_ms) / 1000.0, clock)

    def reserving(self, seconds: float) -> Budget:
        """A budget that ends ``seconds`` earlier (time kept back for a later phase)."""
        return Budget(self.deadline - seconds, self.clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.deadline - self.clock())

    def expired(self) -> bool:
        return self.clock() >= self.deadline

    def check(self) -> None:
        """A checkpoint between calls: stop a unit of work once time is up."""
        if self.expired():
            raise OutOfTime()
