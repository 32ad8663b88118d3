"""`make sandbox` end to end: the sandbox runs as a subprocess, events flow from the stream
through the unmodified update_traits handler to a Segment profile, the API answers through
the unmodified recommendations handler, and SIGTERM leaves no process and no port behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-sandbox-key-0123456789"
NUM_RESULTS = 10
T = TypeVar("T")

pytestmark = pytest.mark.timeout(90)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _poll(what: str, check: Callable[[], T | None], timeout_s: float, every_s: float = 0.2) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


def _alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_in_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _start(args: list[str], state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "scripts"), PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--state-dir", str(state_dir), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the test can always kill what is left
        )


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[dict[str, Any]]:
    port = _free_port()
    state_dir = tmp_path / "state"
    log = tmp_path / "console.log"
    proc = _start(
        [
            "--port", str(port),
            "--api-key", API_KEY,
            "--rate", "20",
            "--events", "150",
            "--batching-window", "0.2",
            "--poll-interval", "0.1",
            "--num-results", str(NUM_RESULTS),
            "--no-filter",  # purchased items must be removed by the handler, not Personalize
            "--max-retries", "1",
            "--retry-delay", "0.1",
        ],
        state_dir,
        log,
    )  # fmt: skip

    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"sandbox exited early:\n{log.read_text()}")
        path = state_dir / "state.json"
        if not path.exists():
            return None
        state: dict[str, Any] = json.loads(path.read_text())
        return state if state.get("running") else None

    try:
        state = _poll("the sandbox to be ready", ready, timeout_s=45)
        yield {"state": state, "proc": proc, "log": log, "port": port, "state_dir": state_dir}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _profile(state: dict[str, Any], user: str) -> dict[str, Any] | None:
    response = requests.get(f"{state['segment_url']}/_emulator/profiles/{user}", timeout=5)
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def _aws(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_sandbox_end_to_end(sandbox: dict[str, Any]) -> None:
    state, proc = sandbox["state"], sandbox["proc"]
    personalize = _aws("personalize-runtime", state["personalize_url"])

    # A user with purchases whom Personalize, unfiltered, would recommend a purchased item:
    # only the handler's exclusion keeps it out of the trait.
    def candidate() -> tuple[str, list[str], list[str]] | None:
        for n in range(1, 201):
            user = f"user-{n:04d}"
            traits = _profile(state, user) or {}
            purchased = traits.get("purchased_products") or []
            if not purchased or "recommended_products" in traits:
                continue
            ranked = personalize.get_recommendations(
                campaignArn=state["campaign_arn"], userId=user, numResults=NUM_RESULTS
            )["itemList"]
            ranked_ids = [i["itemId"] for i in ranked]
            if set(ranked_ids) & set(purchased):
                return user, purchased, ranked_ids
        return None

    found = candidate()
    assert found is not None, "no user for whom Personalize recommends a purchased item"
    user, purchased, ranked = found
    # This batch's own purchase of the top item must be excluded as well.
    bought_now = next(i for i in ranked if i not in purchased)

    kinesis = _aws("kinesis", state["moto_url"])
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    message = {
        "type": "track",
        "event": "Order Completed",
        "userId": user,
        "anonymousId": str(uuid.uuid4()),
        "messageId": f"e2e-{uuid.uuid4()}",
        "timestamp": now,
        "properties": {"products": [{"sku": bought_now, "quantity": 1}]},
    }
    kinesis.put_record(
        StreamName=state["stream_name"], Data=json.dumps(message).encode(), PartitionKey=user
    )

    def recommended() -> list[str] | None:
        value = (_profile(state, user) or {}).get("recommended_products")
        return value if isinstance(value, list) else None

    trait = _poll(f"{user}'s recommended_products trait", recommended, timeout_s=30)
    assert trait, "empty recommended_products"
    assert len(trait) == NUM_RESULTS  # refilled after removing purchases
    assert not set(trait) & set(purchased), "a purchased item was recommended"
    assert bought_now not in trait, "this batch's purchase was recommended"

    # The API, through the local gateway and the unmodified recommendations handler.
    url = f"{state['api_url']}/recommendations"
    ok = requests.get(
        url, params={"userId": user, "numResults": 5}, headers={"x-api-key": API_KEY}, timeout=10
    )
    assert ok.status_code == 200, ok.text
    body = ok.json()
    items = body["items"]
    assert 1 <= len(items) <= 5
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    assert body["userId"] == user
    forbidden = requests.get(url, params={"userId": user}, timeout=10)
    assert forbidden.status_code == 403
    assert forbidden.json() == {"message": "Forbidden"}
    wrong_key = requests.get(
        url, params={"userId": user}, headers={"x-api-key": "x" * 30}, timeout=10
    )
    assert wrong_key.status_code == 403
    unrouted = requests.get(f"{state['api_url']}/nope", headers={"x-api-key": API_KEY}, timeout=10)
    assert unrouted.status_code == 403
    assert unrouted.json() == {"message": "Missing Authentication Token"}

    # A batch that keeps failing (Segment down for one user) ends in the on-failure queue.
    controls = f"{state['segment_url']}/_emulator/controls"
    failing_user = next(f"user-{n:04d}" for n in range(1, 201) if f"user-{n:04d}" != user)
    requests.post(
        controls,
        json={"fault_rate": {"500": 1.0}, "only_users": [failing_user], "operations": ["batch"]},
        timeout=5,
    ).raise_for_status()
    failing = dict(message, userId=failing_user, messageId=f"e2e-{uuid.uuid4()}")
    failing["properties"] = {"sku": bought_now}
    failing["event"] = "Product Viewed"
    put = kinesis.put_record(
        StreamName=state["stream_name"],
        Data=json.dumps(failing).encode(),
        PartitionKey=failing_user,
    )
    sqs = _aws("sqs", state["moto_url"])

    def on_failure_record() -> dict[str, Any] | None:
        got = sqs.receive_message(
            QueueUrl=state["on_failure_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        for raw in got.get("Messages", []):
            record: dict[str, Any] = json.loads(raw["Body"])
            info = record["KinesisBatchInfo"]
            if (
                int(info["startSequenceNumber"])
                <= int(put["SequenceNumber"])
                <= int(info["endSequenceNumber"])
            ):
                return record
        return None

    record = _poll("an on-failure record", on_failure_record, timeout_s=20)
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # 1 try + 1 retry
    assert record["KinesisBatchInfo"]["streamArn"] == state["stream_arn"]
    assert record["KinesisBatchInfo"]["shardId"] == put["ShardId"]
    requests.post(controls, json={"fault_rate": {"500": 0.0}}, timeout=5).raise_for_status()

    # The replay fed the stream too: batches of other users were processed and logged.
    def replayed_batches() -> list[str] | None:
        lines = [
            line
            for line in sandbox["log"].read_text().splitlines()
            if " batch shardId-" in line and "identifies=" in line
        ]
        return lines if len(lines) >= 2 else None

    _poll("batch lines from the replay", replayed_batches, timeout_s=20)

    # SIGTERM stops everything: no child left, every port free again.
    children = state["children"]
    assert children and all(_alive(c["pid"]) for c in children)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    for child in children:
        assert not _alive(child["pid"]), f"{child['name']} survived"
        assert _processes_in_group(child["pgid"]) == []
    assert _processes_in_group(proc.pid) == []
    for name, port in state["ports"].items():
        assert _port_free(port), f"port {port} ({name}) still bound"

    console = sandbox["log"].read_text()
    assert "API key   " + API_KEY in console
    assert f"curl -s -H 'x-api-key: {API_KEY}'" in console
    assert "/_emulator/profiles/" in console
    assert "sandbox: stopped" in console
    # The handlers' JSON logs go to a file, not to the console.
    assert not any(line.startswith('{"level"') for line in console.splitlines())
    assert '"service"' in (sandbox["state_dir"] / "handlers.log").read_text()
    assert json.loads((sandbox["state_dir"] / "state.json").read_text())["running"] is False


def test_a_taken_port_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        log = tmp_path / "console.log"
        started = time.monotonic()
        proc = _start(["--port", str(port)], tmp_path / "state", log)
        try:
            code = proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        elapsed = time.monotonic() - started
    assert code != 0
    assert f"port {port}" in log.read_text()
    assert "already in use" in log.read_text()
    assert elapsed < 15
    # Nothing was started: no moto log, no child.
    assert not (tmp_path / "state" / "moto.log").exists()
