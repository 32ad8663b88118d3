"""`make bench` cannot rot: each bench runs at smoke size (seconds) and writes its figures."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def bench(script: str, out: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench" / script), "--smoke", "--json", str(out)],
        check=True,
        capture_output=True,
        timeout=240,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'scripts'}:{ROOT / 'functions'}"},
    )


def test_traits_and_sustained_benches_run_and_write_their_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    bench("traits.py", out)
    bench("sustained.py", out)
    bench("capacity.py", out)
    figures = json.loads(out.read_text())

    traits = figures["traits"]
    for mode in ("a_filter", "a_profile"):
        row = traits[mode]
        assert row["failed_records"] == 0
        assert row["handler_calls"]["GetRecommendations"] == traits["users"]
        assert row["speed_up"] > 1  # batching beats one record at a time, even this small
    assert traits["a_filter"]["handler_calls"]["Profile API"] == 0
    assert traits["a_profile"]["handler_calls"]["Profile API"] == traits["users"]
    store_mode_counts(traits)
    limited = traits["b_profile_limited"]
    assert (limited["failed_users"], limited["answers_429"]) == (0, 0)
    # Rate-bound: the users cannot be read faster than the share allows.
    assert limited["handler_s"]["median"] >= (traits["users"] - 1) / limited["share_rps"]

    (sustained,) = figures["sustained"]
    assert sustained["offered_records"] > 0 and sustained["processed_per_second"] > 0
    assert sustained["profile_peak_per_second"] <= sustained["profile_budget"]
    assert sustained["profile_429"] == 0
    # The row's share is Terraform's for its defaults, and the row says what bounded it.
    assert sustained["share_rps"] == 4 and sustained["bound"]
    (sessions,) = figures["sessions"]["rows"]
    assert sessions["all_taken_after_s"] is not None  # every event reached Personalize
    assert sessions["buyers"] > 0 and sessions["trait_only_buyers"] > 0
    assert sessions["buyers_with_a_purchased_item_listed"] == 0
    assert sessions["users_without_the_trait"] == 0
    assert sessions["profile_429"] == 0
    assert sessions["profile_peak_per_second"] <= sessions["profile_budget"]
    assert sessions["profile_reads_per_user"] <= 1.1  # seeded once, not read per refresh

    rows = {(r["interval_s"], r["key"]): r for r in figures["capacity"]["rows"]}
    assert set(rows) == {(t, k) for t in (0.0, 30.0) for k in ("userId", "messageId")}
    for key in ("userId", "messageId"):  # the window saves refreshes
        assert rows[30.0, key]["per_event"]["refreshes"] < rows[0.0, key]["per_event"]["refreshes"]


def store_mode_counts(traits: dict[str, Any]) -> None:
    """Store mode: the first batch seeds every user from the Profile API beside the refresh,
    the second batch of the same users reads no profile; at T = 30 s only the buyers are
    refreshed again, the rest go to the refresh queue."""
    users, store = traits["users"], traits["a_store"]
    buyers = store["buyers"]
    first, second, t30 = (store[k]["handler_calls"] for k in ("first", "second", "second_t30"))
    for calls in (first, second, t30):
        assert calls["BatchGetItem"] == math.ceil(users / 100)
        assert calls["PutEvents"] == users
    assert first["Profile API"] == users
    assert first["UpdateItem"] == buyers + users + users  # purchases, claims, seeds
    assert first["GetRecommendations"] == users
    assert second.get("Profile API", 0) == 0
    assert second["UpdateItem"] == buyers + users
    assert second["GetRecommendations"] == users
    assert t30["GetRecommendations"] == buyers
    assert t30["SendMessageBatch"] == math.ceil((users - buyers) / 10)
    assert all(store[k]["failed_records"] == 0 for k in ("first", "second", "second_t30"))
