"""terraform/tests/*.tftest.hcl: Terraform's own tests (mocked AWS provider, plan only).

They hold every validation of the root's inputs (a bad value per rule, refused; the edges
of each range, accepted), the Profile API budget arithmetic and the preconditions. Here
they run offline from the provider mirror, and every run block must have passed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tf import offline
from tf_support import TERRAFORM_DIR, Terraform, copy_configuration

# pytest-timeout's 300 s would cut init (180 s) and `terraform test` (240 s) short: the
# subprocesses' own limits, which name the step, must be the ones that fire.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

TESTS = sorted((TERRAFORM_DIR / "tests").glob("*.tftest.hcl"))
_RUN = re.compile(r'^run "([a-z0-9_]+)" \{$', re.M)
_VARIABLE = re.compile(r'^variable "([a-z0-9_]+)" \{\n(.*?)^\}$', re.M | re.S)


def _runs(text: str) -> list[tuple[str, str]]:
    """(name, body) of each run block (terraform fmt layout: `}` in column 0 closes it)."""
    return re.findall(r'^run "([a-z0-9_]+)" \{\n(.*?)^\}$', text, re.M | re.S)


def test_every_validation_has_a_run_that_trips_it() -> None:
    """A variable with n validation blocks needs n runs expecting it to fail (one rule each)."""
    variables = (TERRAFORM_DIR / "variables.tf").read_text(encoding="utf-8")
    expected: dict[str, int] = {}
    for path in TESTS:
        for _, body in _runs(path.read_text(encoding="utf-8")):
            failures = re.search(r"expect_failures = \[(.*?)\]", body, re.S)
            for name in re.findall(r"var\.([a-z0-9_]+)", failures.group(1) if failures else ""):
                expected[name] = expected.get(name, 0) + 1
    validated = {
        name: body.count("\n  validation {") for name, body in _VARIABLE.findall(variables)
    }
    assert sum(validated.values()) >= 60  # the parse found the validations
    missing = {
        name: (count, expected.get(name, 0))
        for name, count in validated.items()
        if expected.get(name, 0) < count
    }
    assert not missing, f"variable: (validations, runs expecting it to fail): {missing}"


def test_terraform_test_passes_every_run(tmp_path: Path) -> None:
    tree = copy_configuration(tmp_path / "terraform")
    cli_config = offline.write_cli_config(tmp_path / "offline.tfrc", offline.mirror_path())
    tf = Terraform(tree, cli_config, tmp_path / "data")
    tf.init("-lockfile=readonly")
    result = tf.run("test", "-no-color", timeout=240, ok_codes=(0, 1))
    out = result.stdout + result.stderr
    runs = sum(len(_RUN.findall(path.read_text(encoding="utf-8"))) for path in TESTS)
    assert runs >= 25
    failed = re.findall(r'run "([a-z0-9_]+)"\.\.\. (?:fail|skip)', out)
    assert result.returncode == 0 and not failed, f"failed or skipped: {failed}\n{out[-6000:]}"
    # Every run block ran and passed: none was skipped or silently left out.
    assert f"Success! {runs} passed, 0 failed." in out, out[-3000:]
