"""The sandbox's local API gateway: API Gateway's routing and key check, the REST proxy (v1)
event, and the mapping of proxy responses (no sockets)."""

from __future__ import annotations

import base64
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from sandbox.gateway import (
    INVALID_API_KEY,
    MISSING_AUTHENTICATION_TOKEN,
    ApiGateway,
    GatewayError,
    HttpRequest,
    build_event,
    gateway_error_body,
    map_response,
)

KEY = "k" * 30
_DEFAULT: Any = object()


class Recorder:
    def __init__(self, result: Any = _DEFAULT) -> None:
        self.calls: list[tuple[dict[str, Any], str]] = []
        self.result = _ok({"items": []}) if result is _DEFAULT else result

    def __call__(self, event: dict[str, Any], request_id: str) -> Any:
        self.calls.append((event, request_id))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def _ok(payload: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(payload),
    }


def _get(target: str, key: str | None = KEY, **headers: str) -> HttpRequest:
    pairs = [("Host", "127.0.0.1:8080"), ("User-Agent", "curl/8")]
    if key is not None:
        pairs.append(("x-api-key", key))
    pairs.extend(headers.items())
    return HttpRequest("GET", target, pairs)


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/"),
        ("GET", "/recommendations/extra"),
        ("GET", "/prod/recommendations"),
        ("POST", "/recommendations"),
        ("DELETE", "/recommendations?userId=u"),
        ("GET", "/rankings"),
        ("POST", "/related-items"),
        ("HEAD", "/recommendations?userId=u"),
        ("PUT", "/rankings"),
        ("OPTIONS", "/recommendations"),
    ],
)
@pytest.mark.parametrize("key", [KEY, None])
def test_unrouted_requests_get_missing_authentication_token(
    method: str, target: str, key: str | None
) -> None:
    """A method the route does not deploy is API Gateway's 403, not the function's 405, with or
    without a key: the gateway answers before looking at the key."""
    invoke = Recorder()
    gateway = ApiGateway(invoke, KEY)
    headers = [("x-api-key", key)] if key else []
    response = gateway.handle(HttpRequest(method, target, headers))
    assert response.status == 403
    assert json.loads(response.body) == {
        "error": {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}
    }
    assert response.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    assert invoke.calls == []


@pytest.mark.parametrize("key", [None, "", "wrong-key-of-enough-length", KEY + "x"])
def test_a_missing_or_wrong_api_key_is_forbidden(key: str | None) -> None:
    invoke = Recorder()
    response = ApiGateway(invoke, KEY).handle(_get("/recommendations?userId=u1", key=key))
    assert response.status == 403
    assert json.loads(response.body) == {
        "error": {"code": "INVALID_API_KEY", "message": "Forbidden"}
    }
    assert response.header("Content-Type") == "application/json"
    assert invoke.calls == []


def test_the_v2_routes_reach_the_function_with_their_resource() -> None:
    invoke = Recorder()
    gateway = ApiGateway(invoke, KEY)
    body = b'{"userId": "u1", "itemIds": ["a"]}'
    post = HttpRequest("POST", "/rankings", [("x-api-key", KEY)], body)
    assert gateway.handle(post).status == 200
    assert gateway.handle(_get("/related-items?itemId=a")).status == 200
    (ranking, _), (related, _) = invoke.calls
    assert (ranking["resource"], ranking["httpMethod"], ranking["body"]) == (
        "/rankings",
        "POST",
        body.decode(),
    )
    assert ranking["requestContext"]["resourcePath"] == "/rankings"
    assert related["resource"] == "/related-items"
    assert related["queryStringParameters"] == {"itemId": "a"}


def test_the_key_header_name_is_case_insensitive() -> None:
    invoke = Recorder()
    request = HttpRequest("GET", "/recommendations?userId=u1", [("X-API-Key", KEY)])
    assert ApiGateway(invoke, KEY).handle(request).status == 200


