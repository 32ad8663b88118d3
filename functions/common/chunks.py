"""Splitting items, in order, into requests that stay under a service's limits."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Chunker(Generic[T]):
    """Greedy packing in order, one item at a time (a stream of any length in bounded
    memory): each chunk has at most ``max_count`` items, and its ``overhead`` plus the
    items' sizes plus a ``separator`` between two items stays within ``max_bytes``. An item
    too large on its own still gets a chunk of its own (the caller has already made every
    item fit)."""

    def __init__(
        self,
        size: Callable[[T], int],
        *,
        max_count: int,
        max_bytes: float = math.inf,
        overhead: int = 0,
        separator: int = 0,
    ) -> None:
        if max_count < 1:
            raise ValueError("max_count must be at least 1")
        self._size = size
        self.max_count = max_count
        self.max_bytes = max_bytes
        self.overhead = overhead
        self.separator = separator
        self.pending: list[T] = []
        self._used = overhead

    def add(self, item: T) -> list[T] | None:
        """Queue one item; the full chunk it closed (to send now), if any."""
        full: list[T] | None = None
        extra = self._size(item) + (self.separator if self.pending else 0)
        if self.pending and (
            self._used + extra > self.max_bytes or len(self.pending) >= self.max_count
        ):
            full = self.drain()
            extra = self._size(item)
        self.pending.append(item)
        self._used += extra
        return full

    def drain(self) -> list[T]:
        """The items queued so far (possibly none); the chunker starts afresh."""
        out, self.pending, self._used = self.pending, [], self.overhead
        return out

    def pack(self, items: Iterable[T]) -> list[list[T]]:
        """Every chunk of ``items``, the last one included."""
        chunks = [full for item in items if (full := self.add(item)) is not None]
        last = self.drain()
        return [*chunks, last] if last else chunks


def bounded(
    items: Iterable[T],
    size: Callable[[T], int],
    *,
    max_count: int,
    max_bytes: float = math.inf,
    overhead: int = 0,
    separator: int = 0,
) -> list[list[T]]:
    """All of ``items`` packed by a :class:`Chunker` with these limits."""
    return Chunker(
        size, max_count=max_count, max_bytes=max_bytes, overhead=overhead, separator=separator
    ).pack(items)
