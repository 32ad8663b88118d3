"""Offline checks of terraform/: fmt, init from the provider mirror + validate, checkov.

The inputs' validations and the Profile API budget split are Terraform's own tests
(terraform/tests/, run by test_terraform_native.py).
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tf import offline
from tf_support import ROOT, TERRAFORM_DIR, Terraform, copy_configuration, terraform_binary

pytestmark = pytest.mark.slow

MODULES = sorted(p.parent.name for p in (TERRAFORM_DIR / "modules").glob("*/main.tf"))
DIRECTORIES = [".", *(f"modules/{name}" for name in MODULES)]
CHECKOV = ROOT / ".venv" / "checkov" / "bin" / "checkov"

# The checks skipped inline, each with its reason beside the skip (or, for
# CKV2_AWS_70 and CKV2_AWS_77, the same reason as its neighbours). A new skip must be
# argued in its comment and added here.
DECIDED_SKIPS = {
    "CKV_AWS_116",  # Lambda DLQ: synchronous invokes, or (batch) an on-failure destination
    "CKV_AWS_117",  # Lambda in a VPC
    "CKV_AWS_119",  # user-state table with a CMK (kms_key_arn when given, else AWS owned)
    "CKV_AWS_18",  # batch bucket access logs (a second bucket; CloudTrail data events instead)
    "CKV_AWS_120",  # API cache
    "CKV_AWS_144",  # batch bucket cross-region replication (files expire in days)
    "CKV_AWS_158",  # log groups with a CMK
    "CKV_AWS_173",  # env var encryption with a CMK (no secrets in env)
    "CKV_AWS_225",  # method-settings cache
    "CKV_AWS_26",  # SNS topic for alarms (aws/sns unusable by CloudWatch)
    "CKV_AWS_272",  # code signing
    "CKV_AWS_337",  # SSM with a CMK (optional kms_key_arn)
    "CKV_AWS_338",  # 1-year retention of function and access logs (PII)
    # API access logs: only once the account's CloudWatch role is known to be set (a fresh
    # account refuses them). checkov passes the dynamic block as if always there.
    "CKV_AWS_76",
    "CKV2_AWS_29",  # WAF optional
    "CKV2_AWS_51",  # client certificate
    "CKV2_AWS_70",  # Cognito authorizer: partner API with keys
    "CKV2_AWS_77",  # rules of an externally defined WAF ACL
}


def test_terraform_fmt_is_clean() -> None:
    result = subprocess.run(
        [terraform_binary(), "fmt", "-check", "-recursive", "-diff", "-no-color", TERRAFORM_DIR],
        capture_output=True,
        text=True,
        timeout=60,
        env={**offline.terraform_env(Path("/dev/null"))},
    )
    assert result.returncode == 0, f"run `make fmt`:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def validation(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """`init` from the mirror and `validate -json` in every directory, two at a time."""
    base = tmp_path_factory.mktemp("tf-validate")
    tree = copy_configuration(base / "terraform")
    cli_config = offline.write_cli_config(base / "offline.tfrc", offline.mirror_path())

    def check(directory: str) -> dict[str, Any]:
        tf = Terraform(tree / directory, cli_config, base / f"data-{directory.replace('/', '-')}")
        # The root must install exactly what its committed lock file says.
        tf.init(*(["-lockfile=readonly"] if directory == "." else []))
        out = tf.run("validate", "-json", "-no-color", ok_codes=(0, 1)).stdout
        return dict(json.loads(out))

    # Each terraform call spends seconds checksumming and loading the 700 MB provider;
    # two workers keep the wall time down on two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(DIRECTORIES, pool.map(check, DIRECTORIES), strict=True))


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_init_from_mirror_and_validate(
    validation: dict[str, dict[str, Any]], directory: str
) -> None:
    report = validation[directory]
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert report["valid"] is True, json.dumps(errors, indent=2)
    assert errors == []


def test_lock_file_pins_the_mirrored_provider() -> None:
    lock = (TERRAFORM_DIR / ".terraform.lock.hcl").read_text()
    assert 'provider "registry.terraform.io/hashicorp/aws"' in lock
    assert 'version     = "5.100.0"' in lock
    assert '"h1:' in lock


@pytest.fixture(scope="module")
def checkov_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"checkov not installed at {CHECKOV} (make .venv)")
    tree = copy_configuration(tmp_path_factory.mktemp("checkov") / "terraform")
    result = subprocess.run(
        # Not --quiet: the JSON report must list the skipped checks with their reasons.
        [str(CHECKOV), "-d", str(tree), "--framework", "terraform", "--compact",
         "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    return dict(report[0] if isinstance(report, list) else report)


def test_checkov_has_no_failed_checks(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = checkov_report["results"]["failed_checks"]
    described = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in failed]
    assert summary["failed"] == 0, "\n".join(described)
    assert summary["parsing_errors"] == 0
    # A scan that silently found nothing would also report zero failures.
    assert summary["passed"] >= 100
    assert summary["resource_count"] >= 35


def test_every_checkov_skip_is_decided_and_explained(checkov_report: dict[str, Any]) -> None:
    skipped = checkov_report["results"]["skipped_checks"]
    assert skipped, "expected the inline skips of the decided list"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert check["check_id"] in DECIDED_SKIPS, f"undecided skip {check['check_id']}"
        assert len(reason) >= 30, f"{check['check_id']} on {check['resource']}: {reason!r}"