def test_event_is_a_rest_proxy_v1_event() -> None:
    invoke = Recorder()
    gateway = ApiGateway(invoke, KEY, stage="sandbox", clock=lambda: 1_700_000_000.5)
    response = gateway.handle(
        _get("/recommendations?userId=user%201&numResults=5&numResults=7", Accept="a/b")
    )
    assert response.status == 200
    ((event, request_id),) = invoke.calls
    assert event["resource"] == "/recommendations"
    assert event["path"] == "/recommendations"
    assert event["httpMethod"] == "GET"
    # Single-value maps keep the last value; values are URL-decoded.
    assert event["queryStringParameters"] == {"userId": "user 1", "numResults": "7"}
    assert event["multiValueQueryStringParameters"] == {
        "userId": ["user 1"],
        "numResults": ["5", "7"],
    }
    assert event["headers"]["Accept"] == "a/b"
    assert event["multiValueHeaders"]["x-api-key"] == [KEY]
    assert event["pathParameters"] is None
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["requestId"] == request_id
    assert ctx["stage"] == "sandbox"
    assert ctx["path"] == "/sandbox/recommendations"
    assert ctx["resourcePath"] == "/recommendations"
    assert ctx["httpMethod"] == "GET"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["apiKey"] == KEY
    assert ctx["identity"]["userAgent"] == "curl/8"
    assert ctx["requestTimeEpoch"] == 1_700_000_000_500
    assert response.header("x-amzn-RequestId") == request_id


def test_absent_query_string_is_null_not_empty() -> None:
    event = build_event(
        _get("/recommendations"),
        request_id="r",
        api_key=KEY,
        stage="s",
        api_id="a",
        account="123456789012",
        now=0.0,
    )
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_proxy_response_is_mapped_back() -> None:
    result = {
        "statusCode": 429,
        "headers": {"Content-Type": "application/json", "Retry-After": "1"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": '{"error": {"code": "throttled"}}',
        "isBase64Encoded": False,
    }
    response = map_response(result, "rid")
    assert response.status == 429
    assert response.header("Retry-After") == "1"
    assert [v for k, v in response.headers if k == "X-Multi"] == ["a", "b"]
    assert json.loads(response.body) == {"error": {"code": "throttled"}}


def test_base64_bodies_are_decoded() -> None:
    result = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\x01").decode(),
        "isBase64Encoded": True,
    }
    assert map_response(result, "rid").body == b"\x00\x01"


@pytest.mark.parametrize(
    "result",
    [
        None,
        "text",
        {"body": "{}"},
        {"statusCode": "200", "body": "{}"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "body": "!!", "isBase64Encoded": True},
        RuntimeError("handler crashed"),
    ],
)
def test_handler_errors_and_malformed_responses_are_502(result: Any) -> None:
    response = ApiGateway(Recorder(result), KEY).handle(_get("/recommendations?userId=u"))
    assert response.status == 502
    assert json.loads(response.body) == {
        "error": {"code": "API_CONFIGURATION_ERROR", "message": "Internal server error"}
    }


def test_a_hung_integration_is_504() -> None:
    release = threading.Event()

    def hang(event: dict[str, Any], request_id: str) -> Any:
        release.wait(5)
        return _ok({})

    gateway = ApiGateway(hang, KEY, timeout_s=0.05)
    try:
        response = gateway.handle(_get("/recommendations?userId=u"))
    finally:
        release.set()
        gateway.close()
    assert response.status == 504
    assert json.loads(response.body) == {
        "error": {"code": "INTEGRATION_TIMEOUT", "message": "Endpoint request timed out"}
    }


MODULE = Path(__file__).resolve().parents[2] / "terraform" / "modules" / "recommendations"


