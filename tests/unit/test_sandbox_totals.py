"""The sandbox console's bookkeeping: totals line, summary, counters across resets, the
handler-log tap, the state-folder lock's message (no network, no subprocess)."""

from __future__ import annotations

import io
import sys
from collections import Counter
from pathlib import Path

import pytest

from sandbox.console import Console
from sandbox.statedir import StateDirBusy
from sandbox.store_counts import StoreCounts
from sandbox.totals import Counts, MonotonicCount, Totals, summary_lines, totals_line


def test_totals_line_has_rates_lag_and_counts() -> None:
    before = Counts(records_in=100, records_out=90, profile_requests=10)
    now = Counts(
        records_in=150,
        records_out=130,
        identifies=12,
        failed_records=3,
        dead_letters=1,
        profile_requests=30,
        lag_s=1.25,
    )
    assert totals_line(before, now, 5.0) == (
        "totals in 10.0/s out 8.0/s lag 20 records (iterator age 1.2 s) identifies 12 "
        "failures 3 dead-letters 1 profile-api 4.0 req/s"
    )
    # More done than put by the destination (records put on the stream by hand): no lag.
    assert " lag 0 records " in totals_line(now, Counts(records_in=1, records_out=5), 1.0)


def test_the_store_counters_end_the_totals_line_and_the_profile_line() -> None:
    store = StoreCounts(users=40, seeded=38, refreshed=39, capped=1, waiting=3, trailing=9)
    line = totals_line(Counts(), Counts(store=store), 1.0)
    assert line.endswith(" req/s store 40 users (38 seeded) deferred 12 (3 waiting)")
    assert "store" not in totals_line(Counts(), Counts(), 1.0)  # without the store
    cut = totals_line(Counts(), Counts(store=StoreCounts(users=7, seeded=2, complete=False)), 1.0)
    assert " store 7+ users (2+ seeded) " in cut
    lines = summary_lines(
        Counts(profile_requests=9, store=store),
        1.0,
        replay=None,
        destination=None,
        api_statuses=Counter(),
        dead_letter_reasons=Counter(),
    )
    assert lines[-1] == (
        "  Profile   9 Profile API requests; store 40 users, 38 seeded, 39 refreshed, 1 capped; "
        "12 refreshes deferred (9 trailing refreshes run, 3 waiting)"
    )


def test_totals_are_thread_safe_sums() -> None:
    totals = Totals()
    totals.add(records_out=5, invocations=1)
    totals.add(records_out=2, invocations=1, failed_records=2)
    totals.dead_letter("not JSON")
    totals.dead_letter("not JSON")
    totals.api_request(200)
    totals.set(records_in=9, lag_s=0.5)
    snap = totals.snapshot()
    assert (snap.records_out, snap.invocations, snap.failed_records) == (7, 2, 2)
    assert (snap.dead_letters, snap.records_in, snap.lag_s) == (2, 9, 0.5)
    assert totals.dead_letter_reasons == Counter({"not JSON": 2})


def test_monotonic_count_survives_a_reset() -> None:
    count = MonotonicCount()
    assert [count.update(v) for v in (3, 7, 2, 5)] == [3, 7, 9, 12]


def test_summary_lines() -> None:
    lines = summary_lines(
        Counts(records_out=40, invocations=4, identifies=9, dead_letters=1, profile_requests=9),
        12.34,
        replay={"sent": 42, "refused": 0, "failed": 1, "left": 0},
        destination={
            "delivered": 41,
            "put_calls": 7,
            "duplicates": 0,
            "undeliverable": {},
            "left_at_stop": 1,
        },
        api_statuses=Counter({200: 3, 403: 1}),
        dead_letter_reasons=Counter({"not JSON": 1}),
    )
    assert lines[0] == "sandbox: summary after 12.3 s"
    assert lines[1].startswith("  Segment   42 events sent with analytics-python")
    assert "1 in failed uploads" in lines[1]
    assert lines[2].startswith("  Kinesis   41 records put by the Amazon Kinesis destination")
    assert "1 left at stop" in lines[2]
    assert lines[3] == (
        "  traits    40 records done in 4 invocations, 9 identifies, 0 failed records, "
        "0 on-failure records, 1 dead-lettered (not JSON: 1)"
    )
    assert lines[4] == "  API       4 requests (200: 3, 403: 1)"
    assert lines[5] == "  Profile   9 Profile API requests"


def test_the_tap_sees_whole_lines_and_still_writes_the_file(tmp_path: Path) -> None:
    seen: list[str] = []
    console = Console(io.StringIO())
    saved = sys.stdout
    try:
        console.capture_stdout(tmp_path / "handlers.log", on_line=seen.append)
        sys.stdout.write('{"message": "a"')
        sys.stdout.write('}\n{"message": "b"}\n{"part')
        sys.stdout.flush()
        encoding, is_tty = sys.stdout.encoding, sys.stdout.isatty()
    finally:
        console.restore_stdout()
    assert sys.stdout is saved
    assert seen == ['{"message": "a"}', '{"message": "b"}']
    assert (encoding, is_tty) == ("utf-8", False)
    assert (tmp_path / "handlers.log").read_text() == '{"message": "a"}\n{"message": "b"}\n{"part'


def test_a_failing_listener_never_reaches_the_writer(tmp_path: Path) -> None:
    console = Console(io.StringIO())

    def boom(line: str) -> None:
        raise ValueError(line)

    try:
        console.capture_stdout(tmp_path / "h.log", on_line=boom)
        print("still written")
    finally:
        console.restore_stdout()
    assert (tmp_path / "h.log").read_text() == "still written\n"


def test_state_dir_busy_without_details() -> None:
    with pytest.raises(StateDirBusy, match="in use by another sandbox;"):
        raise StateDirBusy(Path("x"), {})
