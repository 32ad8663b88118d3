"""An output file appeared (S3 event notification through SQS): cut it into byte-range chunk
messages on the chunk queue, and write the plan.

A job may have several output files: each has its own plan and chunk states under
``state/<job>/<file id>/`` (a file id from its key).

Idempotent: a plan for the same object (key and version: its S3 VersionId, or its ETag in a
bucket without versions) means it was split already (the plan is written only after every
chunk message was sent; a crash in between re-sends them, which the chunk state objects and
the messageIds make harmless). A re-upload is another version: split again, with messageIds
of its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from backfill import chunks, writer
from backfill.chunks import ChunkMessage
from backfill.store import get_json, put_json
from common.segment_batch import iso_z

SEND_BATCH = 10  # SendMessageBatch entries per call
SEND_ATTEMPTS = 3


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str


def is_s3_notification(body: Any) -> bool:
    return isinstance(body, dict) and (body.get("Event") == "s3:TestEvent" or "Records" in body)


def created_objects(body: Mapping[str, Any]) -> list[ObjectCreated]:
    """The ObjectCreated records of an S3 notification (a test event has none)."""
    if body.get("Event") == "s3:TestEvent":
        return []
    records = body.get("Records")
    if not isinstance(records, list):
        raise chunks.BadMessage("S3 notification without Records")
    found = []
    for record in records:
        if not isinstance(record, dict) or not str(record.get("eventName", "")).startswith(
            "ObjectCreated:"
        ):
            continue
        s3 = record.get("s3") or {}
        bucket = (s3.get("bucket") or {}).get("name")
        key = (s3.get("object") or {}).get("key")
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise chunks.BadMessage("S3 record without bucket name and object key")
        # Keys in notifications are URL-encoded, spaces as "+".
        found.append(ObjectCreated(bucket, unquote_plus(key)))
    return found


@dataclass(frozen=True)
class Split:
    job: str | None
    chunks: int
    already: bool = False


def _no_check() -> None:
    return None


def split(
    created: ObjectCreated,
    s3: Any,
    sqs: Any,
    queue_url: str,
    chunk_bytes: int,
    check: Callable[[], None] = _no_check,
) -> Split:
    """``check`` runs before each S3 and SQS call (it raises when the deadline has passed:
    the notification is then handed back, and the next attempt sends every chunk again)."""
    job = chunks.job_of_output_key(created.key)
    if job is None:
        return Split(None, 0)  # not a job's output file: nothing to do
    check()
    head = s3.head_object(Bucket=created.bucket, Key=created.key)
    size = int(head["ContentLength"])
    etag = str(head["ETag"])
    version = chunks.object_version(head)
    tag = version if version != etag else None
    plan_key = chunks.plan_key(job, created.key)
    check()
    existing = get_json(s3, created.bucket, plan_key)
    if (
        existing is not None
        and existing.get("key") == created.key
        and existing.get("etag") == etag
        and existing.get("version", version) == version
    ):
        total = int(existing.get("chunks", 0))
        if total == 0:
            # An empty file's report comes from its split: a retry writes it if it failed.
            writer.maybe_report(s3, created.bucket, job, check=check)
        return Split(job, total, already=True)
    cut = chunks.ranges(size, chunk_bytes)
    messages = [
        ChunkMessage(job, created.bucket, created.key, etag, index, len(cut), start, end, None, tag)
        for index, (start, end) in enumerate(cut)
    ]
    for first in range(0, len(messages), SEND_BATCH):
        check()
        _send(sqs, queue_url, messages[first : first + SEND_BATCH])
    plan = {
        "job": job,
        "bucket": created.bucket,
        "key": created.key,
        "etag": etag,
        "version": version,
        "size": size,
        "chunks": len(cut),
        "chunk_bytes": chunk_bytes,
        "started_at": iso_z(datetime.now(UTC)),
    }
    check()
    put_json(s3, created.bucket, plan_key, plan)
    if not cut:
        # An empty output file has no chunk to finish it: the report may be due now.
        writer.maybe_report(s3, created.bucket, job, check=check)
    return Split(job, len(cut))


def _send(sqs: Any, queue_url: str, batch: list[ChunkMessage]) -> None:
    pending = {str(m.index): m for m in batch}
    for _ in range(SEND_ATTEMPTS):
        entries = [{"Id": i, "MessageBody": m.body()} for i, m in pending.items()]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        for ok in response.get("Successful", []):
            pending.pop(ok["Id"], None)
        if not pending:
            return
    raise RuntimeError(f"{len(pending)} chunk messages were not accepted by SQS")
