"""Identify messages carrying the recommended-items trait, and their packing into
``POST /v1/batch`` requests within Segment's size limits.

Limits (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#max-request-size):
32 KB per message, 500 KB per batch request (we stay under 475 KB
like Segment's own Python SDK), 2,500 messages per request. Messages are serialised once,
compactly, and the request body is assembled from those bytes, so what is measured is
exactly what is sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.chunks import bounded
from traits_sync.messages import LIBRARY_NAME
from traits_sync.timestamps import iso_z

MAX_MESSAGE_BYTES = 32_000
MAX_BATCH_BYTES = 475_000
MAX_BATCH_MESSAGES = 2_500
MESSAGE_ID_PREFIX = "personalize-traits-"
LIBRARY_VERSION = "0.1.0"

_BATCH_OPEN = b'{"batch":['
_BATCH_CLOSE = b"]}"


@dataclass(frozen=True)
class Identify:
    user_id: str
    items: list[str]  # what the trait holds after any cut
    body: bytes  # the message as sent


def message_id(
    user_id: str, incoming_message_ids: Iterable[str], trait: str, items: Sequence[str]
) -> str:
    """Deterministic: the same user, incoming messages and list give the same id, so a
    retried batch is deduplicated by Segment. The list is part of it: a retry whose
    recommendations changed (the model learnt in between) must not be dropped as a
    duplicate of the stale list. Never an incoming id (Segment's deduplication is global:
    reusing one would drop our identify). 83 characters, within the 100 limit."""
    parts = [trait, user_id, *sorted(set(incoming_message_ids)), "\x1e", *items]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return MESSAGE_ID_PREFIX + digest


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


def batches(identifies: list[Identify]) -> list[list[Identify]]:
    """Greedy packing in order; every request body stays within MAX_BATCH_BYTES."""
    return bounded(
        identifies,
        lambda identify: len(identify.body),
        max_count=MAX_BATCH_MESSAGES,
        max_bytes=MAX_BATCH_BYTES,
        overhead=len(_BATCH_OPEN) + len(_BATCH_CLOSE),
        separator=len(b","),
    )


def batch_body(chunk: list[Identify]) -> bytes:
    return _BATCH_OPEN + b",".join(i.body for i in chunk) + _BATCH_CLOSE
