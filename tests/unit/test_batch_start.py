"""The start action and the settings: the CreateBatchInferenceJob request, clear errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from backfill import handler, runtime, start, writer
from backfill.settings import load

from common.config import ConfigError

CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
SOLUTION_VERSION = "arn:aws:personalize:us-east-1:123456789012:solution/shop/abcd1234"
FILTER = "arn:aws:personalize:us-east-1:123456789012:filter/not-purchased"
ENV = {
    "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
    "BATCH_BUCKET": "shop-batch-traits",
    "BATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/shop-batch-personalize",
    "BATCH_KMS_KEY_ARN": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef",
    "CHUNK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/shop-batch-chunks",
    "SEGMENT_WRITE_KEY_PARAMETER": "/shop/segment/write-key",
    "DEPLOYMENT_NAME": "shop",
}


class FakePersonalize:
    def __init__(self, solution_version: str | None = SOLUTION_VERSION) -> None:
        self.solution_version = solution_version
        self.created: list[dict[str, Any]] = []

    def describe_campaign(self, campaignArn: str) -> dict[str, Any]:
        assert campaignArn == CAMPAIGN
        campaign: dict[str, Any] = {"campaignArn": campaignArn}
        if self.solution_version:
            campaign["solutionVersionArn"] = self.solution_version
        return {"campaign": campaign}

    def create_batch_inference_job(self, **request: Any) -> dict[str, str]:
        self.created.append(request)
        arn = "arn:aws:personalize:us-east-1:123456789012:batch-inference-job/"
        return {"batchInferenceJobArn": arn + request["jobName"]}


def test_start_creates_the_job_on_the_campaigns_solution_version() -> None:
    settings = load({**ENV, "PERSONALIZE_FILTER_ARN": FILTER, "NUM_RESULTS": "12"})
    personalize = FakePersonalize()
    result = start.start({"action": "start", "job_name": "shop-nightly-1"}, settings, personalize)
    (request,) = personalize.created
    kms = ENV["BATCH_KMS_KEY_ARN"]
    assert request == {
        "jobName": "shop-nightly-1",
        "solutionVersionArn": SOLUTION_VERSION,
        "filterArn": FILTER,
        "numResults": 12,
        "roleArn": ENV["BATCH_ROLE_ARN"],
        "jobInput": {
            "s3DataSource": {"path": "s3://shop-batch-traits/input/users.json", "kmsKeyArn": kms}
        },
        "jobOutput": {
            "s3DataDestination": {
                "path": "s3://shop-batch-traits/output/shop-nightly-1/",
                "kmsKeyArn": kms,
            }
        },
    }
    assert result["jobName"] == "shop-nightly-1"
    assert result["jobArn"].endswith("/shop-nightly-1")


def test_without_a_filter_no_filter_is_sent_and_the_default_name_is_dated() -> None:
    settings = load({k: v for k, v in ENV.items() if k != "BATCH_KMS_KEY_ARN"})
    personalize = FakePersonalize()
    result = start.start(
        {"action": "start", "users_key": "input/j1/users.json"}, settings, personalize
    )
    (request,) = personalize.created
    assert "filterArn" not in request
    assert request["jobInput"] == {
        "s3DataSource": {"path": "s3://shop-batch-traits/input/j1/users.json"}
    }
    assert result["jobName"].startswith("shop-") and len(result["jobName"]) == len(
        "shop-20240101T000000"
    )
    assert start.default_job_name("x" * 80, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)).endswith(
        "-20240102T030405"
    )
    assert len(start.default_job_name("x" * 80)) == 63


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"action": "start", "job_name": "bad name"}, "job_name"),
        ({"action": "start", "job_name": "-x"}, "job_name"),
        # another deployment's name: its role may start only <name_prefix>-... jobs
        ({"action": "start", "job_name": "other-nightly"}, "must start with 'shop-'"),
        ({"action": "start", "users_key": "output/x.json"}, "users_key"),
        ({"action": "start", "users_key": "input/../state/x"}, "users_key"),
        ({"action": "start", "users_key": 5}, "users_key"),
    ],
)
def test_bad_start_requests_are_refused_before_any_call(event: dict[str, Any], reason: str) -> None:
    personalize = FakePersonalize()
    with pytest.raises(start.StartError, match=reason):
        start.start(event, load(ENV), personalize)
    assert personalize.created == []


def test_a_recommender_or_a_campaign_without_solution_version_is_a_clear_error() -> None:
    recommender = "arn:aws:personalize:us-east-1:123456789012:recommender/shop"
    with pytest.raises(start.StartError, match="recommender"):
        start.start(
            {"action": "start"},
            load({**ENV, "PERSONALIZE_CAMPAIGN_ARN": recommender}),
            FakePersonalize(),
        )
    with pytest.raises(start.StartError, match="solution version"):
        start.start({"action": "start"}, load(ENV), FakePersonalize(solution_version=None))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BATCH_BUCKET", ""),
        ("BATCH_BUCKET", "Not_A_Bucket"),
        ("BATCH_ROLE_ARN", "role/x"),
        ("CHUNK_QUEUE_URL", "not a url"),
        ("CHUNK_BYTES", "10"),
        ("SEGMENT_EVENTS_PER_S", "0"),
        ("BATCH_USERS_KEY", "users.json"),
        ("BATCH_KMS_KEY_ARN", "key"),
        ("PROFILE_EXCLUSION", "true"),  # without the space and token
        ("PROFILE_EXCLUSION", "maybe"),
        ("RECOMMENDED_TRAIT", "a.b"),
        # The one trait rule (common.settings.TRAIT_NAME): before, a comma or a space passed.
        ("PURCHASED_TRAIT", "a,b"),
        ("RECOMMENDED_TRAIT", "my recs"),
    ],
)
def test_invalid_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({**ENV, name: value})
    assert caught.value.name == name


class _Context:
    aws_request_id = "req-start"


@pytest.mark.parametrize(
    "env",
    [ENV, {**ENV, "BATCH_BUCKET": ""}],  # a refused request; a misconfigured deployment
)
def test_a_start_that_cannot_start_raises_so_the_async_invocation_fails(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # EventBridge Scheduler invokes asynchronously: an answer {"error": ...} would count as
    # a success, with no retry, no on-failure record and no errors alarm.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    state = runtime.Runtime(env)
    monkeypatch.setattr(state, "personalize", lambda: FakePersonalize())
    with pytest.raises(handler.StartFailed, match=r"job_name|BATCH_BUCKET"):
        handler.handle_with(state, {"action": "start", "job_name": "bad name"}, _Context())


def test_a_config_error_reports_every_record_for_retry(capsys: pytest.CaptureFixture[str]) -> None:
    event = {"Records": [{"messageId": "m1", "body": "{}"}, {"messageId": "m2", "body": "{}"}]}
    result = handler.handle_with(runtime.Runtime({**ENV, "BATCH_BUCKET": ""}), event, None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert '"setting":"BATCH_BUCKET"' in capsys.readouterr().out


def test_message_ids_are_deterministic_per_job_version_and_user_and_short() -> None:
    first = writer.message_id("job-1", "v1", "user-1")
    assert first == writer.message_id("job-1", "v1", "user-1")  # a redelivery: deduped
    assert first != writer.message_id("job-2", "v1", "user-1")
    assert first != writer.message_id("job-1", "v1", "user-2")
    # A corrected re-upload of the file (another version) is not taken for a duplicate.
    assert first != writer.message_id("job-1", "v2", "user-1")
    assert writer.message_id("a", "v", "b\0c") != writer.message_id("a\0b", "v", "c")
    assert writer.message_id("a", "v\0b", "c") != writer.message_id("a", "v", "b\0c")
    assert len(first) <= 100
    assert writer.max_batch_messages(0.5) == 1
    assert writer.max_batch_messages(100.0) == 100
    assert writer.max_batch_messages(1e6) == 2500
