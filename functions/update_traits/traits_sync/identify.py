"""Identify messages of the traits sync: their deterministic messageIds. Building and packing
them into ``POST /v1/batch`` requests is shared with the batch write-back
(:mod:`common.segment_batch`, re-exported here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from common.segment_batch import (
    LIBRARY_VERSION,
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    MAX_MESSAGE_BYTES,
    Identify,
    batch_body,
    batches,
    build,
)

__all__ = [
    "LIBRARY_VERSION",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MESSAGE_ID_PREFIX",
    "Identify",
    "batch_body",
    "batches",
    "build",
    "message_id",
]

MESSAGE_ID_PREFIX = "personalize-traits-"


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
