"""`make sandbox` + `scripts/bundle backfill`, end to end: the sandbox runs as a subprocess;
`backfill start --sandbox` starts a batch inference job in the Personalize emulator through
the unmodified batch_traits handler (Lambda Invoke API), the output lands in moto's S3, the
S3 -> SQS notification and the chunk messages reach the handler through the sandbox's SQS
event source mapping, and the identifies reach the Segment emulator's profiles. Error lines
injected in the emulator are counted as failed; a chunk that keeps failing ends in the
dead-letter queue with its byte range, and the status says so."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devkit.aws import local_client
from devkit.sandbox import poll, run_bundle, sandbox_in
from emulators import data
from sandbox.processes import free_port

SEED, USERS = 1, 200  # the sandbox's defaults
TRAIT = "recommended_products"

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    args = [
        "--port", str(free_port()), "--rate", "0", "--totals-interval", "0",
        "--chunk-visibility-timeout", "1",
    ]  # fmt: skip
    with sandbox_in(tmp_path_factory.mktemp("backfill-sandbox"), args, timeout_s=60) as running:
        yield running


def bundle(
    sandbox: dict[str, Any], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run_bundle(sandbox["state_dir"], *args, timeout=timeout)


def s3(sandbox: dict[str, Any]) -> Any:
    return local_client("s3", sandbox["state"]["moto_url"])


def profiles(sandbox: dict[str, Any]) -> dict[str, list[str] | None]:
    base = f"{sandbox['state']['segment_url']}/_emulator/profiles"
    ids = requests.get(base, timeout=5).json()["user_ids"]
    out: dict[str, list[str] | None] = {}
    for user in ids:
        value = requests.get(f"{base}/{user}", timeout=5).json().get(TRAIT)
        out[user] = value if isinstance(value, list) and value else None
    return out


def controls(url: str, **values: Any) -> None:
    requests.post(url, json=values, timeout=5).raise_for_status()


def output_lines(sandbox: dict[str, Any], job: str) -> dict[str, dict[str, Any]]:
    bucket = sandbox["state"]["batch"]["bucket"]
    body = s3(sandbox).get_object(Bucket=bucket, Key=f"output/{job}/users.json.out")["Body"]
    return {line["input"]["userId"]: line for line in map(json.loads, body.read().splitlines())}


def test_backfill_fills_every_profile_and_counts_error_lines(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    people = data.users(SEED, USERS)
    failing = [people[3], people[42], people[150]]
    personalize_controls = sandbox["state"]["personalize"]["controls_url"]
    controls(personalize_controls, batch_error_users=failing)
    began = time.monotonic()

    started = bundle(sandbox, "backfill", "start", "--json")
    assert started.returncode == 0, started.stderr
    job = json.loads(started.stdout)["jobName"]
    waited = bundle(
        sandbox, "backfill", "status", job, "--wait", "--json", "--poll", "0.2", "--timeout", "50"
    )
    assert waited.returncode == 0, waited.stderr
    status = json.loads(waited.stdout)
    assert status["state"] == "done" and status["job_status"] == "ACTIVE"
    assert status["chunks_done"] == status["chunks_total"] > 1  # 16 KiB chunks: several
    assert status["users_written"] == USERS - len(failing)

    reported = bundle(sandbox, "backfill", "report", job, "--json")
    assert reported.returncode == 0, reported.stderr
    report = json.loads(reported.stdout)
    assert report["status"] == "complete" and report["lines"] == USERS
    assert report["by_reason"]["failed_error_line"] == len(failing)
    assert report["users_written"] == USERS - len(failing) and report["users_failed"] == len(
        failing
    )

    # Each written profile holds exactly the job's list for that user, in its order.
    lines = output_lines(sandbox, job)
    found = profiles(sandbox)
    for user in people:
        if user in failing:
            assert lines[user]["error"] and lines[user]["output"] is None
            continue
        assert found[user] == lines[user]["output"]["recommendedItems"], user

    # A second job on an uploaded users file (the failed users), errors off: every profile.
    controls(personalize_controls, batch_error_users=None)
    users_file = tmp_path / "users.json"
    users_file.write_text("".join(json.dumps({"userId": u}) + "\n" for u in failing))
    again = bundle(sandbox, "backfill", "start", "--users-file", str(users_file), "--json")
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)["jobName"]
    assert second != job
    waited = bundle(sandbox, "backfill", "status", "--wait", "--json", "--poll", "0.2")  # latest
    assert waited.returncode == 0, waited.stderr
    status = json.loads(waited.stdout)
    assert (status["job"], status["state"], status["users_written"]) == (second, "done", 3)
    found = profiles(sandbox)
    assert set(people) <= set(found)
    assert [user for user, items in found.items() if not items] == []
    assert time.monotonic() - began < 60


def test_human_status_shows_progress_then_the_summary(sandbox: dict[str, Any]) -> None:
    personalize_controls = sandbox["state"]["personalize"]["controls_url"]
    controls(personalize_controls, batch_job_delay_ms=5000)  # a job that takes its time
    try:
        started = bundle(sandbox, "backfill", "start")
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("started batch inference job ")
        waited = bundle(sandbox, "backfill", "status", "--wait", "--poll", "0.2")
    finally:
        controls(personalize_controls, batch_job_delay_ms=0)
    assert waited.returncode == 0, waited.stderr
    # Not a terminal: a line per change on stderr, the result and the summary on stdout.
    job = started.stdout.split()[4].rstrip(":")
    progress = waited.stderr.strip().splitlines()
    assert progress and all(line.startswith(f"job {job}: ") for line in progress)
    assert progress[0] == f"job {job}: CREATE IN_PROGRESS (Personalize batch inference running)"
    assert waited.stdout.startswith(f"job {job}: ACTIVE, chunks ")
    assert f"users written   {USERS}" in waited.stdout
    assert "failed          0" in waited.stdout


def test_a_chunk_that_keeps_failing_is_dead_lettered_with_its_range(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    batch = sandbox["state"]["batch"]
    segment_controls = sandbox["state"]["segment"]["controls_url"]
    users_file = tmp_path / "users.json"
    users_file.write_text("".join(json.dumps({"userId": f"dlq-user-{n}"}) + "\n" for n in range(5)))
    # 429 with Retry-After: 0: the writer's retries within an invocation take no time.
    controls(segment_controls, fault_rate={"429": 1.0}, retry_after_s=0, operations=["batch"])
    try:
        started = bundle(sandbox, "backfill", "start", "--users-file", str(users_file), "--json")
        assert started.returncode == 0, started.stderr
        job = json.loads(started.stdout)["jobName"]
        waited = bundle(
            sandbox, "backfill", "status", job, "--wait", "--json", "--poll", "0.2",
            "--timeout", "60", timeout=70,
        )  # fmt: skip
    finally:
        controls(segment_controls, fault_rate={"429": 0.0}, retry_after_s=1, operations=None)
    assert waited.returncode == 1
    assert json.loads(waited.stdout)["state"] == "failed"
    assert len(waited.stderr.strip().splitlines()) == 1 and job in waited.stderr
    sqs = local_client("sqs", sandbox["state"]["moto_url"])

    def dead_lettered() -> list[dict[str, Any]] | None:
        got = sqs.receive_message(
            QueueUrl=batch["dead_letter_queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        bodies = [json.loads(m["Body"]) for m in got]
        return [b for b in bodies if b.get("job") == job] or None

    (chunk,) = poll("the chunk in the dead-letter queue", dead_lettered, timeout_s=20)
    assert (chunk["index"], chunk["start"]) == (0, 0) and chunk["end"] > 0
    assert not any(profiles(sandbox).get(f"dlq-user-{n}") for n in range(5))
