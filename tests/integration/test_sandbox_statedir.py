"""The sandbox's state-folder lock, held across processes (flock is per open file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sandbox.statedir import StateDirLock


def test_a_state_folder_is_held_by_one_sandbox(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    first = StateDirLock(state_dir)
    first.acquire()
    first.describe(api_url="http://127.0.0.1:8080")
    # Another process (flock is per open file, as two sandboxes would hold it).
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path; from sandbox.statedir import StateDirLock, StateDirBusy\n"
        "try:\n    StateDirLock(Path(sys.argv[2])).acquire()\n"
        "except StateDirBusy as exc:\n    print(exc); sys.exit(3)\n"
    )
    scripts = str(Path(__file__).resolve().parents[2] / "scripts")
    refused = subprocess.run(
        [sys.executable, "-c", probe, scripts, str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode == 3, refused.stderr
    assert refused.stdout.strip() == (
        f"{state_dir}/ is in use by the sandbox with pid {os.getpid()} "
        "(API http://127.0.0.1:8080); stop it, or give this sandbox its own folder with "
        "--state-dir"
    )
    assert json.loads((state_dir / "sandbox.lock").read_text())["pid"] == os.getpid()
    first.release()
    again = subprocess.run(
        [sys.executable, "-c", probe, scripts, str(state_dir)], timeout=30, check=False
    )
    assert again.returncode == 0
