"""Which route an API Gateway proxy event is for: ``resource`` (the route template), else
the path's last segment (a custom domain's base path may precede it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECOMMENDATIONS = "/recommendations"
RELATED_ITEMS = "/related-items"
RANKINGS = "/rankings"
ROUTES = (RECOMMENDATIONS, RELATED_ITEMS, RANKINGS)


def of(event: Any) -> str:
    if not isinstance(event, Mapping):
        return RECOMMENDATIONS
    for key in ("resource", "path"):
        value = event.get(key)
        if isinstance(value, str):
            tail = "/" + value.rstrip("/").rsplit("/", 1)[-1]
            if tail in ROUTES:
                return tail
    return RECOMMENDATIONS
