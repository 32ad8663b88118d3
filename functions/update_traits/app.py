"""Lambda entry point (handler ``app.lambda_handler``), Kinesis event source mapping with
``ReportBatchItemFailures``: the container's runtime, then
:func:`traits_sync.handler.handle_with`."""

from __future__ import annotations

from typing import Any

from traits_sync import runtime
from traits_sync.handler import handle_with


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle_with(runtime.get(), event, context)
