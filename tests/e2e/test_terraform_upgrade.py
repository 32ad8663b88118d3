"""terraform/migrations.tf: a state written by an older version of this configuration plans
no destroy of anything that was only renamed, and the user-state store comes in additively.

The state holds objects at the addresses older releases used (renamed modules, the
alarms' and permissions' older resources), as those releases left them. A plan against
moto's server must trace each to its new address (moved) or forget it (removed): an old
address planned for deletion means a missing or wrong moved {} block. Only addresses are
checked for those: their attributes are placeholders, so their diffs mean nothing here.

The stream and its Kinesis mapping are in the state with the attributes that decide a
replacement (the stream's name; the mapping's stream and starting position): upgrading to
the user-state store (issue 20) must plan neither their destruction nor their replacement,
only the creation of the table, the refresh queue and its mapping.
"""

# ruff: noqa: E501 (the address tables read best one move per line)

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tf import moto_override, offline
from tf_support import TERRAFORM_DIR, Terraform, copy_configuration, moto_server

# pytest-timeout's 300 s would cut init (180 s) and plan (180 s) on moto short: the
# subprocesses' own limits, which name the step, must be the ones that fire.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

PROVIDER = 'provider["registry.terraform.io/hashicorp/aws"]'
_ADDRESS = re.compile(
    r'^((?:module\.[a-z0-9_]+\.)*)([a-z0-9_]+)\.([a-z0-9_]+)(?:\[(\d+|"[^"]*")\])?$'
)
SCHEMA_VERSIONS = {"aws_cloudwatch_metric_alarm": 1, "aws_kinesis_stream": 1}
ALARM = "module.alarms.aws_cloudwatch_metric_alarm"
REST_API = {"execution_arn": "arn:aws:execute-api:us-east-1:123456789012:abc"}

OLD_API, API = "module.recommendations_api", "module.recommendations"
OLD_TRAITS, TRAITS = "module.traits_sync", "module.update_traits"
# Addresses older releases left in their state -> where this configuration keeps them.
# Written out, not read from migrations.tf: a missing moved {} block must fail here.
MOVED = {
    # Issue 16: modules named after the function folders.
    f"{OLD_API}.aws_api_gateway_rest_api.this": f"{API}.aws_api_gateway_rest_api.this",
    f"{OLD_API}.module.function.aws_lambda_function.this": f"{API}.module.function.aws_lambda_function.this",
    f"{OLD_API}.module.function.aws_iam_role.this": f"{API}.module.function.aws_iam_role.this",
    f"{OLD_TRAITS}.aws_sqs_queue.dead_letter": f"{TRAITS}.aws_sqs_queue.dead_letter",
    f"{OLD_TRAITS}.aws_lambda_event_source_mapping.this": f"{TRAITS}.aws_lambda_event_source_mapping.this",
    f"{OLD_TRAITS}.module.function.aws_cloudwatch_log_group.this": f"{TRAITS}.module.function.aws_cloudwatch_log_group.this",
    # Issue 16: every alarm in one for_each.
    f"{ALARM}.stream_stalled": f'{ALARM}.metric["stream-stalled"]',
    f"{ALARM}.api_4xx_rate[0]": f'{ALARM}.metric["api-4xx-rate"]',
    f"{ALARM}.api_latency_p99[0]": f'{ALARM}.metric["api-latency-p99"]',
    # Earlier releases: alarms in one definition map, one permission per route (API v2);
    # the module rename must not break those moves.
    f'{ALARM}.function_errors["recommendations"]': f'{ALARM}.metric["recommendations-errors"]',
    f"{ALARM}.iterator_age": f'{ALARM}.metric["stream-iterator-age"]',
    f'{ALARM}.queue_not_empty["traits-dead-letter"]': f'{ALARM}.metric["traits-dead-letter-not-empty"]',
    f"{ALARM}.api_5xx[0]": f'{ALARM}.metric["api-5xx"]',
    f"{OLD_API}.aws_lambda_permission.api": f'{API}.aws_lambda_permission.route["GET /recommendations"]',
    f"{OLD_API}.aws_lambda_permission.options[0]": f'{API}.aws_lambda_permission.route["OPTIONS /recommendations"]',
}  # fmt: skip
STREAM = "module.segment_destination.aws_kinesis_stream.this"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/upgrade-segment-events"
KINESIS_MAPPING = f"{TRAITS}.aws_lambda_event_source_mapping.this"
# What the previous release's stream and mapping hold that a replacement would hinge on.
KEPT = {
    STREAM: {"name": "upgrade-segment-events", "arn": STREAM_ARN, "retention_period": 168,
             "encryption_type": "KMS", "kms_key_id": "alias/aws/kinesis",
             "stream_mode_details": [{"stream_mode": "ON_DEMAND"}]},
    f"{OLD_TRAITS}.aws_lambda_event_source_mapping.this": {
        "event_source_arn": STREAM_ARN, "starting_position": "LATEST", "uuid": "0000-kinesis",
    },
}  # fmt: skip
# Issue 20, the user-state store: only new objects.
ADDED = (
    "module.user_state.aws_dynamodb_table.this",
    f"{TRAITS}.aws_sqs_queue.refresh",
    f"{TRAITS}.aws_sqs_queue_redrive_policy.refresh",
    f"{TRAITS}.aws_lambda_event_source_mapping.refresh",
)
# API v2 took these out of Terraform without deleting them (removed, destroy = false).
FORGOTTEN = {
    f"{OLD_API}.aws_api_gateway_method.get": f"{API}.aws_api_gateway_method.get",
    f"{OLD_API}.aws_api_gateway_resource.recommendations": f"{API}.aws_api_gateway_resource.recommendations",
}  # fmt: skip


