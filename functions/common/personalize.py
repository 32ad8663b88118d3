"""GetRecommendations with validated responses, classified errors, and exclusion."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.aws import error_code, http_status

if TYPE_CHECKING:
    from mypy_boto3_personalize_runtime import PersonalizeRuntimeClient

MAX_RESULTS = 500
# Limits of GetRecommendations / GetPersonalizedRanking (botocore model and API reference).
MAX_RESULTS_WITH_METADATA = 50
MAX_CONTEXT_ENTRIES = 150
MAX_CONTEXT_KEY = 150
MAX_CONTEXT_VALUE = 1000
MAX_FILTER_VALUES = 25
MAX_FILTER_KEY = 50
MAX_FILTER_VALUE = 1000
MAX_METADATA_COLUMNS = 10
MAX_RANKING_ITEMS = 500

_INVALID = {"InvalidInputException", "ValidationException", "InvalidParameterValueException"}
_MISCONFIGURED = {
    "ResourceNotFoundException",
    "AccessDeniedException",
    "UnrecognizedClientException",
}
_THROTTLED = {"ThrottlingException", "TooManyRequestsException", "LimitExceededException"}


class PersonalizeError(Exception):
    """kind: invalid_input, misconfigured, throttled, unavailable, bad_response."""

    def __init__(self, kind: str, code: str) -> None:
        super().__init__(f"{kind}: {code}")
        self.kind = kind
        self.code = code


@dataclass(frozen=True)
class Item:
    item_id: str
    score: float | None
    # Item metadata columns (camelCased by Personalize) when metadataColumns was sent.
    metadata: dict[str, str] | None = None
    promotion_name: str | None = None


@dataclass(frozen=True)
class Extras:
    """Optional GetRecommendations / GetPersonalizedRanking members, already validated."""

    filter_arn: str | None = None
    filter_values: dict[str, str] | None = None
    context: dict[str, str] | None = None
    promotions: tuple[dict[str, Any], ...] = ()
    metadata_columns: tuple[str, ...] = ()

    def params(self, *, promotions: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.filter_arn:
            out["filterArn"] = self.filter_arn
            if self.filter_values:
                out["filterValues"] = dict(self.filter_values)
        if self.context:
            out["context"] = dict(self.context)
        if promotions and self.promotions:
            out["promotions"] = [dict(p) for p in self.promotions]
        if self.metadata_columns:
            out["metadataColumns"] = {"ITEMS": list(self.metadata_columns)}
        return out


@dataclass(frozen=True)
class Recommendations:
    items: list[Item]
    recommendation_id: str | None


def target_parameter(arn: str) -> str:
    """A recommender ARN goes in ``recommenderArn``, anything else in ``campaignArn``."""
    return "recommenderArn" if ":recommender/" in arn else "campaignArn"


def classify(exc: BaseException) -> PersonalizeError:
    code = error_code(exc)
    if code is None:
        # Connection failures, read timeouts after botocore's own retries.
        return PersonalizeError("unavailable", type(exc).__name__)
    if code in _INVALID:
        return PersonalizeError("invalid_input", code)
    if code in _MISCONFIGURED:
        return PersonalizeError("misconfigured", code)
    if code in _THROTTLED:
        return PersonalizeError("throttled", code)
    status = http_status(exc) or 500
    return PersonalizeError("unavailable" if status >= 500 else "bad_response", code)


def get_recommendations(
    client: PersonalizeRuntimeClient,
    arn: str,
    *,
    user_id: str | None = None,
    item_id: str | None = None,
    num_results: int,
    filter_arn: str | None = None,
    extras: Extras | None = None,
) -> Recommendations:
    cap = MAX_RESULTS_WITH_METADATA if extras and extras.metadata_columns else MAX_RESULTS
    params: dict[str, Any] = {
        target_parameter(arn): arn,
        "numResults": max(1, min(num_results, cap)),
    }
    if user_id is not None:
        params["userId"] = user_id
    if item_id is not None:
        params["itemId"] = item_id
    if filter_arn:
        params["filterArn"] = filter_arn
    if extras is not None:
        params.update(extras.params())
    try:
        response = client.get_recommendations(**params)
    except Exception as exc:  # every failure is classified, none swallowed
        raise classify(exc) from exc
    return parse_response(response)


def get_personalized_ranking(
    client: PersonalizeRuntimeClient,
    campaign_arn: str,
    *,
    user_id: str,
    item_ids: list[str],
    extras: Extras | None = None,
) -> Recommendations:
    """GetPersonalizedRanking: ``item_ids`` in the user's order (unknown items last)."""
    params: dict[str, Any] = {"campaignArn": campaign_arn, "userId": user_id, "inputList": item_ids}
    if extras is not None:
        params.update(extras.params(promotions=False))  # ranking takes no promotions
    try:
        response = client.get_personalized_ranking(**params)
    except Exception as exc:
        raise classify(exc) from exc
    return parse_response(response, "personalizedRanking")


