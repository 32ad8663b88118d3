"""Run Terraform offline in throw-away copies of terraform/, and moto's server to apply to."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from sandbox.processes import free_port
from tf import offline

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
SCRIPTS = ROOT / "scripts"

# What a working copy must not inherit from a developer's checkout of terraform/.
_NOT_COPIED = shutil.ignore_patterns(
    ".terraform", "*.tfstate", "*.tfstate.*", "*_override.tf", "terraform.tfvars", "*.tfplan"
)


def terraform_binary() -> str:
    found = shutil.which("terraform")
    if found is None:
        pytest.fail("terraform is not on PATH: the Terraform checks are part of `make test`")
    return found


def copy_configuration(destination: Path) -> Path:
    """A clean copy of terraform/ (root and modules) that tests may init and modify."""
    shutil.copytree(TERRAFORM_DIR, destination, ignore=_NOT_COPIED)
    return destination


class Terraform:
    """terraform in one working directory, with its own data dir and the offline CLI config."""

    def __init__(self, workdir: Path, cli_config: Path, data_dir: Path) -> None:
        self.workdir = workdir
        self.env = offline.terraform_env(cli_config, data_dir)
        # The provider must never look for instance credentials or a real account.
        self.env["AWS_EC2_METADATA_DISABLED"] = "true"
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
            self.env.pop(name, None)

    def run(
        self,
        *args: str,
        timeout: float = 120,
        ok_codes: tuple[int, ...] = (0,),
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {**self.env, **(extra_env or {})}
        cmd = [terraform_binary(), *args]
        try:
            result = subprocess.run(
                cmd, cwd=self.workdir, env=env, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{' '.join(cmd)} did not finish in {timeout}s:\n{_tail(exc.stdout)}")
        if result.returncode not in ok_codes:
            pytest.fail(
                f"{' '.join(cmd)} exited {result.returncode} in {self.workdir}:\n"
                f"{_tail(result.stdout)}\n{_tail(result.stderr)}"
            )
        return result

    def init(self, *extra: str) -> None:
        self.run("init", "-backend=false", "-input=false", "-no-color", *extra, timeout=180)


def _tail(text: str | bytes | None, limit: int = 6000) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return (text or "")[-limit:]


@contextmanager
def moto_server(log_path: Path, ready_within: float = 30.0) -> Iterator[str]:
    """Start moto's server (with scripts/tf/moto_server.py's fixes) on a free loopback port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(SCRIPTS), env.get("PYTHONPATH")])),
        # The root attaches AWS's managed policy for API Gateway logging; moto only knows
        # AWS-managed policies when asked to load them.
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",
    )
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tf.moto_server", "-H", "127.0.0.1", "-p", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(proc, url, ready_within, log_path)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, within: float, log: Path) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moto server exited with {proc.returncode}:\n{_tail(log.read_text())}")
        try:
            if requests.get(f"{url}/moto-api/", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)  # polling interval, not synchronisation: the loop checks readiness
    pytest.fail(f"moto server not ready at {url} within {within}s:\n{_tail(log.read_text())}")
