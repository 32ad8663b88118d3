"""Attribution carried by a tracked event: which recommendation the item came from
(``properties.<RECOMMENDATION_ID_PROPERTY>``, default ``recommendation_id``) and which items
were shown (``properties.<IMPRESSION_PROPERTY>``, default ``impression``), sent to PutEvents
as ``recommendationId`` / ``impression`` so Personalize attributes clicks and learns from
impressions.

Validated to PutEvents' limits (recommendationId 1-40 characters; impression 1-25 item ids of
1-256 characters), and to what a request can carry: text with no UTF-8 form (a lone surrogate
such as ``"\\ud800"``, which JSON may hold) is refused like an over-long value. A value outside
them is left out and counted, never a reason to lose the event itself: the click still counts,
only its attribution is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.ids import MAX_ID_LENGTH, encodable

MAX_RECOMMENDATION_ID = 40
MAX_IMPRESSION = 25
DEFAULT_RECOMMENDATION_ID_PROPERTY = "recommendation_id"
DEFAULT_IMPRESSION_PROPERTY = "impression"


@dataclass(frozen=True)
class Attribution:
    recommendation_id: str | None = None
    impression: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()  # "recommendation_id" / "impression": invalid, left out


def read(
    properties: Any,
    recommendation_id_property: str = DEFAULT_RECOMMENDATION_ID_PROPERTY,
    impression_property: str = DEFAULT_IMPRESSION_PROPERTY,
) -> Attribution:
    if not isinstance(properties, Mapping):
        return Attribution()
    dropped: list[str] = []
    rid = properties.get(recommendation_id_property)
    recommendation_id: str | None = None
    if rid is not None and rid != "":
        if isinstance(rid, str) and len(rid) <= MAX_RECOMMENDATION_ID and encodable(rid):
            recommendation_id = rid
        else:
            dropped.append("recommendation_id")
    shown = properties.get(impression_property)
    impression: tuple[str, ...] = ()
    if shown is not None and shown != []:
        ids = _ids(shown)
        if ids is None:
            dropped.append("impression")
        else:
            impression = ids
    return Attribution(recommendation_id, impression, tuple(dropped))


def _ids(value: Any) -> tuple[str, ...] | None:
    """A list of 1-25 item ids (strings, or integers as decimal text), duplicates removed."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_IMPRESSION:
        return None
    out: list[str] = []
    for entry in value:
        if isinstance(entry, int) and not isinstance(entry, bool):
            entry = str(entry)
        if not isinstance(entry, str) or not 1 <= len(entry) <= MAX_ID_LENGTH:
            return None
        if not encodable(entry):
            return None
        out.append(entry)
    return tuple(dict.fromkeys(out))
