"""Events in, responses out: the start action, or an SQS batch (ReportBatchItemFailures) of
S3 notifications (the splitter) and chunk messages (the worker).

A record that fails is reported in ``batchItemFailures``: SQS delivers it again, and after
``maxReceiveCount`` moves it to the dead-letter queue with its body (for a chunk: its byte
range). A chunk's last receive first records it as failed in S3 (``LAST_RECEIVE_REASON``),
so that a kill (timeout, out of memory) still leaves a state and the job's report names the
range; the receive's outcome then overwrites it (done, or failed with its reason). A message
that can never be processed (not JSON, an unknown shape) is reported too: it ends in the
dead-letter queue, never dropped.

All records of a batch share one deadline. A record whose turn comes after it (or that
could not do one line before it) is not failed: its body goes back on the queue unchanged,
as a NEW message, and the one received is deleted. A failure would spend one of its
``maxReceiveCount`` receives (SQS counts every receive, ChangeMessageVisibility included)
although nothing was wrong with it, and after a few unlucky batches the chunk would be
recorded failed with none of its users written. A new message starts its count afresh, so
a chunk that was never started can never be recorded failed for lack of time. This cannot
loop for ever: the first record of every batch has the whole budget and either makes
progress or fails on its own account (bounded by maxReceiveCount), so a record is handed
back only while others make progress.

The hand-overs of a batch (those records and the chunks' continuations) are sent together
at the end, in one SendMessageBatch: after the deadline only that call is left to make.
"""

from __future__ import annotations

import json
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
HANDOFF_BATCH = 10  # SendMessageBatch entries per call (the mapping's batch_size is <= 10)


class StartFailed(Exception):
    """The start action refused or failed. Raised, not returned: EventBridge Scheduler
    invokes the function asynchronously, so only a failed invocation reaches the retries
    and the on-failure destination (and the errors alarm)."""


@dataclass(frozen=True)
class _Batch:
    """What every record of one SQS batch is processed with."""

    state: runtime.Runtime
    deadline: float
    log: Logger
    metrics: Metrics

    def in_time(self) -> bool:
        return self.state.clock() < self.deadline


@dataclass(frozen=True)
class _Handoff:
    """A record's work to put back on the queue: a continuation, or its own body."""

    record_id: str
    body: str
    fields: Mapping[str, Any]


_Result = bool | _Handoff


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
        raise StartFailed(f"invalid configuration: {error.name} {error.reason}")
    if event.get("action") == "start":
        try:
            result = start.start(event, state.settings, state.personalize())
        except start.StartError as exc:
            log.error("batch inference job not started", reason=str(exc))
            raise StartFailed(str(exc)) from None
        except Exception as exc:
            # Personalize refused (LimitExceeded, ResourceAlreadyExists, ...): the invocation
            # fails, so the schedule's retry and on-failure queue and the errors alarm see it.
            log.error("batch inference job not started", reason=aws_error(exc))
            raise
        log.info("batch inference job started", job=result["jobName"])
        return result
    records = event.get("Records")
    if not isinstance(records, list):
        log.error("unknown event", keys=sorted(event)[:10])
        raise ValueError("expected {'action': 'start'} or an SQS event")
    batch = _Batch(
        state,
        _deadline(state, context, state.settings.time_margin_ms),
        log,
        state.metrics,
    )
    failures: list[str] = []
    handoffs: list[_Handoff] = []
    for position, record in enumerate(records):
        record_id = str(record.get("messageId"))
        if position > 0 and not batch.in_time():
            # Its turn came after the deadline: back unchanged, not started, not failed.
            handoffs.append(_Handoff(record_id, str(record.get("body") or ""), {}))
            batch.metrics.add("RecordsDeferred", 1)
            continue
        outcome = _record(record, batch, deferrable=position > 0)
        if isinstance(outcome, _Handoff):
            handoffs.append(outcome)
        elif not outcome:
            failures.append(record_id)
    if handoffs:
        log.info("handing over", records=len(handoffs))
        failures += _hand_over(handoffs, batch)
    batch.metrics.flush()
    return {"batchItemFailures": [{"itemIdentifier": r} for r in failures]}


def _record(record: Mapping[str, Any], batch: _Batch, *, deferrable: bool) -> _Result:
    """Process one SQS record; False to report it for retry, a _Handoff to queue."""
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
            return _split(body, record, batch, deferrable=deferrable)
        if chunks.is_chunk_message(body):
            return _chunk(chunks.parse_chunk(body), record, batch, deferrable=deferrable)
        raise chunks.BadMessage("neither an S3 notification nor a chunk message")
    except chunks.BadMessage as exc:
        log.error("message can never be processed", messageId=message_id, reason=str(exc))
        metrics.add("BadMessages", 1)
        return False


def _split(
    body: Mapping[str, Any], record: Mapping[str, Any], batch: _Batch, *, deferrable: bool
) -> _Result:
    state, log, metrics = batch.state, batch.log, batch.metrics
    settings = state.settings
    # Each call checks the deadline, unless the record had no time from the start.
    check = writer.checker(state.clock, batch.deadline) if batch.in_time() else _no_check
    ok = True
    for created in splitter.created_objects(body):
        try:
            result = splitter.split(
                created,
                state.s3(),
                state.sqs(),
                settings.chunk_queue_url,
                settings.chunk_bytes,
                check,
            )
        except writer.OutOfTime:
            # Out of time before the split was done: the notification again (its chunk
            # messages sent so far are sent again; their states make that harmless).
            log.info("output file split handed over", key=created.key)
            metrics.add("RecordsDeferred", 1)
            return _Handoff(str(record.get("messageId")), str(record.get("body") or ""), {})
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


