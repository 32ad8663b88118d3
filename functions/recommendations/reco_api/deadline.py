"""The request's deadline: Lambda's remaining time, read live before each call.

A call is only made when its worst case still ends at least :data:`SPARE_S` before the
function's timeout; otherwise the handler answers 503 JSON itself (API Gateway would answer
a bare 502 for a timed-out function) or, for the optional calls, does without.
"""

from __future__ import annotations

import math
from typing import Any

from common.recommend import OutOfTime  # not enough of the function's time is left

__all__ = ["SPARE_S", "Deadline", "OutOfTime"]

# What is kept back for writing the answer, the log line and the metrics.
SPARE_S = 1.0


class Deadline:
    def __init__(self, context: Any) -> None:
        getter = getattr(context, "get_remaining_time_in_millis", None)
        self._remaining_ms = getter if callable(getter) else None

    def left_s(self) -> float:
        """Seconds usable for calls: the remaining time minus the spare (inf without one)."""
        if self._remaining_ms is None:
            return math.inf
        try:
            return float(self._remaining_ms()) / 1000.0 - SPARE_S
        except (TypeError, ValueError):
            return math.inf

    def allows(self, seconds: float) -> bool:
        return self.left_s() >= seconds
