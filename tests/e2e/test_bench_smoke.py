"""`make bench` cannot rot: each bench runs at smoke size (seconds) and writes its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    figures = json.loads(out.read_text())

    traits = figures["traits"]
    for mode in ("a_filter", "a_profile"):
        row = traits[mode]
        assert row["failed_records"] == 0
        assert row["handler_calls"]["GetRecommendations"] == traits["users"]
        assert row["speed_up"] > 1  # batching beats one record at a time, even this small
    assert traits["a_filter"]["handler_calls"]["Profile API"] == 0
    assert traits["a_profile"]["handler_calls"]["Profile API"] == traits["users"]
    limited = traits["b_profile_limited"]
    assert (limited["failed_users"], limited["answers_429"]) == (0, 0)
    # Rate-bound: the users cannot be read faster than the share allows.
    assert limited["handler_s"]["median"] >= (traits["users"] - 1) / limited["share_rps"]

    (sustained,) = figures["sustained"]
    assert sustained["offered_records"] > 0 and sustained["processed_per_second"] > 0
    assert sustained["profile_peak_per_second"] <= sustained["profile_budget"]
    assert sustained["profile_429"] == 0
