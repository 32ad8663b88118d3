"""`bundle backfill`'s AWS side (bundle_cli.backfill.AwsBackend) on moto's server and the
Personalize emulator: the latest job is this bucket's (not another deployment's), a job is
found by name, and the dead-letter queue is only peeked at (its messages stay)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from bundle_cli.backfill import AwsBackend, progress
from bundle_cli.target import BatchTarget, Target

from devkit.aws import local_client
from emulators.personalize import PersonalizeEmulator

ROLE = "arn:aws:iam::123456789012:role/batch"


@pytest.fixture
def backend(personalize_emulator: PersonalizeEmulator, moto_url: str) -> AwsBackend:
    personalize_emulator.batch.s3_endpoint_url = moto_url
    bucket = f"bf-{uuid.uuid4().hex[:12]}"
    local_client("s3", moto_url).create_bucket(Bucket=bucket)
    sqs = local_client("sqs", moto_url)
    dlq = sqs.create_queue(QueueName=f"{bucket}-dlq")["QueueUrl"]
    batch = BatchTarget(
        bucket=bucket,
        users_key="input/users.json",
        function_name="x-batch-traits",
        chunk_queue_url=None,
        dead_letter_queue_url=dlq,
        personalize_endpoint_url=personalize_emulator.url,
        lambda_endpoint_url=None,
    )
    target = Target(
        kind="sandbox",
        region="us-east-1",
        stream_name="s",
        dead_letter_queue_url="d",
        on_failure_queue_url="f",
        api_url=None,
        api_key=None,
        write_key_parameter=None,
        profile_token_parameter=None,
        endpoint_url=moto_url,
        batch=batch,
    )
    return AwsBackend(target, batch)


def _job(emulator: PersonalizeEmulator, bucket: str, name: str) -> str:
    client = local_client("personalize", emulator.url)
    arn = client.create_batch_inference_job(
        jobName=name,
        solutionVersionArn=emulator.solution_version_arns[emulator.campaign_arn],
        roleArn=ROLE,
        jobInput={"s3DataSource": {"path": f"s3://{bucket}/input/users.json"}},
        jobOutput={"s3DataDestination": {"path": f"s3://{bucket}/output/{name}/"}},
    )["batchInferenceJobArn"]
    return str(arn)


def _wait_active(emulator: PersonalizeEmulator, arn: str) -> None:
    client = local_client("personalize", emulator.url)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = client.describe_batch_inference_job(batchInferenceJobArn=arn)["batchInferenceJob"]
        if job["status"] in ("ACTIVE", "CREATE FAILED"):
            return
        time.sleep(0.05)
    raise AssertionError(f"{arn} did not finish")


def test_latest_is_this_buckets_newest_job_and_names_are_found(
    backend: AwsBackend, personalize_emulator: PersonalizeEmulator, tmp_path: Path
) -> None:
    users = tmp_path / "users.json"
    users.write_text('{"userId": "u1"}\n')
    assert not backend.object_exists("input/users.json")
    backend.upload("input/users.json", users)
    assert backend.object_exists("input/users.json")
    assert backend.latest_job() is None
    ours = _job(personalize_emulator, backend.bucket, "ours-1")
    _wait_active(personalize_emulator, ours)
    _job(personalize_emulator, "another-bucket", "theirs-1")
    assert backend.latest_job() == "ours-1"
    described = backend.describe("ours-1")
    assert described is not None and described["status"] == "ACTIVE"
    assert backend.describe("nope") is None
    assert backend.read_json("reports/ours-1.json") is None
    state = "state/ours-1/0123456789ab/"  # one output file's plan, its version's chunk states
    done = {"index": 0, "etag": '"e"', "version": '"e"', "status": "done", "counts": {"written": 1}}
    backend._client("s3").put_object(
        Bucket=backend.bucket, Key=f"{state}ba9876543210/chunks/0.json", Body=json.dumps(done)
    )
    backend._client("s3").put_object(
        Bucket=backend.bucket,
        Key=f"{state}plan.json",
        Body=json.dumps({"chunks": 2, "etag": '"e"'}),
    )
    shown = progress(backend, "ours-1").as_json()
    assert (shown["state"], shown["chunks_done"], shown["chunks_total"]) == ("running", 1, 2)
    assert shown["users_written"] == 1


def test_the_dead_letter_queue_is_peeked_at_not_consumed(backend: AwsBackend) -> None:
    sqs = backend._client("sqs")
    url = backend.batch.dead_letter_queue_url
    assert backend.dead_lettered("job-a") == 0
    for body in ({"v": 1, "job": "job-a", "index": 3}, {"v": 1, "job": "job-b"}, "not json"):
        sqs.send_message(
            QueueUrl=url, MessageBody=body if isinstance(body, str) else json.dumps(body)
        )
    assert backend.dead_lettered("job-a") == 1
    assert backend.dead_lettered("job-a") == 1  # still there
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    assert len(got["Messages"]) == 3
