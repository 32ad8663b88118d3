"""sentAt: ISO-8601 with offsets honoured, always the right UTC epoch, never local time."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traits_sync.timestamps import event_time, iso_z, parse

TEN_UTC = datetime(2024, 3, 10, 10, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def far_time_zone() -> Iterator[None]:
    """A machine clock far from UTC: a local-time conversion would show up as hours off."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Kiritimati"  # UTC+14
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("2024-03-10T12:00:00+02:00", TEN_UTC),
        ("2024-03-10T05:00:00-05:00", TEN_UTC),
        ("2024-03-10T15:30:00+0530", TEN_UTC),
        ("2024-03-10T10:00:00Z", TEN_UTC),
        ("2024-03-10T10:00:00z", TEN_UTC),
        ("2024-03-10T10:00:00.123Z", TEN_UTC + 0.123),
        ("2024-03-10T12:00:00.5+02:00", TEN_UTC + 0.5),
        ("2024-03-10T10:00:00.123456789Z", TEN_UTC + 0.123456),
        ("2024-03-10T10:00:00", TEN_UTC),  # no offset: UTC, as Segment's timestamps are
        ("2024-03-10 10:00:00+00:00", TEN_UTC),
    ],
)
def test_offsets_are_honoured(far_time_zone: None, text: str, epoch: float) -> None:
    parsed = parse(text)
    assert parsed is not None
    assert parsed.tzinfo is UTC
    assert parsed.timestamp() == pytest.approx(epoch, abs=1e-6)


@pytest.mark.parametrize(
    "value", [None, "", "yesterday", "2024-13-01T00:00:00Z", 1710064800, ["2024"], "9" * 100]
)
def test_not_a_timestamp(value: object) -> None:
    assert parse(value) is None


def test_preference_order_timestamp_then_original_then_received() -> None:
    message = {
        "timestamp": "2024-03-10T10:00:00Z",
        "originalTimestamp": "2024-03-10T09:00:00Z",
        "receivedAt": "2024-03-10T08:00:00Z",
    }
    assert event_time(message) == datetime(2024, 3, 10, 10, tzinfo=UTC)
    message["timestamp"] = "garbage"
    assert event_time(message) == datetime(2024, 3, 10, 9, tzinfo=UTC)
    del message["originalTimestamp"]
    assert event_time(message) == datetime(2024, 3, 10, 8, tzinfo=UTC)
    assert event_time({"sentAt": "2024-03-10T10:00:00Z"}) is None


def test_iso_z_is_utc_with_milliseconds() -> None:
    moment = datetime(2024, 3, 10, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert iso_z(moment) == "2024-03-10T10:00:00.123Z"


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [timezone(timedelta(minutes=m)) for m in (-720, -330, -60, 0, 60, 345, 840)]
        ),
    )
)
def test_any_offset_round_trips_to_the_same_instant(moment: datetime) -> None:
    parsed = parse(moment.isoformat(), not_after=datetime(2101, 1, 1, tzinfo=UTC))
    assert parsed is not None
    assert parsed == moment
    assert parsed.utcoffset() == timedelta(0)
