"""ISO-8601 timestamps of Segment messages as aware UTC datetimes.

Offsets are honoured ("12:00+02:00" is 10:00Z). A value without an offset is UTC, as
Segment's spec says all its timestamps are; never the machine's local time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Segment and its SDKs write at most milliseconds, but some sources send nanoseconds;
# Python < 3.11 and some 3.x builds only take up to six fractional digits.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")

# Order of preference for an event's time (CONTRACT §5).
TIME_FIELDS = ("timestamp", "originalTimestamp", "receivedAt")


def parse(value: Any) -> datetime | None:
    """An ISO-8601 string as an aware UTC datetime; None when it is not one."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = _LONG_FRACTION.sub(r"\1", value.strip())
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def event_time(message: Mapping[str, Any]) -> datetime | None:
    """The first usable of timestamp, originalTimestamp, receivedAt."""
    for name in TIME_FIELDS:
        parsed = parse(message.get(name))
        if parsed is not None:
            return parsed
    return None


def iso_z(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, as Segment writes its own timestamps."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
