"""A local stand-in for an API Gateway REST API with a Lambda proxy integration (payload v1):
HTTP request -> proxy event -> unmodified handler -> proxy response -> HTTP response.

What it copies from the deployed API (terraform/modules/recommendations), because clients and
the handler rely on it:
- only the deployed routes answer (``GET /recommendations``, ``GET /related-items``,
  ``POST /rankings``: the OpenAPI document's); any other path or method, HEAD and an unknown
  method on a deployed path included, is 403 ``MISSING_AUTHENTICATION_TOKEN``: a REST API
  answers a method it has no integration for that way
  (https://repost.aws/knowledge-center/api-gateway-authentication-token-errors), before
  looking at the key;
- the API key is required in ``x-api-key``: missing or wrong is 403 ``INVALID_API_KEY``
  (``Forbidden``);
- ``queryStringParameters`` / ``multiValueQueryStringParameters`` / ``pathParameters`` /
  ``body`` are ``null`` when absent; single-value maps keep the last value;
- a handler error or a malformed proxy response is 502 ``Internal server error`` (API
  Gateway logs "Execution failed due to configuration error": ``API_CONFIGURATION_ERROR``),
  an integration slower than 29 s is 504 ``INTEGRATION_TIMEOUT``.

Every such answer has the body the deployment's gateway responses give it (DEFAULT_4XX /
DEFAULT_5XX templates: ``{"error": {"code": "$context.error.responseType", "message":
"$context.error.message"}}``), with API Gateway's ``x-amzn-ErrorType`` header; the response
types are those of
https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html.
With ``cors_allow_origins`` (the root's ``api.cors_allow_origins``), those errors carry the
CORS headers the Terraform module's gateway responses add (``gateway_cors_headers``): they
never reach the function, which adds its own to every answer it gives.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

INTEGRATION_TIMEOUT_S = 29.0
ROUTE = ("GET", "/recommendations")
# What the Terraform root deploys with every capability configured (api/openapi.yaml).
ROUTES: frozenset[tuple[str, str]] = frozenset(
    {ROUTE, ("GET", "/related-items"), ("POST", "/rankings")}
)

Invoke = Callable[[dict[str, Any], str], Any]


@dataclass
class HttpRequest:
    method: str
    target: str  # path and query string as sent
    headers: Sequence[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # Answered by the gateway itself, not by the integration (a gateway response).
    from_gateway: bool = False

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class GatewayError:
    """One of API Gateway's own answers: status, gateway response type, message, and the
    ``x-amzn-ErrorType`` it sends."""

    status: int
    response_type: str
    message: str
    error_type: str


MISSING_AUTHENTICATION_TOKEN = GatewayError(
    403,
    "MISSING_AUTHENTICATION_TOKEN",
    "Missing Authentication Token",
    "MissingAuthenticationTokenException",
)
INVALID_API_KEY = GatewayError(403, "INVALID_API_KEY", "Forbidden", "ForbiddenException")
BAD_INTEGRATION_RESPONSE = GatewayError(
    502, "API_CONFIGURATION_ERROR", "Internal server error", "InternalServerErrorException"
)
INTEGRATION_TIMEOUT = GatewayError(
    504, "INTEGRATION_TIMEOUT", "Endpoint request timed out", "IntegrationTimeoutException"
)


def gateway_error_body(error: GatewayError) -> dict[str, Any]:
    """What the deployment's gateway-response template makes of it (the API's error shape)."""
    return {"error": {"code": error.response_type, "message": error.message}}


def _gateway_error(error: GatewayError, request_id: str) -> HttpResponse:
    return HttpResponse(
        error.status,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error.error_type),
        ],
        json.dumps(gateway_error_body(error)).encode(),
        from_gateway=True,
    )


def gateway_cors_headers(
    allowed: Sequence[str], request_origin: str | None
) -> list[tuple[str, str]]:
    """The headers terraform/modules/recommendations puts on its gateway responses:
    ``'*'``; one origin, statically; several, the request's Origin echoed (a gateway
    response cannot choose among them). No Origin header, nothing to echo."""
    if not allowed:
        return []
    if "*" in allowed:
        return [("Access-Control-Allow-Origin", "*")]
    origin = allowed[0] if len(allowed) == 1 else request_origin
    headers = [("Vary", "Origin")]
    if origin is not None:
        headers.insert(0, ("Access-Control-Allow-Origin", origin))
    return headers


def _single_and_multi(
    pairs: Sequence[tuple[str, str]],
) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


def build_event(
    request: HttpRequest,
    *,
    request_id: str,
    api_key: str,
    stage: str,
    api_id: str,
    account: str,
    now: float,
) -> dict[str, Any]:
    """The REST API Lambda proxy (v1) event for a request on the routed resource."""
    split = urlsplit(request.target)
    resource = split.path
    headers, multi_headers = _single_and_multi(list(request.headers))
    query, multi_query = _single_and_multi(parse_qsl(split.query, keep_blank_values=True))
    body: str | None = None
    is_base64 = False
    if request.body:
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            body, is_base64 = base64.b64encode(request.body).decode("ascii"), True
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    host = lowered.get("host", "127.0.0.1")
    return {
        "resource": resource,
        "path": split.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "sandbox",
            "resourcePath": resource,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{split.path}",
            "accountId": account,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(".")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": lowered.get("user-agent"),
                "user": None,
                "apiKey": api_key,
                "apiKeyId": "sandbox-key",
            },
            "domainName": host,
            "apiId": api_id,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


def map_response(result: Any, request_id: str) -> HttpResponse:
    """Lambda proxy response -> HTTP response; anything malformed is API Gateway's 502."""
    if not isinstance(result, dict):
        return _gateway_error(BAD_INTEGRATION_RESPONSE, request_id)
    status = result.get("statusCode")
    body = result.get("body")
    headers = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if (
        not isinstance(status, int)
        or isinstance(status, bool)
        or not 100 <= status <= 599
        or not (body is None or isinstance(body, str))
        or not isinstance(headers, dict)
        or not isinstance(multi, dict)
    ):
        return _gateway_error(BAD_INTEGRATION_RESPONSE, request_id)
    raw = (body or "").encode("utf-8")
    if result.get("isBase64Encoded") and body:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _gateway_error(BAD_INTEGRATION_RESPONSE, request_id)
    out: list[tuple[str, str]] = []
    # As API Gateway: multiValueHeaders and headers are merged; headers wins for a single name.
    for key, values in multi.items():
        if key in headers:
            continue
        for value in values if isinstance(values, list) else [values]:
            out.append((str(key), str(value)))
    out.extend((str(key), str(value)) for key, value in headers.items())
    if not any(k.lower() == "content-type" for k, _ in out):
        out.append(("Content-Type", "application/json"))
    out.append(("x-amzn-RequestId", request_id))
    return HttpResponse(status, out, raw)


