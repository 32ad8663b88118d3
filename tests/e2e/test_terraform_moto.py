"""terraform/ applied to moto's server: what got deployed, then plan (no changes), destroy.

The tests run in file order against one deployment, with every optional module on (the
batch write-back included: one apply covers them all): apply in the fixture, assertions on
the deployed resources with boto3, plans (no refresh) with some settings changed, then
`plan -detailed-exitcode`, then `destroy`.

moto gaps (checked against moto's server): none of the batch module's resources needs
skipping (S3 bucket notifications to SQS, EventBridge Scheduler schedules and SQS event
source mappings are all served), so tf.moto_override only adds the s3 and scheduler
endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from devkit.context import LambdaContext
from devkit.events import kinesis_event
from devkit.fixtures import use_fake_aws
from tf import moto_override, offline
from tf_support import ROOT, Terraform, copy_configuration, moto_server

# The module's fixture builds the artifacts (300 s), inits (180 s) and applies (300 s):
# pytest-timeout's 300 s would cut that short, and the subprocesses' own limits, which
# name the step, must be the ones that fire.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(840)]

REGION = "us-east-1"
PREFIX = "tftest"
CAMPAIGN_ARN = "arn:aws:personalize:us-east-1:123456789012:campaign/tf-test"
FILTER_ARN = "arn:aws:personalize:us-east-1:123456789012:filter/tf-test"
RELATED_ARN = "arn:aws:personalize:us-east-1:123456789012:recommender/tf-more-like-x"
RANKING_ARN = "arn:aws:personalize:us-east-1:123456789012:campaign/tf-ranking"
GENRE_FILTER_ARN = "arn:aws:personalize:us-east-1:123456789012:filter/tf-genre"
EXTERNAL_IDS = ["ws_tf_test", "src_tf_test"]
SEGMENT_PRINCIPAL = "arn:aws:iam::595280932656:role/customer-kinesis-access"
CORS_ORIGIN = "https://shop.example.com"
CONTRACT_ENV_NAMES = {
    "PERSONALIZE_CAMPAIGN_ARN", "PERSONALIZE_FILTER_ARN", "PERSONALIZE_TRACKING_ID",
    "NUM_RESULTS", "SEGMENT_WRITE_KEY_PARAMETER", "SEGMENT_PROFILE_TOKEN_PARAMETER",
    "SEGMENT_SPACE_ID", "SEGMENT_API_URL", "SEGMENT_PROFILE_API_URL", "TRACKED_EVENTS",
    "PURCHASE_EVENTS", "ITEM_ID_PROPERTY", "RECOMMENDED_TRAIT", "PURCHASED_TRAIT",
    "DEAD_LETTER_QUEUE_URL", "SEGMENT_PROFILE_API_RPS", "DEPLOYMENT_NAME", "USER_STATE_TABLE",
    "LOG_HASH_KEY_PARAMETER",
}  # fmt: skip
# update_traits' settings of the user-state store and refresh coalescing (issue 20).
STORE_ENV_NAMES = {
    "USER_STATE_TTL_DAYS", "MIN_REFRESH_INTERVAL_S", "REFRESH_QUEUE_URL", "SEED_WAIT",
    "RESEED_INTERVAL_SECONDS",
}  # fmt: skip
# AWS offers no resource scoping for these: "*" is the only possible resource (PutEvents:
# Personalize's API reference requires "*" for a Lambda role, see modules/update_traits).
TRACKED_EVENTS = ["Product Viewed", "Product Clicked", "Product Added", "Order Completed"]
UNSCOPABLE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "personalize:PutEvents"}

# Non-default settings, so the assertions prove the variables reach the resources.
TFVARS: dict[str, Any] = {
    "name_prefix": PREFIX,
    "personalize_campaign_arn": CAMPAIGN_ARN,
    "personalize_filter_arn": FILTER_ARN,
    "personalize_tracking_id": "tracker-tf-test",
    "num_results": 40,
    "segment_external_ids": EXTERNAL_IDS,
    "segment_space_id": "spa_tf_test",
    "tags": {"project": "tf-test"},
    "segment": {
        "region": "eu",
        "item_id_property": "product_id",
        # The Profile API budget: 72 req/s over 10 traits containers (reserved; the API
        # reads the user-state store and takes no share).
        "profile_api_rps": 72,
    },
    "recommendations": {
        "related_items_arn": RELATED_ARN,
        "ranking_campaign_arn": RANKING_ARN,
        "filters": {"genre": GENRE_FILTER_ARN},
        "filter_parameters": {"genre": ["GENRES"]},
        "promotions": [
            {
                "name": "summer",
                "percent_promoted_items": 20,
                "filter": "genre",
                "filter_values": {"GENRES": ["beach"]},
            }
        ],
        "item_metadata_columns": ["CATEGORY", "PRICE"],
        "cache_max_age_seconds": 30,
        "profile_workers": 3,
    },
    "api": {
        "throttling_rate_limit": 20,
        "throttling_burst_limit": 40,
        "quota_limit": 5000,
        "quota_period": "DAY",
        "cors_allow_origins": [CORS_ORIGIN],
        # The fixture sets the region's CloudWatch role first, as another stack would have.
        "stage_logging": True,
    },
    "update_traits": {
        "batch_size": 50,
        "batching_window_seconds": 2,
        "parallelization_factor": 2,
        "maximum_retry_attempts": 7,
        "maximum_record_age_seconds": 3600,
        "filter_relevant_events": True,
        "extra_environment": {"LOG_LEVEL": "DEBUG"},
        "reserved_concurrency": 10,
        "worker_threads": 6,
        "min_refresh_interval_seconds": 45,
        "wait_for_seed": True,
        "reseed_interval_seconds": 86400,
        "refresh_max_concurrency": 3,
    },
    # Off, so that the destroy test below can remove the table.
    "user_state": {"ttl_days": 180, "deletion_protection": False},
    "alarms": {"email": "oncall@example.com"},
    "enable_batch_traits": True,
    "batch_traits": {
        "schedule_expression": "cron(0 3 ? * SUN *)",
        "chunk_bytes": 8 * 1024 * 1024,
        "max_concurrency": 4,
        "segment_events_per_s": 400,
        "num_results": 20,
        "max_receive_count": 4,
        "force_destroy": True,
        # As on an account with a low concurrency quota.
        "reserved_concurrency": -1,
    },
}


OTHER_STACKS_ROLE = "arn:aws:iam::123456789012:role/other-stack-apigw-logs"


OPENAPI = ROOT / "terraform" / "modules" / "recommendations" / "openapi.yaml"


def _api_document(d: Deployment) -> dict[str, Any]:
    """The OpenAPI document Terraform sent as the REST API's body (from the state)."""
    state = json.loads(d.state_text())
    (api,) = [
        r
        for r in state["resources"]
        if r["type"] == "aws_api_gateway_rest_api" and r.get("module") == "module.recommendations"
    ]
    body: dict[str, Any] = json.loads(api["instances"][0]["attributes"]["body"])
    return body


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class Deployment:
    tf: Terraform
    endpoint: str
    artifacts: Path
    outputs: dict[str, Any]
    write_key: str
    profile_token: str

    def client(self, service: str) -> Any:
        return _client(self.endpoint, service)

    def state_text(self) -> str:
        return (self.tf.workdir / "terraform.tfstate").read_text()


def _build_artifacts(out: Path) -> Path:
    """The `make package` artifacts, built by scripts/package.py into a temporary folder."""
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for name in (
        "recommendations/function.zip",
        "update_traits/function.zip",
        "batch_traits/function.zip",
        "layer.zip",
    ):
        assert (out / name).is_file(), f"scripts/package.py did not build {name}"
    return out


