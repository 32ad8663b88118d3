"""Which Segment messages matter, and what a relevant one says.

Relevant: a ``track`` whose event name is tracked, or is a purchase event, and that names at
least one item (flat ``properties.<id>`` or ``properties.products[].<id>``). Everything else
is skipped with a reason. Only the fields of a relevant message are validated: a page view
with an odd ``userId`` is simply skipped, a tracked event with one can never succeed (dead
letter).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from common.segment_batch import LIBRARY_NAME
from traits_sync import attribution as attr
from traits_sync import timestamps
from traits_sync.kinesis import KinesisRecord, Undecodable, decode

MAX_ID_LENGTH = 256  # Personalize userId, sessionId and itemId limits


@dataclass(frozen=True)
class Rules:
    tracked_events: frozenset[str]
    purchase_events: frozenset[str]
    item_id_property: str
    # Event times after this are unusable (processing time + 24 h): one per invocation.
    not_after: datetime = field(default_factory=timestamps.latest_allowed)
    recommendation_id_property: str = attr.DEFAULT_RECOMMENDATION_ID_PROPERTY
    impression_property: str = attr.DEFAULT_IMPRESSION_PROPERTY


@dataclass(frozen=True)
class TrackedEvent:
    """One relevant record: who did what to which items, when."""

    record: KinesisRecord
    user_id: str | None
    session_id: str
    message_id: str
    event_type: str
    item_ids: tuple[str, ...]
    sent_at: datetime
    purchase: bool
    tracked: bool = True  # False: a purchase event outside TRACKED_EVENTS (no PutEvents)
    # PutEvents recommendationId / impression (traits_sync.attribution).
    attribution: attr.Attribution = field(default_factory=attr.Attribution)


@dataclass(frozen=True)
class Skipped:
    record: KinesisRecord
    reason: str


@dataclass(frozen=True)
class Bad:
    """Can never succeed: goes to the dead-letter queue, is not retried."""

    record: KinesisRecord
    reason: str  # in the dead-letter body
    code: str | None = None  # logged instead of the reason when that quotes a service


Classified = TrackedEvent | Skipped | Bad


def classify(record: KinesisRecord, rules: Rules) -> Classified:
    """Never raises: a record that trips an unforeseen case is dead-lettered with the error's
    type, instead of failing the whole batch on every retry."""
    try:
        message = decode(record)
    except Undecodable as exc:
        return Bad(record, exc.reason)
    try:
        return classify_message(record, message, rules)
    except Exception as exc:  # noqa: BLE001 - one record must not fail the batch
        return Bad(record, f"record could not be classified: {type(exc).__name__}")


def classify_message(record: KinesisRecord, message: Mapping[str, Any], rules: Rules) -> Classified:
    context = message.get("context")
    if isinstance(context, dict):
        if "personas" in context:
            return Skipped(record, "engage")
        library = context.get("library")
        if isinstance(library, dict) and library.get("name") == LIBRARY_NAME:
            return Skipped(record, "own_message")
    if message.get("type") != "track":
        return Skipped(record, "not_track")
    event = message.get("event")
    tracked = isinstance(event, str) and event in rules.tracked_events
    # A purchase always counts for exclusion, tracked or not (it is then not sent to
    # Personalize): otherwise the item just bought would be written into the trait.
    if not isinstance(event, str) or not (tracked or event in rules.purchase_events):
        return Skipped(record, "untracked_event")
    items = item_ids(message.get("properties"), rules.item_id_property)
    if not items:
        return Skipped(record, "no_item_id")

    try:
        user_id = identity(message, "userId")
        anonymous_id = identity(message, "anonymousId")
    except ValueError as exc:
        return Bad(record, str(exc))
    if user_id is None and anonymous_id is None:
        return Bad(record, "no userId or anonymousId")
    message_id = message.get("messageId")
    if message_id is None or message_id == "":
        # Segment always sets one; a hand-made record gets a stable stand-in.
        message_id = "kinesis-" + hashlib.sha256(record.data.encode()).hexdigest()[:32]
    elif not isinstance(message_id, str):
        return Bad(record, "messageId is not a string")
    elif not encodable(message_id):
        return Bad(record, "messageId is not valid Unicode (cannot be encoded as UTF-8)")
    sent_at = timestamps.event_time(message, rules.not_after)
    if sent_at is None:
        # Valid: parseable and within 1970-01-01T00:00:00Z .. processing time + 24 h.
        return Bad(record, "no valid timestamp, originalTimestamp or receivedAt")
    session_id = anonymous_id if anonymous_id is not None else user_id
    assert session_id is not None
    return TrackedEvent(
        record=record,
        user_id=user_id,
        session_id=session_id,
        message_id=message_id,
        event_type=event,
        item_ids=items,
        sent_at=sent_at,
        purchase=event in rules.purchase_events,
        tracked=tracked,
        attribution=attr.read(
            message.get("properties"), rules.recommendation_id_property, rules.impression_property
        ),
    )


def identity(message: Mapping[str, Any], name: str) -> str | None:
    """A user or anonymous id as text (numbers as decimal strings); None when absent.

    Raises ValueError (a dead-letter reason) for any other type, or an id Personalize
    would refuse.
    """
    value = message.get(name)
    if value is None or value == "":
        return None
    text = id_text(value)
    if text is None:
        raise ValueError(f"{name} is neither a string nor a number")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    if not encodable(text):
        raise ValueError(f"{name} is not valid Unicode (cannot be encoded as UTF-8)")
    return text


def encodable(text: str) -> bool:
    """Whether the text has a UTF-8 form: JSON may carry lone surrogates ("\\ud800") that no
    HTTP body, hash or log line can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def id_text(value: Any) -> str | None:
    """Strings as they are, numbers as decimal strings (7.0 → "7"), anything else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
    return str(value)


def item_ids(properties: Any, field: str) -> tuple[str, ...]:
    """Item ids of a message, flat property first, then each product; unique, in order."""
    if not isinstance(properties, dict):
        return ()
    found: list[str] = []
    candidates = [properties.get(field)]
    products = properties.get("products")
    if isinstance(products, list):
        candidates += [p.get(field) for p in products if isinstance(p, dict)]
    for value in candidates:
        text = id_text(value)
        if text is not None and len(text) <= MAX_ID_LENGTH and encodable(text):
            found.append(text)
    return tuple(dict.fromkeys(found))
