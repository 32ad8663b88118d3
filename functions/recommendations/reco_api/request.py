"""The GET routes' query (``userId`` / ``itemId`` / ``numResults``), read from the typed
:class:`reco_api.edge.Request`: strict about what matters, a 400 naming the parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from common.ids import id_problem
from common.personalize import MAX_RESULTS

if TYPE_CHECKING:
    from reco_api.edge import QueryParams, Request

KNOWN = ("userId", "itemId", "numResults")
# ASCII digits only: int() would also take " 7", "+7", "1_0" and other scripts' digits.
_DIGITS = re.compile(r"[0-9]{1,4}")


class BadRequest(Exception):
    """The caller's request is wrong; ``code`` and ``message`` go in the 400 body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Query(NamedTuple):  # not a frozen dataclass: a tenth of the cold-start cost
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


def parse(request: Request, default_num_results: int) -> Query:
    """``/recommendations?userId=U|itemId=I[&numResults=N]``: exactly one of the ids."""
    params = _parameters(request.query)
    user_id = _identifier(params, "userId")
    item_id = _identifier(params, "itemId")
    if (user_id is None) == (item_id is None):
        raise BadRequest("missing_parameter", "exactly one of userId or itemId is required")
    return Query(user_id, item_id, _num_results(params.get("numResults"), default_num_results))


def parse_related(request: Request, default_num_results: int) -> Query:
    """``/related-items?itemId=I[&userId=U][&numResults=N]``."""
    params = _parameters(request.query)
    item_id = _identifier(params, "itemId")
    if item_id is None:
        raise BadRequest("missing_parameter", "itemId is required")
    user_id = _identifier(params, "userId")
    return Query(user_id, item_id, _num_results(params.get("numResults"), default_num_results))


def _parameters(query: QueryParams) -> dict[str, str]:
    """The known parameters, each with exactly one value; repeating one is a 400."""
    if query.error is not None:
        raise BadRequest("invalid_request", query.error)
    found: dict[str, str] = {}
    for name in KNOWN:
        values = query.get(name)
        if len(values) > 1:
            raise BadRequest("invalid_parameter", f"{name} must be given once")
        if name in query.not_text:
            raise BadRequest("invalid_parameter", f"{name} must be a string")
        if values:
            found[name] = values[0]
    return found


def _num_results(raw: str | None, default: int) -> int:
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_RESULTS:
        raise BadRequest("invalid_parameter", f"numResults must be an integer 1..{MAX_RESULTS}")
    return int(raw)


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
