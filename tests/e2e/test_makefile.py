"""The Makefile as a user meets it: `make help`, and `make test` from a fresh clone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NESTED = "BUNDLE_NESTED_MAKE_TEST"


def _targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    phony = re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE)
    assert phony
    return set(phony.group(1).split())


def test_help_is_default_and_lists_every_target() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    listed = set(re.findall(r"^\s+make (\S+)", out, re.MULTILINE))
    assert listed == _targets()
    for name in ("help", "package", "test", "lint", "fmt", "lock", "clean", "sandbox", "bench"):
        assert name in listed


# The nested `make test` gets this long; pytest-timeout gives the whole test a minute more,
# so the nested run's own timeout is the one that reports.
NESTED_TIMEOUT_S = 600


@pytest.mark.slow
@pytest.mark.timeout(NESTED_TIMEOUT_S + 60)
@pytest.mark.skipif(bool(os.environ.get(NESTED)), reason="already inside the clean-clone run")
@pytest.mark.skipif(
    os.environ.get("CI") == "true",
    reason="CI's own run (.ci/run) is make on a fresh clone: this would repeat it (~85 s)",
)
def test_make_test_sets_up_venv_in_a_fresh_clone(tmp_path: Path) -> None:
    if os.environ.get("BUNDLE_FRESH_VENV") == "1":
        # This very `make test` found no .venv and built it before starting pytest (the
        # Makefile reads that before any recipe runs): that is the fresh-clone check, so a
        # second venv build would only repeat it. Check its result instead.
        venv = ROOT / ".venv"
        assert Path(sys.prefix).resolve() == venv.resolve()
        assert (venv / ".installed").is_file()
        assert (venv / "checkov" / ".installed").is_file()
        return
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("the clean-clone test needs git and a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=60)
    assert not (clone / ".venv").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env[NESTED] = "1"
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    result = subprocess.run(
        ["make", "test", "PYTEST_ARGS=tests/integration/test_packaging.py -k reproducible"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=NESTED_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (clone / ".venv" / "bin" / "python").exists()
    assert "1 passed" in result.stdout
