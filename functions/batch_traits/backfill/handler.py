"""Events in, responses out: the start action, or an SQS batch (ReportBatchItemFailures) of
S3 notifications (the splitter) and chunk messages (the worker).

A record that fails is reported in ``batchItemFailures``: SQS delivers it again, and after
``maxReceiveCount`` moves it to the dead-letter queue with its body (for a chunk: its byte
range). On a chunk's last attempt its failure is also recorded in S3, so the job report is
still written and names the range. A message that can never be processed (not JSON, an
unknown shape) is reported too: it ends in the dead-letter queue, never dropped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backfill import chunks, runtime, splitter, start, writer
from common.aws import error_code
from common.config import ConfigError
from common.log import Logger
from common.metrics import Metrics
from common.secrets import SecretError

# Without a Lambda context (a direct call): this much time.
DEFAULT_BUDGET_MS = 60_000


@dataclass(frozen=True)
class _Batch:
    """What every record of one SQS batch is processed with."""

    state: runtime.Runtime
    deadline: float
    log: Logger
    metrics: Metrics


def handle_with(state: runtime.Runtime, event: Mapping[str, Any], context: Any) -> Any:
    """The logic behind the adapter, with the container's runtime given: settings first
    (one clear line naming a bad one, every SQS record reported for retry)."""
    log = state.logger
    log.bind(requestId=getattr(context, "aws_request_id", None))
    error = state.config_error
    if error is not None:
        log.error("invalid configuration", setting=error.name, reason=error.reason)
        if isinstance(event.get("Records"), list):
            return {
                "batchItemFailures": [
                    {"itemIdentifier": str(r.get("messageId"))} for r in event["Records"]
                ]
            }
        return {"error": f"invalid configuration: {error.name} {error.reason}"}
    if event.get("action") == "start":
        try:
            result = start.start(event, state.settings, state.personalize())
        except start.StartError as exc:
            log.error("batch inference job not started", reason=str(exc))
            return {"error": str(exc)}
        except Exception as exc:
            # Personalize refused (LimitExceeded, ResourceAlreadyExists, ...): the invocation
            # fails, so the schedule retries and the errors alarm sees it.
            log.error("batch inference job not started", reason=aws_error(exc))
            raise
        log.info("batch inference job started", job=result["jobName"])
        return result
    records = event.get("Records")
    if not isinstance(records, list):
        log.error("unknown event", keys=sorted(event)[:10])
        raise ValueError("expected {'action': 'start'} or an SQS event")
    batch = _Batch(state, _deadline(context, state.settings.time_margin_ms), log, state.metrics)
    failures: list[dict[str, str]] = []
    for record in records:
        if not _record(record, batch):
            failures.append({"itemIdentifier": str(record.get("messageId"))})
    batch.metrics.flush()
    return {"batchItemFailures": failures}


def _record(record: Mapping[str, Any], batch: _Batch) -> bool:
    """Process one SQS record; False to report it for retry."""
    log, metrics = batch.log, batch.metrics
    message_id = record.get("messageId")
    try:
        body = json.loads(record.get("body") or "")
    except ValueError:
        log.error("message is not JSON", messageId=message_id)
        metrics.add("BadMessages", 1)
        return False
    try:
        if splitter.is_s3_notification(body):
            return _split(body, batch)
        if chunks.is_chunk_message(body):
            return _chunk(chunks.parse_chunk(body), record, batch)
        raise chunks.BadMessage("neither an S3 notification nor a chunk message")
    except chunks.BadMessage as exc:
        log.error("message can never be processed", messageId=message_id, reason=str(exc))
        metrics.add("BadMessages", 1)
        return False


def _split(body: Mapping[str, Any], batch: _Batch) -> bool:
    state, log, metrics = batch.state, batch.log, batch.metrics
    settings = state.settings
    ok = True
    for created in splitter.created_objects(body):
        try:
            result = splitter.split(
                created, state.s3(), state.sqs(), settings.chunk_queue_url, settings.chunk_bytes
            )
        except Exception as exc:  # noqa: BLE001 - any failure: the record is retried by SQS
            log.error("output file not split", key=created.key, reason=type(exc).__name__)
            ok = False
            continue
        if result.job is None:
            log.info("not a job output file, ignored", key=created.key)
            continue
        log.info("output file split", job=result.job, chunks=result.chunks, already=result.already)
        metrics.add("FilesSplit", 0 if result.already else 1)
    return ok


def _chunk(message: chunks.ChunkMessage, record: Mapping[str, Any], batch: _Batch) -> bool:
    state, log, metrics = batch.state, batch.log, batch.metrics
    fields = {
        "job": message.job,
        "index": message.index,
        "start": message.start,
        "end": message.end,
    }
    try:
        state.prefetch_write_key()
        ports = state.ports()
    except (SecretError, ConfigError) as exc:
        log.error("write-back not configured", reason=str(exc), **fields)
        metrics.add("ConfigurationErrors", 1)
        return False
    began = time.monotonic()
    try:
        outcome = writer.process(message, state.settings, ports, batch.deadline)
    except Exception as exc:  # noqa: BLE001 - this record only is retried (then the DLQ)
        failure = (
            exc
            if isinstance(exc, writer.ChunkFailed)
            # The chunk's write-back ran, its bookkeeping did not (a state, the report).
            else writer.ChunkFailed(
                f"{type(exc).__name__}: {aws_error(exc)}",
                message.carried or chunks.Counts(),
                chunks.Counts(),
            )
        )
        receives = _receive_count(record)
        last = receives >= state.settings.max_receive_count
        log.error("chunk failed", reason=failure.reason, receives=receives, last=last, **fields)
        metrics.add("ChunksFailed", 1)
        # What this attempt wrote is sent again by the retry: only its failures count here.
        for reason in chunks.FAILED_REASONS:
            metrics.add(f"UsersFailed_{reason}", failure.own.values[reason])
        if last:
            try:
                writer.record_failure(message, ports, failure)
            except Exception as exc:  # noqa: BLE001 - the message still goes to the DLQ
                log.error("chunk failure not recorded", reason=type(exc).__name__, **fields)
        return False
    elapsed = max(time.monotonic() - began, 1e-6)
    counts = outcome.counts.values
    log.info(
        "chunk processed", status=outcome.status, **fields, **counts, report=outcome.report_written
    )
    if outcome.status != "duplicate":
        # This invocation's part only: a continuation's carried counts were emitted already.
        own = outcome.own.values
        metrics.add("ChunksDone" if outcome.status == "done" else "ChunksContinued", 1)
        metrics.add("UsersWritten", own[chunks.WRITTEN])
        metrics.add("LinesPerSecond", round(own["lines"] / elapsed, 1), "Count/Second")
        for reason in chunks.FAILED_REASONS:
            metrics.add(f"UsersFailed_{reason}", own[reason])
    return True


def aws_error(exc: BaseException) -> str:
    return error_code(exc) or type(exc).__name__


def _receive_count(record: Mapping[str, Any]) -> int:
    attributes = record.get("attributes") or {}
    try:
        return int(attributes.get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def _deadline(context: Any, margin_ms: int) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    left_ms = remaining() if callable(remaining) else DEFAULT_BUDGET_MS
    return time.monotonic() + max(0.0, (left_ms - margin_ms) / 1000)