def parse_response(response: Any, key: str = "itemList") -> Recommendations:
    if not isinstance(response, dict):
        raise PersonalizeError("bad_response", "not an object")
    raw = response.get(key, [])
    if not isinstance(raw, list):
        raise PersonalizeError("bad_response", f"{key} is not a list")
    items: list[Item] = []
    seen: set[str] = set()
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("itemId"), str):
            raise PersonalizeError("bad_response", "item without itemId")
        if entry["itemId"] in seen:
            continue
        seen.add(entry["itemId"])
        items.append(
            Item(
                entry["itemId"],
                _score(entry.get("score")),
                _metadata(entry.get("metadata")),
                _text(entry.get("promotionName")),
            )
        )
    rid = response.get("recommendationId")
    return Recommendations(items, rid if isinstance(rid, str) else None)


def _score(value: Any) -> float | None:
    """Scores are optional (recommenders may omit them; v2 "Popular item" fillers have none)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _metadata(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int | float)}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def exclude(items: Iterable[Item], excluded: set[str], limit: int) -> list[Item]:
    """Drop excluded items keeping Personalize's order, then cut to ``limit``.

    Not a set operation: a symmetric difference would add the purchases back and lose
    the ranking.
    """
    kept: list[Item] = []
    for item in items:
        if item.item_id in excluded:
            continue
        kept.append(item)
        if len(kept) == limit:
            break
    return kept


def promoted_share(limit: int, percent: int) -> int:
    """How many of ``limit`` items a promotion of ``percent`` takes: Personalize applies
    ``percentPromotedItems`` to the items it is asked for ("the percentage of recommended
    items to apply the promotion to",
    https://docs.aws.amazon.com/personalize/latest/dg/API_RS_Promotion.html). Rounded down:
    never more than a request for ``limit`` items would have had."""
    return limit * percent // 100


def top(items: list[Item], limit: int, promoted: int = 0) -> list[Item]:
    """The first ``limit`` items, holding at least ``promoted`` promoted items when the list
    has them.

    Personalize places promoted items anywhere in its answer, in order among themselves
    (https://docs.aws.amazon.com/personalize/latest/dg/promoting-items.html): asked for more
    than ``limit`` (the exclusion headroom), it may put them all past ``limit``. Those taken
    from past ``limit`` come after the others, in Personalize's order; the lowest-ranked items
    that are not promoted make room. Without a shortfall, this is ``items[:limit]``.
    """
    head = items[:limit]
    missing = promoted - sum(1 for item in head if item.promotion_name)
    if missing <= 0:
        return head
    extra = [item for item in items[limit:] if item.promotion_name][:missing]
    if not extra:
        return head
    drop = len(extra)
    kept: list[Item] = []
    for item in reversed(head):
        if drop and not item.promotion_name:
            drop -= 1
            continue
        kept.append(item)
    kept.reverse()
    return kept + extra


def fetch_size(limit: int, excluded_count: int) -> int:
    """Ask for enough to refill to ``limit`` after exclusion, within Personalize's 500."""
    return min(MAX_RESULTS, limit + excluded_count)
