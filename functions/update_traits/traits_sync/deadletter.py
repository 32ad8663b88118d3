"""Records that can never succeed, parked in SQS with what is needed to look at them again.

Body (the function's README, dead-letter format): ``{"reason", "eventSourceARN", "shardId"
(or "eventID"), "sequenceNumber", "data", "deduplicationId"}`` with ``data`` the record's raw
base64. A record whose send fails is returned to the caller, which reports it for retry: never
lost.

A record after the batch's checkpoint is dead-lettered again each time Lambda retries the
batch for other records' sake; nothing in a stateless function can know it was sent before.
So every copy carries the same ``deduplicationId`` (derived from the stream, shard and
sequence number, never from the reason), and consumers keep one message per id. On a FIFO
queue (a ``.fifo`` URL) it is also the ``MessageDeduplicationId``, which drops copies sent
within SQS's five-minute window.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from common.aws import error_code
from common.chunks import bounded
from traits_sync.kinesis import KinesisRecord
from traits_sync.messages import Bad

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_ENTRIES = 10  # SendMessageBatch
# SQS's long-standing message and batch limit (256 KiB); a larger record keeps the start
# of its data and says so, rather than being retried forever.
MAX_BYTES = 262_144
_HEADROOM = 1024


def deduplication_id(record: KinesisRecord) -> str:
    """The same for every copy of one record: stream, shard (or eventID), sequence number.
    64 hex characters, a valid SQS MessageDeduplicationId (at most 128)."""
    parts = [record.event_source_arn or "", record.shard_id or record.event_id or ""]
    text = "\x1f".join([*parts, record.sequence_number])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def body(bad: Bad) -> str:
    record = bad.record
    message: dict[str, Any] = {"reason": bad.reason, "eventSourceARN": record.event_source_arn}
    if record.shard_id is not None:
        message["shardId"] = record.shard_id
    else:
        message["eventID"] = record.event_id
    message["sequenceNumber"] = record.sequence_number
    message["data"] = record.data
    message["deduplicationId"] = deduplication_id(record)
    text = json.dumps(message, separators=(",", ":"))
    if len(text.encode()) <= MAX_BYTES:
        return text
    keep = MAX_BYTES - (len(text.encode()) - len(record.data)) - _HEADROOM
    message["data"] = record.data[: max(0, keep)]
    message["dataTruncated"] = True
    message["dataLength"] = len(record.data)
    return json.dumps(message, separators=(",", ":"))


class DeadLetterQueue:
    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._fifo = queue_url.endswith(".fifo")

    def _entry(self, index: int, bad: Bad, text: str) -> SendMessageBatchRequestEntryTypeDef:
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": str(index), "MessageBody": text}
        if self._fifo:
            # One group per shard keeps a shard's letters in order without serialising all.
            entry["MessageGroupId"] = bad.record.shard_id or "dead-letters"
            entry["MessageDeduplicationId"] = deduplication_id(bad.record)
        return entry

    def send(self, records: Sequence[Bad]) -> tuple[list[Bad], list[tuple[Bad, str]]]:
        """Send every record; returns (sent, [(not sent, why)])."""
        sent: list[Bad] = []
        failed: list[tuple[Bad, str]] = []
        items = [(bad, body(bad)) for bad in records]
        for chunk in bounded(
            items, lambda item: len(item[1].encode()), max_count=MAX_ENTRIES, max_bytes=MAX_BYTES
        ):
            entries = [self._entry(i, bad, text) for i, (bad, text) in enumerate(chunk)]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - reported for retry by the caller
                failed += [(bad, error_code(exc) or type(exc).__name__) for bad, _ in chunk]
                continue
            refused = {
                str(entry.get("Id")): str(entry.get("Code") or "Failed")
                for entry in response.get("Failed") or []
            }
            for index, (bad, _) in enumerate(chunk):
                if str(index) in refused:
                    failed.append((bad, refused[str(index)]))
                else:
                    sent.append(bad)
        return sent, failed
