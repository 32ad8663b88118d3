"""The API's routes, by their resource path. :func:`reco_api.edge.read` tells which one a
request is for; :data:`reco_api.handler.ROUTES` maps each to its methods, parser and action."""

from __future__ import annotations

RECOMMENDATIONS = "/recommendations"
RELATED_ITEMS = "/related-items"
RANKINGS = "/rankings"
ROUTES = (RECOMMENDATIONS, RELATED_ITEMS, RANKINGS)
