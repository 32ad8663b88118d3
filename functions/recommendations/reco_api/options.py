"""The GET routes' parsers (:data:`reco_api.handler.ROUTES`): the query of
:mod:`reco_api.request`, then the v2 request options (``filter``, ``filterValues.<PARAM>``,
``context.<KEY>``, ``includeMetadata``), read from the typed request's one query multi-map and
validated to Personalize's limits, so a bad one is a 400 naming it and never reaches
Personalize."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common.personalize import (
    MAX_CONTEXT_ENTRIES,
    MAX_CONTEXT_KEY,
    MAX_CONTEXT_VALUE,
    MAX_RESULTS_WITH_METADATA,
    Extras,
)
from reco_api.capabilities import (
    FILTERS,
    METADATA_COLUMNS,
    RELATED_ITEMS,
    Capabilities,
    FilterValueError,
    encode_filter_values,
)
from reco_api.request import BadRequest, Query, parse, parse_related

if TYPE_CHECKING:
    from reco_api.edge import Request
    from reco_api.settings import Settings

CONTEXT_KEY = re.compile(rf"^[A-Za-z0-9_]{{1,{MAX_CONTEXT_KEY}}}$")
FILTER_PREFIX = "filterValues."
CONTEXT_PREFIX = "context."


class NotConfigured(Exception):
    """The route's capability is not deployed; ``setting`` is what would enable it."""

    def __init__(self, setting: str, what: str) -> None:
        super().__init__(f"{what} is not configured ({setting})")
        self.setting = setting
        self.what = what


@dataclass(frozen=True)
class GetRequest:
    query: Query
    related: bool  # /related-items (or its /recommendations?itemId= alias)
    extras: Extras = field(default_factory=Extras)
    include_metadata: bool = False
    filter_name: str | None = None

    @property
    def echo(self) -> dict[str, str]:
        """What the response echoes: userId, or itemId (and userId when given)."""
        out: dict[str, str] = {}
        if self.query.item_id is not None:
            out["itemId"] = self.query.item_id
        if self.query.user_id is not None:
            out["userId"] = self.query.user_id
        return out


def parse_recommendations(request: Request, settings: Settings) -> GetRequest:
    """``GET /recommendations``: a user's recommendations, or (``?itemId=``) the alias of
    ``/related-items``."""
    query = parse(request, settings.num_results)
    return parse_options(request, query, settings.capabilities, related=query.user_id is None)


def parse_related_items(request: Request, settings: Settings) -> GetRequest:
    """``GET /related-items``."""
    query = parse_related(request, settings.num_results)
    return parse_options(request, query, settings.capabilities, related=True)


def related_arn(caps: Capabilities) -> str:
    if caps.related_items_arn is None:
        raise NotConfigured(RELATED_ITEMS, "related items")
    return caps.related_items_arn


def parse_options(
    request: Request, query: Query, caps: Capabilities, *, related: bool
) -> GetRequest:
    pairs = request.query.values
    filter_name = _single(pairs, "filter")
    extras_filter: str | None = None
    filter_values: dict[str, str] = {}
    given = {k[len(FILTER_PREFIX) :]: v for k, v in pairs.items() if k.startswith(FILTER_PREFIX)}
    if filter_name is not None:
        named = (caps.filters or {}).get(filter_name)
        if named is None:
            if not caps.filters:
                raise NotConfigured(FILTERS, "named filters")
            raise BadRequest("invalid_parameter", f"filter: unknown filter {filter_name[:64]!r}")
        extras_filter = named.arn
        for param in named.parameters:
            if param not in given:
                raise BadRequest(
                    "missing_parameter", f"filterValues.{param} is required by filter {named.name}"
                )
        for param, values in given.items():
            name = f"{FILTER_PREFIX}{param}"
            if param not in named.parameters:
                raise BadRequest(
                    "invalid_parameter", f"{name[:80]}: not a parameter of filter {named.name}"
                )
            if len(values) > 1:
                raise BadRequest("invalid_parameter", f"{name} must be given once")
            try:
                filter_values[param] = encode_filter_values(values[0].split(","))
            except FilterValueError as exc:
                raise BadRequest("invalid_parameter", f"{name}: {exc}") from None
    elif given:
        first = next(iter(given))
        raise BadRequest("invalid_parameter", f"{FILTER_PREFIX}{first[:60]} needs filter=<name>")
    context = _context(pairs)
    include_metadata = _boolean(_single(pairs, "includeMetadata"), "includeMetadata")
    columns: tuple[str, ...] = ()
    if include_metadata:
        if not caps.metadata_columns:
            raise NotConfigured(METADATA_COLUMNS, "item metadata")
        columns = caps.metadata_columns
        if query.num_results > MAX_RESULTS_WITH_METADATA:
            if "numResults" in request.query:  # asked for; only the default is cut
                raise BadRequest(
                    "invalid_parameter",
                    f"numResults must be at most {MAX_RESULTS_WITH_METADATA} with includeMetadata",
                )
            query = Query(query.user_id, query.item_id, MAX_RESULTS_WITH_METADATA)
    extras = Extras(
        filter_arn=extras_filter,
        filter_values=filter_values or None,
        context=context or None,
        promotions=caps.promotions,
        metadata_columns=columns,
    )
    return GetRequest(query, related, extras, include_metadata, filter_name)


def validate_context(value: Any, name: str = "context") -> dict[str, str]:
    """A context map from a JSON body: at most 150 entries, keys ``[A-Za-z0-9_]`` up to 150
    characters, string values up to 1000."""
    if not isinstance(value, dict):
        raise BadRequest("invalid_parameter", f"{name} must be an object of strings")
    if len(value) > MAX_CONTEXT_ENTRIES:
        raise BadRequest("invalid_parameter", f"{name} takes at most {MAX_CONTEXT_ENTRIES} entries")
    for key, entry in value.items():
        _context_entry(key, entry, f"{name}.{str(key)[:60]}")
    return dict(value)


def _context(pairs: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, values in pairs.items():
        if not name.startswith(CONTEXT_PREFIX):
            continue
        key = name[len(CONTEXT_PREFIX) :]
        if len(values) > 1:
            raise BadRequest("invalid_parameter", f"{name[:160]} must be given once")
        _context_entry(key, values[0], name[:160])
        found[key] = values[0]
    if len(found) > MAX_CONTEXT_ENTRIES:
        raise BadRequest(
            "invalid_parameter", f"context takes at most {MAX_CONTEXT_ENTRIES} entries"
        )
    return found


def _context_entry(key: Any, value: Any, name: str) -> None:
    if not isinstance(key, str) or not CONTEXT_KEY.match(key):
        raise BadRequest(
            "invalid_parameter",
            f"{name}: context keys are 1-{MAX_CONTEXT_KEY} letters, digits or _",
        )
    if not isinstance(value, str) or len(value) > MAX_CONTEXT_VALUE:
        raise BadRequest(
            "invalid_parameter",
            f"{name} must be a string of at most {MAX_CONTEXT_VALUE} characters",
        )


def _boolean(raw: str | None, name: str) -> bool:
    if raw is None or raw == "false":
        return False
    if raw == "true":
        return True
    raise BadRequest("invalid_parameter", f"{name} must be true or false")


def _single(pairs: Mapping[str, tuple[str, ...]], name: str) -> str | None:
    values = pairs.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("invalid_parameter", f"{name} must be given once")
    return values[0]