def _zip_hash(path: Path) -> str:
    """What Lambda reports as CodeSha256 (and Terraform's filebase64sha256)."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("tf-moto")
    artifacts = _build_artifacts(base / "build")
    workdir = copy_configuration(base / "terraform")
    cli_config = offline.write_cli_config(base / "offline.tfrc", offline.mirror_path())
    tfvars = {
        **TFVARS,
        "artifacts": {
            "recommendations": str(artifacts / "recommendations" / "function.zip"),
            "update_traits": str(artifacts / "update_traits" / "function.zip"),
            "batch_traits": str(artifacts / "batch_traits" / "function.zip"),
            "layer": str(artifacts / "layer.zip"),
        },
    }
    (workdir / "test.auto.tfvars.json").write_text(json.dumps(tfvars, indent=2))
    write_key = "wk-" + secrets.token_hex(16)
    profile_token = "pt-" + secrets.token_hex(16)

    with moto_server(base / "moto.log") as endpoint:
        (workdir / moto_override.FILE_NAME).write_text(moto_override.render(endpoint, REGION))
        # Another stack already set the region's API Gateway logging role.
        _client(endpoint, "apigateway").update_account(
            patchOperations=[
                {"op": "replace", "path": "/cloudwatchRoleArn", "value": OTHER_STACKS_ROLE}
            ]
        )
        tf = Terraform(workdir, cli_config, base / "tf-data")
        tf.init()
        # The write key goes in through the ephemeral variable; the profile token is left
        # to be set out of band (placeholder), as a user without it in hand would.
        tf.run(
            "apply", "-auto-approve", "-input=false", "-no-color",
            timeout=300, extra_env={"TF_VAR_segment_write_key": write_key},
        )  # fmt: skip
        state = json.loads((workdir / "terraform.tfstate").read_text())
        outputs = {k: v["value"] for k, v in state["outputs"].items()}
        yield Deployment(tf, endpoint, artifacts, outputs, write_key, profile_token)


def _function(d: Deployment, name: str) -> dict[str, Any]:
    return dict(d.client("lambda").get_function_configuration(FunctionName=name))


def _role_policies(d: Deployment, role_arn: str) -> list[dict[str, Any]]:
    iam = d.client("iam")
    role = role_arn.rsplit("/", 1)[1]
    names = iam.list_role_policies(RoleName=role)["PolicyNames"]
    return [iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"] for n in names]


def _statements(document: dict[str, Any] | str) -> list[dict[str, Any]]:
    doc = json.loads(document) if isinstance(document, str) else document
    return [
        {**s, "Action": _as_list(s["Action"]), "Resource": _as_list(s.get("Resource", []))}
        for s in _as_list(doc["Statement"])
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _grants(d: Deployment, role_arn: str) -> dict[str, set[str]]:
    """action -> resources, over every inline policy of the role."""
    grants: dict[str, set[str]] = {}
    for document in _role_policies(d, role_arn):
        for st in _statements(document):
            assert st["Effect"] == "Allow"
            for action in st["Action"]:
                grants.setdefault(action, set()).update(st["Resource"])
    return grants


def test_functions_run_the_packaged_code_on_the_contract_runtime(deployment: Deployment) -> None:
    d = deployment
    layer_arn = None
    for output, zip_name in (
        ("recommendations_function_name", "recommendations"),
        ("update_traits_function_name", "update_traits"),
        ("batch_function_name", "batch_traits"),
    ):
        fn = _function(d, d.outputs[output])
        assert fn["Handler"] == "app.lambda_handler"
        assert fn["Runtime"] == "python3.13"
        assert fn["Architectures"] == ["arm64"]
        assert fn["TracingConfig"] == {"Mode": "Active"}
        assert fn["CodeSha256"] == _zip_hash(d.artifacts / zip_name / "function.zip")
        assert len(fn["Layers"]) == 1
        layer_arn = layer_arn or fn["Layers"][0]["Arn"]
        assert fn["Layers"][0]["Arn"] == layer_arn  # all share the dependency layer
    assert layer_arn is not None
    layer_name, version = layer_arn.rsplit(":", 2)[-2:]
    layer = d.client("lambda").get_layer_version(LayerName=layer_name, VersionNumber=int(version))
    assert layer["CompatibleRuntimes"] == ["python3.13"]
    assert layer["CompatibleArchitectures"] == ["arm64"]
    assert layer["Content"]["CodeSha256"] == _zip_hash(d.artifacts / "layer.zip")

    concurrency = d.client("lambda").get_function_concurrency(
        FunctionName=d.outputs["recommendations_function_name"]
    )
    assert concurrency["ReservedConcurrentExecutions"] == 50
    traits = d.client("lambda").get_function_concurrency(
        FunctionName=d.outputs["update_traits_function_name"]
    )
    assert traits["ReservedConcurrentExecutions"] == 10
    # batch_traits.reserved_concurrency = -1: no reservation (a low-quota account).
    batch = d.client("lambda").get_function_concurrency(
        FunctionName=d.outputs["batch_function_name"]
    )
    assert "ReservedConcurrentExecutions" not in batch


def test_environment_holds_contract_names_and_no_secret(deployment: Deployment) -> None:
    d = deployment
    reco = _function(d, d.outputs["recommendations_function_name"])["Environment"]["Variables"]
    traits = _function(d, d.outputs["update_traits_function_name"])["Environment"]["Variables"]

    # The API excludes purchases from the user-state store: no Profile API setting at all.
    assert set(reco) == {
        "PERSONALIZE_CAMPAIGN_ARN", "PERSONALIZE_FILTER_ARN", "NUM_RESULTS", "USER_STATE_TABLE",
        "CORS_ALLOW_ORIGIN", "PROFILE_WORKERS", "DEPLOYMENT_NAME",
        "PERSONALIZE_RELATED_ITEMS_ARN", "PERSONALIZE_RANKING_CAMPAIGN_ARN",
        "PERSONALIZE_FILTERS", "PERSONALIZE_PROMOTIONS", "ITEM_METADATA_COLUMNS",
        "CACHE_MAX_AGE_S", "LOG_HASH_KEY_PARAMETER",
    }  # fmt: skip
    # Both functions log user ids: both as HMAC pseudonyms under the deployment's key.
    assert reco["LOG_HASH_KEY_PARAMETER"] == traits["LOG_HASH_KEY_PARAMETER"]
    assert reco["LOG_HASH_KEY_PARAMETER"] == d.outputs["log_hash_key_parameter"]
    # One setting per capability, in the shapes the function reads (reco_api.capabilities).
    assert reco["PERSONALIZE_RELATED_ITEMS_ARN"] == RELATED_ARN
    assert reco["PERSONALIZE_RANKING_CAMPAIGN_ARN"] == RANKING_ARN
    assert json.loads(reco["PERSONALIZE_FILTERS"]) == {
        "genre": {"arn": GENRE_FILTER_ARN, "parameters": ["GENRES"]}
    }
    assert json.loads(reco["PERSONALIZE_PROMOTIONS"]) == [
        {
            "name": "summer",
            "percentPromotedItems": 20,
            "filter": "genre",
            "filterValues": {"GENRES": ["beach"]},
        }
    ]
    assert reco["ITEM_METADATA_COLUMNS"] == "CATEGORY,PRICE"
    assert reco["CACHE_MAX_AGE_S"] == "30"
    # The EMF deployment dimension the alarms match on.
    assert reco["DEPLOYMENT_NAME"] == traits["DEPLOYMENT_NAME"] == PREFIX
    assert reco["CORS_ALLOW_ORIGIN"] == CORS_ORIGIN
    assert reco["PROFILE_WORKERS"] == "3"
    assert set(traits) == CONTRACT_ENV_NAMES | STORE_ENV_NAMES | {"LOG_LEVEL", "WORKER_THREADS"}
    table = d.outputs["user_state_table"]["name"]
    assert traits["USER_STATE_TABLE"] == reco["USER_STATE_TABLE"] == table == f"{PREFIX}-user-state"
    assert {name: traits[name] for name in STORE_ENV_NAMES} == {
        "USER_STATE_TTL_DAYS": "180",
        "MIN_REFRESH_INTERVAL_S": "45",
        "REFRESH_QUEUE_URL": d.outputs["refresh_queue_url"],
        "SEED_WAIT": "true",
        "RESEED_INTERVAL_SECONDS": "86400",
    }
    assert traits["WORKER_THREADS"] == "6"
    assert traits["LOG_LEVEL"] == "DEBUG"
    assert traits["SEGMENT_WRITE_KEY_PARAMETER"] == d.outputs["segment_write_key_parameter"]
    assert traits["SEGMENT_PROFILE_TOKEN_PARAMETER"] == d.outputs["segment_profile_token_parameter"]
    assert traits["DEAD_LETTER_QUEUE_URL"] == d.outputs["dead_letter_queue_url"]
    assert traits["PERSONALIZE_CAMPAIGN_ARN"] == reco["PERSONALIZE_CAMPAIGN_ARN"] == CAMPAIGN_ARN
    assert traits["PERSONALIZE_FILTER_ARN"] == FILTER_ARN
    assert traits["NUM_RESULTS"] == reco["NUM_RESULTS"] == "40"
    assert traits["ITEM_ID_PROPERTY"] == "product_id"
    assert traits["TRACKED_EVENTS"] == ",".join(TRACKED_EVENTS)
    # segment.region = "eu" picks Segment's EU endpoints.
    assert traits["SEGMENT_API_URL"] == "https://events.eu1.segmentapis.com/v1"
    assert traits["SEGMENT_PROFILE_API_URL"] == "https://profiles.euw1.segment.com/v1"

    # One budget, split evenly over every container that can run at once, never above it.
    budget = d.outputs["segment_profile_api_budget"]
    assert budget["requests_per_second"] == 72
    # The stream's and the refresh queue's containers, capped by the reservation (10).
    assert budget["update_traits"]["max_concurrency"] == 10
    assert budget["update_traits"]["refresh_max_concurrency"] == 3
    # The API reads the store; the batch write-back no profiles without its exclusion.
    assert budget["recommendations"] == {"max_concurrency": 0, "share": 0}
    assert budget["batch_traits"] == {"max_concurrency": 0, "share": 0}
    # 72 / 10 = 7.2, rounded down to a whole request/s: no second can pass the budget.
    assert budget["per_container"] == 7
    assert budget["worst_second"] == 70
    assert traits["SEGMENT_PROFILE_API_RPS"] == "7.000"
    assert budget["update_traits"]["share"] <= 72

    values = json.dumps([reco, traits])
    assert d.write_key not in values
    assert d.profile_token not in values


def test_secrets_are_in_ssm_and_nowhere_in_state_or_outputs(deployment: Deployment) -> None:
    d = deployment
    ssm = d.client("ssm")
    key = ssm.get_parameter(Name=d.outputs["segment_write_key_parameter"], WithDecryption=True)
    assert key["Parameter"]["Type"] == "SecureString"
    assert key["Parameter"]["Value"] == d.write_key
    token_name = d.outputs["segment_profile_token_parameter"]
    token = ssm.get_parameter(Name=token_name, WithDecryption=True)["Parameter"]
    assert token["Type"] == "SecureString"
    assert token["Value"] == "set-out-of-band"

    assert d.write_key not in d.state_text()
    assert d.write_key not in json.dumps(d.outputs)

    # The log pseudonym key: generated by Terraform (64 hex digits), in neither state nor
    # outputs, and one per deployment (the functions refuse one under 32 characters).
    log_key = ssm.get_parameter(Name=d.outputs["log_hash_key_parameter"], WithDecryption=True)
    assert log_key["Parameter"]["Type"] == "SecureString"
    assert re.fullmatch(r"[0-9a-f]{64}", log_key["Parameter"]["Value"])
    assert log_key["Parameter"]["Value"] not in d.state_text()
    assert log_key["Parameter"]["Value"] not in json.dumps(d.outputs)


def test_stream_mapping_retries_boundedly_and_parks_failures(deployment: Deployment) -> None:
    d = deployment
    mappings = d.client("lambda").list_event_source_mappings(
        EventSourceArn=d.outputs["kinesis_stream_arn"]
    )["EventSourceMappings"]
    assert len(mappings) == 1
    m = mappings[0]
    traits_fn = _function(d, d.outputs["update_traits_function_name"])
    assert m["FunctionArn"] == traits_fn["FunctionArn"]
    assert m["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert m["BisectBatchOnFunctionError"] is True
    assert m["MaximumRetryAttempts"] == 7
    assert m["MaximumRecordAgeInSeconds"] == 3600
    assert m["BatchSize"] == 50
    assert m["MaximumBatchingWindowInSeconds"] == 2
    assert m["ParallelizationFactor"] == 2
    assert m["StartingPosition"] == "LATEST"

    failed_queue_url = d.outputs["failed_batches_queue_url"]
    failed_queue_arn = d.client("sqs").get_queue_attributes(
        QueueUrl=failed_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert m["DestinationConfig"]["OnFailure"]["Destination"] == failed_queue_arn

    (only,) = m["FilterCriteria"]["Filters"]
    assert json.loads(only["Pattern"]) == {
        "data": {
            "type": ["track"],
            "event": TRACKED_EVENTS,
        }
    }

    for url in (d.outputs["dead_letter_queue_url"], failed_queue_url):
        attrs = d.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        assert attrs["Attributes"]["SqsManagedSseEnabled"] == "true"


def test_user_state_table_keeps_users_with_ttl_and_point_in_time_recovery(
    deployment: Deployment,
) -> None:
    d = deployment
    dynamodb = d.client("dynamodb")
    name = d.outputs["user_state_table"]["name"]
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert table["TableArn"] == d.outputs["user_state_table"]["arn"]
    assert table["KeySchema"] == [{"AttributeName": "user_id", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "user_id", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionProtectionEnabled"] is False  # user_state.deletion_protection here
    assert dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expires_at",
    }
    backups = dynamodb.describe_continuous_backups(TableName=name)
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    tags = dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {"Key": "project", "Value": "tf-test"} in tags


def test_refresh_queue_feeds_the_same_function_with_partial_batch_responses(
    deployment: Deployment,
) -> None:
    d = deployment
    sqs = d.client("sqs")
    url = d.outputs["refresh_queue_url"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    # Lambda's SQS guide: at least 6 x the function's timeout (60 s).
    assert attributes["VisibilityTimeout"] == "360"
    assert attributes["SqsManagedSseEnabled"] == "true"
    redrive = json.loads(attributes["RedrivePolicy"])
    dead_letter = sqs.get_queue_attributes(
        QueueUrl=d.outputs["dead_letter_queue_url"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert redrive["deadLetterTargetArn"] == dead_letter
    assert int(redrive["maxReceiveCount"]) == 5

    (mapping,) = d.client("lambda").list_event_source_mappings(
        EventSourceArn=attributes["QueueArn"]
    )["EventSourceMappings"]
    traits_fn = _function(d, d.outputs["update_traits_function_name"])
    assert mapping["FunctionArn"] == traits_fn["FunctionArn"]  # the stream's consumer itself
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 3}


def test_stream_is_encrypted_and_segment_role_is_narrow(deployment: Deployment) -> None:
    d = deployment
    stream = d.client("kinesis").describe_stream_summary(
        StreamName=d.outputs["kinesis_stream_name"]
    )["StreamDescriptionSummary"]
    assert stream["EncryptionType"] == "KMS"
    assert stream["KeyId"] == "alias/aws/kinesis"
    assert stream["StreamModeDetails"] == {"StreamMode": "ON_DEMAND"}
    # Longer than the maximum record age, so batches given up on can still be replayed.
    assert stream["RetentionPeriodHours"] == 168

    role_arn = d.outputs["segment_role_arn"]
    role = d.client("iam").get_role(RoleName=role_arn.rsplit("/", 1)[1])["Role"]
    (trust,) = _statements(role["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"AWS": SEGMENT_PRINCIPAL}
    assert trust["Action"] == ["sts:AssumeRole"]
    assert sorted(trust["Condition"]["StringEquals"]["sts:ExternalId"]) == sorted(EXTERNAL_IDS)

    grants = _grants(d, role_arn)
    assert grants == {
        "kinesis:PutRecord": {d.outputs["kinesis_stream_arn"]},
        "kinesis:PutRecords": {d.outputs["kinesis_stream_arn"]},
        "iam:SimulatePrincipalPolicy": {role_arn},
    }
    assert d.outputs["segment_destination_settings"] == {
        "stream": d.outputs["kinesis_stream_name"],
        "region": REGION,
        "roleAddress": role_arn,
    }


def test_function_roles_grant_exact_resources_and_no_wildcard_action(
    deployment: Deployment,
) -> None:
    d = deployment
    sqs = d.client("sqs")
    ssm = d.client("ssm")

    def role_of(output: str) -> str:
        return str(_function(d, d.outputs[output])["Role"])

    def queue_arn(url: str) -> str:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def param_arn(name: str) -> str:
        return str(ssm.get_parameter(Name=name)["Parameter"]["ARN"])

    reco_role, traits_role = (
        role_of("recommendations_function_name"),
        role_of("update_traits_function_name"),
    )
    assert reco_role != traits_role  # one role per function
    # IAM names are global: the region keeps a second region's deployment from colliding.
    for role_arn in (reco_role, traits_role, d.outputs["segment_role_arn"]):
        assert role_arn.endswith(f"-{REGION}"), role_arn
        assert role_arn.startswith(f"arn:aws:iam::123456789012:role/{PREFIX}-"), role_arn
    for role_arn in (reco_role, traits_role, d.outputs["segment_role_arn"]):
        for action, resources in _grants(d, role_arn).items():
            assert "*" not in action, f"{role_arn}: wildcard action {action}"
            if "*" in resources:
                assert action in UNSCOPABLE_ACTIONS, f"{role_arn}: {action} on *"

    traits = _grants(d, traits_role)
    stream = d.outputs["kinesis_stream_arn"]
    for action in ("GetRecords", "GetShardIterator", "DescribeStream", "DescribeStreamSummary",
                   "ListShards"):  # fmt: skip
        assert traits[f"kinesis:{action}"] == {stream}
    assert traits["personalize:GetRecommendations"] == {CAMPAIGN_ARN, FILTER_ARN}
    assert traits["personalize:PutEvents"] == {"*"}
    log_key = param_arn(d.outputs["log_hash_key_parameter"])
    assert traits["ssm:GetParameter"] == {
        param_arn(d.outputs["segment_write_key_parameter"]),
        param_arn(d.outputs["segment_profile_token_parameter"]),
        log_key,
    }
    refresh = queue_arn(d.outputs["refresh_queue_url"])
    assert traits["sqs:SendMessage"] == {
        queue_arn(d.outputs["dead_letter_queue_url"]),
        queue_arn(d.outputs["failed_batches_queue_url"]),
        refresh,
    }
    for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes",
                   "ChangeMessageVisibility"):  # fmt: skip
        assert traits[f"sqs:{action}"] == {refresh}, action
    # The user-state store: its three item operations, on its table only.
    table_arn = d.outputs["user_state_table"]["arn"]
    assert (
        table_arn
        == d.client("dynamodb").describe_table(TableName=d.outputs["user_state_table"]["name"])[
            "Table"
        ]["TableArn"]
    )
    assert {a: r for a, r in traits.items() if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem": {table_arn},
        "dynamodb:BatchGetItem": {table_arn},
        "dynamodb:UpdateItem": {table_arn},
    }
    log_group = f"/aws/lambda/{d.outputs['update_traits_function_name']}"
    assert traits["logs:PutLogEvents"] == {
        f"arn:aws:logs:{REGION}:123456789012:log-group:{log_group}:*"
    }

    reco = _grants(d, reco_role)
    assert reco["personalize:GetRecommendations"] == {
        CAMPAIGN_ARN, RELATED_ARN, FILTER_ARN, GENRE_FILTER_ARN,
    }  # fmt: skip
    assert reco["personalize:GetPersonalizedRanking"] == {RANKING_ARN}
    # The API reads the store (GetItem, on the table only), no Segment token: only the
    # log pseudonym key.
    assert {a: r for a, r in reco.items() if a.startswith("dynamodb:")} == {
        "dynamodb:GetItem": {table_arn}
    }
    assert reco["ssm:GetParameter"] == {log_key}
    assert "personalize:PutEvents" not in reco
    assert not any(a.startswith(("sqs:", "kinesis:")) for a in reco)

    # No managed policies on the function roles: everything is in the scoped inline policy.
    for role_arn in (reco_role, traits_role):
        attached = d.client("iam").list_attached_role_policies(RoleName=role_arn.rsplit("/", 1)[1])
        assert attached["AttachedPolicies"] == []


def test_api_requires_a_key_with_usage_plan_and_quiet_logging(deployment: Deployment) -> None:
    d = deployment
    apigw = d.client("apigateway")
    match = re.fullmatch(
        r"https://([a-z0-9]+)\.execute-api\.us-east-1\.amazonaws\.com/v1", d.outputs["api_url"]
    )
    assert match, d.outputs["api_url"]
    api_id = match.group(1)

    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api_id)["items"]}
    # Every route of openapi.yaml whose capability is configured (all are here), each with
    # its CORS preflight.
    assert set(resources) == {"/", "/recommendations", "/related-items", "/rankings"}
    assert set(resources["/recommendations"]["resourceMethods"]) == {"GET", "OPTIONS"}
    assert set(resources["/related-items"]["resourceMethods"]) == {"GET", "OPTIONS"}
    assert set(resources["/rankings"]["resourceMethods"]) == {"POST", "OPTIONS"}
    reco_arn = _function(d, d.outputs["recommendations_function_name"])["FunctionArn"]
    for path, verb in (
        ("/recommendations", "GET"),
        ("/related-items", "GET"),
        ("/rankings", "POST"),
    ):
        method = apigw.get_method(
            restApiId=api_id, resourceId=resources[path]["id"], httpMethod=verb
        )
        integration = method["methodIntegration"]
        # The document spells it aws_proxy (as AWS's examples do); moto keeps the case.
        assert integration["type"].upper() == "AWS_PROXY"
        assert reco_arn in integration["uri"]
    # moto's PutRestApi does not apply security or validators from a document: the document
    # Terraform sent (the state's body) is checked for them instead.
    document = _api_document(d)
    for path, verb in (
        ("/recommendations", "get"),
        ("/related-items", "get"),
        ("/rankings", "post"),
    ):
        operation = document["paths"][path][verb]
        assert operation["security"] == [{"api_key": []}]  # CORS on does not open the call
        assert operation["x-amazon-apigateway-request-validator"] == "parameters-and-body"
        assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
        assert document["paths"][path]["options"]["security"] == []
    assert document["x-amazon-apigateway-request-validators"]["parameters-and-body"] == {
        "validateRequestParameters": True,
        "validateRequestBody": True,
    }
    assert set(document["x-amazon-apigateway-gateway-responses"]) == {
        "DEFAULT_4XX", "DEFAULT_5XX", "BAD_REQUEST_BODY",
    }  # fmt: skip
    # The gateway's own errors (403, 429, 400, 504) carry CORS headers: the one origin.
    for response in document["x-amazon-apigateway-gateway-responses"].values():
        assert response["responseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": f"'{CORS_ORIGIN}'",
            "gatewayresponse.header.Vary": "'Origin'",
        }
    # The rest is openapi.yaml as committed.
    committed = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert document["components"] == committed["components"]
    assert (
        document["paths"]["/rankings"]["post"]["requestBody"]
        == committed["paths"]["/rankings"]["post"]["requestBody"]
    )

    (plan,) = apigw.get_usage_plans()["items"]
    assert plan["apiStages"] == [{"apiId": api_id, "stage": "v1"}]
    assert plan["throttle"] == {"rateLimit": 20.0, "burstLimit": 40}
    assert plan["quota"]["limit"] == 5000 and plan["quota"]["period"] == "DAY"  # opted in
    keys = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert [k["value"] for k in keys] == [d.outputs["api_key"]]

    stage = apigw.get_stage(restApiId=api_id, stageName="v1")
    assert stage["tracingEnabled"] is True
    access_format = json.loads(stage["accessLogSettings"]["format"])
    assert access_format["requestId"] == "$context.requestId"
    assert not any("querystring" in v.lower() for v in access_format.values())
    assert stage["accessLogSettings"]["destinationArn"].endswith(
        ":log-group:/aws/apigateway/tftest-recommendations/access"
    )
    # Access logs hold client IPs: kept as long as the function logs, not a year.
    groups = d.client("logs").describe_log_groups(logGroupNamePrefix="/aws/")["logGroups"]
    retention = {g["logGroupName"]: g.get("retentionInDays") for g in groups}
    assert retention == {
        "/aws/apigateway/tftest-recommendations/access": 30,
        f"/aws/lambda/{d.outputs['recommendations_function_name']}": 30,
        f"/aws/lambda/{d.outputs['update_traits_function_name']}": 30,
        f"/aws/lambda/{d.outputs['batch_function_name']}": 30,
    }
    settings = stage["methodSettings"]["*/*"]
    assert settings["loggingLevel"] == "ERROR"
    assert settings["dataTraceEnabled"] is False
    assert settings["metricsEnabled"] is True
    assert settings["throttlingRateLimit"] == 20.0

    # Only this API's GET and OPTIONS /recommendations on stage v1 may invoke the function:
    # one exact source ARN per method, no wildcard.
    policy = json.loads(
        d.client("lambda").get_policy(FunctionName=d.outputs["recommendations_function_name"])[
            "Policy"
        ]
    )
    statements = policy["Statement"]
    for statement in statements:
        assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
        assert statement["Action"] == "lambda:InvokeFunction"
        assert statement["Resource"] == reco_arn
    source_arns = sorted(s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in statements)
    assert source_arns == sorted(
        f"arn:aws:execute-api:{REGION}:123456789012:{api_id}/v1/{verb}/{path}"
        for path, verbs in (
            ("recommendations", ("GET", "OPTIONS")),
            ("related-items", ("GET", "OPTIONS")),
            ("rankings", ("POST", "OPTIONS")),
        )
        for verb in verbs
    )


def test_cors_preflight_reaches_the_function_without_a_key(deployment: Deployment) -> None:
    d = deployment
    apigw = d.client("apigateway")
    (api,) = apigw.get_rest_apis()["items"]
    resources = {r["path"]: r for r in apigw.get_resources(restApiId=api["id"])["items"]}
    method = apigw.get_method(
        restApiId=api["id"], resourceId=resources["/recommendations"]["id"], httpMethod="OPTIONS"
    )
    # A browser's preflight carries no x-api-key: a keyed OPTIONS would always answer 403.
    # (moto does not apply a document's security: the document sent is checked.)
    preflight = _api_document(d)["paths"]["/recommendations"]["options"]
    assert preflight["security"] == []
    assert method["apiKeyRequired"] is False
    # Proxied to the function, which echoes only a listed Origin (not a static MOCK answer).
    integration = method["methodIntegration"]
    assert integration["type"].upper() == "AWS_PROXY"
    assert integration["httpMethod"] == "POST"
    reco_arn = _function(d, d.outputs["recommendations_function_name"])["FunctionArn"]
    assert f"/functions/{reco_arn}/invocations" in integration["uri"]


# ---- The batch write-back (modules/batch_traits) ----------------------------------------


def _role_statements(d: Deployment, role_arn: str) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies (Action and Resource as lists)."""
    return [st for document in _role_policies(d, role_arn) for st in _statements(document)]


