"""The refresh queue: deferred refreshes, sent with a delay and consumed by this function.

A user refreshed less than ``MIN_REFRESH_INTERVAL_S`` ago is not refreshed again at
once; a message asks for a *trailing* refresh when the window ends, so the trait still
reflects every event within that window plus the queue's delivery time. Body:
``{"v": 1, "userId", "after", "watermark"}``: ``after`` (epoch seconds) is when this
function's PutEvents for those events had completed; a refresh whose GetRecommendations
started at or after it already covers them, and the message is then dropped (superseded).

SQS delays a message by ``DelaySeconds`` (at most 900) per entry of a SendMessageBatch
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatchRequestEntry.html).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.aws import error_code
from common.chunks import bounded
from common.ids import MAX_ID_LENGTH
from traits_sync.kinesis import BatchShapeError, KinesisRecord

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_ENTRIES = 10
MAX_DELAY_S = 900
VERSION = 1


@dataclass(frozen=True)
class Deferred:
    """A refresh to do later: ``delay_s`` from now, unless one started after ``after``."""

    user_id: str
    after: float
    delay_s: float
    watermark: int | None = None

    def body(self) -> str:
        return json.dumps(
            {
                "v": VERSION,
                "userId": self.user_id,
                "after": self.after,
                "watermark": self.watermark,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )


class BadRefresh(ValueError):
    """A refresh-queue message this function did not write (or a future version's)."""


def parse(body: str) -> Deferred:
    try:
        message = json.loads(body)
    except ValueError:
        raise BadRefresh("not JSON") from None
    if not isinstance(message, dict) or message.get("v") != VERSION:
        raise BadRefresh("not a version 1 refresh message")
    user, after, watermark = message.get("userId"), message.get("after"), message.get("watermark")
    if not isinstance(user, str) or not 0 < len(user) <= MAX_ID_LENGTH:
        raise BadRefresh("userId must be a non-empty string")
    if isinstance(after, bool) or not isinstance(after, int | float) or not math.isfinite(after):
        raise BadRefresh("after must be a number")
    if watermark is not None and (isinstance(watermark, bool) or not isinstance(watermark, int)):
        raise BadRefresh("watermark must be an integer or null")
    return Deferred(user, float(after), 0.0, watermark)


class RefreshQueue:
    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def send(self, deferred: Sequence[Deferred]) -> list[tuple[Deferred, str]]:
        """Send every message with its own delay; returns the ones not sent, with why."""
        failed: list[tuple[Deferred, str]] = []
        for chunk in bounded(list(deferred), lambda _: 0, max_count=MAX_ENTRIES):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {
                    "Id": str(index),
                    "MessageBody": item.body(),
                    "DelaySeconds": min(MAX_DELAY_S, max(0, math.ceil(item.delay_s))),
                }
                for index, item in enumerate(chunk)
            ]
            try:
                response: Any = self._sqs.send_message_batch(
                    QueueUrl=self._queue_url, Entries=entries
                )
            except Exception as exc:  # noqa: BLE001 - the caller reports the records for retry
                failed += [(item, error_code(exc) or type(exc).__name__) for item in chunk]
                continue
            refused = {
                str(entry.get("Id")): str(entry.get("Code") or "Failed")
                for entry in response.get("Failed") or []
            }
            failed += [(item, refused[str(i)]) for i, item in enumerate(chunk) if str(i) in refused]
        return failed


def is_queue_event(event: Any) -> bool:
    """Whether a Lambda event is an SQS batch (the refresh queue) rather than Kinesis."""
    raw = event.get("Records") if isinstance(event, dict) else None
    return (
        isinstance(raw, list)
        and bool(raw)
        and isinstance(raw[0], dict)
        and raw[0].get("eventSource") == "aws:sqs"
    )


def records(event: dict[str, Any]) -> list[KinesisRecord]:
    """An SQS event's messages as records: the messageId names each in batchItemFailures
    (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html), and the
    body travels base64-encoded like a Kinesis record's data (the dead-letter format)."""
    out: list[KinesisRecord] = []
    for entry in event.get("Records") or []:
        message_id = entry.get("messageId") if isinstance(entry, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise BatchShapeError("an SQS record has no messageId")
        body = entry.get("body")
        text = body if isinstance(body, str) else ""
        out.append(
            KinesisRecord(
                sequence_number=message_id,
                data=base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii"),
                event_source_arn=entry.get("eventSourceARN") or None,
                event_id=message_id,
                arrival=None,
            )
        )
    return out


def body_of(record: KinesisRecord) -> str:
    return base64.b64decode(record.data).decode("utf-8", "surrogatepass")
