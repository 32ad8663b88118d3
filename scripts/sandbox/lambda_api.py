"""The Lambda Invoke API (``POST /2015-03-31/functions/{name}/invocations``) for the sandbox's
functions, so that an operator tool (``scripts/bundle backfill start --sandbox``) calls a
sandbox function exactly as it calls a deployed one: boto3's ``lambda`` client ``invoke``
with the sandbox's endpoint. RequestResponse only; a handler exception answers 200 with
``X-Amz-Function-Error: Unhandled`` and Lambda's error payload, as the service does."""

from __future__ import annotations

import json
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

PATH_PREFIX = "/2015-03-31/functions/"
MAX_PAYLOAD = 6 * 1024 * 1024  # Lambda's synchronous payload limit

Invoke = Callable[[Any, str], Any]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    functions: Mapping[str, Invoke]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if not (path.startswith(PATH_PREFIX) and path.endswith("/invocations")):
            self._error(404, "UnknownOperationException", f"no operation at POST {path}")
            return
        name = unquote(path[len(PATH_PREFIX) : -len("/invocations")])
        name = name.rsplit(":", 1)[-1] if name.startswith("arn:") else name
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_PAYLOAD:
            self._error(413, "RequestTooLargeException", "the payload exceeds 6 MB")
            return
        raw = self.rfile.read(length) if length else b""
        invoke = self.server.functions.get(name)
        if invoke is None:
            self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
            return
        kind = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if kind != "RequestResponse":
            self._error(400, "InvalidParameterValueException", "the sandbox runs RequestResponse")
            return
        try:
            event = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "InvalidRequestContentException", "Could not parse request body")
            return
        request_id = str(uuid.uuid4())
        headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": request_id}
        try:
            result = invoke(event, request_id)
            body = json.dumps(result).encode()
        except Exception as exc:  # as Lambda reports an unhandled error
            headers["X-Amz-Function-Error"] = "Unhandled"
            body = json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
                }
            ).encode()
        self._send(200, body, headers)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(
            status,
            json.dumps({"Type": "User", "message": message}).encode(),
            {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
        )

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LambdaApi:
    """Serves ``functions`` (name -> invoke(event, request_id)) on host:port (0: any free)."""

    def __init__(self, host: str, port: int, functions: Mapping[str, Invoke]) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.functions = dict(functions)
        self.url = f"http://{host}:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
