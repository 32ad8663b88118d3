"""The batch bench cannot rot: it runs at smoke size (seconds) and writes its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_batch_bench_smoke_writes_lines_per_second_and_peak_memory(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench" / "batch.py"),
            "--smoke",
            "--json",
            str(out),
        ],
        check=True,
        capture_output=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'scripts'}:{ROOT / 'functions'}"},
    )
    batch = json.loads(out.read_text())["batch"]
    small, large = batch["sizes"]["500"], batch["sizes"]["2000"]
    for row in (small, large):
        assert row["lines_per_s"]["median"] > 0
        assert row["requests"] >= 1
        assert 0 < row["peak_mib"]["median"] < 64
    # Four times the file, not four times the memory: the worker streams.
    assert large["file_mib"] > 3 * small["file_mib"]
    assert large["peak_mib"]["median"] < 2 * small["peak_mib"]["median"] + 1
