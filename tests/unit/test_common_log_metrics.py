"""common.log and common.metrics: one JSON line each, only what they are given."""

from __future__ import annotations

import json

import pytest

from common.log import Logger, hash_id
from common.metrics import Metrics


def out(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_logger_prints_only_what_it_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    logger = Logger("svc", level="INFO")
    logger.bind(request_id="r1")
    logger.info("done", count=3)
    (line,) = out(capsys)
    assert set(line) == {"level", "timestamp", "service", "message", "request_id", "count"}
    assert (line["level"], line["service"], line["message"], line["count"]) == (
        "INFO",
        "svc",
        "done",
        3,
    )


def test_logger_level_threshold_and_rebinding(capsys: pytest.CaptureFixture[str]) -> None:
    logger = Logger("svc", level="WARNING")
    logger.bind(request_id="r1")
    logger.info("hidden")
    logger.bind(request_id="r2")
    logger.error("shown")
    (line,) = out(capsys)
    assert (line["message"], line["request_id"]) == ("shown", "r2")


def test_hash_id_is_stable_short_and_not_the_id() -> None:
    assert hash_id("user-1") == hash_id("user-1")
    assert hash_id("user-1") != hash_id("user-2")
    assert len(hash_id("user-1")) == 16
    assert "user" not in hash_id("user-1")


def test_emf_blob_shape(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics("NS", "svc", "prod-eu")
    metrics.add("Requests", 1)
    metrics.add("Requests", 2)
    metrics.add("Latency", 12.5, "Milliseconds")
    metrics.flush(status=200)
    (blob,) = out(capsys)
    directive = blob["_aws"]
    assert isinstance(directive, dict)
    assert isinstance(directive["Timestamp"], int)
    (entry,) = directive["CloudWatchMetrics"]
    assert entry["Namespace"] == "NS"
    assert entry["Dimensions"] == [["deployment", "service"]]
    assert entry["Metrics"] == [
        {"Name": "Latency", "Unit": "Milliseconds"},
        {"Name": "Requests", "Unit": "Count"},
    ]
    assert (blob["deployment"], blob["service"], blob["Requests"], blob["Latency"]) == (
        "prod-eu",
        "svc",
        3,
        12.5,
    )
    assert blob["status"] == 200


def test_flush_resets_and_splits_at_100_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    metrics = Metrics("NS", "svc")
    metrics.flush()
    assert out(capsys) == []
    for n in range(150):
        metrics.add(f"M{n:03d}", 1)
    metrics.flush()
    blobs = out(capsys)
    assert [len(b["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for b in blobs] == [100, 50]  # type: ignore[index]
    assert metrics.snapshot() == {}


def test_namespace_and_deployment_come_from_the_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Metrics.from_env({"METRICS_NAMESPACE": "Shop", "DEPLOYMENT_NAME": "shop-eu"}, "svc").flush()
    assert out(capsys) == []  # nothing collected, nothing written
    metrics = Metrics.from_env({"DEPLOYMENT_NAME": " shop-eu "}, "svc")
    metrics.add("Records", 2)
    metrics.flush()
    (blob,) = out(capsys)
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SegmentPersonalize"
    assert blob["deployment"] == "shop-eu"
    metrics = Metrics.from_env({"DEPLOYMENT_NAME": "  "}, "svc")
    metrics.add("Records", 1)
    metrics.flush()
    assert out(capsys)[0]["deployment"] == "default"
