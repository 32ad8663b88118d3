"""HTTP caching of 200 answers: a weak ETag over what the answer says (items, scores,
metadata and the echoed ids; not the recommendationId, which Personalize makes new on every
call), ``304`` on a matching ``If-None-Match`` (GET and HEAD), and ``Cache-Control``:
``private, max-age=<CACHE_MAX_AGE_S>``, or ``no-store`` (the default, 0).

Weak (``W/"…"``) because two answers with one tag may differ in their recommendationId: they
are equivalent, not byte-identical, and a strong validator promises the latter (RFC 9110,
section 8.8.1). ``If-None-Match`` uses the weak comparison (section 13.1.2), which ignores
``W/`` on both sides."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def etag(content: Any) -> str:
    text = json.dumps(content, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return 'W/"' + hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest() + '"'


def cache_control(max_age_s: int) -> str:
    return f"private, max-age={max_age_s}" if max_age_s > 0 else "no-store"


def matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 weak comparison, as If-None-Match uses (13.1.2): ``W/`` is ignored on both
    sides, ``*`` matches."""
    if if_none_match is None:
        return False
    opaque = tag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == opaque:
            return True
    return False


def not_modified(tag: str, headers: Mapping[str, str]) -> dict[str, Any]:
    return {
        "statusCode": 304,
        "headers": {**headers, "ETag": tag},
        "body": "",
        "isBase64Encoded": False,
    }
