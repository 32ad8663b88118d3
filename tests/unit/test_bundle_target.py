"""scripts/bundle's targets: the deployed stack from `terraform output -json`, the sandbox
from state.json (today's keys, and the keys contract §9 adds)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from bundle_cli import target
from bundle_cli.target import TargetError, from_sandbox, from_terraform

STREAM_ARN = "arn:aws:kinesis:eu-west-1:111122223333:stream/shop-segment-events"
STACK_OUTPUTS = {
    "api_url": {"value": "https://abc.execute-api.eu-west-1.amazonaws.com/v1"},
    "api_key": {"value": "k" * 40, "sensitive": True},
    "kinesis_stream_name": {"value": "shop-segment-events"},
    "kinesis_stream_arn": {"value": STREAM_ARN},
    "dead_letter_queue_url": {"value": "https://sqs.eu-west-1.amazonaws.com/111122223333/shop-dlq"},
    "failed_batches_queue_url": {"value": "https://sqs.eu-west-1.amazonaws.com/111122223333/shop-fb"},
    "segment_write_key_parameter": {"value": "/shop/segment/write-key"},
    "segment_profile_token_parameter": {"value": None},
    "update_traits_function_name": {"value": "shop-update-traits"},
}  # fmt: skip


def _fake_terraform(
    monkeypatch: pytest.MonkeyPatch, directory: Path, stdout: str, code: int = 0
) -> None:
    """`terraform output -json` in ``directory`` answers ``stdout`` (no process is started)."""

    def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert args[1:] == ["output", "-json"] and kwargs["cwd"] == directory
        stderr = "" if code == 0 else "Error: No outputs found\n"
        return subprocess.CompletedProcess(args, code, stdout, stderr)

    monkeypatch.setattr(target.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(target.subprocess, "run", run)


def test_a_deployed_stack_comes_from_terraform_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_terraform(monkeypatch, tmp_path, json.dumps(STACK_OUTPUTS))
    target = from_terraform(tmp_path)
    assert (target.kind, target.region, target.endpoint_url) == ("stack", "eu-west-1", None)
    assert target.stream_name == "shop-segment-events"
    assert target.on_failure_queue_url.endswith("/shop-fb")
    assert target.api_key == "k" * 40
    assert target.profile_token_parameter is None
    assert target.function_name == "shop-update-traits"


def test_terraform_failing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_terraform(monkeypatch, tmp_path, "", code=1)
    with pytest.raises(TargetError, match="Error: No outputs found"):
        from_terraform(tmp_path)


def _state(**extra: object) -> dict[str, object]:
    return {
        "running": True,
        "api_url": "http://127.0.0.1:8080",
        "api_key": "key",
        "moto_url": "http://127.0.0.1:5001",
        "segment_url": "http://127.0.0.1:5002",
        "region": "us-east-1",
        "stream_name": "sandbox-segment-events",
        "stream_arn": "arn:aws:kinesis:us-east-1:123456789012:stream/sandbox-segment-events",
        "dead_letter_queue_url": "http://127.0.0.1:5001/123456789012/dlq",
        "on_failure_queue_url": "http://127.0.0.1:5001/123456789012/of",
        **extra,
    }


def test_the_sandbox_comes_from_state_json_and_tolerates_added_keys(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps(_state()))
    target = from_sandbox(tmp_path)
    assert (target.kind, target.endpoint_url) == ("sandbox", "http://127.0.0.1:5001")
    assert target.write_key_parameter == "/sandbox/segment/write-key"
    assert target.profile_api_url == "http://127.0.0.1:5002/v1"
    # Contract §9 keys (the emulator delivering to the stream) change nothing needed here.
    added = {
        "segment": {"tracking_url": "http://127.0.0.1:5002", "write_key": "wk",
                    "controls_url": "http://127.0.0.1:5002/_emulator/controls"},
        "personalize": {"controls_url": "http://127.0.0.1:5003/_emulator/controls"},
    }  # fmt: skip
    (tmp_path / "state.json").write_text(json.dumps(_state(**added)))
    assert from_sandbox(tmp_path) == target


def test_a_stopped_or_old_sandbox_is_named(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({**_state(), "running": False}))
    with pytest.raises(TargetError, match="is not running"):
        from_sandbox(tmp_path)
    state = _state()
    del state["on_failure_queue_url"]
    (tmp_path / "state.json").write_text(json.dumps(state))
    with pytest.raises(TargetError, match="lacks 'on_failure_queue_url'"):
        from_sandbox(tmp_path)


def test_the_store_and_the_budget_from_state_json(tmp_path: Path) -> None:
    state = _state(
        user_state_table="sandbox-user-state",
        refresh_queue_url="http://127.0.0.1:5001/123456789012/sandbox-update-traits-refresh",
        segment={"tracking_url": "http://127.0.0.1:5002", "profile_api_rps": 90.0},
    )
    (tmp_path / "state.json").write_text(json.dumps(state))
    t = from_sandbox(tmp_path)
    assert (t.user_state_table, t.profile_api_rps) == ("sandbox-user-state", 90.0)
    assert t.purchased_trait == "purchased_products"
    # A sandbox without the store (or from before it): no table, no budget known.
    (tmp_path / "state.json").write_text(json.dumps(_state(user_state_table=None)))
    assert (from_sandbox(tmp_path).user_state_table, from_sandbox(tmp_path).profile_api_rps) == (
        None,
        None,
    )


def test_the_store_and_the_budget_from_terraform_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {
        **STACK_OUTPUTS,
        "user_state_table": {
            "value": {"name": "shop-user-state", "arn": "arn:aws:dynamodb:::table/shop-user-state"}
        },
        "segment_profile_api_budget": {"value": {"requests_per_second": 60, "per_container": 6}},
    }
    _fake_terraform(monkeypatch, tmp_path, json.dumps(outputs))
    t = from_terraform(tmp_path)
    assert (t.user_state_table, t.profile_api_rps) == ("shop-user-state", 60.0)


def test_the_deployed_functions_settings_name_the_table_it_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {**STACK_OUTPUTS, "user_state_table": {"value": {"name": "shop-user-state"}}}
    _fake_terraform(monkeypatch, tmp_path, json.dumps(outputs))
    stack = from_terraform(tmp_path)

    def with_env(env: dict[str, str]) -> target.Target:
        class Lambda:
            def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
                assert FunctionName == "shop-update-traits"
                return {"Environment": {"Variables": env}}

        monkeypatch.setattr(target.Target, "client", lambda self, service: Lambda())
        return target.with_function_settings(stack)

    t = with_env(
        {
            "USER_STATE_TABLE": "shop-user-state",
            "PURCHASED_TRAIT": "orders",
            "USER_STATE_TTL_DAYS": "30",
        }
    )
    assert (t.user_state_table, t.purchased_trait, t.user_state_ttl_days) == (
        "shop-user-state",
        "orders",
        30,
    )
    # An update_traits from before the store: no USER_STATE_TABLE, so smoke does not check it.
    assert with_env({}).user_state_table is None
