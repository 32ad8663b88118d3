"""The edge: the one module that reads API Gateway's event (REST API, Lambda proxy
integration, payload v1). :func:`read` turns the raw event, whatever it holds, into one typed,
frozen :class:`Request`; everything after it takes that object and never the dict (STYLE.md
convention 13, Powertools' ``BaseProxyEvent`` without its import cost).

Payload v1 facts relied on
(https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html#api-gateway-simple-proxy-for-lambda-input-format,
https://docs.aws.amazon.com/lambda/latest/dg/services-apigateway.html):

- ``queryStringParameters`` and ``multiValueQueryStringParameters`` are ``null`` without a
  query string, and ``body`` is ``null`` without a body; the values are already
  percent-decoded (``+`` stays ``+`` only when the caller sent ``%2B``).
- ``multiValueQueryStringParameters`` holds every value of a repeated parameter;
  ``queryStringParameters`` only one of them. **The one precedence rule**: a name's values are
  its ``multiValueQueryStringParameters`` list; ``queryStringParameters`` counts only for a name
  the multi-value map lacks (or gives no list for). API Gateway always sends both maps, in
  agreement; the rule only decides hand-made events (test events, direct invocations).
- ``headers`` holds one value per name as the client spelled it; names are case-insensitive
  (RFC 9110, section 5.1), so :class:`Headers` looks them up in any case.
- ``isBase64Encoded`` says that ``body`` is base64 (binary media types).

Nothing here raises: a malformed event (not an object, maps that are not objects, values that
are not text) becomes a request that says so (``QueryParams.error``, ``QueryParams.not_text``,
``Request.body_error``), and the route's parser answers the 400 it always did, after the
settings, method and route checks that come first.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

# The routes, by their resource path; reco_api.handler.ROUTES maps each to its methods,
# parser and action.
RECOMMENDATIONS = "/recommendations"
RELATED_ITEMS = "/related-items"
RANKINGS = "/rankings"
ROUTES = (RECOMMENDATIONS, RELATED_ITEMS, RANKINGS)

NOT_AN_EVENT = "expected an API Gateway proxy event"
MALFORMED_QUERY = "malformed query string"
BODY_NOT_TEXT = "the body must be JSON text"
BODY_NOT_BASE64 = "the body is not valid base64"

_EMPTY: Mapping[str, tuple[str, ...]] = MappingProxyType({})


class Headers(Mapping[str, str]):
    """Request headers, looked up case-insensitively (``headers["If-None-Match"]`` finds
    ``if-none-match``). Read-only. Entries whose name or value is not text are dropped; of two
    spellings of one name (only a hand-made event has both) the first is kept."""

    __slots__ = ("_by_name",)

    def __init__(self, raw: Any = None) -> None:
        by_name: dict[str, str] = {}
        if isinstance(raw, Mapping):
            for name, value in raw.items():
                if isinstance(name, str) and isinstance(value, str):
                    by_name.setdefault(name.lower(), value)
        self._by_name = by_name

    def __getitem__(self, name: str) -> str:
        return self._by_name[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._by_name

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"Headers({self._by_name!r})"


class QueryParams(NamedTuple):
    """The query string as one multi-map: each name with all its text values, in order.

    ``not_text`` names the parameters that had a value that is not text (dropped from
    ``values``); ``error`` is set when the event's query maps were not objects at all (or the
    event not one), so that the GET routes answer 400 ``invalid_request`` while ``POST
    /rankings``, which reads no query, is unaffected."""

    values: Mapping[str, tuple[str, ...]] = _EMPTY
    not_text: frozenset[str] = frozenset()
    error: str | None = None

    def get(self, name: str) -> tuple[str, ...]:
        """All values of ``name`` (empty when it was not given)."""
        return self.values.get(name, ())

    def __contains__(self, name: object) -> bool:
        """Whether the parameter was given, with text or not."""
        return name in self.values or name in self.not_text


class Request(NamedTuple):
    """One API request, as the rest of the function sees it. Immutable (a NamedTuple rather
    than a frozen dataclass: a tenth of the import cost, which every cold start pays)."""

    method: str = "GET"  # upper case; GET when the event names none
    route: str = RECOMMENDATIONS  # one of ROUTES
    query: QueryParams = QueryParams()
    headers: Headers = Headers()  # read-only, so one empty instance serves every default
    # The body as sent: text, or the bytes its base64 decodes to; None when there is none.
    body: str | bytes | None = None
    body_error: str | None = None  # a body that is not text, or not valid base64
    api_request_id: str | None = None  # requestContext.requestId (API Gateway's)
    lambda_request_id: str | None = None  # the Lambda context's aws_request_id


def read(event: Any, context: Any = None) -> Request:
    """The request an API Gateway proxy event (payload v1) carries. Never raises."""
    lambda_request_id = _text(getattr(context, "aws_request_id", None))
    if not isinstance(event, Mapping):
        return Request(query=QueryParams(error=NOT_AN_EVENT), lambda_request_id=lambda_request_id)
    method = event.get("httpMethod")
    body, body_error = _body(event.get("body"), event.get("isBase64Encoded"))
    request_context = event.get("requestContext")
    query = _query(event.get("multiValueQueryStringParameters"), event.get("queryStringParameters"))
    return Request(
        method=method.upper() if isinstance(method, str) else "GET",
        route=_route(event),
        query=query,
        headers=Headers(event.get("headers")),
        body=body,
        body_error=body_error,
        api_request_id=(
            _text(request_context.get("requestId"))
            if isinstance(request_context, Mapping)
            else None
        ),
        lambda_request_id=lambda_request_id,
    )


def _route(event: Mapping[str, Any]) -> str:
    """``resource`` (the route template), else ``path``; by its last segment, since a custom
    domain's base path may precede it. A request naming none of the routes (a direct
    invocation without them) is a ``/recommendations`` request, as it always was."""
    for key in ("resource", "path"):
        value = event.get(key)
        if isinstance(value, str):
            tail = "/" + value.rstrip("/").rsplit("/", 1)[-1]
            if tail in ROUTES:
                return tail
    return RECOMMENDATIONS


def _query(multi: Any, single: Any) -> QueryParams:
    multi = multi or {}  # null (no query string), and any other empty value
    single = single or {}
    if not isinstance(multi, Mapping) or not isinstance(single, Mapping):
        return QueryParams(error=MALFORMED_QUERY)
    raw: dict[str, list[Any]] = {}
    for name, listed in multi.items():
        if isinstance(name, str) and isinstance(listed, list) and listed:
            raw[name] = listed
    for name, value in single.items():
        if isinstance(name, str) and name not in raw and value is not None:
            raw[name] = [value]  # only where the multi map lacks the name
    found: dict[str, tuple[str, ...]] = {}
    not_text: set[str] = set()
    for name, given in raw.items():
        text = tuple(v for v in given if isinstance(v, str))
        if len(text) != sum(v is not None for v in given):  # null is no value, not a bad one
            not_text.add(name)
        if text:
            found[name] = text
    return QueryParams(MappingProxyType(found), frozenset(not_text))


def _body(raw: Any, base64_encoded: Any) -> tuple[str | bytes | None, str | None]:
    if raw is None or raw == "":
        return None, None
    if not isinstance(raw, str):
        return None, BODY_NOT_TEXT
    if base64_encoded:
        try:
            return base64.b64decode(raw, validate=True), None
        except (binascii.Error, ValueError):
            return None, BODY_NOT_BASE64
    return raw, None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
