"""Terraform on moto's server with the batch write-back enabled: apply, what was built,
an empty second plan, destroy.

moto gaps (checked against moto's server): none of the module's resources needs skipping
(S3 bucket notifications to SQS, EventBridge Scheduler schedules and SQS event source
mappings are all served), so tf.moto_override only adds the s3 and scheduler endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from tf import moto_override, offline
from tf_support import ROOT, Terraform, copy_configuration, moto_server

# The module's fixture builds the artifacts (300 s), inits (180 s) and applies (280 s):
# pytest-timeout's 300 s would cut that short, and the subprocesses' own limits, which
# name the step, must be the ones that fire.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(840)]

REGION = "us-east-1"
PREFIX = "tfbatch"
CAMPAIGN_ARN = "arn:aws:personalize:us-east-1:123456789012:campaign/tf-batch"
FILTER_ARN = "arn:aws:personalize:us-east-1:123456789012:filter/tf-batch-not-purchased"
TFVARS = {
    "name_prefix": PREFIX,
    "personalize_campaign_arn": CAMPAIGN_ARN,
    "personalize_filter_arn": FILTER_ARN,
    "segment_external_ids": ["ws_tf_batch"],
    "enable_batch_traits": True,
    "batch_traits": {
        "schedule_expression": "cron(0 3 ? * SUN *)",
        "chunk_bytes": 8 * 1024 * 1024,
        "max_concurrency": 4,
        "segment_events_per_s": 400,
        "num_results": 20,
        "max_receive_count": 4,
        "force_destroy": True,
    },
    "alarms": {"create_sns_topic": True},
}


@dataclass
class Stack:
    tf: Terraform
    endpoint: str
    outputs: dict[str, Any]

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("tf-batch")
    out = base / "build"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    workdir = copy_configuration(base / "terraform")
    cli_config = offline.write_cli_config(base / "offline.tfrc", offline.mirror_path())
    tfvars = {
        **TFVARS,
        "artifacts": {
            "recommendations": str(out / "recommendations" / "function.zip"),
            "update_traits": str(out / "update_traits" / "function.zip"),
            "batch_traits": str(out / "batch_traits" / "function.zip"),
            "layer": str(out / "layer.zip"),
        },
    }
    (workdir / "test.auto.tfvars.json").write_text(json.dumps(tfvars, indent=2))
    with moto_server(base / "moto.log") as endpoint:
        (workdir / moto_override.FILE_NAME).write_text(moto_override.render(endpoint, REGION))
        tf = Terraform(workdir, cli_config, base / "tf-data")
        tf.init()
        tf.run(
            "apply", "-auto-approve", "-input=false", "-no-color",
            timeout=280, extra_env={"TF_VAR_segment_write_key": "wk-tf-batch"},
        )  # fmt: skip
        state = json.loads((workdir / "terraform.tfstate").read_text())
        outputs = {k: v["value"] for k, v in state["outputs"].items()}
        yield Stack(tf, endpoint, outputs)


def _statements(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, str):
        document = json.loads(document)
    statements = document["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _role_statements(stack: Stack, role_arn: str) -> list[dict[str, Any]]:
    iam = stack.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    found = []
    for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        found += _statements(document)
    return found


def test_the_function_is_wired_to_the_bucket_queue_and_budget(stack: Stack) -> None:
    outputs = stack.outputs
    function = stack.client("lambda").get_function(FunctionName=outputs["batch_function_name"])
    config = function["Configuration"]
    env = config["Environment"]["Variables"]
    assert config["Handler"] == "app.lambda_handler"
    assert env["BATCH_BUCKET"] == outputs["batch_bucket"]
    assert env["BATCH_USERS_KEY"] == outputs["batch_users_key"] == "input/users.json"
    assert env["BATCH_ROLE_ARN"] == outputs["batch_role_arn"]
    assert env["CHUNK_QUEUE_URL"] == outputs["batch_chunk_queue_url"]
    assert env["CHUNK_BYTES"] == str(8 * 1024 * 1024)
    assert float(env["SEGMENT_EVENTS_PER_S"]) == 100.0  # 400 events/s over 4 containers
    assert env["NUM_RESULTS"] == "20"
    assert env["PERSONALIZE_FILTER_ARN"] == FILTER_ARN
    assert env["MAX_RECEIVE_COUNT"] == "4"
    assert "wk-tf-batch" not in json.dumps(env)  # the write key is in SSM, never here

    function_arn = config["FunctionArn"]
    mappings = stack.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    (mapping,) = [m for m in mappings if m["FunctionArn"] == function_arn]
    assert mapping["EventSourceArn"].endswith(":tfbatch-batch-chunks")
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 1
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 4}

    sqs = stack.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=outputs["batch_chunk_queue_url"], AttributeNames=["All"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 4
    assert redrive["deadLetterTargetArn"].endswith(":tfbatch-batch-chunks-dead-letter")
    assert attributes["KmsMasterKeyId"]


def test_the_bucket_is_encrypted_private_expiring_and_notifies_the_queue(stack: Stack) -> None:
    s3 = stack.client("s3")
    bucket = stack.outputs["batch_bucket"]
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


def test_roles_are_scoped_to_the_bucket_prefixes_and_pass_only_the_personalize_role(
    stack: Stack,
) -> None:
    outputs = stack.outputs
    iam = stack.client("iam")
    role_name = outputs["batch_role_arn"].rsplit("/", 1)[-1]
    trust = _statements(iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"])
    assert trust[0]["Principal"] == {"Service": "personalize.amazonaws.com"}
    assert "aws:SourceAccount" in trust[0]["Condition"]["StringEquals"]
    personalize = {s["Sid"]: s for s in _role_statements(stack, outputs["batch_role_arn"])}
    bucket_arn = f"arn:aws:s3:::{outputs['batch_bucket']}"
    assert personalize["ReadUsersFiles"]["Resource"] == f"{bucket_arn}/input/*"
    assert personalize["WriteBatchOutput"]["Resource"] == f"{bucket_arn}/output/*"

    function = stack.client("lambda").get_function(FunctionName=outputs["batch_function_name"])
    statements = _role_statements(stack, function["Configuration"]["Role"])
    by_sid = {s.get("Sid"): s for s in statements}
    assert by_sid["PassRoleToPersonalize"]["Resource"] == outputs["batch_role_arn"]
    assert by_sid["ReadCampaign"]["Resource"] == CAMPAIGN_ARN
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert all(not a.endswith(":*") for a in actions), statement
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        assert "*" not in resources or set(actions) <= {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
        }, statement


def test_the_schedule_starts_a_backfill_through_its_own_role(stack: Stack) -> None:
    schedule = stack.client("scheduler").get_schedule(Name=f"{PREFIX}-batch-traits")
    assert schedule["ScheduleExpression"] == "cron(0 3 ? * SUN *)"
    target = schedule["Target"]
    assert json.loads(target["Input"]) == {"action": "start"}
    assert target["Arn"].endswith(f":function:{stack.outputs['batch_function_name']}")
    (statement,) = _role_statements(stack, target["RoleArn"])
    assert statement["Action"] in ("lambda:InvokeFunction", ["lambda:InvokeFunction"])
    assert statement["Resource"] == target["Arn"]


def test_alarms_watch_the_dead_letter_queue_and_errors(stack: Stack) -> None:
    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{PREFIX}-batch")[
        "MetricAlarms"
    ]
    by_name = {a["AlarmName"]: a for a in alarms}
    dlq = by_name[f"{PREFIX}-batch-chunks-dead-letters"]
    assert dlq["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": f"{PREFIX}-batch-chunks-dead-letter"}
    ]
    assert dlq["Threshold"] == 0 and dlq["ComparisonOperator"] == "GreaterThanThreshold"
    assert dlq["AlarmActions"]  # the alarms topic
    assert by_name[f"{PREFIX}-batch-traits-errors"]["MetricName"] == "Errors"
    assert by_name[f"{PREFIX}-batch-traits-chunks-failed"]["MetricName"] == "ChunksFailed"


def test_plan_after_apply_reports_no_changes(stack: Stack) -> None:
    result = stack.tf.run(
        "plan", "-detailed-exitcode", "-input=false", "-no-color", timeout=200, ok_codes=(0, 2)
    )
    changes = [line for line in result.stdout.splitlines() if line.strip().startswith(("#", "~"))]
    assert result.returncode == 0, "\n".join(changes)[-6000:]


def test_destroy_removes_everything(stack: Stack) -> None:
    stack.tf.run("destroy", "-auto-approve", "-input=false", "-no-color", timeout=280)
    state = json.loads((stack.tf.workdir / "terraform.tfstate").read_text())
    assert state["resources"] == []
    assert stack.client("s3").list_buckets()["Buckets"] == []
