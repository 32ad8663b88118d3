"""Splitting a list, in order, into requests that stay under a service's limits."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def bounded(
    items: Sequence[T],
    size: Callable[[T], int],
    *,
    max_count: int,
    max_bytes: float = math.inf,
    overhead: int = 0,
    separator: int = 0,
) -> list[list[T]]:
    """Greedy packing in order: each chunk has at most ``max_count`` items, and its
    ``overhead`` plus the items' sizes plus a ``separator`` between two items stays within
    ``max_bytes``. An item too large on its own still gets a chunk of its own (the caller
    has already made every item fit)."""
    chunks: list[list[T]] = []
    current: list[T] = []
    used = overhead
    for item in items:
        extra = size(item) + (separator if current else 0)
        if current and (used + extra > max_bytes or len(current) >= max_count):
            chunks.append(current)
            current, used = [], overhead
            extra = size(item)
        current.append(item)
        used += extra
    if current:
        chunks.append(current)
    return chunks
