"""``POST /rankings``: GetPersonalizedRanking of the caller's item ids for one user, with the
user's purchased items removed on request. The body is validated field by field, so a bad
one is a 400 naming the field and never reaches Personalize."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common import settings as shared
from common.ids import id_problem
from common.personalize import (
    MAX_RANKING_ITEMS,
    MAX_RESULTS_WITH_METADATA,
    Extras,
    exclude,
    get_personalized_ranking,
)
from common.recommend import Served
from reco_api.capabilities import METADATA_COLUMNS, RANKING
from reco_api.options import NotConfigured, validate_context
from reco_api.request import BadRequest

if TYPE_CHECKING:
    from mypy_boto3_personalize_runtime import PersonalizeRuntimeClient

    from reco_api.edge import Request
    from reco_api.runtime import Runtime
    from reco_api.settings import Settings

FIELDS = ("userId", "itemIds", "context", "excludePurchased", "includeMetadata")
MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class RankingRequest:
    user_id: str
    item_ids: list[str]
    exclude_purchased: bool = False
    include_metadata: bool = False
    extras: Extras = field(default_factory=Extras)


def parse(request: Request, settings: Settings) -> RankingRequest:
    caps = settings.capabilities
    body = _json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("invalid_body", "the body must be a JSON object")
    for name in body:
        if name not in FIELDS:
            raise BadRequest("invalid_parameter", f"{str(name)[:60]}: unknown field")
    user_id = body.get("userId")
    if user_id is None:
        raise BadRequest("missing_parameter", "userId is required")
    _check_id(user_id, "userId")
    item_ids = body.get("itemIds")
    if item_ids is None:
        raise BadRequest("missing_parameter", "itemIds is required")
    if not isinstance(item_ids, list) or not 1 <= len(item_ids) <= MAX_RANKING_ITEMS:
        raise BadRequest(
            "invalid_parameter", f"itemIds must be a list of 1 to {MAX_RANKING_ITEMS} item ids"
        )
    seen: set[str] = set()
    for index, item in enumerate(item_ids):
        _check_id(item, f"itemIds[{index}]")
        if item in seen:
            raise BadRequest("invalid_parameter", f"itemIds[{index}] is a duplicate")
        seen.add(item)
    exclude = _flag(body, "excludePurchased")
    metadata = _flag(body, "includeMetadata")
    context = validate_context(body["context"]) if "context" in body else None
    columns: tuple[str, ...] = ()
    if metadata:
        if not caps.metadata_columns:
            raise NotConfigured(METADATA_COLUMNS, "item metadata")
        if len(item_ids) > MAX_RESULTS_WITH_METADATA:
            raise BadRequest(
                "invalid_parameter",
                f"itemIds takes at most {MAX_RESULTS_WITH_METADATA} ids with includeMetadata",
            )
        columns = caps.metadata_columns
    return RankingRequest(
        user_id,
        list(item_ids),
        exclude,
        metadata,
        Extras(context=context or None, metadata_columns=columns),
    )


def serve(
    rt: Runtime, request: RankingRequest, client: Callable[[], PersonalizeRuntimeClient]
) -> Served:
    """GetPersonalizedRanking, with the user's purchases read alongside when asked to drop
    them. ``client`` gives the Personalize client the time left allows (it raises
    OutOfTime when none fits). Raises NotConfigured, ConfigError or PersonalizeError for
    the handler to map."""
    assert rt.settings is not None
    arn = rt.settings.capabilities.ranking_arn
    if arn is None:
        raise NotConfigured(RANKING, "ranking")
    reader = rt.purchases() if request.exclude_purchased else None
    if request.exclude_purchased and reader is None:
        raise NotConfigured(shared.SEGMENT_SPACE_ID.name, "purchased-item exclusion")
    pending = reader.start(request.user_id) if reader is not None else None
    ranked = get_personalized_ranking(
        client(),
        arn,
        user_id=request.user_id,
        item_ids=request.item_ids,
        extras=request.extras,
    )
    if pending is None:
        return Served(ranked.items, ranked.recommendation_id, "off")
    purchases = pending.wait()
    if purchases.ids is None:
        return Served(ranked.items, ranked.recommendation_id, "unavailable", purchases.reason)
    kept = exclude(ranked.items, set(purchases.ids), len(ranked.items))
    return Served(
        kept,
        ranked.recommendation_id,
        "applied",
        purchased=len(purchases.ids),
        excluded=len(ranked.items) - len(kept),
        malformed_trait=purchases.malformed,
    )


def _flag(body: Mapping[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):  # null too: the document says boolean
        raise BadRequest("invalid_parameter", f"{name} must be true or false")
    return value


def _check_id(value: Any, name: str) -> None:
    if not isinstance(value, str):
        raise BadRequest("invalid_parameter", f"{name} must be a string")
    # The GET routes' check: a JSON body may carry a lone surrogate ("\ud800"), which no
    # request to Personalize could (botocore would fail encoding it: a 500).
    problem = id_problem(value)
    if problem is not None:
        raise BadRequest("invalid_parameter", f"{name} {problem}")


def _json_body(request: Request) -> Any:
    if request.body_error is not None:
        raise BadRequest("invalid_body", request.body_error)
    if request.body is None:
        raise BadRequest("invalid_body", "a JSON body is required")
    if len(request.body) > MAX_BODY_BYTES:
        raise BadRequest("invalid_body", "the body is too large")
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("invalid_body", "the body is not valid JSON") from None
