"""API Gateway proxy responses: always a JSON body, never a stack trace."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from common.personalize import Item

JSON = "application/json"


def cors_headers(allowed: Sequence[str], request_origin: str | None) -> dict[str, str]:
    """``*`` as is; with a list, echo the caller's origin only when it is listed."""
    if not allowed:
        return {}
    if tuple(allowed) == ("*",):
        return {"Access-Control-Allow-Origin": "*"}
    headers = {"Vary": "Origin"}
    if request_origin is not None and request_origin in allowed:
        headers["Access-Control-Allow-Origin"] = request_origin
    return headers


def json_response(
    status: int, payload: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON, **(headers or {})},
        "body": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def payload(
    items: Sequence[Item],
    recommendation_id: str | None,
    echo: Mapping[str, str],
    include_metadata: bool = False,
) -> dict[str, Any]:
    """The 200 body: items in Personalize's order, its recommendationId, the echoed ids;
    ``metadata`` on each item when asked for, ``promotionName`` on promoted items."""
    listed: list[dict[str, Any]] = []
    for item in items:
        entry: dict[str, Any] = {"itemId": item.item_id, "score": item.score}
        if include_metadata:
            entry["metadata"] = item.metadata or {}
        if item.promotion_name is not None:
            entry["promotionName"] = item.promotion_name
        listed.append(entry)
    return {"items": listed, "recommendationId": recommendation_id, **echo}


def preflight(allowed: Sequence[str], request_origin: str | None) -> dict[str, Any]:
    """Browsers send OPTIONS first because of the x-api-key header."""
    headers = cors_headers(allowed, request_origin)
    if "Access-Control-Allow-Origin" in headers:
        headers.update(
            {
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, X-Api-Key",
                "Access-Control-Max-Age": "600",
            }
        )
    return {"statusCode": 204, "headers": headers, "body": "", "isBase64Encoded": False}