def _state_resource(address: str, attributes: dict[str, Any]) -> dict[str, Any]:
    match = _ADDRESS.match(address)
    assert match, address
    modules, rtype, name, key = match.groups()
    instance: dict[str, Any] = {
        "schema_version": SCHEMA_VERSIONS.get(rtype, 0),
        "attributes": {"id": f"old-{name}", **attributes},
    }
    if key is not None:
        instance["index_key"] = json.loads(key)
    resource = {"mode": "managed", "type": rtype, "name": name, "provider": PROVIDER,
                "instances": [instance]}  # fmt: skip
    if modules:
        resource["module"] = modules.rstrip(".")
    return resource


def test_an_old_state_plans_no_destroy_of_a_renamed_object(tmp_path: Path) -> None:
    old = {address: {} for address in [*MOVED, *FORGOTTEN]}
    old[f"{OLD_API}.aws_api_gateway_rest_api.this"] = REST_API
    old.update(KEPT)

    tree = copy_configuration(tmp_path / "terraform")
    state = {
        "version": 4, "terraform_version": "1.11.4", "serial": 1,
        "lineage": "00000000-0000-4000-8000-000000000016", "outputs": {},
        "resources": [_state_resource(a, attrs) for a, attrs in old.items()],
    }  # fmt: skip
    (tree / "terraform.tfstate").write_text(json.dumps(state))
    fixture = str(TERRAFORM_DIR / "tests" / "fixtures" / "function.zip")
    (tree / "upgrade.auto.tfvars.json").write_text(
        json.dumps(
            {
                "name_prefix": "upgrade",
                "personalize_campaign_arn": "arn:aws:personalize:us-east-1:123456789012:campaign/c",
                "segment_external_ids": ["ws_upgrade"],
                # Every renamed object exists in this configuration (CORS adds OPTIONS).
                "api": {"cors_allow_origins": ["https://shop.example.com"]},
                "artifacts": {
                    "recommendations": fixture,
                    "update_traits": fixture,
                    "layer": fixture,
                },
            }
        )
    )
    cli_config = offline.write_cli_config(tmp_path / "offline.tfrc", offline.mirror_path())
    tf = Terraform(tree, cli_config, tmp_path / "data")
    with moto_server(tmp_path / "moto.log") as endpoint:
        (tree / moto_override.FILE_NAME).write_text(moto_override.render(endpoint))
        tf.init()
        tf.run("plan", "-refresh=false", "-input=false", "-no-color", "-out=upgrade.tfplan",
               timeout=180)  # fmt: skip
        plan = json.loads(tf.run("show", "-json", "-no-color", "upgrade.tfplan").stdout)

    changes = {rc["address"]: rc for rc in plan["resource_changes"]}
    gone = [a for a, rc in changes.items() if a in old and "delete" in rc["change"]["actions"]]
    assert not gone, f"old addresses planned for deletion (no moved block?): {gone}"
    for address, new in {**MOVED, **FORGOTTEN}.items():
        assert new in changes, f"{address} -> {new}: not in the plan"
        change = changes[new]
        assert change.get("previous_address") == address, (
            address,
            new,
            change.get("previous_address"),
        )
        if address in FORGOTTEN:
            assert change["change"]["actions"] == ["forget"], (address, change["change"])
        else:
            # Replaced at most (the placeholder attributes differ), never only deleted.
            assert change["change"]["actions"] != ["delete"], (address, new)

    # The stream (and the records in it) and the Kinesis mapping (and its place in each
    # shard) survive the upgrade: updated in place at most, never destroyed or replaced.
    for address in (STREAM, KINESIS_MAPPING):
        assert changes[address]["change"]["actions"] in (["no-op"], ["update"]), (
            address,
            changes[address]["change"]["actions"],
        )
    assert changes[KINESIS_MAPPING]["change"]["after"]["event_source_arn"] == STREAM_ARN
    for address in ADDED:
        assert changes[address]["change"]["actions"] == ["create"], (address, changes[address])
