"""The sandbox's Lambda Invoke API through boto3's own `lambda` client: the payload, the
unhandled-error shape (X-Amz-Function-Error), an unknown function."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from sandbox.lambda_api import LambdaApi


def _handler(event: Any, request_id: str) -> Any:
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"echo": event, "requestId": request_id}


@pytest.fixture
def client() -> Iterator[Any]:
    api = LambdaApi("127.0.0.1", 0, {"fn": _handler})
    api.start()
    try:
        yield boto3.client(
            "lambda",
            region_name="us-east-1",
            endpoint_url=api.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
    finally:
        api.stop()


def test_invoke_returns_the_handlers_result(client: Any) -> None:
    response = client.invoke(FunctionName="fn", Payload=json.dumps({"action": "start"}))
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    payload = json.loads(response["Payload"].read())
    assert payload["echo"] == {"action": "start"} and payload["requestId"]
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert client.invoke(FunctionName=arn, Payload=b"{}")["StatusCode"] == 200


def test_an_exception_is_an_unhandled_function_error(client: Any) -> None:
    response = client.invoke(FunctionName="fn", Payload=json.dumps({"fail": True}))
    assert response["FunctionError"] == "Unhandled"
    payload = json.loads(response["Payload"].read())
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "asked to fail")


def test_an_unknown_function_is_resource_not_found(client: Any) -> None:
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="other", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
