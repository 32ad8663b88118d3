"""The Kinesis event in, the partial batch response out; everything else is delegated.

Response: ``{"batchItemFailures": [{"itemIdentifier": "<sequenceNumber>"}, ...]}``, empty on
full success. A missing or invalid setting (or secret) logs one line naming it and reports
every record for retry: nothing is dead-lettered because of our own configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from common.config import ConfigError, environ
from common.log import Logger
from common.metrics import Metrics
from common.secrets import SecretError
from traits_sync import kinesis, runtime
from traits_sync.budget import Budget
from traits_sync.messages import Rules, TrackedEvent, classify
from traits_sync.processor import process
from traits_sync.stats import Stats

SERVICE = "update_traits"

_logger: Logger | None = None


def logger() -> Logger:
    global _logger
    if _logger is None:
        _logger = Logger(SERVICE)
    return _logger


def handle(event: Mapping[str, Any], context: Any, env: Mapping[str, str] | None = None) -> Any:
    env = environ() if env is None else env
    log = logger()
    log.bind(requestId=getattr(context, "aws_request_id", None))
    try:
        records = kinesis.records(event)
    except kinesis.BatchShapeError as exc:
        # Without sequence numbers nothing can be reported one by one: failing the
        # invocation makes Lambda retry the whole batch, so nothing is lost.
        log.error("not a Kinesis batch", reason=str(exc))
        raise

    try:
        state = runtime.get(env)
    except ConfigError as exc:
        log.error("invalid configuration", setting=exc.name, reason=exc.reason)
        return _retry_all(records, env, "ConfigurationErrors")
    settings = state.settings
    stats = Stats()
    budget = Budget.from_context(context, settings.time_margin_ms)
    rules = Rules(
        settings.tracked_events,
        settings.purchase_events,
        settings.item_id_property,
        recommendation_id_property=settings.recommendation_id_property,
        impression_property=settings.impression_property,
    )
    classified = [classify(record, rules) for record in records]
    try:
        if any(isinstance(c, TrackedEvent) and c.user_id is not None for c in classified):
            state.prefetch_secrets()
        ports = state.ports()
    except ConfigError as exc:
        log.error("invalid configuration", setting=exc.name, reason=exc.reason)
        return _retry_all(records, env, "ConfigurationErrors")
    except SecretError as exc:
        log.error(
            "secret unavailable",
            setting=state.secret_parameters().get(exc.name, "unknown"),
            parameter=exc.name,
            reason=exc.reason,
            permanent=exc.permanent,
        )
        return _retry_all(records, env, "SecretErrors")

    failed = process(records, classified, settings, ports, budget, stats, log)
    counts = stats.snapshot()
    metrics = Metrics.from_env(env, SERVICE)
    for name, value in counts.items():
        metrics.add(name, value)
    metrics.flush()
    log.info(
        "batch processed",
        **counts,
        skipReasons=dict(stats.skip_reasons),
        failureReasons=dict(stats.failure_reasons),
        secondsLeft=round(budget.remaining(), 3),
    )
    return response(failed)


def response(sequence_numbers: Sequence[str]) -> dict[str, list[dict[str, str]]]:
    return {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers]}


def _retry_all(
    records: Sequence[kinesis.KinesisRecord], env: Mapping[str, str], metric: str
) -> dict[str, list[dict[str, str]]]:
    metrics = Metrics.from_env(env, SERVICE)
    metrics.add("Records", len(records))
    metrics.add("FailedRecords", len(records))
    metrics.add(metric, 1)
    metrics.flush()
    return response([r.sequence_number for r in records])
