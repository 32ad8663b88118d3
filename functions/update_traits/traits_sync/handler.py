"""The Kinesis event in, the partial batch response out; everything else is delegated.

Response: ``{"batchItemFailures": [{"itemIdentifier": "<sequenceNumber>"}, ...]}``, empty on
full success. A missing or invalid setting (or secret) logs one line naming it and reports
every record for retry: nothing is dead-lettered because of our own configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from common.config import ConfigError
from common.secrets import SecretError
from traits_sync import kinesis, refreshqueue
from traits_sync.budget import Budget
from traits_sync.processor import process, process_refreshes
from traits_sync.runtime import Runtime
from traits_sync.stats import Stats


def handle_with(rt: Runtime, event: Mapping[str, Any], context: Any) -> Any:
    log = rt.logger
    log.bind(requestId=getattr(context, "aws_request_id", None))
    queued = refreshqueue.is_queue_event(event)
    try:
        records = refreshqueue.records(dict(event)) if queued else kinesis.records(event)
    except kinesis.BatchShapeError as exc:
        # Without sequence numbers nothing can be reported one by one: failing the
        # invocation makes Lambda retry the whole batch, so nothing is lost.
        log.error("not a Kinesis or refresh-queue batch", reason=str(exc))
        raise

    settings = rt.settings
    if settings is None:
        return _misconfigured(rt, records, rt.config_error)
    stats = Stats()
    budget = Budget.from_context(context, settings.time_margin_ms)
    try:
        run = process_refreshes if queued else process
        failed = run(records, settings, rt.ports(), budget, stats, log)
    except ConfigError as exc:
        return _misconfigured(rt, records, exc)
    except SecretError as exc:
        log.error(
            "secret unavailable",
            setting=rt.secret_parameters().get(exc.name, "unknown"),
            parameter=exc.name,
            reason=exc.reason,
            permanent=exc.permanent,
        )
        return _retry_all(rt, records, "SecretErrors")

    counts = stats.snapshot()
    metrics = rt.metrics
    for name, value in counts.items():
        metrics.add(name, value)
    metrics.flush()
    log.info(
        "refresh batch processed" if queued else "batch processed",
        **counts,
        skipReasons=dict(stats.skip_reasons),
        failureReasons=dict(stats.failure_reasons),
        secondsLeft=round(budget.remaining(), 3),
    )
    return response(failed)


def response(sequence_numbers: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    return {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers]}


def _misconfigured(
    rt: Runtime, records: Sequence[kinesis.KinesisRecord], exc: ConfigError | None
) -> dict[str, list[dict[str, str]]]:
    rt.logger.error(
        "invalid configuration",
        setting=exc.name if exc else None,
        reason=exc.reason if exc else None,
    )
    return _retry_all(rt, records, "ConfigurationErrors")


def _retry_all(
    rt: Runtime, records: Sequence[kinesis.KinesisRecord], metric: str
) -> dict[str, list[dict[str, str]]]:
    metrics = rt.metrics
    metrics.add("Records", len(records))
    metrics.add("FailedRecords", len(records))
    metrics.add(metric, 1)
    metrics.flush()
    return response([r.sequence_number for r in records])
