"""ISO-8601 timestamps of Segment messages as aware UTC datetimes, within a sane range.

Offsets are honoured ("12:00+02:00" is 10:00Z). A value without an offset is UTC, as
Segment's spec says all its timestamps are; never the machine's local time.

A time is usable only within 1970-01-01T00:00:00Z … processing time + 24 h (CONTRACT §5):
anything else (year 1 or 9999 with an offset, which does not even convert to UTC; a year
before 1000, which would not print as ISO-8601; a negative epoch) counts as absent, so no
identify ``timestamp`` or PutEvents ``sentAt`` can ever be outside that range.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from common.segment_batch import iso_z as iso_z  # re-exported: Segment's timestamp format

# Segment and its SDKs write at most milliseconds, but some sources send nanoseconds;
# Python < 3.11 and some 3.x builds only take up to six fractional digits.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")

# Order of preference for an event's time (CONTRACT §5).
TIME_FIELDS = ("timestamp", "originalTimestamp", "receivedAt")

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_ALLOWANCE = timedelta(hours=24)


def latest_allowed(now: datetime | None = None) -> datetime:
    """The latest usable event time: processing time plus 24 h (clock skew, time zones)."""
    return (now or datetime.now(UTC)) + FUTURE_ALLOWANCE


def parse(value: Any, not_after: datetime | None = None) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime within the usable range; None otherwise."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = _LONG_FRACTION.sub(r"\1", value.strip())
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # 0001-01-01T00:00+01:00 and 9999-12-31T23:59-01:00 have no UTC datetime.
        parsed = parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    if not EARLIEST <= parsed <= (not_after or latest_allowed()):
        return None
    return parsed


def event_time(message: Mapping[str, Any], not_after: datetime | None = None) -> datetime | None:
    """The first usable of timestamp, originalTimestamp, receivedAt."""
    limit = not_after or latest_allowed()
    for name in TIME_FIELDS:
        parsed = parse(message.get(name), limit)
        if parsed is not None:
            return parsed
    return None
