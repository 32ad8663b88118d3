"""Lambda entry point (handler ``app.lambda_handler``), Kinesis event source mapping with
``ReportBatchItemFailures``. The logic lives in :mod:`traits_sync`."""

from __future__ import annotations

from typing import Any

from traits_sync.handler import handle


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context)