def test_batch_function_is_wired_to_the_bucket_queue_and_budget(deployment: Deployment) -> None:
    d = deployment
    outputs = d.outputs
    function = d.client("lambda").get_function(FunctionName=outputs["batch_function_name"])
    config = function["Configuration"]
    env = config["Environment"]["Variables"]
    assert config["Handler"] == "app.lambda_handler"
    assert env["BATCH_BUCKET"] == outputs["batch_bucket"]
    assert env["BATCH_USERS_KEY"] == outputs["batch_users_key"] == "input/users.json"
    assert env["BATCH_ROLE_ARN"] == outputs["batch_role_arn"]
    assert env["CHUNK_QUEUE_URL"] == outputs["batch_chunk_queue_url"]
    assert env["CHUNK_BYTES"] == str(8 * 1024 * 1024)
    assert float(env["SEGMENT_EVENTS_PER_S"]) == 100.0  # 400 events/s over 4 containers
    assert env["NUM_RESULTS"] == "20"  # batch_traits.num_results over the root's 40
    assert env["PERSONALIZE_FILTER_ARN"] == FILTER_ARN
    assert env["MAX_RECEIVE_COUNT"] == "4"
    assert d.write_key not in json.dumps(env)  # the write key is in SSM, never here

    function_arn = config["FunctionArn"]
    mappings = d.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    (mapping,) = [m for m in mappings if m["FunctionArn"] == function_arn]
    assert mapping["EventSourceArn"].endswith(f":{PREFIX}-batch-chunks")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 1
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 4}

    sqs = d.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=outputs["batch_chunk_queue_url"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 4
    assert redrive["deadLetterTargetArn"].endswith(f":{PREFIX}-batch-chunks-dead-letter")
    assert attributes["KmsMasterKeyId"]


def test_batch_bucket_is_encrypted_private_expiring_and_notifies_the_queue(
    deployment: Deployment,
) -> None:
    d = deployment
    s3 = d.client("s3")
    bucket = d.outputs["batch_bucket"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["expire-output"]["Expiration"]["Days"] == 14
    assert rules["expire-reports"]["Expiration"]["Days"] == 90
    (queue,) = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    filters = {f["Name"].lower(): f["Value"] for f in queue["Filter"]["Key"]["FilterRules"]}
    assert filters == {"prefix": "output/", "suffix": ".out"}
    policy = _statements(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    deny = [s for s in policy if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_batch_roles_are_scoped_to_the_bucket_prefixes_and_pass_only_the_personalize_role(
    deployment: Deployment,
) -> None:
    d = deployment
    outputs = d.outputs
    iam = d.client("iam")
    role_name = outputs["batch_role_arn"].rsplit("/", 1)[-1]
    trust = _statements(iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"])
    assert trust[0]["Principal"] == {"Service": "personalize.amazonaws.com"}
    account = CAMPAIGN_ARN.split(":")[4]
    # Confused-deputy prevention (Personalize developer guide): this account's Personalize.
    assert trust[0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:aws:personalize:us-east-1:{account}:*"},
    }
    personalize = {s["Sid"]: s for s in _role_statements(d, outputs["batch_role_arn"])}
    bucket_arn = f"arn:aws:s3:::{outputs['batch_bucket']}"
    assert personalize["ReadUsersFiles"]["Resource"] == [f"{bucket_arn}/input/*"]
    assert personalize["WriteBatchOutput"]["Resource"] == [f"{bucket_arn}/output/*"]
    key_arn = _function(d, outputs["batch_function_name"])["Environment"]["Variables"][
        "BATCH_KMS_KEY_ARN"
    ]
    # What Personalize needs of the key: all five in the key policy, all but CreateGrant in
    # its role's policy.
    assert set(personalize["UseBatchKey"]["Action"]) == {
        "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:ListGrants"
    }  # fmt: skip
    assert personalize["UseBatchKey"]["Resource"] == [key_arn]
    key_policy = _statements(
        d.client("kms").get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
    )
    (service,) = [s for s in key_policy if s.get("Sid") == "PersonalizeReadsAndWritesBatchFiles"]
    assert service["Principal"] == {"Service": "personalize.amazonaws.com"}
    assert set(service["Action"]) == {
        "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant",
        "kms:ListGrants",
    }  # fmt: skip

    function = d.client("lambda").get_function(FunctionName=outputs["batch_function_name"])
    statements = _role_statements(d, function["Configuration"]["Role"])
    by_sid = {s.get("Sid"): s for s in statements}
    assert by_sid["PassRoleToPersonalize"]["Resource"] == [outputs["batch_role_arn"]]
    assert by_sid["ReadCampaign"]["Resource"] == [CAMPAIGN_ARN]
    for statement in statements:
        actions, resources = statement["Action"], statement["Resource"]
        assert all(not a.endswith(":*") for a in actions), statement
        assert "*" not in resources or set(actions) <= {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }, statement


def test_batch_schedule_starts_a_backfill_through_its_own_role(deployment: Deployment) -> None:
    d = deployment
    schedule = d.client("scheduler").get_schedule(Name=f"{PREFIX}-batch-traits")
    assert schedule["ScheduleExpression"] == "cron(0 3 ? * SUN *)"
    target = schedule["Target"]
    assert json.loads(target["Input"]) == {"action": "start"}
    assert target["Arn"].endswith(f":function:{d.outputs['batch_function_name']}")
    by_sid = {st["Sid"]: st for st in _role_statements(d, target["RoleArn"])}
    assert set(by_sid) == {"StartBackfill", "DecryptTheSchedulePayload"}
    assert by_sid["StartBackfill"]["Action"] == ["lambda:InvokeFunction"]
    assert by_sid["StartBackfill"]["Resource"] == [target["Arn"]]
    # The payload is encrypted with the module's key: only that key, only to decrypt.
    env = _function(d, d.outputs["batch_function_name"])["Environment"]["Variables"]
    assert by_sid["DecryptTheSchedulePayload"]["Action"] == ["kms:Decrypt"]
    assert by_sid["DecryptTheSchedulePayload"]["Resource"] == [env["BATCH_KMS_KEY_ARN"]]
    # Scheduler invokes asynchronously: a failed start is retried once, then recorded in the
    # start-failures queue, which the function's role may send to.
    config = d.client("lambda").get_function_event_invoke_config(
        FunctionName=d.outputs["batch_function_name"]
    )
    failures_url = d.outputs["batch_start_failures_queue_url"]
    failures_arn = d.client("sqs").get_queue_attributes(
        QueueUrl=failures_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert config["MaximumRetryAttempts"] == 1
    assert config["MaximumEventAgeInSeconds"] == 3600
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == failures_arn
    function_role = _function(d, d.outputs["batch_function_name"])["Role"]
    statements = {s.get("Sid"): s for s in _role_statements(d, function_role)}
    assert statements["RecordFailedStarts"]["Action"] == ["sqs:SendMessage"]
    assert statements["RecordFailedStarts"]["Resource"] == [failures_arn]


def test_batch_alarms_watch_the_dead_letter_queue_and_errors(deployment: Deployment) -> None:
    d = deployment
    alarms = d.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{PREFIX}-batch")[
        "MetricAlarms"
    ]
    by_name = {a["AlarmName"]: a for a in alarms}
    dlq = by_name[f"{PREFIX}-batch-chunks-dead-letters"]
    assert dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": f"{PREFIX}-batch-chunks-dead-letter"}
    ]
    assert dlq["Threshold"] == 0 and dlq["ComparisonOperator"] == "GreaterThanThreshold"
    assert dlq["AlarmActions"] == [d.outputs["alarm_sns_topic_arn"]]
    starts = by_name[f"{PREFIX}-batch-start-failures"]
    assert starts["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert starts["Dimensions"] == [
        {"Name": "QueueName", "Value": f"{PREFIX}-batch-start-failures"}
    ]
    assert by_name[f"{PREFIX}-batch-traits-errors"]["MetricName"] == "Errors"
    assert by_name[f"{PREFIX}-batch-traits-chunks-failed"]["MetricName"] == "ChunksFailed"


def _plan_with(d: Deployment, name: str, changes: dict[str, Any]) -> str:
    """A plan (no refresh: the state is current) with some attributes of one object input
    changed and the others as deployed."""
    override = d.tf.workdir / "changed.tfvars.json"
    override.write_text(json.dumps({name: {**TFVARS[name], **changes}}))
    try:
        result = d.tf.run(
            "plan", "-refresh=false", "-input=false", "-no-color", f"-var-file={override}",
        )  # fmt: skip
    finally:
        override.unlink()
    return result.stdout


def test_turning_cors_off_redeploys_the_stage(deployment: Deployment) -> None:
    # The deployment's trigger hash must cover the OPTIONS route, or removing (or adding)
    # it would leave the stage serving the old routes.
    plan = _plan_with(deployment, "api", {"cors_allow_origins": []})
    prefix = "module.recommendations"
    assert f"# {prefix}.aws_api_gateway_deployment.this must be replaced" in plan, plan[-6000:]
    assert f"# {prefix}.aws_api_gateway_rest_api.this will be updated in-place" in plan
    for route in ("OPTIONS /recommendations", "OPTIONS /related-items", "OPTIONS /rankings"):
        assert f'# {prefix}.aws_lambda_permission.route["{route}"] will be destroyed' in plan
    assert f'{prefix}.aws_lambda_permission.route["GET /recommendations"]' not in plan


def test_unconfigured_capabilities_are_not_deployed(deployment: Deployment) -> None:
    # Without the related-items and ranking ARNs, their routes leave the API (and the
    # function's environment); /recommendations stays as it is.
    plan = _plan_with(
        deployment, "recommendations", {"related_items_arn": None, "ranking_campaign_arn": None}
    )
    prefix = "module.recommendations"
    for route in (
        "GET /related-items",
        "OPTIONS /related-items",
        "POST /rankings",
        "OPTIONS /rankings",
    ):
        assert f'# {prefix}.aws_lambda_permission.route["{route}"] will be destroyed' in plan, route
    assert f"# {prefix}.aws_api_gateway_deployment.this must be replaced" in plan
    assert f'{prefix}.aws_lambda_permission.route["GET /recommendations"]' not in plan


# name suffix -> (namespace, metric, statistic, threshold): what each alarm watches.
EMF = "SegmentPersonalize"
EXPECTED_ALARMS: dict[str, tuple[str, str, str, float]] = {
    "recommendations-errors": ("AWS/Lambda", "Errors", "Sum", 0),
    "update-traits-errors": ("AWS/Lambda", "Errors", "Sum", 0),
    "recommendations-throttles": ("AWS/Lambda", "Throttles", "Sum", 0),
    "update-traits-throttles": ("AWS/Lambda", "Throttles", "Sum", 0),
    "stream-iterator-age": ("AWS/Lambda", "IteratorAge", "Maximum", 300_000),
    "traits-dead-letter-not-empty": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 0),
    "traits-failed-batches-not-empty": (
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 0
    ),
    "update-traits-failed-records": (EMF, "FailedRecords", "Sum", 0),
    "update-traits-dead-lettered": (EMF, "DeadLettered", "Sum", 0),
    "update-traits-secret-errors": (EMF, "SecretErrors", "Sum", 0),
    "update-traits-configuration-errors": (EMF, "ConfigurationErrors", "Sum", 0),
    "recommendations-configuration-errors": (EMF, "Error_configuration_error", "Sum", 0),
    "api-5xx": ("AWS/ApiGateway", "5XXError", "Sum", 0),
    "api-latency-p99": ("AWS/ApiGateway", "Latency", "p99", 3000),
    # Metric math: the expression's result against the threshold.
    "stream-stalled": ("math", "IncomingRecords > 0 and Invocations == 0", "Sum", 1),
    "api-4xx-rate": ("math", "100 * 4XXError / Count", "Sum", 10),
    # The user-state store (metric math over DynamoDB's per-operation series: asserted
    # below) and its refresh queue: 45 s window + 300 s of lag.
    "user-state-throttles": ("math", "ThrottledRequests per operation + ReadThrottles", "Sum", 0),
    "user-state-system-errors": ("math", "SystemErrors per operation", "Sum", 0),
    "traits-refresh-queue-age": ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", 345),
    # The batch write-back's own (modules/batch_traits).
    "batch-chunks-dead-letters": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 0),
    "batch-start-failures": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 0),
    "batch-traits-errors": ("AWS/Lambda", "Errors", "Sum", 0),
    "batch-traits-chunks-failed": (EMF, "ChunksFailed", "Sum", 0),
}  # fmt: skip


def _terraform_alarms(d: Deployment) -> dict[str, dict[str, Any]]:
    """Every aws_cloudwatch_metric_alarm in Terraform's own view of what it deployed."""
    shown = json.loads(d.tf.run("show", "-json", "-no-color").stdout)
    found: dict[str, dict[str, Any]] = {}

    def walk(module: dict[str, Any]) -> None:
        for resource in module.get("resources", []):
            if resource["type"] == "aws_cloudwatch_metric_alarm":
                found[resource["values"]["alarm_name"]] = resource["values"]
        for child in module.get("child_modules", []):
            walk(child)

    walk(shown["values"]["root_module"])
    return found


def _watched(alarm: dict[str, Any]) -> list[tuple[str, str, str, dict[str, str]]]:
    """(namespace, metric, statistic, dimensions) of each metric an alarm reads."""
    if alarm.get("metric_name"):
        stat = alarm.get("statistic") or alarm.get("extended_statistic")
        return [(alarm["namespace"], alarm["metric_name"], stat, alarm.get("dimensions") or {})]
    out = []
    for query in alarm["metric_query"]:
        for metric in query.get("metric") or []:
            out.append(
                (metric["namespace"], metric["metric_name"], metric["stat"], metric["dimensions"])
            )
    return out


def test_alarms_watch_each_failure_with_its_metric_statistic_and_threshold(
    deployment: Deployment,
) -> None:
    d = deployment
    alarms = _terraform_alarms(d)
    assert set(alarms) == {f"{PREFIX}-{suffix}" for suffix in EXPECTED_ALARMS}
    deployed = d.client("cloudwatch").describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]
    assert {a["AlarmName"] for a in deployed} == set(alarms)
    topic = d.outputs["alarm_sns_topic_arn"]
    assert topic.endswith(f":{PREFIX}-alarms")
    for alarm in deployed:
        assert alarm["AlarmActions"] == [topic], alarm["AlarmName"]
        assert alarm["OKActions"] == [topic], alarm["AlarmName"]

    functions = {
        "recommendations": d.outputs["recommendations_function_name"],
        "update-traits": d.outputs["update_traits_function_name"],
        "batch": d.outputs["batch_function_name"],
    }
    emf_dims = {
        "update-traits": {"deployment": PREFIX, "service": "update_traits"},
        "recommendations": {"deployment": PREFIX, "service": "recommendations"},
        "batch": {"deployment": PREFIX, "service": "batch_traits"},
    }
    # The function an alarm's name starts with (the stream's consumer is update_traits).
    owners = {"update": "update-traits", "stream": "update-traits"}
    for suffix, (namespace, metric, statistic, threshold) in EXPECTED_ALARMS.items():
        alarm = alarms[f"{PREFIX}-{suffix}"]
        assert alarm["threshold"] == threshold, suffix
        assert alarm["alarm_actions"] == [topic], suffix
        watched = _watched(alarm)
        if namespace == "math":
            continue  # asserted one by one below
        ((ns, name, stat, dims),) = watched
        assert (ns, name, stat) == (namespace, metric, statistic), suffix
        label = suffix.split("-", 1)[0]
        owner = owners.get(label, label)
        if ns == "AWS/Lambda":
            assert dims == {"FunctionName": functions[owner]}, suffix
        if ns == EMF:
            assert dims == emf_dims[owner], suffix

    stalled = alarms[f"{PREFIX}-stream-stalled"]
    assert _watched(stalled) == [
        ("AWS/Kinesis", "IncomingRecords", "Sum", {"StreamName": d.outputs["kinesis_stream_name"]}),
        ("AWS/Lambda", "Invocations", "Sum", {"FunctionName": functions["update-traits"]}),
    ]
    (expression,) = [q["expression"] for q in stalled["metric_query"] if q["expression"]]
    assert expression == "IF(FILL(incoming, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"
    assert stalled["comparison_operator"] == "GreaterThanOrEqualToThreshold"
    assert stalled["evaluation_periods"] == 3

    rate = alarms[f"{PREFIX}-api-4xx-rate"]
    api = {"ApiName": f"{PREFIX}-recommendations", "Stage": "v1"}
    assert _watched(rate) == [
        ("AWS/ApiGateway", "4XXError", "Sum", api),
        ("AWS/ApiGateway", "Count", "Sum", api),
    ]
    (expression,) = [q["expression"] for q in rate["metric_query"] if q["expression"]]
    assert expression == "IF(requests >= 20, 100 * errors / requests, 0)"

    # DynamoDB publishes ThrottledRequests and SystemErrors per table AND operation: an
    # alarm on the table alone would never see a data point.
    table = d.outputs["user_state_table"]["name"]
    operations = ("GetItem", "BatchGetItem", "UpdateItem")
    for suffix, metric, extra in (
        ("user-state-throttles", "ThrottledRequests", [("ReadThrottleEvents", {})]),
        ("user-state-system-errors", "SystemErrors", []),
    ):
        alarm = alarms[f"{PREFIX}-{suffix}"]
        wanted = [(metric, {"Operation": op}) for op in operations] + extra
        assert sorted(_watched(alarm), key=json.dumps) == sorted(
            [("AWS/DynamoDB", m, "Sum", {"TableName": table, **dims}) for m, dims in wanted],
            key=json.dumps,
        ), suffix
        (expression,) = [q["expression"] for q in alarm["metric_query"] if q["expression"]]
        assert expression.count("FILL(") == len(wanted), expression
    age = alarms[f"{PREFIX}-traits-refresh-queue-age"]
    assert age["dimensions"] == {"QueueName": f"{PREFIX}-traits-refresh"}

    subscriptions = d.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [
        ("email", "oncall@example.com")
    ]
    (dashboard,) = d.client("cloudwatch").list_dashboards()["DashboardEntries"]
    assert dashboard["DashboardName"] == f"{PREFIX}-operations"