@pytest.mark.parametrize("error", [MISSING_AUTHENTICATION_TOKEN, INVALID_API_KEY])
def test_gateway_answers_are_the_deployments_gateway_response_template(error: GatewayError) -> None:
    """The body the sandbox sends is what the module's DEFAULT_4XX/5XX template makes of the
    same error: the template's $context variables filled with its response type and message."""
    main = (MODULE / "main.tf").read_text(encoding="utf-8")
    block = re.search(r"gateway_error_template = jsonencode\(\{(.*?)\n  \}\)", main, re.S)
    assert block, "gateway_error_template not found in the recommendations module"
    fields = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', block.group(1)))
    assert set(fields) == {"code", "message"} and "error = {" in block.group(1)
    values = {
        "$context.error.responseType": error.response_type,
        "$context.error.message": error.message,
    }
    assert gateway_error_body(error) == {"error": {k: values[v] for k, v in fields.items()}}


# CORS on the gateway's own errors, as terraform/modules/recommendations' gateway responses
# (terraform/tests/first_apply.tftest.hcl checks those): a browser sees the 403, 429 or
# 504 instead of an opaque CORS failure.
ORIGIN = "https://shop.example.com"


def _errors(gateway: ApiGateway, origin: str | None) -> list[Any]:
    extra = {} if origin is None else {"Origin": origin}
    return [
        gateway.handle(_get("/recommendations?userId=u", key=None, **extra)),  # 403 no key
        gateway.handle(_get("/nowhere", **extra)),  # 403 unrouted
        gateway.handle(_get("/recommendations?userId=u", **extra)),  # 502 handler error
    ]


@pytest.mark.parametrize(
    ("allowed", "origin", "expected"),
    [
        (("*",), ORIGIN, [("Access-Control-Allow-Origin", "*")]),
        ((ORIGIN,), ORIGIN, [("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin")]),
        # One origin is a static value: another origin's browser gets it and refuses.
        ((ORIGIN,), "https://other.example",
         [("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin")]),
        # Several: the gateway echoes the request's Origin (it cannot choose among them).
        ((ORIGIN, "http://localhost:3000"), "http://localhost:3000",
         [("Access-Control-Allow-Origin", "http://localhost:3000"), ("Vary", "Origin")]),
        ((ORIGIN, "http://localhost:3000"), None, [("Vary", "Origin")]),
    ],
)  # fmt: skip
def test_gateway_errors_carry_the_cors_headers_when_cors_is_on(
    allowed: tuple[str, ...], origin: str | None, expected: list[tuple[str, str]]
) -> None:
    gateway = ApiGateway(Recorder(RuntimeError("boom")), KEY, cors_allow_origins=allowed)
    try:
        responses = _errors(gateway, origin)
    finally:
        gateway.close()
    assert [r.status for r in responses] == [403, 403, 502]
    for response in responses:
        cors = [(k, v) for k, v in response.headers if k in ("Access-Control-Allow-Origin", "Vary")]
        assert cors == expected


def test_gateway_errors_carry_no_cors_headers_with_cors_off() -> None:
    gateway = ApiGateway(Recorder(RuntimeError("boom")), KEY)
    try:
        responses = _errors(gateway, ORIGIN)
    finally:
        gateway.close()
    for response in responses:
        assert not any(k.startswith("Access-Control-") for k, _ in response.headers)


def test_the_functions_answers_keep_only_their_own_cors_headers() -> None:
    # A proxied answer is the function's: the gateway adds nothing to it.
    result = _ok({"items": []})
    result["headers"]["Access-Control-Allow-Origin"] = ORIGIN
    gateway = ApiGateway(Recorder(result), KEY, cors_allow_origins=(ORIGIN, "http://x.test"))
    try:
        response = gateway.handle(_get("/recommendations?userId=u", Origin=ORIGIN))
    finally:
        gateway.close()
    assert response.status == 200
    assert [v for k, v in response.headers if k == "Access-Control-Allow-Origin"] == [ORIGIN]
    assert response.header("Vary") is None
