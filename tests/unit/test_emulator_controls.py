"""Fault and latency decisions, without any server."""

from __future__ import annotations

import pytest

from emulators.controls import Controls


def _faults(controls: Controls, n: int = 200, user: str = "u") -> list[str | None]:
    return [controls.decide("GetRecommendations", [user]).fault for _ in range(n)]


def test_no_faults_by_default() -> None:
    decision = Controls().decide("GetRecommendations", ["u"])
    assert decision.fault is None and decision.delay_s == 0


def test_fault_rates_are_seeded_and_roughly_right() -> None:
    controls = Controls(seed=4)
    controls.set(fault_rate={"429": 0.2, "500": 0.1, "reset": 0.1})
    first = _faults(controls, 1000)
    counts = {kind: first.count(kind) for kind in ("429", "500", "503", "slow", "reset")}
    assert 150 < counts["429"] < 250
    assert 60 < counts["500"] < 140
    assert counts["503"] == counts["slow"] == 0
    controls.set(seed=4)  # re-seeding repeats the run
    assert _faults(controls, 1000) == first
    controls.set(seed=5)
    assert _faults(controls, 1000) != first


def test_scope_by_user_and_operation() -> None:
    controls = Controls()
    controls.set(fault_rate={"500": 1.0}, only_users={"bad"}, operations={"GetRecommendations"})
    assert controls.decide("GetRecommendations", ["bad"]).fault == "500"
    assert controls.decide("GetRecommendations", ["good"]).fault is None
    assert controls.decide("GetRecommendations", [None]).fault is None
    assert controls.decide("PutEvents", ["bad"]).fault is None
    assert controls.decide("batch", ["good", "bad"]).fault is None
    controls.set(operations=None)  # explicit None lifts the limit; omitted keeps it
    assert controls.decide("PutEvents", ["bad"]).fault == "500"
    assert controls.decide("PutEvents", ["good"]).fault is None
    controls.clear_scope()
    assert controls.decide("PutEvents", ["good"]).fault == "500"


def test_latency_jitter_and_slow() -> None:
    controls = Controls(seed=1)
    controls.set(latency_ms=100, jitter_ms=50)
    delays = [controls.decide("x", []).delay_s for _ in range(100)]
    assert all(0.1 <= d <= 0.15 for d in delays)
    assert len(set(delays)) > 50
    controls.set(latency_ms=0, jitter_ms=0, fault_rate={"slow": 1.0}, slow_ms=700)
    decision = controls.decide("x", [])
    assert decision.fault == "slow" and decision.delay_s == pytest.approx(0.7)


def test_invalid_settings_are_refused() -> None:
    controls = Controls()
    with pytest.raises(ValueError, match="unknown fault kind"):
        controls.set(fault_rate={"418": 0.1})
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        controls.set(fault_rate={"500": 1.5})
    with pytest.raises(ValueError, match="more than 1"):
        controls.set(fault_rate={"500": 0.6, "503": 0.6})
    with pytest.raises(ValueError, match="latency_ms"):
        controls.set(latency_ms=-1)


def test_reset_restores_defaults() -> None:
    controls = Controls(seed=3)
    controls.set(latency_ms=5, fault_rate={"503": 1}, only_users={"a"}, seed=9, retry_after_s=7)
    controls.reset()
    assert controls.snapshot() == {
        "latency_ms": 0.0,
        "jitter_ms": 0.0,
        "fault_rate": {"429": 0.0, "500": 0.0, "503": 0.0, "slow": 0.0, "reset": 0.0},
        "slow_ms": 2000.0,
        "retry_after_s": 1,
        "only_users": None,
        "operations": None,
        "seed": 3,
        "batch_error_rate": 0.0,
        "batch_error_users": None,
        "batch_job_delay_ms": 0.0,
    }
