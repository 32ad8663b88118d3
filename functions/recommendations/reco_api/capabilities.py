"""The v2 settings: one per capability (related items, ranking), named filters, the promotion,
item metadata columns and response caching. Each problem raises ConfigError naming the
variable; every limit is Personalize's own (botocore model of personalize-runtime).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.config import ConfigError, env_arn
from common.personalize import (
    MAX_FILTER_KEY,
    MAX_FILTER_VALUE,
    MAX_FILTER_VALUES,
    MAX_METADATA_COLUMNS,
)
from common.settings import Arn, Integer, Parsed, Setting

RELATED_ITEMS = "PERSONALIZE_RELATED_ITEMS_ARN"
RANKING = "PERSONALIZE_RANKING_CAMPAIGN_ARN"
FILTERS = "PERSONALIZE_FILTERS"
PROMOTIONS = "PERSONALIZE_PROMOTIONS"
METADATA_COLUMNS = "ITEM_METADATA_COLUMNS"
CACHE_MAX_AGE = "CACHE_MAX_AGE_S"

FILTER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
FILTER_PARAMETER = re.compile(rf"^[A-Za-z0-9_]{{1,{MAX_FILTER_KEY}}}$")
PROMOTION_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,62}$")
# Items dataset column names: Avro field names.
COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,149}$")
MAX_PROMOTIONS = 1  # GetRecommendations takes at most one promotion
MAX_CACHE_AGE_S = 3600


def _json_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise ValueError("must be JSON") from None


def _column_list(raw: str) -> tuple[str, ...]:
    columns = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not columns or len(columns) > MAX_METADATA_COLUMNS:
        raise ValueError(f"must name 1 to {MAX_METADATA_COLUMNS} Items dataset columns")
    for column in columns:
        if not COLUMN.match(column):
            raise ValueError(f"not a column name: {column[:60]!r}")
    return columns


RELATED_ITEMS_ARN = Setting(
    RELATED_ITEMS,
    Arn(("campaign", "recommender")),
    "SIMS campaign or related-items recommender for `/related-items` and `?itemId=`; unset: "
    "they answer 404 `not_configured`",
)
RANKING_CAMPAIGN_ARN = Setting(
    RANKING,
    Arn(("campaign",)),
    "personalized-ranking campaign for `POST /rankings`; unset: 404 `not_configured`",
)
NAMED_FILTERS = Setting(
    FILTERS,
    Parsed(_json_text, "JSON object"),
    'JSON `{"name": "filter ARN"}` or `{"name": {"arn": "...", "parameters": ["GENRES"]}}`: '
    "the filters `filter=<name>` chooses, with their `$PARAM` names",
)
PROMOTION = Setting(
    PROMOTIONS,
    Parsed(_json_text, "JSON list"),
    'JSON list of at most one promotion `{"name", "percentPromotedItems" (1-100), "filter" '
    '(a PERSONALIZE_FILTERS name) or "filterArn", "filterValues"?}`, sent on every GET',
)
ITEM_METADATA_COLUMNS = Setting(
    METADATA_COLUMNS,
    Parsed(_column_list, f"comma-separated column names (1-{MAX_METADATA_COLUMNS})"),
    f"comma-separated Items columns (at most {MAX_METADATA_COLUMNS}) for "
    "`includeMetadata=true`; the campaign or recommender needs metadata enabled",
)
CACHE_MAX_AGE_SETTING = Setting(
    CACHE_MAX_AGE,
    Integer(0, MAX_CACHE_AGE_S),
    "`Cache-Control: private, max-age=N` on GET 200s; 0 sends `no-store`",
    default="0",
)
SETTINGS: tuple[Setting[Any], ...] = (
    RELATED_ITEMS_ARN,
    RANKING_CAMPAIGN_ARN,
    NAMED_FILTERS,
    PROMOTION,
    ITEM_METADATA_COLUMNS,
    CACHE_MAX_AGE_SETTING,
)


class FilterValueError(ValueError):
    """A filter value Personalize cannot take; the message names what is wrong."""


@dataclass(frozen=True)
class NamedFilter:
    name: str
    arn: str
    # The $PARAM names of its expression: each must be given, no other may be.
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    related_items_arn: str | None = None
    ranking_arn: str | None = None
    filters: Mapping[str, NamedFilter] | None = None
    promotions: tuple[dict[str, Any], ...] = ()
    metadata_columns: tuple[str, ...] = ()
    cache_max_age_s: int = 0


def load(env: Mapping[str, str]) -> Capabilities:
    filters = _filters(env)
    return Capabilities(
        related_items_arn=RELATED_ITEMS_ARN.read(env),
        ranking_arn=RANKING_CAMPAIGN_ARN.read(env),
        filters=filters,
        promotions=_promotions(env, filters),
        metadata_columns=ITEM_METADATA_COLUMNS.read(env) or (),
        cache_max_age_s=CACHE_MAX_AGE_SETTING.value(env),
    )


def encode_filter_values(values: Sequence[str]) -> str:
    """Personalize's form for several values of one parameter: ``"a","b"``, each value
    without the spaces around it (``a, b`` is ``"a","b"``).

    Personalize quotes each value and separates them with commas, and documents no escape
    inside the quotes (https://docs.aws.amazon.com/personalize/latest/dg/filter-real-time.html;
    GetRecommendations ``filterValues``: "Separate multiple values for one parameter with a
    comma", https://docs.aws.amazon.com/personalize/latest/dg/API_RS_GetRecommendations.html).
    So a ``"`` would end the value and a backslash could only be read as an escape: both are
    refused, by name, rather than sent for Personalize to guess.
    """
    if not values:
        raise FilterValueError("needs at least one value")
    trimmed = [value.strip() for value in values]
    for value in trimmed:
        if value == "":
            raise FilterValueError("values must not be empty")
        if '"' in value:
            raise FilterValueError('values must not contain "')
        if "\\" in value:
            raise FilterValueError("values must not contain \\ (Personalize has no escape)")
    encoded = ",".join(f'"{value}"' for value in trimmed)
    if len(encoded) > MAX_FILTER_VALUE:
        raise FilterValueError(
            f"too many or too long values: at most {MAX_FILTER_VALUE} characters once quoted"
        )
    return encoded


def _filters(env: Mapping[str, str]) -> dict[str, NamedFilter]:
    """``{"name": "arn"}`` or ``{"name": {"arn": "...", "parameters": ["GENRES"]}}``."""
    raw = NAMED_FILTERS.read(env)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(FILTERS, "must be a JSON object of filter name to ARN")
    found: dict[str, NamedFilter] = {}
    for name, spec in raw.items():
        if not FILTER_NAME.match(name):
            raise ConfigError(FILTERS, f"filter names are 1-64 of A-Z a-z 0-9 _ -: {name[:70]!r}")
        if isinstance(spec, str):
            spec = {"arn": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("arn"), str):
            raise ConfigError(FILTERS, f"{name}: needs an ARN")
        arn = env_arn({FILTERS: spec["arn"]}, FILTERS, required=True, kinds=("filter",))
        assert arn is not None
        params = spec.get("parameters", [])
        if (
            not isinstance(params, list)
            or len(params) > MAX_FILTER_VALUES
            or not all(isinstance(p, str) and FILTER_PARAMETER.match(p) for p in params)
        ):
            raise ConfigError(
                FILTERS,
                f"{name}: parameters must be at most {MAX_FILTER_VALUES} names of "
                f"1-{MAX_FILTER_KEY} letters, digits or _",
            )
        found[name] = NamedFilter(name, arn, tuple(dict.fromkeys(params)))
    return found


def _promotions(
    env: Mapping[str, str], filters: Mapping[str, NamedFilter]
) -> tuple[dict[str, Any], ...]:
    """``[{"name", "percentPromotedItems", "filter" (a PERSONALIZE_FILTERS name) or
    "filterArn", "filterValues"?: {"PARAM": ["a", "b"]}}]``, sent as Personalize's Promotion."""
    raw = PROMOTION.read(env)
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_PROMOTIONS:
        raise ConfigError(PROMOTIONS, f"must be a JSON list of at most {MAX_PROMOTIONS} promotion")
    out: list[dict[str, Any]] = []
    for spec in raw:
        if not isinstance(spec, dict):
            raise ConfigError(PROMOTIONS, "each promotion must be an object")
        name = spec.get("name")
        if not isinstance(name, str) or not PROMOTION_NAME.match(name):
            raise ConfigError(PROMOTIONS, "name must be 1-63 of A-Z a-z 0-9 - _, starting alnum")
        percent = spec.get("percentPromotedItems")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            raise ConfigError(PROMOTIONS, f"{name}: percentPromotedItems must be 1..100")
        if isinstance(spec.get("filter"), str):
            named = filters.get(spec["filter"])
            if named is None:
                raise ConfigError(
                    PROMOTIONS, f"{name}: filter {spec['filter']!r} is not in {FILTERS}"
                )
            filter_arn: str | None = named.arn
        else:
            filter_arn = env_arn(
                {PROMOTIONS: spec.get("filterArn") or ""},
                PROMOTIONS,
                required=True,
                kinds=("filter",),
            )
        values = spec.get("filterValues") or {}
        if not isinstance(values, dict) or len(values) > MAX_FILTER_VALUES:
            raise ConfigError(PROMOTIONS, f"{name}: filterValues must be a map of at most 25")
        encoded: dict[str, str] = {}
        for param, given in values.items():
            if not FILTER_PARAMETER.match(param):
                raise ConfigError(PROMOTIONS, f"{name}: bad filter parameter name {param[:60]!r}")
            listed = [given] if isinstance(given, str) else given
            if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
                raise ConfigError(PROMOTIONS, f"{name}: filterValues.{param} must be strings")
            try:
                encoded[param] = encode_filter_values(listed)
            except FilterValueError as exc:
                raise ConfigError(PROMOTIONS, f"{name}: filterValues.{param} {exc}") from None
        promotion: dict[str, Any] = {
            "name": name,
            "percentPromotedItems": percent,
            "filterArn": filter_arn,
        }
        if encoded:
            promotion["filterValues"] = encoded
        out.append(promotion)
    return tuple(out)
