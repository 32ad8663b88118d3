"""Batch inference in the Personalize emulator, through botocore's own `personalize` client
(AWS_ENDPOINT_URL_PERSONALIZE) with input and output on moto's S3 server."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulators.personalize import PersonalizeEmulator

ROLE = "arn:aws:iam::123456789012:role/sandbox-personalize-batch"
DEADLINE_S = 20.0


@pytest.fixture
def batch_env(
    personalize_env: PersonalizeEmulator, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> PersonalizeEmulator:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE", personalize_env.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_url)
    personalize_env.batch.s3_endpoint_url = moto_url
    return personalize_env


@pytest.fixture
def bucket(batch_env: PersonalizeEmulator) -> str:
    name = f"batch-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def _put_users(bucket: str, key: str, lines: list[str]) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode() + b"\n")


def _create(emulator: PersonalizeEmulator, bucket: str, name: str, **extra: Any) -> str:
    client = boto3.client("personalize")
    campaign = client.describe_campaign(campaignArn=emulator.campaign_arn)["campaign"]
    args: dict[str, Any] = {
        "jobName": name,
        "solutionVersionArn": campaign["solutionVersionArn"],
        "roleArn": ROLE,
        "jobInput": {"s3DataSource": {"path": f"s3://{bucket}/input/{name}/users.json"}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{bucket}/output/{name}/"}},
        **extra,
    }
    return str(client.create_batch_inference_job(**args)["batchInferenceJobArn"])


def _wait(arn: str, statuses: tuple[str, ...] = ("ACTIVE", "CREATE FAILED")) -> dict[str, Any]:
    client = boto3.client("personalize")
    deadline = time.monotonic() + DEADLINE_S
    seen: list[str] = []
    while time.monotonic() < deadline:
        job = client.describe_batch_inference_job(batchInferenceJobArn=arn)["batchInferenceJob"]
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in statuses:
            return dict(job)
        time.sleep(0.05)
    raise AssertionError(f"job {arn} still {seen} after {DEADLINE_S} s")


def _output(bucket: str, key: str) -> list[dict[str, Any]]:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return [json.loads(line) for line in body.splitlines()]


def test_job_writes_personalize_format_with_filter_num_results_and_error_lines(
    batch_env: PersonalizeEmulator, bucket: str, sample_data: Any
) -> None:
    purchases: dict[str, set[str]] = {}
    for user, item, event, _ in sample_data.interactions:
        if event == "Order Completed":
            purchases.setdefault(user, set()).add(item)
    buyers = sorted(purchases)[:20]
    users = [*buyers, "never-seen-user"]
    failing = buyers[3]
    batch_env.controls.set(batch_error_users=[failing])
    _put_users(
        bucket,
        "input/job-a/users.json",
        [json.dumps({"userId": u}) for u in users] + ["not json", '{"userId": 7}', '{"x": 1}'],
    )
    arn = _create(batch_env, bucket, "job-a", numResults=7, filterArn=batch_env.purchase_filter_arn)
    job = _wait(arn)
    assert job["status"] == "ACTIVE", job.get("failureReason")
    assert job["numResults"] == 7 and job["filterArn"] == batch_env.purchase_filter_arn

    lines = _output(bucket, "output/job-a/users.json.out")
    assert len(lines) == len(users) + 3  # one output line per input line, in order
    by_user = {
        line["input"].get("userId"): line for line in lines if isinstance(line["input"], dict)
    }
    for user in users:
        line = by_user[user]
        if user == failing:
            assert line["output"] is None and line["error"]
            continue
        assert line["error"] is None
        items = line["output"]["recommendedItems"]
        scores = line["output"]["scores"]
        assert len(items) == 7 == len(scores)
        assert scores == sorted(scores, reverse=True)
        assert not set(items) & purchases.get(user, set()), "the purchase filter was not applied"
        # The same list GetRecommendations gives with the same filter and numResults.
        live = boto3.client("personalize-runtime").get_recommendations(
            campaignArn=batch_env.campaign_arn,
            userId=user,
            numResults=7,
            filterArn=batch_env.purchase_filter_arn,
        )
        assert items == [entry["itemId"] for entry in live["itemList"]]
    assert lines[-3]["input"] == "not json" and lines[-3]["error"]
    assert by_user[7]["error"] is None  # a numeric id is used as its decimal string
    assert lines[-1]["input"] == {"x": 1} and "userId" in lines[-1]["error"]
    snapshot = json.loads(_http_get(batch_env.url + "/_emulator/batch-jobs"))["job-a"]
    assert snapshot["lines"] == len(users) + 3
    assert snapshot["error_lines"] == 3  # the injected one, "not json", the line without userId
    assert snapshot["output_key"] == "output/job-a/users.json.out"


def test_error_rate_is_deterministic_per_user(batch_env: PersonalizeEmulator, bucket: str) -> None:
    users = [f"user-{i}" for i in range(200)]
    batch_env.controls.set(batch_error_rate=0.25)
    _put_users(bucket, "input/job-r/users.json", [json.dumps({"userId": u}) for u in users])
    _put_users(bucket, "input/job-s/users.json", [json.dumps({"userId": u}) for u in users])
    first = _wait(_create(batch_env, bucket, "job-r"))
    second = _wait(_create(batch_env, bucket, "job-s"))
    assert first["status"] == second["status"] == "ACTIVE"
    errors_r = [
        line["input"]["userId"]
        for line in _output(bucket, "output/job-r/users.json.out")
        if line["error"]
    ]
    errors_s = [
        line["input"]["userId"]
        for line in _output(bucket, "output/job-s/users.json.out")
        if line["error"]
    ]
    assert errors_r == errors_s
    assert 25 <= len(errors_r) <= 75  # about a quarter of 200


def test_status_goes_pending_then_active_and_the_quota_holds(
    batch_env: PersonalizeEmulator, bucket: str
) -> None:
    batch_env.batch.pause()
    arns = []
    for n in range(5):
        _put_users(bucket, f"input/q{n}/users.json", ['{"userId": "u1"}'])
        arns.append(_create(batch_env, bucket, f"q{n}"))
    client = boto3.client("personalize")
    pending = client.describe_batch_inference_job(batchInferenceJobArn=arns[0])
    assert pending["batchInferenceJob"]["status"] == "CREATE PENDING"
    with pytest.raises(ClientError) as raised:
        _create(batch_env, bucket, "q5")
    assert raised.value.response["Error"]["Code"] == "LimitExceededException"
    batch_env.batch.resume()
    assert all(_wait(arn)["status"] == "ACTIVE" for arn in arns)
    listed = client.list_batch_inference_jobs(maxResults=2)
    assert len(listed["batchInferenceJobs"]) == 2 and "nextToken" in listed
    rest = client.list_batch_inference_jobs(maxResults=100, nextToken=listed["nextToken"])
    names = [j["jobName"] for j in listed["batchInferenceJobs"] + rest["batchInferenceJobs"]]
    assert sorted(names) == [f"q{n}" for n in range(5)]


def test_a_job_delay_keeps_the_job_in_progress(batch_env: PersonalizeEmulator, bucket: str) -> None:
    batch_env.controls.set(batch_job_delay_ms=1500)
    _put_users(bucket, "input/slow/users.json", ['{"userId": "u1"}'])
    arn = _create(batch_env, bucket, "slow")
    job = _wait(arn, ("CREATE IN_PROGRESS",))
    assert not _keys(bucket, "output/slow/")  # nothing written while it runs
    assert _wait(arn)["status"] == "ACTIVE"
    assert _keys(bucket, "output/slow/") == ["output/slow/users.json.out"]
    assert job["lastUpdatedDateTime"] >= job["creationDateTime"]


def _keys(bucket: str, prefix: str) -> list[str]:
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_missing_input_fails_the_job_with_a_reason(
    batch_env: PersonalizeEmulator, bucket: str
) -> None:
    job = _wait(_create(batch_env, bucket, "no-input"))
    assert job["status"] == "CREATE FAILED"
    assert "NoSuchKey" in job["failureReason"]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"jobName": "bad name!"}, "InvalidInputException"),
        ({"numResults": 0}, "InvalidInputException"),
        ({"numResults": 501}, "InvalidInputException"),
        ({"roleArn": "not-a-role"}, "InvalidInputException"),
        ({"jobInput": {"s3DataSource": {"path": "/local/file"}}}, "InvalidInputException"),
        ({"filterArn": "arn:aws:personalize:us-east-1:1:filter/none"}, "ResourceNotFoundException"),
        (
            {"solutionVersionArn": "arn:aws:personalize:us-east-1:1:solution/x/1"},
            "ResourceNotFoundException",
        ),
    ],
)
def test_create_validates_like_the_service(
    batch_env: PersonalizeEmulator, bucket: str, change: dict[str, Any], code: str
) -> None:
    client = boto3.client("personalize")
    args: dict[str, Any] = {
        "jobName": "valid",
        "solutionVersionArn": batch_env.solution_version_arns[batch_env.campaign_arn],
        "roleArn": ROLE,
        "jobInput": {"s3DataSource": {"path": f"s3://{bucket}/input/users.json"}},
        "jobOutput": {"s3DataDestination": {"path": f"s3://{bucket}/output/valid/"}},
        **change,
    }
    with pytest.raises(ClientError) as raised:
        client.create_batch_inference_job(**args)
    assert raised.value.response["Error"]["Code"] == code


def test_names_campaigns_and_jobs_errors(batch_env: PersonalizeEmulator, bucket: str) -> None:
    client = boto3.client("personalize")
    _put_users(bucket, "input/dup/users.json", ['{"userId": "u1"}'])
    _create(batch_env, bucket, "dup")
    with pytest.raises(ClientError) as raised:
        _create(batch_env, bucket, "dup")
    assert raised.value.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    with pytest.raises(ClientError) as raised:
        client.describe_campaign(campaignArn=batch_env.recommender_arn)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as raised:
        client.describe_campaign(campaignArn="not-an-arn")
    assert raised.value.response["Error"]["Code"] == "InvalidInputException"
    with pytest.raises(ClientError) as raised:
        client.describe_campaign(campaignArn=batch_env.campaign_arn + "-gone")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as raised:
        client.describe_batch_inference_job(
            batchInferenceJobArn="arn:aws:personalize:us-east-1:123456789012:batch-inference-job/x"
        )
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    ranking = batch_env.solution_version_arns[batch_env.ranking_campaign_arn]
    with pytest.raises(ClientError) as raised:
        _create(batch_env, bucket, "rank", solutionVersionArn=ranking)
    assert raised.value.response["Error"]["Code"] == "InvalidInputException"


def _http_get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
        return str(response.read().decode())
