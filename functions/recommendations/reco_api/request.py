"""Null-safe parsing of API Gateway REST (payload v1) proxy events.

In payload v1, ``queryStringParameters`` and ``multiValueQueryStringParameters`` are
``null`` when the URL has no query string, and API Gateway has already percent-decoded the
values (``+`` stays ``+`` only when the caller sent ``%2B``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.ids import id_problem
from common.personalize import MAX_RESULTS

KNOWN = ("userId", "itemId", "numResults")
# ASCII digits only: int() would also take " 7", "+7", "1_0" and other scripts' digits.
_DIGITS = re.compile(r"[0-9]{1,4}")


class BadRequest(Exception):
    """The caller's request is wrong; ``code`` and ``message`` go in the 400 body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Query:
    user_id: str | None
    item_id: str | None
    num_results: int

    @property
    def subject(self) -> tuple[str, str]:
        """("userId", id) or ("itemId", id): what the response echoes."""
        if self.user_id is not None:
            return "userId", self.user_id
        assert self.item_id is not None
        return "itemId", self.item_id


def method(event: Mapping[str, Any]) -> str:
    value = event.get("httpMethod")
    return value.upper() if isinstance(value, str) else "GET"


def parse(event: Any, default_num_results: int) -> Query:
    if not isinstance(event, Mapping):
        raise BadRequest("invalid_request", "expected an API Gateway proxy event")
    params = _parameters(event)
    user_id = _identifier(params, "userId")
    item_id = _identifier(params, "itemId")
    if (user_id is None) == (item_id is None):
        raise BadRequest("missing_parameter", "exactly one of userId or itemId is required")
    raw = params.get("numResults")
    if raw is None:
        num_results = default_num_results
    else:
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_RESULTS:
            raise BadRequest("invalid_parameter", f"numResults must be an integer 1..{MAX_RESULTS}")
        num_results = int(raw)
    return Query(user_id, item_id, num_results)


def _parameters(event: Mapping[str, Any]) -> dict[str, str]:
    """The known parameters, each with exactly one value; repeating one is a 400."""
    single = event.get("queryStringParameters") or {}
    multi = event.get("multiValueQueryStringParameters") or {}
    if not isinstance(single, Mapping) or not isinstance(multi, Mapping):
        raise BadRequest("invalid_request", "malformed query string")
    found: dict[str, str] = {}
    for name in KNOWN:
        values = multi.get(name)
        if isinstance(values, list) and len(values) > 1:
            raise BadRequest("invalid_parameter", f"{name} must be given once")
        value = single.get(name)
        if value is None and isinstance(values, list) and values:
            value = values[0]
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest("invalid_parameter", f"{name} must be a string")
        found[name] = value
    return found


def _identifier(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    # A lone surrogate ("\ud800" in a hand-made event) has no UTF-8 form: no request to
    # Personalize or the Profile API could carry it.
    problem = id_problem(value)
    if problem is not None:
        raise BadRequest("invalid_parameter", f"{name} {problem}")
    return value
