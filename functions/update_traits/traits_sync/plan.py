"""From a batch's relevant events to units of work: one per distinct userId, plus one per
anonymous session (PutEvents only: without a userId there is no profile to write).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from common.chunks import bounded
from traits_sync.kinesis import KinesisRecord
from traits_sync.messages import TrackedEvent

MAX_EVENTS_PER_CALL = 10  # PutEvents eventList 1..10
MAX_EVENT_ID_LENGTH = 256
# Segment's messageIds have at most 100 characters; derived eventIds always have more.
SEGMENT_MAX_MESSAGE_ID = 100


@dataclass(frozen=True)
class PersonalizeEvent:
    event_id: str
    event_type: str
    item_id: str
    sent_at: datetime
    record: KinesisRecord | None = field(default=None, compare=False)  # where it came from
    recommendation_id: str | None = None
    impression: tuple[str, ...] = ()


@dataclass
class SessionGroup:
    """The events of one (userId, sessionId): PutEvents takes one session per call."""

    user_id: str | None
    session_id: str
    events: list[PersonalizeEvent] = field(default_factory=list)
    records: list[KinesisRecord] = field(default_factory=list)
    # Records whose event Personalize refused for good, with the service's reason.
    rejected: list[tuple[KinesisRecord, str]] = field(default_factory=list)
    _event_ids: set[str] = field(default_factory=set)

    def add(self, event: TrackedEvent) -> None:
        self.records.append(event.record)
        if not event.tracked:
            return  # an untracked purchase: it only feeds the exclusion
        for personalize_event in personalize_events(event):
            # The same message delivered twice (at least once delivery) is one event:
            # eventIds must be unique within a call.
            if personalize_event.event_id not in self._event_ids:
                self._event_ids.add(personalize_event.event_id)
                self.events.append(personalize_event)

    def calls(self) -> list[list[PersonalizeEvent]]:
        """Events in time order, at most 10 per call: exactly ⌈n/10⌉ calls."""
        ordered = sorted(self.events, key=lambda e: e.sent_at)
        return bounded(ordered, lambda _: 0, max_count=MAX_EVENTS_PER_CALL)


@dataclass
class UserWork:
    """Everything one distinct userId needs: its PutEvents, then one recommendation."""

    user_id: str
    groups: dict[str, SessionGroup] = field(default_factory=dict)
    records: list[KinesisRecord] = field(default_factory=list)
    message_ids: set[str] = field(default_factory=set)
    purchased: set[str] = field(default_factory=set)
    latest: datetime | None = None

    def add(self, event: TrackedEvent) -> None:
        group = self.groups.get(event.session_id)
        if group is None:
            group = self.groups[event.session_id] = SessionGroup(self.user_id, event.session_id)
        group.add(event)
        self.records.append(event.record)
        self.message_ids.add(event.message_id)
        if event.purchase:
            self.purchased.update(event.item_ids)
        if self.latest is None or event.sent_at > self.latest:
            self.latest = event.sent_at


@dataclass
class Plan:
    users: list[UserWork]
    anonymous: list[SessionGroup]
    # Every unit in the order of its first record: the order to run them in, so that the
    # records before the shard's checkpoint are the first to be done (see processor).
    order: list[UserWork | SessionGroup] = field(default_factory=list)

    @property
    def session_groups(self) -> list[SessionGroup]:
        return [g for u in self.users for g in u.groups.values()] + self.anonymous


def build(events: Iterable[TrackedEvent]) -> Plan:
    """Events in batch order give units in the order of their first record."""
    users: dict[str, UserWork] = {}
    anonymous: dict[str, SessionGroup] = {}
    order: list[UserWork | SessionGroup] = []
    for event in events:
        if event.user_id is not None:
            work = users.get(event.user_id)
            if work is None:
                work = users[event.user_id] = UserWork(event.user_id)
                order.append(work)
            work.add(event)
        else:
            group = anonymous.get(event.session_id)
            if group is None:
                group = anonymous[event.session_id] = SessionGroup(None, event.session_id)
                order.append(group)
            group.add(event)
    return Plan(list(users.values()), list(anonymous.values()), order)


def personalize_events(event: TrackedEvent) -> list[PersonalizeEvent]:
    """One Personalize event per item.

    A one-item message keeps its messageId as the eventId (Personalize then deduplicates a
    redelivery). Several items, or a messageId too long to be Segment's, get derived ids of
    more than 100 characters: Segment's messageIds have at most 100
    (https://segment.com/docs/connections/spec/common/), so a
    derived id can never equal a real one (``M#1`` and a two-product ``M`` would collide).
    The attribution (recommendationId, impression) goes with every event of the message.
    """
    message_id, record = event.message_id, event.record
    rid, shown = event.attribution.recommendation_id, event.attribution.impression

    def one(event_id: str, item_id: str) -> PersonalizeEvent:
        return PersonalizeEvent(
            event_id,
            event.event_type,
            item_id,
            event.sent_at,
            record=record,
            recommendation_id=rid,
            impression=shown,
        )

    if len(event.item_ids) == 1 and len(message_id) <= SEGMENT_MAX_MESSAGE_ID:
        return [one(message_id, event.item_ids[0])]
    base = derived_base(message_id)
    return [
        one(f"{base}#{index}", item_id) for index, item_id in enumerate(event.item_ids, start=1)
    ]


def derived_base(message_id: str) -> str:
    """100 hex characters, whatever the messageId: ``<base>#<n>`` has 102 to 256."""
    return hashlib.blake2b(message_id.encode("utf-8"), digest_size=50).hexdigest()