def _no_check() -> None:
    return None


def _chunk(
    message: chunks.ChunkMessage, record: Mapping[str, Any], batch: _Batch, *, deferrable: bool
) -> _Result:
    state, log, metrics = batch.state, batch.log, batch.metrics
    record_id = str(record.get("messageId"))
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
    receives = _receive_count(record)
    last = receives >= state.settings.max_receive_count
    started_late = not batch.in_time()
    # What may still be done past the deadline: nothing, unless the record had no time at
    # all from the start (then it takes its one step regardless, see writer.process).
    check = _no_check if started_late else writer.checker(ports.clock, batch.deadline)

    def record_last_receive() -> None:
        # Recorded failed now, overwritten by this receive's outcome: a kill (timeout, out
        # of memory) leaves this state, and the job's report names the range.
        carried = message.carried or chunks.Counts()
        try:
            writer.record_failure(
                message, ports, writer.ChunkFailed(writer.LAST_RECEIVE_REASON, carried), check
            )
        except Exception as exc:  # noqa: BLE001 - the chunk is still processed
            log.error("last receive not recorded", reason=aws_error(exc), **fields)

    if last and not deferrable:
        record_last_receive()
    began = state.clock()
    try:
        outcome = writer.process(
            message,
            state.settings,
            ports,
            batch.deadline,
            deferrable=deferrable,
            # A later record of the batch may still go back unchanged until it sends: it is
            # recorded then, so that one never started is never recorded failed.
            before_first_send=record_last_receive if last and deferrable else None,
        )
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
        log.error("chunk failed", reason=failure.reason, receives=receives, last=last, **fields)
        metrics.add("ChunksFailed", 1)
        # What this attempt wrote is sent again by the retry: only its failures count here.
        for reason in chunks.FAILED_REASONS:
            metrics.add(f"UsersFailed_{reason}", failure.own.values[reason])
        if last:
            try:
                writer.record_failure(message, ports, failure, check)
            except writer.OutOfTime:
                log.info("chunk failure left as recorded at the start", **fields)
            except Exception as exc:  # noqa: BLE001 - the message still goes to the DLQ
                log.error("chunk failure not recorded", reason=type(exc).__name__, **fields)
        return False
    elapsed = max(state.clock() - began, 1e-6)
    counts = outcome.counts.values
    log.info(
        "chunk processed", status=outcome.status, **fields, **counts, report=outcome.report_written
    )
    if outcome.status == "deferred":
        metrics.add("RecordsDeferred", 1)
    elif outcome.status == "superseded":
        metrics.add("ChunksSuperseded", 1)
    elif outcome.status != "duplicate":
        # This invocation's part only: a continuation's carried counts were emitted already.
        own = outcome.own.values
        metrics.add("ChunksDone" if outcome.status == "done" else "ChunksContinued", 1)
        metrics.add("UsersWritten", own[chunks.WRITTEN])
        metrics.add("LinesPerSecond", round(own["lines"] / elapsed, 1), "Count/Second")
        for reason in chunks.FAILED_REASONS:
            metrics.add(f"UsersFailed_{reason}", own[reason])
    if outcome.handoff is not None:
        return _Handoff(record_id, outcome.handoff.body(), {**fields, "last": last})
    return True


def _hand_over(handoffs: list[_Handoff], batch: _Batch) -> list[str]:
    """Queue the hand-overs (SendMessageBatch); the records whose message was not accepted
    (reported failed: SQS delivers them again, and their retry redoes that part)."""
    state, log = batch.state, batch.log
    failed: list[str] = []
    for first in range(0, len(handoffs), HANDOFF_BATCH):
        group = {str(n): h for n, h in enumerate(handoffs[first : first + HANDOFF_BATCH])}
        entries = [{"Id": n, "MessageBody": h.body} for n, h in group.items()]
        try:
            response = state.ports().sqs.send_message_batch(
                QueueUrl=state.settings.chunk_queue_url, Entries=entries
            )
        except Exception as exc:  # noqa: BLE001 - every record of the group is retried
            log.error("hand-over not queued", reason=aws_error(exc), records=len(group))
            failed += [h.record_id for h in group.values()]
            continue
        accepted = {str(ok.get("Id")) for ok in response.get("Successful", [])}
        for n, handoff in group.items():
            if n not in accepted:
                # On a last receive its state says failed since the start: left so.
                log.error("hand-over not queued", reason="refused", **handoff.fields)
                failed.append(handoff.record_id)
    batch.metrics.add("ChunksFailed", len(failed))
    return failed


def aws_error(exc: BaseException) -> str:
    return error_code(exc) or type(exc).__name__


def _receive_count(record: Mapping[str, Any]) -> int:
    attributes = record.get("attributes") or {}
    try:
        return int(attributes.get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def _deadline(state: runtime.Runtime, context: Any, margin_ms: int) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    left_ms = remaining() if callable(remaining) else DEFAULT_BUDGET_MS
    return state.clock() + max(0.0, (left_ms - margin_ms) / 1000)
