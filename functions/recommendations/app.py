"""Lambda entry point (``app.lambda_handler``): a thin adapter over :mod:`reco_api`."""

from __future__ import annotations

from typing import Any

from reco_api.handler import handle


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return handle(event, context)
