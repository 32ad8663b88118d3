"""The Segment emulator as Segment's own libraries and Amazon Kinesis destination see it:
segment-analytics-python (gzip on and off) and analytics.js's request shapes are accepted,
and every accepted message lands on a Kinesis stream (moto's server over loopback HTTP) as
the destination writes it."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from segment.analytics import Client

from devkit.aws import local_client
from devkit.processes import emulator_process
from emulators.segment import SegmentEmulator
from emulators.segment_kinesis import loopback_kinesis_client

WRITE_KEY = "sandbox-write-key"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def stream(moto_url: str) -> Iterator[tuple[Any, str]]:
    kinesis = local_client("kinesis", moto_url)
    name = f"segment-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50}
    )
    yield kinesis, name
    kinesis.delete_stream(StreamName=name)


@pytest.fixture
def segment(stream: tuple[Any, str], moto_url: str) -> Iterator[SegmentEmulator]:
    _, name = stream
    with SegmentEmulator(write_key=WRITE_KEY) as emulator:
        emulator.connect_kinesis(loopback_kinesis_client(moto_url, "us-east-1"), name)
        yield emulator


def _records(kinesis: Any, name: str, want: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    """Every record on the stream once at least ``want`` have arrived (bounded wait)."""
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName=name, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while True:
        response = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        found += response["Records"]
        iterator = response["NextShardIterator"]
        if len(found) >= want:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(found)} of {want} records after {timeout_s} s")
        time.sleep(0.05)


def _client(segment: SegmentEmulator, **options: Any) -> Client:
    errors: list[Any] = []
    client = Client(
        WRITE_KEY,
        host=segment.url,
        on_error=lambda exc, batch: errors.append(exc),
        upload_interval=0.05,
        max_retries=0,
        **options,
    )
    client.test_errors = errors  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("gzip_on", [True, False], ids=["gzip", "plain"])
def test_analytics_python_events_reach_the_stream_as_full_json(
    segment: SegmentEmulator, stream: tuple[Any, str], gzip_on: bool
) -> None:
    kinesis, name = stream
    client = _client(segment, gzip=gzip_on)
    at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    client.identify("u1", {"plan": "plus"}, timestamp=at, message_id="m-identify")
    client.track(
        "u1",
        "Order Completed",
        {"order_id": "o1", "products": [{"sku": "SKU-1"}, {"sku": "SKU-2"}]},
        timestamp=at,
        message_id="m-order",
    )
    client.page(anonymous_id="anon-9", name="Home", message_id="m-page")
    client.screen("u1", name="Cart", message_id="m-screen")
    client.group("u1", "g1", {"name": "Acme"}, message_id="m-group")
    client.alias("anon-9", "u1", message_id="m-alias")
    client.flush()
    client.join()
    assert client.test_errors == []  # type: ignore[attr-defined]

    records = _records(kinesis, name, 6)
    by_id = {json.loads(r["Data"])["messageId"]: r for r in records}
    assert sorted(by_id) == sorted(
        ["m-identify", "m-order", "m-page", "m-screen", "m-group", "m-alias"]
    )
    order = json.loads(by_id["m-order"]["Data"])
    assert order["type"] == "track" and order["event"] == "Order Completed"
    assert order["properties"]["products"] == [{"sku": "SKU-1"}, {"sku": "SKU-2"}]
    assert order["context"]["library"]["name"] == "analytics-python"
    assert order["timestamp"].startswith("2026-03-01T12:00:00")
    assert order["receivedAt"].endswith("Z") and order["sentAt"]
    assert "writeKey" not in order  # the credential stays at the edge
    keys = {mid: r["PartitionKey"] for mid, r in by_id.items()}
    assert keys["m-page"] == "anon-9"  # no userId: anonymousId
    assert all(keys[m] == "u1" for m in by_id if m != "m-page")
    # The computed trait follows the same events.
    assert segment.traits("u1") == {"plan": "plus", "purchased_products": ["SKU-1", "SKU-2"]}
    assert segment.destination is not None
    assert segment.destination.stats()["delivered"] == 6


def test_single_call_routes_and_analytics_js_shapes_are_delivered(
    segment: SegmentEmulator, stream: tuple[Any, str]
) -> None:
    kinesis, name = stream
    # analytics.js: text/plain, the write key in the body, the short routes, CORS.
    body = {"userId": "u2", "event": "Product Viewed", "writeKey": WRITE_KEY, "messageId": "js-1"}
    response = requests.post(
        f"{segment.url}/v1/t",
        data=json.dumps(body),
        headers={"Content-Type": "text/plain", "Origin": "http://localhost:3000"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    preflight = requests.options(f"{segment.url}/v1/t", timeout=5)
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    # The HTTP API's own single-call route, gzip-encoded by hand.
    raw = gzip.compress(
        json.dumps({"anonymousId": "a3", "name": "Home", "messageId": "p-1"}).encode()
    )
    page = requests.post(
        f"{segment.url}/v1/page",
        data=raw,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        auth=(WRITE_KEY, ""),
        timeout=5,
    )
    assert page.status_code == 200, page.text
    records = _records(kinesis, name, 2)
    messages = {json.loads(r["Data"])["messageId"]: json.loads(r["Data"]) for r in records}
    assert messages["js-1"]["type"] == "track" and "writeKey" not in messages["js-1"]
    assert messages["p-1"]["type"] == "page"
    assert {r["PartitionKey"] for r in records} == {"u2", "a3"}


def test_bad_gzip_and_oversized_decoded_bodies_are_400(segment: SegmentEmulator) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    broken = requests.post(
        f"{segment.url}/v1/batch",
        data=b"not gzip",
        headers=headers,
        auth=(WRITE_KEY, ""),
        timeout=5,
    )
    assert broken.status_code == 400 and broken.json()["message"] == "invalid gzip body"
    # Small on the wire, over 500 KB once decoded (a compression bomb is cut off there).
    big = {
        "batch": [{"type": "track", "userId": "u", "event": "E", "properties": {"x": "a" * 30_000}}]
        * 20
    }
    packed = gzip.compress(json.dumps(big).encode())
    assert len(packed) < 50_000
    over = requests.post(
        f"{segment.url}/v1/batch", data=packed, headers=headers, auth=(WRITE_KEY, ""), timeout=5
    )
    assert over.status_code == 400 and "over 500000 bytes" in over.json()["message"]
    other = requests.post(
        f"{segment.url}/v1/batch",
        data=b"{}",
        headers={**headers, "Content-Encoding": "br"},
        auth=(WRITE_KEY, ""),
        timeout=5,
    )
    assert other.status_code == 400
    assert segment.messages() == []


def test_what_is_not_delivered(segment: SegmentEmulator, stream: tuple[Any, str]) -> None:
    kinesis, name = stream

    def identify(message_id: str, integrations: dict[str, Any]) -> dict[str, Any]:
        return {"type": "identify", "userId": "u1", "messageId": message_id,
                "integrations": integrations}  # fmt: skip

    batch = {
        "batch": [
            # our own identifies turn the destination off (loop prevention)
            identify("off", {"Amazon Kinesis": False}),
            identify("all-off", {"All": False}),
            identify("only-kinesis", {"All": False, "Amazon Kinesis": True}),
            {"type": "track", "userId": "u1", "event": "E", "messageId": "dup"},
            {"type": "track", "userId": "u1", "event": "E", "messageId": "dup"},  # dropped
            {"type": "track", "userId": "u1", "messageId": "no-event"},  # dropped
        ]
    }
    assert requests.post(f"{segment.url}/v1/batch", json=batch, auth=(WRITE_KEY, ""), timeout=5).ok
    wrong_key = {"batch": [{"type": "track", "userId": "u1", "event": "E", "messageId": "wk"}]}
    assert requests.post(f"{segment.url}/v1/batch", json=wrong_key, auth=("nope", ""), timeout=5).ok
    assert segment.destination is not None and segment.destination.flush(5)
    records = _records(kinesis, name, 2)
    assert sorted(json.loads(r["Data"])["messageId"] for r in records) == ["dup", "only-kinesis"]


def test_use_message_id_and_duplicates_through_the_control_endpoint(
    segment: SegmentEmulator, stream: tuple[Any, str]
) -> None:
    kinesis, name = stream
    control = f"{segment.url}/_emulator/destination"
    bad = requests.post(control, json={"duplicate_rate": 2}, timeout=5)
    assert bad.status_code == 400
    set_ = requests.post(control, json={"use_message_id": True, "duplicate_rate": 1.0}, timeout=5)
    assert set_.status_code == 200 and set_.json()["use_message_id"] is True
    batch = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "E", "messageId": f"m{i}"} for i in range(3)
        ]
    }
    assert requests.post(f"{segment.url}/v1/batch", json=batch, auth=(WRITE_KEY, ""), timeout=5).ok
    records = _records(kinesis, name, 6)
    assert len(records) == 6  # every record delivered twice: at least once
    assert sorted(r["PartitionKey"] for r in records) == ["m0", "m0", "m1", "m1", "m2", "m2"]
    stats = requests.get(control, timeout=5).json()
    assert stats["duplicates"] == 3 and stats["delivered"] == 6 and stats["pending"] == 0
    assert (
        requests.get(f"{segment.url}/_emulator/stats", timeout=5).json()["kinesis"]["delivered"]
        == 6
    )


def test_a_big_batch_goes_out_in_put_records_calls_of_at_most_500(
    segment: SegmentEmulator, stream: tuple[Any, str]
) -> None:
    kinesis, name = stream
    destination = segment.destination
    assert destination is not None
    destination.stop()  # queue the whole batch first; flush() then delivers in this thread
    batch = {
        "batch": [
            {"type": "track", "userId": f"u{i % 7}", "event": "E", "messageId": f"b{i}"}
            for i in range(1200)
        ]
    }
    assert requests.post(f"{segment.url}/v1/batch", json=batch, auth=(WRITE_KEY, ""), timeout=10).ok
    assert destination.pending() == 1200
    assert destination.flush(10)
    records = _records(kinesis, name, 1200)
    assert len(records) == 1200
    stats = destination.stats()
    assert stats["put_calls"] == 3  # 500 + 500 + 200, not one call per message
    assert stats["delivered"] == 1200


def test_process_mode_delivers_to_the_stream(stream: tuple[Any, str], moto_url: str) -> None:
    kinesis, name = stream
    with emulator_process(
        "emulators.segment", "--port", "0",
        "--kinesis-stream", name, "--kinesis-endpoint-url", moto_url,
    ) as (process, lines, url):  # fmt: skip
        assert json.loads(lines.get(timeout=10))["kinesis_stream"] == name
        body = {"batch": [{"type": "track", "userId": "u9", "event": "E", "messageId": "cli-1"}]}
        assert requests.post(f"{url}/v1/batch", json=body, auth=(WRITE_KEY, ""), timeout=5).ok
        records = _records(kinesis, name, 1)
        assert json.loads(records[0]["Data"])["messageId"] == "cli-1"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


@pytest.mark.parametrize(
    "endpoint", ["https://kinesis.us-east-1.amazonaws.com", "http://10.0.0.1:4566"]
)
def test_only_loopback_kinesis_endpoints(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"must be on 127\.0\.0\.1"):
        loopback_kinesis_client(endpoint, "us-east-1")
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts")}
    refused = subprocess.run(
        [sys.executable, "-m", "emulators.segment", "--kinesis-stream", "s",
         "--kinesis-endpoint-url", endpoint],
        capture_output=True, text=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    assert refused.returncode == 2 and "must be on 127.0.0.1" in refused.stderr
