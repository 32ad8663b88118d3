"""The HTTP plumbing every emulator shares: a background ThreadingHTTPServer with a clean stop,
latency and fault injection from :class:`Controls`, counters, a request log and the
``/_emulator/*`` control endpoints. Each emulator subclasses :class:`EmulatorServer` and only
says how to name a request (operation, user ids) and how to answer it."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import struct
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

from emulators.controls import Controls, Decision, RequestRecord
from emulators.ratelimit import Charge, RateLimit, RateLimiter, Refusal, peak_in_window

# An idle keep-alive connection is closed after this long (stop() closes them at once).
SOCKET_TIMEOUT_S = 30.0
MAX_BODY_BYTES = 16 * 1024 * 1024
INVALID_JSON: Any = object()


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    body: bytes
    auth_user: str | None
    auth_password: str | None

    @property
    def json(self) -> Any:
        """The body parsed as JSON; ``INVALID_JSON`` if it is not; ``None`` if empty."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return INVALID_JSON


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
        all_headers = {"Content-Type": "application/json"}
        all_headers.update(headers or {})
        return cls(status, json.dumps(payload).encode(), all_headers)


@dataclass
class Routed:
    """What an emulator learnt about a request before deciding faults."""

    operation: str
    user_ids: tuple[str, ...] = ()
    body: Any = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    emulator: EmulatorServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    # Headers and body go out in separate writes; with Nagle on, each response would wait
    # for the client's delayed ACK (~40 ms) and swamp every latency we measure.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.emulator._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.emulator._track_connection(self.connection, add=False)

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:  # CORS preflight (browsers)
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.emulator.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise ValueError("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        split = urlsplit(self.path)
        try:
            body = self._read_body()
        except ValueError:
            self._send(Response.json(413, {"message": "request body too large"}))
            self.close_connection = True
            return
        user, password = _basic_auth(self.headers.get("Authorization"))
        request = Request(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=self.headers,
            body=body,
            auth_user=user,
            auth_password=password,
        )
        if split.path.startswith("/_emulator/"):
            self._send(emulator._control(request))
            return
        emulator._serve(request, self)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    def _reset(self) -> None:
        """Drop the TCP connection without an answer (RST, not a polite FIN)."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, _, password = decoded.partition(":")
    return user, password


class EmulatorServer:
    """Base class: lifecycle, controls, counters, request log. Subclasses implement
    :meth:`route`, :meth:`handle` and :meth:`fault_response`."""

    name: ClassVar[str] = "emulator"
    # The real service's limits, on by default: name -> limit (see :meth:`charges`).
    RATE_LIMITS: ClassVar[dict[str, RateLimit]] = {}

    def __init__(
        self,
        *,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: Mapping[str, Any] | None = None,
    ) -> None:
        self.seed = seed
        self.host = host
        self.port = port
        self.verbose = False
        self.controls = Controls(seed)
        self.rate_limits = RateLimiter(self.RATE_LIMITS)
        if rate_limits:
            self.rate_limits.configure(rate_limits)
        self.counters: Counter[str] = Counter()
        self.requests: list[RequestRecord] = []
        self._stats_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server((self.host, self.port), _Handler)
        httpd.emulator = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping for latency or a slow fault
        httpd.shutdown()
        httpd.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def close(self) -> None:
        """What leaving a ``with`` block does: :meth:`stop` (a subclass releases more)."""
        self.stop()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    # -- stats -------------------------------------------------------------------------------

    def request_log(self) -> list[RequestRecord]:
        """A copy of the request log, safe to iterate while requests keep arriving."""
        with self._stats_lock:
            return list(self.requests)

    def reset_stats(self) -> None:
        """Clear counters and the request log (not the emulated data)."""
        with self._stats_lock:
            self.counters.clear()
            self.requests.clear()

    def stats(self) -> dict[str, Any]:
        with self._stats_lock:
            counters = dict(self.counters)
            times: dict[str, list[float]] = defaultdict(list)
            for record in self.requests:
                times[record.operation].append(record.time)
        return {
            "counters": counters,
            "requests": sum(len(t) for t in times.values()),
            "rates": {op: _rate(t) for op, t in sorted(times.items())},
        }

    def _record(self, record: RequestRecord) -> None:
        with self._stats_lock:
            self.requests.append(record)

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.counters[key] += 1

    def _track_connection(self, connection: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    # -- request flow ------------------------------------------------------------------------

    def route(self, request: Request) -> Routed | Response:
        """Name the operation and the users a request is about, or answer at once (404...)."""
        raise NotImplementedError

    def handle(self, request: Request, routed: Routed) -> Response:
        raise NotImplementedError

    def fault_response(self, kind: str, decision: Decision) -> Response:
        raise NotImplementedError

    def charges(self, request: Request, routed: Routed) -> list[Charge]:
        """What the request costs against :attr:`RATE_LIMITS` (none by default)."""
        return []

    def throttled_response(self, refusal: Refusal) -> Response:
        """The real service's answer to a request over its rate limit."""
        raise NotImplementedError

    def _serve(self, request: Request, handler: _Handler) -> None:
        started = time.monotonic()
        routed = self.route(request)
        if isinstance(routed, Response):
            self._finish(request, None, routed, None, started)
            handler._send(routed)
            return
        self._count(routed.operation)
        # Admission happens on arrival, as at the real edge; the answer still takes the latency.
        refusal = self.rate_limits.admit(self.charges(request, routed))
        decision = self.controls.decide(routed.operation, routed.user_ids)
        if decision.delay_s > 0 and self._stopping.wait(decision.delay_s):
            handler._reset()
            return
        if refusal is not None:
            self._count(f"throttled:{refusal.limit}")
            response = self.throttled_response(refusal)
            self._finish(request, routed, response, f"rate_limit:{refusal.limit}", started)
            handler._send(response)
            return
        if decision.fault is not None:
            self._count(f"fault:{decision.fault}")
        if decision.fault == "reset":
            self._finish(request, routed, None, "reset", started)
            handler._reset()
            return
        if decision.fault in ("429", "500", "503"):
            response = self.fault_response(decision.fault, decision)
        else:
            try:
                response = self.handle(request, routed)
            except Exception as exc:  # an emulator bug must still answer, visibly
                response = Response.json(500, {"message": f"emulator error: {exc!r}"})
        self._finish(request, routed, response, decision.fault, started)
        try:
            handler._send(response)
        except OSError:
            handler.close_connection = True

    def _finish(
        self,
        request: Request,
        routed: Routed | None,
        response: Response | None,
        fault: str | None,
        started: float,
    ) -> None:
        user_ids = routed.user_ids if routed else ()
        self._record(
            RequestRecord(
                time=started,
                operation=routed.operation if routed else "unknown",
                method=request.method,
                path=request.path,
                query=request.query,
                user_id=user_ids[0] if user_ids else None,
                body=routed.body if routed else None,
                status=response.status if response else 0,
                fault=fault,
                auth=request.auth_user,
                user_ids=user_ids,
            )
        )

    # -- /_emulator/* ------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        path = request.path
        if path == "/_emulator/controls" and request.method == "POST":
            payload = request.json
            if not isinstance(payload, dict):
                return Response.json(400, {"error": "expected a JSON object of controls"})
            payload = dict(payload)
            limits = payload.pop("rate_limits", None)
            try:
                if limits is not None:
                    if not isinstance(limits, dict):
                        raise ValueError("rate_limits must be an object of name -> limit")
                    self.rate_limits.configure(limits)
                self.controls.set(**payload)
            except (TypeError, ValueError, KeyError) as exc:
                return Response.json(400, {"error": str(exc)})
            return Response.json(200, self.controls_snapshot())
        if path == "/_emulator/controls" and request.method == "GET":
            return Response.json(200, self.controls_snapshot())
        if path == "/_emulator/stats" and request.method == "GET":
            return Response.json(200, self.stats())
        if path == "/_emulator/reset" and request.method == "POST":
            self.controls.reset()
            self.rate_limits.reset()
            self.reset_stats()
            return Response.json(200, {"reset": True})
        return self.extra_control(request)

    def controls_snapshot(self) -> dict[str, Any]:
        return {**self.controls.snapshot(), "rate_limits": self.rate_limits.snapshot()}

    def extra_control(self, request: Request) -> Response:
        return Response.json(404, {"error": f"no control endpoint {request.path}"})


def _rate(times: list[float]) -> dict[str, float]:
    """Requests of one operation: count, the most in any sliding second, and the mean rate."""
    span = max(times) - min(times) if len(times) > 1 else 0.0
    return {
        "requests": len(times),
        "peak_per_second": peak_in_window(times),
        "mean_per_second": round(len(times) / span, 3) if span >= 1.0 else float(len(times)),
    }
