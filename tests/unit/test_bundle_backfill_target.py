"""The batch_traits resources of a target: Terraform's batch_* outputs (null when the module is
off) and the sandbox's state.json `batch` entry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bundle_cli import target
from bundle_cli.target import BatchTarget, from_sandbox, from_terraform

BASE = {
    "kinesis_stream_name": {"value": "shop-segment-events"},
    "kinesis_stream_arn": {"value": "arn:aws:kinesis:eu-west-1:111122223333:stream/shop"},
    "dead_letter_queue_url": {"value": "https://sqs/dlq"},
    "failed_batches_queue_url": {"value": "https://sqs/fb"},
}
SQS = "https://sqs.eu-west-1.amazonaws.com/111122223333"


def _terraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outputs: dict[str, object]) -> None:
    """`terraform output -json` answers ``outputs`` (no process is started: unit tier)."""

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert args[1:] == ["output", "-json"] and kwargs["cwd"] == tmp_path
        return subprocess.CompletedProcess(args, 0, json.dumps(outputs), "")

    monkeypatch.setattr(target.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(target.subprocess, "run", run)


def test_stack_batch_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _terraform(
        tmp_path,
        monkeypatch,
        {
            **BASE,
            "batch_bucket": {"value": "shop-batch"},
            "batch_users_key": {"value": "input/users.json"},
            "batch_function_name": {"value": "shop-batch-traits"},
            "batch_chunk_queue_url": {"value": f"{SQS}/shop-chunks"},
            "batch_dead_letter_queue_url": {"value": f"{SQS}/shop-chunks-dlq"},
            "batch_role_arn": {"value": "arn:aws:iam::111122223333:role/shop-personalize-batch"},
        },
    )
    assert from_terraform(tmp_path).batch == BatchTarget(
        bucket="shop-batch",
        users_key="input/users.json",
        function_name="shop-batch-traits",
        chunk_queue_url=f"{SQS}/shop-chunks",
        dead_letter_queue_url=f"{SQS}/shop-chunks-dlq",
    )


def test_stack_without_the_module_has_no_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _terraform(tmp_path, monkeypatch, {**BASE, "batch_bucket": {"value": None}})
    assert from_terraform(tmp_path).batch is None


def test_sandbox_batch_entry(tmp_path: Path) -> None:
    state = {
        "running": True,
        "api_url": "http://127.0.0.1:8080",
        "moto_url": "http://127.0.0.1:5001",
        "segment_url": "http://127.0.0.1:5002",
        "stream_name": "sandbox-segment-events",
        "dead_letter_queue_url": "d",
        "on_failure_queue_url": "f",
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    assert from_sandbox(tmp_path).batch is None  # a sandbox from before the module
    state["batch"] = {
        "bucket": "sandbox-batch-traits",
        "users_key": "input/users.json",
        "function_name": "sandbox-batch-traits",
        "chunk_queue_url": "http://127.0.0.1:5001/123456789012/sandbox-batch-chunks",
        "dead_letter_queue_url": "http://127.0.0.1:5001/123456789012/sandbox-batch-chunks-dead-letter",
        "personalize_url": "http://127.0.0.1:5003",
        "lambda_url": "http://127.0.0.1:5004",
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    batch = from_sandbox(tmp_path).batch
    assert batch is not None
    assert (batch.bucket, batch.function_name) == ("sandbox-batch-traits", "sandbox-batch-traits")
    assert batch.personalize_endpoint_url == "http://127.0.0.1:5003"
    assert batch.lambda_endpoint_url == "http://127.0.0.1:5004"
