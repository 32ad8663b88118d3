"""The Kinesis side of a batch: records as Lambda delivers them, and their raw payloads."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class BatchShapeError(Exception):
    """The event is not a Kinesis batch whose records can be reported one by one."""


@dataclass(frozen=True)
class KinesisRecord:
    sequence_number: str
    data: str  # raw base64, as received: what the dead-letter message carries
    event_source_arn: str | None
    event_id: str | None
    arrival: float | None

    @property
    def shard_id(self) -> str | None:
        """``shardId-000000000000`` from an eventID ``shardId-000000000000:<sequence>``."""
        if self.event_id and ":" in self.event_id:
            return self.event_id.split(":", 1)[0]
        return None


class Undecodable(Exception):
    """The record's data can never be read as a Segment message (dead-letter reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def records(event: Mapping[str, Any]) -> list[KinesisRecord]:
    """Every record of a Kinesis event, in delivery order.

    A record without a sequence number could not be named in ``batchItemFailures``; rather
    than lose it the whole batch is refused (Lambda then retries it).
    """
    raw = event.get("Records")
    if not isinstance(raw, list):
        raise BatchShapeError("event has no Records list")
    out: list[KinesisRecord] = []
    for entry in raw:
        kinesis = entry.get("kinesis") if isinstance(entry, dict) else None
        sequence = kinesis.get("sequenceNumber") if isinstance(kinesis, dict) else None
        if not isinstance(kinesis, dict) or not isinstance(sequence, str) or not sequence:
            raise BatchShapeError("a record has no kinesis.sequenceNumber")
        data = kinesis.get("data")
        arrival = kinesis.get("approximateArrivalTimestamp")
        out.append(
            KinesisRecord(
                sequence_number=sequence,
                data=data if isinstance(data, str) else "",
                event_source_arn=_text(entry.get("eventSourceARN")),
                event_id=_text(entry.get("eventID")),
                arrival=float(arrival) if isinstance(arrival, int | float) else None,
            )
        )
    return out


def decode(record: KinesisRecord) -> dict[str, Any]:
    """The record's data as a JSON object, or :class:`Undecodable` with the reason."""
    try:
        raw = base64.b64decode(record.data, validate=True)
    except (binascii.Error, ValueError):
        raise Undecodable("data is not base64") from None
    try:
        message = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise Undecodable("data is not JSON") from None
    if not isinstance(message, dict):
        raise Undecodable("data is not a JSON object")
    return message


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
