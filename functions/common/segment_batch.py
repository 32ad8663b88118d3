"""Identify messages carrying a recommended-items trait, and their packing into
``POST /v1/batch`` requests within Segment's size limits (shared by the traits sync and the
batch write-back; each builds its own messageIds).

Limits (segment.md §3): 32 KB per message, 500 KB per batch request (we stay under 475 KB
like Segment's own Python SDK), 2,500 messages per request. Messages are serialised once,
compactly, and the request body is assembled from those bytes, so what is measured is
exactly what is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_MESSAGE_BYTES = 32_000
MAX_BATCH_BYTES = 475_000
MAX_BATCH_MESSAGES = 2_500
LIBRARY_VERSION = "0.1.0"

# context.library.name of our own identify calls (loop detection beside the integrations).
LIBRARY_NAME = "segment-personalize-activation"

_BATCH_OPEN = b'{"batch":['
_BATCH_CLOSE = b"]}"
_EMPTY_BATCH = len(_BATCH_OPEN) + len(_BATCH_CLOSE)


def iso_z(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, as Segment writes its own timestamps."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Identify:
    user_id: str
    items: list[str]  # what the trait holds after any cut
    body: bytes  # the message as sent


def build(
    user_id: str,
    items: list[str],
    *,
    trait: str,
    message_id: str,
    timestamp: datetime,
    integrations: Mapping[str, Any],
) -> Identify:
    """The identify for one user; the item list is cut from the end (lowest ranked first)
    if the message would pass 32 KB: never dropped."""

    def encode(kept: list[str]) -> bytes:
        message = {
            "type": "identify",
            "userId": user_id,
            "traits": {trait: kept},
            "messageId": message_id,
            "timestamp": iso_z(timestamp),
            "integrations": dict(integrations),
            "context": {"library": {"name": LIBRARY_NAME, "version": LIBRARY_VERSION}},
        }
        return json.dumps(message, separators=(",", ":")).encode("utf-8")

    body = encode(items)
    if len(body) <= MAX_MESSAGE_BYTES:
        return Identify(user_id, list(items), body)
    low, high = 0, len(items)  # the longest prefix that fits: in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if len(encode(items[:middle])) <= MAX_MESSAGE_BYTES:
            low = middle
        else:
            high = middle
    kept = items[:low]
    return Identify(user_id, kept, encode(kept))


class Packer:
    """Greedy packing in order, one message at a time (a stream of any length in bounded
    memory): every request body stays within MAX_BATCH_BYTES and ``max_messages``."""

    def __init__(self, max_messages: int = MAX_BATCH_MESSAGES) -> None:
        if not 1 <= max_messages <= MAX_BATCH_MESSAGES:
            raise ValueError(f"max_messages must be 1..{MAX_BATCH_MESSAGES}")
        self.max_messages = max_messages
        self.pending: list[Identify] = []
        self._size = _EMPTY_BATCH

    def add(self, identify: Identify) -> list[Identify] | None:
        """Queue one message; the full request it closed (to send now), if any."""
        full: list[Identify] | None = None
        extra = len(identify.body) + (1 if self.pending else 0)
        if self.pending and (
            self._size + extra > MAX_BATCH_BYTES or len(self.pending) >= self.max_messages
        ):
            full = self.drain()
            extra = len(identify.body)
        self.pending.append(identify)
        self._size += extra
        return full

    def drain(self) -> list[Identify]:
        """The messages queued so far (possibly none); the packer starts afresh."""
        out, self.pending, self._size = self.pending, [], _EMPTY_BATCH
        return out


def batches(identifies: list[Identify]) -> list[list[Identify]]:
    """Greedy packing in order; every request body stays within MAX_BATCH_BYTES."""
    packer = Packer()
    chunks = [full for i in identifies if (full := packer.add(i)) is not None]
    last = packer.drain()
    return [*chunks, last] if last else chunks


def batch_body(chunk: list[Identify]) -> bytes:
    return _BATCH_OPEN + b",".join(i.body for i in chunk) + _BATCH_CLOSE