class ApiGateway:
    """Routing, API key check and integration, without any socket (unit-testable)."""

    def __init__(
        self,
        invoke: Invoke,
        api_key: str,
        *,
        stage: str = "sandbox",
        api_id: str = "sandbox",
        account: str = "123456789012",
        timeout_s: float = INTEGRATION_TIMEOUT_S,
        clock: Callable[[], float] = time.time,
        on_request: Callable[[HttpRequest, HttpResponse, float], None] | None = None,
        routes: frozenset[tuple[str, str]] = ROUTES,
        cors_allow_origins: Sequence[str] = (),
    ) -> None:
        self._invoke = invoke
        self._cors_allow_origins = tuple(cors_allow_origins)
        self._routes = routes
        self._api_key = api_key
        self._stage = stage
        self._api_id = api_id
        self._account = account
        self._timeout_s = timeout_s
        self._clock = clock
        self._on_request = on_request
        # Runs the integration so that a hung handler yields a 504, as API Gateway does.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="apigw-integration")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def handle(self, request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        response = self._handle(request)
        if response.from_gateway:
            origins = [v for k, v in request.headers if k.lower() == "origin"]
            response.headers.extend(
                gateway_cors_headers(self._cors_allow_origins, origins[-1] if origins else None)
            )
        if self._on_request is not None:
            self._on_request(request, response, time.monotonic() - started)
        return response

    def _handle(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        path = urlsplit(request.target).path
        if (request.method, path) not in self._routes:
            return _gateway_error(MISSING_AUTHENTICATION_TOKEN, request_id)
        sent_keys = [v for k, v in request.headers if k.lower() == "x-api-key"]
        if not sent_keys or not hmac.compare_digest(sent_keys[-1].encode(), self._api_key.encode()):
            return _gateway_error(INVALID_API_KEY, request_id)
        event = build_event(
            request,
            request_id=request_id,
            api_key=self._api_key,
            stage=self._stage,
            api_id=self._api_id,
            account=self._account,
            now=self._clock(),
        )
        future = self._pool.submit(self._invoke, event, request_id)
        try:
            result = future.result(timeout=self._timeout_s)
        except FutureTimeout:
            return _gateway_error(INTEGRATION_TIMEOUT, request_id)
        except Exception:
            return _gateway_error(BAD_INTEGRATION_RESPONSE, request_id)
        return map_response(result, request_id)


class _Handler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        request = HttpRequest(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
        )
        gateway = self.server.gateway
        if gateway is None:  # bound during start-up, not serving yet
            self.send_error(503)
            return
        response = gateway.handle(request)
        self.send_response(response.status)
        for key, value in response.headers:
            if key.lower() not in ("content-length", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> Any:
        # Any other method (TRACE, QUERY, ...) reaches the router too, which answers it 403
        # as API Gateway does, instead of http.server's HTML 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request is printed by the sandbox's own callback


class GatewayServer(ThreadingHTTPServer):
    """The HTTP listener; binding happens in the constructor, so a taken port fails at once."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, gateway: ApiGateway | None = None) -> None:
        super().__init__((host, port), _Handler)
        self.gateway = gateway
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="api-gateway",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
        self.server_close()
        if self.gateway is not None:
            self.gateway.close()
