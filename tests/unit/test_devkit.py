"""The dev kit's builders, context, loader and fake AWS environment (temporary files only)."""

from __future__ import annotations

import base64
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from devkit.aws import UNSET, apply_env, fake_aws_env, local_client
from devkit.context import LambdaContext
from devkit.events import (
    apigw_event,
    kinesis_event,
    kinesis_messages,
    s3_event,
    sequence_number,
    sqs_event,
)
from devkit.loader import load_app, load_handler
from devkit.sandbox import poll

# -- events ---------------------------------------------------------------------------------


def test_kinesis_event_has_the_shape_lambda_builds_and_round_trips() -> None:
    messages = [{"userId": 7, "type": "track"}, {"anonymousId": "a-1"}]
    event = kinesis_event(messages, offset=3)
    first, second = event["Records"]
    assert first["kinesis"]["sequenceNumber"] == sequence_number(3)
    assert len(first["kinesis"]["sequenceNumber"]) == 56
    assert first["eventID"] == f"shardId-000000000000:{sequence_number(3)}"
    assert (first["kinesis"]["partitionKey"], second["kinesis"]["partitionKey"]) == ("7", "a-1")
    assert first["eventSource"] == "aws:kinesis"
    assert first["eventSourceARN"].startswith("arn:aws:kinesis:us-east-1:")
    assert (
        first["kinesis"]["approximateArrivalTimestamp"]
        < (second["kinesis"]["approximateArrivalTimestamp"])
    )
    assert kinesis_messages(event) == messages


def test_kinesis_event_takes_text_as_raw_data_and_bytes_as_they_are() -> None:
    event = kinesis_event(["%%% not base64", b"\xff\x00"])
    raw, binary = (r["kinesis"]["data"] for r in event["Records"])
    assert raw == "%%% not base64"
    assert base64.b64decode(binary) == b"\xff\x00"
    assert sequence_number(1) > sequence_number(0)


def test_apigw_event_sets_both_query_forms_and_leaves_the_fixture_alone(tmp_path: Path) -> None:
    base = {"httpMethod": "GET", "queryStringParameters": {"userId": "old"}}
    path = tmp_path / "get.json"
    path.write_text(json.dumps(base))
    event = apigw_event(path, {"userId": "u 1", "numResults": "5"})
    assert event["queryStringParameters"] == {"userId": "u 1", "numResults": "5"}
    assert event["multiValueQueryStringParameters"] == {"userId": ["u 1"], "numResults": ["5"]}
    assert apigw_event(base, {})["queryStringParameters"] is None
    assert apigw_event(base) == base
    posted = apigw_event(base, body={"userId": "u"})
    assert json.loads(posted["body"]) == {"userId": "u"}
    assert base == {"httpMethod": "GET", "queryStringParameters": {"userId": "old"}}


def test_sqs_and_s3_events() -> None:
    sqs = sqs_event([{"a": 1}, "plain"])
    assert [r["messageId"] for r in sqs["Records"]] == ["m-0", "m-1"]
    assert [r["body"] for r in sqs["Records"]] == ['{"a": 1}', "plain"]
    assert sqs["Records"][0]["eventSource"] == "aws:sqs"
    (record,) = s3_event("bucket", ["in/a file.json"], sizes=[12])["Records"]
    assert record["s3"]["bucket"]["name"] == "bucket"
    assert record["s3"]["object"] == {"key": "in/a+file.json", "size": 12, "sequencer": "0" * 16}
    assert record["eventName"] == "ObjectCreated:Put"


# -- context --------------------------------------------------------------------------------


def test_context_counts_down_or_stays_where_it_is_told() -> None:
    live = LambdaContext(function_name="fn", timeout_s=3.0)
    assert 2000 < live.get_remaining_time_in_millis() <= 3000
    assert live.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert live.log_group_name == "/aws/lambda/fn"
    assert LambdaContext(timeout_s=0.0).get_remaining_time_in_millis() == 0
    assert LambdaContext(1234).get_remaining_time_in_millis() == 1234
    assert LambdaContext(remaining_ms=0).get_remaining_time_in_millis() == 0
    assert LambdaContext().aws_request_id != LambdaContext().aws_request_id


# -- loader ---------------------------------------------------------------------------------


def _write_function(root: Path, name: str, body: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "app.py").write_text(textwrap.dedent(body))


def test_two_app_modules_load_side_by_side_with_their_own_folder_on_the_path(
    tmp_path: Path,
) -> None:
    functions = tmp_path / "functions"
    _write_function(functions, "one", "def lambda_handler(e, c):\n    return ('one', e)\n")
    _write_function(
        functions,
        "two",
        "from helper_two import VALUE\n\ndef lambda_handler(e, c):\n    return (VALUE, e)\n",
    )
    (functions / "two" / "helper_two.py").write_text("VALUE = 'two'\n")
    _write_function(functions, "none", "HANDLER = None\n")
    try:
        one = load_handler("one", functions)
        two = load_handler("two", functions, name="devkit_test_two")
        assert one({"a": 1}, None) == ("one", {"a": 1})
        assert two({"b": 2}, None) == ("two", {"b": 2})
        assert sys.modules["one_app"].lambda_handler is one
        assert "devkit_test_two" in sys.modules
        assert "app" not in sys.modules or not str(
            getattr(sys.modules["app"], "__file__", "")
        ).startswith(str(functions))
        assert load_app("none", functions).HANDLER is None
        with pytest.raises(ImportError, match="no lambda_handler"):
            load_handler("none", functions)
        with pytest.raises(FileNotFoundError, match="missing"):
            load_app("missing", functions)
    finally:
        for entry in (functions, *(functions / n for n in ("one", "two", "none"))):
            while str(entry) in sys.path:
                sys.path.remove(str(entry))
        for module in ("helper_two", "one_app", "devkit_test_two", "none_app"):
            sys.modules.pop(module, None)


# -- fake AWS environment -------------------------------------------------------------------


def test_fake_aws_env_names_each_endpoint_as_the_sdk_spells_it() -> None:
    env = fake_aws_env(
        "eu-west-1", {"": "http://127.0.0.1:1", "personalize-runtime": "http://127.0.0.1:2"}
    )
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME"] == "http://127.0.0.1:2"
    assert (env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == ("eu-west-1", "eu-west-1")
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    target = {"AWS_PROFILE": "dev", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true", "KEEP": "1"}
    apply_env(env, target)
    assert not set(UNSET) & set(target)
    assert target["KEEP"] == "1"
    assert target["AWS_REGION"] == "eu-west-1"


@pytest.mark.parametrize(
    "endpoint", ["https://sqs.us-east-1.amazonaws.com", "http://10.0.0.1:4566", "http://[::2]:1"]
)
def test_local_clients_refuse_anything_but_loopback(endpoint: str) -> None:
    with pytest.raises(ValueError, match=r"sqs endpoint must be on 127\.0\.0\.1"):
        local_client("sqs", endpoint)


def test_a_local_client_is_pointed_at_the_emulator_with_dummy_credentials() -> None:
    client = local_client("ssm", "http://127.0.0.1:9", "eu-west-1")
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "eu-west-1"
    assert client._request_signer._credentials.access_key == "testing"


# -- bounded wait ---------------------------------------------------------------------------


def test_poll_returns_the_first_value_and_gives_up_at_its_deadline() -> None:
    answers = iter([None, None, "ready"])
    assert poll("three tries", lambda: next(answers), timeout_s=5, every_s=0) == "ready"
    with pytest.raises(AssertionError, match="waiting for never"):
        poll("never", lambda: None, timeout_s=0.05, every_s=0.01)
