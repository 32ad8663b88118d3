"""Lambda entry point (handler ``app.lambda_handler``): the start action (EventBridge
Scheduler, ``bundle backfill start``) and the SQS event source mapping (S3 notifications of
batch inference output, chunk messages) with ``ReportBatchItemFailures``. The logic lives in
:mod:`backfill`."""

from __future__ import annotations

from typing import Any

from backfill.handler import handle


def lambda_handler(event: dict[str, Any], context: Any) -> Any:
    return handle(event, context)
