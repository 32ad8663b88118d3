"""Lambda entry point (``app.lambda_handler``): the container's runtime, then
:func:`reco_api.handler.handle_with`."""

from __future__ import annotations

from typing import Any

from reco_api import runtime
from reco_api.handler import handle_with


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return handle_with(runtime.get(), event, context)
