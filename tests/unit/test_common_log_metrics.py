"""common.log and common.metrics: one JSON line each, only what they are given."""

from __future__ import annotations

import hashlib
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


KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def test_hash_id_is_a_keyed_stable_short_pseudonym() -> None:
    assert hash_id("user-1", KEY) == hash_id("user-1", KEY)
    assert hash_id("user-1", KEY) != hash_id("user-2", KEY)
    assert len(hash_id("user-1", KEY) or "") == 16
    assert "user" not in (hash_id("user-1", KEY) or "")


def test_the_same_id_under_another_key_is_another_pseudonym() -> None:
    """An unkeyed hash of an e-mail is reversed by hashing a list of e-mails: with a key per
    deployment, nobody without the key can, and two deployments' logs do not link."""
    assert hash_id("jane@example.com", KEY) != hash_id("jane@example.com", OTHER_KEY)
    unkeyed = hashlib.sha256(b"jane@example.com").hexdigest()[:16]
    assert hash_id("jane@example.com", KEY) != unkeyed


def test_no_key_no_pseudonym() -> None:
    assert hash_id("user-1", None) is None
    assert hash_id("user-1", b"") is None


def test_a_lone_surrogate_still_gets_a_pseudonym() -> None:
    assert hash_id("a\ud800", KEY) not in (None, hash_id("a", KEY))


def test_the_logger_pseudonymises_with_its_key_or_not_at_all() -> None:
    logger = Logger("svc")
    assert logger.pseudonym("user-1") is None  # no key given: no id, never an unkeyed hash
    keys: list[bytes | None] = [None]
    logger.use_pseudonym_key(lambda: keys[0])
    assert logger.pseudonym("user-1") is None  # the key is not read yet
    keys[0] = KEY
    assert logger.pseudonym("user-1") == hash_id("user-1", KEY)


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