def _kinesis_event(stream_arn: str, *datas: bytes) -> dict[str, Any]:
    return kinesis_event(datas, stream_arn=stream_arn, region=REGION)


_Context = partial(LambdaContext, 30_000, aws_request_id="emf-check")
EMF_CHECK_BUCKET = f"{PREFIX}-emf-check-scratch"


def _emitted(out: str) -> list[tuple[str, set[str], frozenset[tuple[str, str]]]]:
    """(namespace, metric names, dimension name/value pairs) of every EMF blob printed."""
    found = []
    for line in out.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            names = {m["Name"] for m in directive["Metrics"]}
            for dimension_set in directive["Dimensions"]:
                pairs = frozenset((k, str(blob[k])) for k in dimension_set)
                found.append((directive["Namespace"], names, pairs))
    return found


def test_every_alarmed_emf_metric_is_what_the_functions_emit(
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run the packaged handlers' code against the deployed configuration and match the
    EMF they print with every alarm that reads a custom metric: a metric renamed in the
    functions, or a dimension Terraform sets differently, fails here."""
    from backfill import handler as batch_handler
    from backfill import runtime as batch_runtime

    from reco_api import handler as reco_handler
    from reco_api import runtime as reco_runtime
    from traits_sync import handler as traits_handler
    from traits_sync import runtime as traits_runtime

    d = deployment
    use_fake_aws(monkeypatch, REGION, {"": d.endpoint})
    traits_env = _function(d, d.outputs["update_traits_function_name"])["Environment"]["Variables"]
    reco_env = _function(d, d.outputs["recommendations_function_name"])["Environment"]["Variables"]
    batch_env = _function(d, d.outputs["batch_function_name"])["Environment"]["Variables"]
    stream = d.outputs["kinesis_stream_arn"]
    tracked = json.dumps(
        {"type": "track", "event": "Product Viewed", "userId": "user-1", "messageId": "m-1",
         "timestamp": "2024-03-10T10:00:00Z", "properties": {"product_id": "item-1"}}
    ).encode()  # fmt: skip
    capsys.readouterr()
    traits_runtime.reset()
    reco_runtime.reset()
    try:
        # A record that can never succeed: dead-lettered (a normal batch's metrics).
        traits = traits_runtime.Runtime(traits_env)
        traits_handler.handle_with(traits, _kinesis_event(stream, b"not json"), _Context())
        # The profile token still holds Terraform's placeholder: a secret error.
        result = traits_handler.handle_with(traits, _kinesis_event(stream, tracked), _Context())
        assert len(result["batchItemFailures"]) == 1
        traits.close()
        # A missing setting: a configuration error.
        broken = {k: v for k, v in traits_env.items() if k != "PERSONALIZE_CAMPAIGN_ARN"}
        traits = traits_runtime.Runtime(broken)
        traits_handler.handle_with(traits, _kinesis_event(stream, tracked), _Context())
        broken = {k: v for k, v in reco_env.items() if k != "PERSONALIZE_CAMPAIGN_ARN"}
        event = {"httpMethod": "GET", "queryStringParameters": {"userId": "user-1"}}
        answer = reco_handler.handle_with(reco_runtime.Runtime(broken), event, _Context())
        assert answer["statusCode"] == 500
        # A chunk of an output file that is not there: the attempt fails (ChunksFailed)
        # before any call to Segment, and SQS would deliver it again. The bucket is a
        # scratch one: moto applies the deployed bucket's deny-without-TLS policy to this
        # plain-HTTP endpoint (and the destroy test below finds no bucket left).
        s3 = d.client("s3")
        s3.create_bucket(Bucket=EMF_CHECK_BUCKET)
        chunk = {
            "v": 1, "job": "tf-emf-check", "bucket": EMF_CHECK_BUCKET,
            "key": "output/tf-emf-check/users.json.out", "etag": "missing",
            "index": 0, "total": 1, "start": 0, "end": 100,
        }  # fmt: skip
        sqs_event = {
            "Records": [
                {"messageId": "chunk-1", "body": json.dumps(chunk),
                 "attributes": {"ApproximateReceiveCount": "1"}}
            ]
        }  # fmt: skip
        batch = batch_runtime.Runtime(batch_env)
        result = batch_handler.handle_with(batch, sqs_event, _Context())
        assert result == {"batchItemFailures": [{"itemIdentifier": "chunk-1"}]}
        batch.close()
    finally:
        traits_runtime.reset()
        reco_runtime.reset()
        for bucket in d.client("s3").list_buckets()["Buckets"]:
            if bucket["Name"] == EMF_CHECK_BUCKET:
                d.client("s3").delete_bucket(Bucket=EMF_CHECK_BUCKET)
    emitted = _emitted(capsys.readouterr().out)
    assert emitted, "the functions printed no EMF"

    custom = [
        (name, watched)
        for name, alarm in _terraform_alarms(d).items()
        for watched in _watched(alarm)
        if not watched[0].startswith("AWS/")
    ]
    assert len(custom) == 6, custom
    for name, (namespace, metric, _, dims) in custom:
        wanted = frozenset(dims.items())
        assert any(
            ns == namespace and metric in names and pairs == wanted for ns, names, pairs in emitted
        ), f"{name}: no EMF {namespace}/{metric} with dimensions {dims}; emitted: {emitted}"


def test_operator_cli_finds_the_deployed_stack_through_terraform_outputs(
    deployment: Deployment,
) -> None:
    """scripts/bundle without --sandbox: names from `terraform output -json`, AWS from the
    SDK's usual settings (here AWS_ENDPOINT_URL pointing at the emulator)."""
    d = deployment
    env = {
        **d.tf.env,
        "AWS_ENDPOINT_URL": d.endpoint, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }  # fmt: skip

    def bundle(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "bundle"), *args,
             "--terraform-dir", str(d.tf.workdir)],
            input=stdin, capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip

    # The EMF check above dead-lettered one record through the deployed queue.
    listed = bundle("dlq", "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header == f"1 dead-lettered record(s) in {d.outputs['dead_letter_queue_url']}"
    assert row.endswith("data is not JSON")
    shown = bundle("dlq", "show", row.split()[0])
    assert json.loads(shown.stdout)["decoded"] == "not json"
    replay = bundle("replay-failed")
    assert (replay.returncode, replay.stdout) == (0, "no failed batches in the on-failure queue\n")

    rotated = "wk-rotated-" + secrets.token_hex(8)
    stored = bundle("set-secrets", "--write-key", "--stdin", stdin=rotated + "\n")
    assert stored.returncode == 0, stored.stderr
    assert rotated not in stored.stdout + stored.stderr
    name = d.outputs["segment_write_key_parameter"]
    value = d.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (value["Value"], value["Type"]) == (rotated, "SecureString")
    d.write_key = rotated  # what the plan below must not contain either


def test_plan_after_apply_reports_no_changes(deployment: Deployment) -> None:
    d = deployment
    # The operator sets the token out of band; Terraform must neither revert nor read it.
    d.client("ssm").put_parameter(
        Name=d.outputs["segment_profile_token_parameter"],
        Value=d.profile_token,
        Type="SecureString",
        Overwrite=True,
    )
    result = d.tf.run(
        "plan", "-detailed-exitcode", "-input=false", "-no-color", "-out=after-apply.tfplan",
        timeout=200, ok_codes=(0, 2),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]
    # A saved plan is a zip that includes the refreshed prior state: it holds neither secret.
    with zipfile.ZipFile(d.tf.workdir / "after-apply.tfplan") as plan:
        members = {name: plan.read(name) for name in plan.namelist()}
    assert "tfstate" in members
    for content in members.values():
        assert d.profile_token.encode() not in content
        assert d.write_key.encode() not in content


def test_destroy_removes_everything(deployment: Deployment) -> None:
    """The last test of the file: everything above ran on the deployment."""
    d = deployment
    # What destroy must remove includes the batch write-back's resources.
    deployed = {
        (r.get("module"), r["type"], r["name"]) for r in json.loads(d.state_text())["resources"]
    }
    batch = "module.batch_traits[0]"  # enable_batch_traits: count = 1
    for resource in (
        (batch, "aws_s3_bucket", "this"),
        (batch, "aws_sqs_queue", "chunks"),
        (batch, "aws_sqs_queue", "dead_letter"),
        (batch, "aws_scheduler_schedule", "this"),
        (f"{batch}.module.function", "aws_lambda_function", "this"),
    ):
        assert resource in deployed, resource
    batch_queues = {d.outputs["batch_chunk_queue_url"], d.outputs["batch_dead_letter_queue_url"]}
    assert batch_queues <= set(d.client("sqs").list_queues()["QueueUrls"])

    d.tf.run("destroy", "-auto-approve", "-input=false", "-no-color", timeout=240)
    state = json.loads(d.state_text())
    assert state["resources"] == []
    assert d.client("lambda").list_functions()["Functions"] == []
    assert d.client("kinesis").list_streams()["StreamNames"] == []
    assert d.client("sqs").list_queues().get("QueueUrls", []) == []
    assert d.client("dynamodb").list_tables()["TableNames"] == []
    assert d.client("apigateway").get_rest_apis()["items"] == []
    assert d.client("s3").list_buckets()["Buckets"] == []
    assert d.client("scheduler").list_schedules()["Schedules"] == []
    # The account-wide API Gateway logging role belongs to whoever set it: this stack
    # neither took it over on apply nor cleared it on destroy.
    assert d.client("apigateway").get_account()["cloudwatchRoleArn"] == OTHER_STACKS_ROLE
