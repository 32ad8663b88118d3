"""common.runtime: one runtime per container, built once, a configuration error cached the
same way by both functions; common.aws.Clients: one client per policy."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from common.aws import ClientPolicy, Clients
from common.config import ConfigError, env_required
from common.runtime import Loaded, PerContainer
from reco_api import runtime as reco_runtime
from traits_sync import runtime as traits_runtime


class Thing:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_built_once_even_under_concurrent_first_calls() -> None:
    built: list[Thing] = []
    gate = threading.Barrier(8)

    def build() -> Thing:
        built.append(Thing())
        return built[-1]

    container = PerContainer(build)
    seen: list[Thing] = []

    def first_call() -> None:
        gate.wait()
        seen.append(container.get())

    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert len(built) == 1
    assert seen == built * 8


def test_reset_closes_and_the_next_call_builds_afresh() -> None:
    container = PerContainer(Thing)
    first = container.get()
    container.reset()
    assert first.closed
    assert container.get() is not first
    container.reset()
    container.reset()  # nothing built: nothing to close


def test_loaded_keeps_the_error_and_require_raises_it() -> None:
    calls: list[None] = []

    def load(env: Any) -> str:
        calls.append(None)
        return env_required(env, "X")

    ok = Loaded.of(load, {"X": "1"})
    assert (ok.settings, ok.error, ok.require()) == ("1", None, "1")
    bad = Loaded.of(load, {})
    assert bad.settings is None and bad.error is not None and bad.error.name == "X"
    with pytest.raises(ConfigError):
        bad.require()
    assert len(calls) == 2


@pytest.mark.parametrize("module", [reco_runtime, traits_runtime])
def test_both_functions_read_their_settings_once_per_container(
    module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERSONALIZE_CAMPAIGN_ARN", raising=False)
    module.reset()
    try:
        first = module.get()
        assert first.settings is None
        assert first.config_error.name == "PERSONALIZE_CAMPAIGN_ARN"
        # Fixed in the environment, but a container's settings do not change: same error.
        arn = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
        monkeypatch.setenv("PERSONALIZE_CAMPAIGN_ARN", arn)
        assert module.get() is first
        assert module.get().config_error is first.config_error
    finally:
        module.reset()


def test_clients_one_per_service_and_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    clients = Clients()
    fast = ClientPolicy(read_timeout=1.0)
    assert clients.ssm(fast) is clients.ssm(fast)
    assert clients.ssm(fast) is not clients.ssm(ClientPolicy())
    assert clients.ssm(fast) is not Clients().ssm(fast)  # per container, not per process
    assert clients.ssm(fast).meta.config.read_timeout == 1.0
