"""The sandbox's local API gateway: API Gateway's routing and key check, the REST proxy (v1)
event, and the mapping of proxy responses (no sockets)."""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

import pytest

from sandbox.gateway import ApiGateway, HttpRequest, build_event, map_response

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
    ],
)
def test_unrouted_requests_get_missing_authentication_token(method: str, target: str) -> None:
    invoke = Recorder()
    gateway = ApiGateway(invoke, KEY)
    response = gateway.handle(HttpRequest(method, target, [("x-api-key", KEY)]))
    assert response.status == 403
    assert json.loads(response.body) == {"message": "Missing Authentication Token"}
    assert invoke.calls == []


@pytest.mark.parametrize("key", [None, "", "wrong-key-of-enough-length", KEY + "x"])
def test_a_missing_or_wrong_api_key_is_forbidden(key: str | None) -> None:
    invoke = Recorder()
    response = ApiGateway(invoke, KEY).handle(_get("/recommendations?userId=u1", key=key))
    assert response.status == 403
    assert json.loads(response.body) == {"message": "Forbidden"}
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
    assert json.loads(response.body) == {"message": "Internal server error"}


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
    assert json.loads(response.body) == {"message": "Endpoint request timed out"}


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
