"""What the sandbox gives the functions: the user-state store's variables, the Profile API
split with and without it."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox import resources
from sandbox.console import Console
from sandbox.runner import Options, Sandbox

STORE = resources.UserStateResources(
    table_name="sandbox-user-state",
    table_arn="arn:aws:dynamodb:us-east-1:123456789012:table/sandbox-user-state",
    refresh_queue_url="http://127.0.0.1:5000/123456789012/sandbox-update-traits-refresh",
    refresh_queue_arn="arn:aws:sqs:us-east-1:123456789012:sandbox-update-traits-refresh",
)


def fakes(limit: float | None = 100.0) -> tuple[Any, Any, Any]:
    personalize = SimpleNamespace(
        campaign_arn="arn:c", tracking_id="t", related_items_campaign_arn="arn:r",
        ranking_campaign_arn="arn:k", category_filter_arn="arn:f1",
        purchase_filter_arn="arn:f2",
    )  # fmt: skip
    limits = {} if limit is None else {"profile": SimpleNamespace(rate=limit)}
    segment = SimpleNamespace(url="http://127.0.0.1:1", rate_limits=SimpleNamespace(limits=limits))
    made = SimpleNamespace(
        write_key_parameter="/w",
        profile_token_parameter="/p",
        log_hash_key_parameter="/k",
        dead_letter_queue_url="http://dlq",
    )
    return personalize, segment, made


def env_of(options: Options, tmp_path: Path, store: Any) -> dict[str, str]:
    sandbox = Sandbox(options, Console())
    return sandbox._function_env(*fakes(), store)


def test_the_store_sets_its_variables_and_gives_update_traits_the_whole_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))
    env = env_of(Options(state_dir=tmp_path, min_refresh_interval=12), tmp_path, STORE)
    assert env["USER_STATE_TABLE"] == "sandbox-user-state"
    assert env["REFRESH_QUEUE_URL"] == STORE.refresh_queue_url
    assert env["MIN_REFRESH_INTERVAL_S"] == "12"
    assert env["SEGMENT_PROFILE_API_RPS"] == "90"  # the API reads no Profile API


def test_without_the_store_the_share_is_split_in_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "environ", {**os.environ, "USER_STATE_TABLE": "left-over"})
    env = env_of(Options(state_dir=tmp_path, user_state="off"), tmp_path, None)
    assert "USER_STATE_TABLE" not in env and "REFRESH_QUEUE_URL" not in env
    assert "USER_STATE_TABLE" not in os.environ  # a variable left from before is removed
    assert env["SEGMENT_PROFILE_API_RPS"] == "45"


def test_a_profile_api_share_given_replaces_the_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))
    # Terraform's share per container for its defaults with the store (90 / 20 containers).
    env = env_of(Options(state_dir=tmp_path, profile_api_share=4.0), tmp_path, STORE)
    assert env["SEGMENT_PROFILE_API_RPS"] == "4"
