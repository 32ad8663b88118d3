"""Reading SQS queues without consuming them: receive, remember, make visible again."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Long enough to page through a queue and act on what was read; the messages are made
# visible again at the end unless they were deleted.
HOLD_S = 60
MAX_ROUNDS = 200


@dataclass
class Message:
    message_id: str
    receipt_handle: str
    body: dict[str, Any]
    raw: str
    sent_at: float | None
    deleted: bool = False

    @property
    def is_refresh(self) -> bool:
        """A refresh-queue message (functions/update_traits/README.md, the user-state store)
        that the queue's redrive policy moved here after its last receive."""
        body = self.body
        return body.get("v") == 1 and isinstance(body.get("userId"), str) and "after" in body

    @property
    def reason(self) -> str:
        if self.is_refresh:
            return "trailing refresh failed on every receive (the function's log names why)"
        return str(self.body.get("reason") or self.body.get("requestContext", {}).get("condition"))


@contextmanager
def held(sqs: Any, queue_url: str, limit: int = 1000) -> Iterator[list[Message]]:
    """Up to ``limit`` messages, hidden from other readers while the block runs, then
    visible again (those the block deleted are gone)."""
    messages: dict[str, Message] = {}
    deadline = time.monotonic() + 60
    empty = 0
    for _ in range(MAX_ROUNDS):
        if len(messages) >= limit or time.monotonic() > deadline or empty >= 2:
            break
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - len(messages)),
            VisibilityTimeout=HOLD_S,
            WaitTimeSeconds=0,
            AttributeNames=["SentTimestamp"],
        )
        batch = response.get("Messages", [])
        empty = 0 if batch else empty + 1
        for m in batch:
            try:
                body = json.loads(m["Body"])
            except ValueError:
                body = {}
            sent = m.get("Attributes", {}).get("SentTimestamp")
            messages[m["MessageId"]] = Message(
                m["MessageId"],
                m["ReceiptHandle"],
                body if isinstance(body, dict) else {},
                m["Body"],
                int(sent) / 1000 if sent else None,
            )
    found = sorted(messages.values(), key=lambda m: (m.sent_at or 0, m.message_id))
    try:
        yield found
    finally:
        for m in found:
            if m.deleted:
                continue
            # Best effort: a message that stays hidden is visible again after HOLD_S anyway.
            with contextlib.suppress(Exception):
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=m.receipt_handle, VisibilityTimeout=0
                )


def delete(sqs: Any, queue_url: str, message: Message) -> None:
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message.receipt_handle)
    message.deleted = True


def record_data(message: Message) -> bytes | None:
    """The dead-lettered record's bytes (the body's ``data`` is the raw base64), or None."""
    data = message.body.get("data")
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
