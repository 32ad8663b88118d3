"""A local SQS event source mapping: long-polls a queue (moto) and invokes a handler with
Lambda's SQS event, as an event source mapping with ReportBatchItemFailures does.

- Records carry Lambda's SQS record shape (messageId, receiptHandle, body, attributes with
  ApproximateReceiveCount, eventSource "aws:sqs", eventSourceARN, awsRegion).
- A response's ``batchItemFailures`` leave those messages on the queue (they come back after
  the queue's visibility timeout); the others are deleted. A handler exception, or a
  response naming an id that is not in the batch, fails the whole batch (nothing deleted).
- The queue's redrive policy (maxReceiveCount -> dead-letter queue) is moto's, as in SQS.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RECEIVE_WAIT_S = 1
ERROR_BACKOFF_S = 1.0


@dataclass(frozen=True)
class SqsOutcome:
    """One invocation: how many records, which failed, how long it took."""

    records: int
    failed: int
    duration_s: float
    error: str | None = None


@dataclass
class SqsMappingStats:
    invocations: int = 0
    records: int = 0
    failed: int = 0
    deleted: int = 0
    errors: int = 0


@dataclass
class SqsEventSource:
    sqs: Any
    queue_url: str
    queue_arn: str
    region: str
    invoke: Callable[[dict[str, Any]], Any]
    batch_size: int = 10
    on_batch: Callable[[SqsOutcome], None] | None = None
    stats: SqsMappingStats = field(default_factory=SqsMappingStats)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RECEIVE_WAIT_S + 15)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # moto going away at stop, a transient error: back off
                self.stats.errors += 1
                if self._stop.wait(ERROR_BACKOFF_S):
                    return

    def poll_once(self) -> SqsOutcome | None:
        """One receive and, if it got messages, one invocation; None when the queue was empty."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(self.batch_size, 10)),
            WaitTimeSeconds=RECEIVE_WAIT_S,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages") or []
        if not messages:
            return None
        event = {"Records": [self._record(m) for m in messages]}
        began = time.monotonic()
        error: str | None = None
        try:
            result = self.invoke(event)
            failed_ids = _failed_ids(result, {m["MessageId"] for m in messages})
        except Exception as exc:  # the whole batch fails: every message comes back
            error = f"{type(exc).__name__}: {exc}"
            failed_ids = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        for first in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[first : first + 10])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        outcome = SqsOutcome(len(messages), len(failed_ids), time.monotonic() - began, error)
        self.stats.invocations += 1
        self.stats.records += len(messages)
        self.stats.failed += len(failed_ids)
        self.stats.deleted += len(done)
        if self.on_batch is not None:
            self.on_batch(outcome)
        return outcome

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        body = str(message.get("Body") or "")
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": body,
            "attributes": dict(message.get("Attributes") or {}),
            "messageAttributes": dict(message.get("MessageAttributes") or {}),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's checksum
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }


def _failed_ids(result: Any, batch: set[str]) -> set[str]:
    """The ids a ReportBatchItemFailures response names; a malformed response fails all."""
    if result is None:
        return set()
    if not isinstance(result, dict):
        return set(batch)
    failures = result.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(batch)
    ids: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch:
            return set(batch)  # Lambda treats an unknown or empty id as a failed batch
        ids.add(identifier)
    return ids
