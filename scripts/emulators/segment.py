"""Segment's HTTP Tracking API (``/v1/identify``, ``/v1/track``, ``/v1/batch``, ...) and
Profile API (``/v1/spaces/{space}/collections/users/profiles/{type}:{value}/traits``) on one
local HTTP server, with Segment's documented limits and quirks:

- write key as the basic-auth user (or ``writeKey`` in the body); a wrong key still gets
  200 ``{"success": true}`` and nothing is stored (``rejected`` counts those messages);
- 400 over 32 KB per message or 500 KB per batch, and for invalid JSON; more than 2,500
  events in a batch: 200, all dropped; duplicate ``messageId``: dropped;
- what Segment's libraries send: ``Content-Encoding: gzip`` bodies (analytics-python's
  ``gzip=True``; the limits apply to the decoded JSON), analytics.js's short routes
  (``/v1/t``, ``/v1/i``, ``/v1/p``, ``/v1/s``, ``/v1/g``, ``/v1/a``, ``/v1/b``) with a
  ``text/plain`` body and the write key in it, and CORS for browsers;
- delivery: with :meth:`SegmentEmulator.connect_kinesis`, every accepted message also goes to
  a Kinesis stream as Segment's Amazon Kinesis destination writes it (``segment_kinesis``);
- profiles merge traits per user and persist in SQLite; a computed "unique list" trait of
  purchased item ids (sorted, unique strings) follows the purchase events;
- Profile API: access token as the basic-auth user, ``include=``, ``limit`` (default 10),
  401 for a bad token, 404 ``{"error":{"code":"not_found",...}}`` for unknown profiles.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import threading
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Unpack
from urllib.parse import unquote

from emulators.cli import add_control_arguments, apply_control_arguments, serve_until_signal
from emulators.controls import Decision
from emulators.ratelimit import Charge, RateLimit, Refusal
from emulators.segment_kinesis import (
    DestinationOptions,
    KinesisDestination,
    loopback_kinesis_client,
    routed_to_kinesis,
)
from emulators.segment_store import SegmentStore
from emulators.server import INVALID_JSON, EmulatorServer, Request, Response, Routed

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

MAX_MESSAGE_BYTES = 32 * 1024  # what Segment's own libraries enforce per message
# "500KB" per batch: the stricter reading (500,000 bytes), so code that passes here also
# passes at Segment whichever way they count.
MAX_BATCH_BYTES = 500_000
MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_ID = 100
MAX_TRAITS = 300
DEFAULT_PROFILE_LIMIT = 10
MAX_PROFILE_LIMIT = 200
MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")
# analytics.js posts to the first letter of the call type (and /b for its batches).
SHORT_ROUTES = {kind[0]: kind for kind in MESSAGE_TYPES} | {"b": "batch"}
# A gzip body is decoded up to one byte past the largest request accepted: enough to know it
# is too large, never a decompression bomb in memory.
MAX_DECODED_BYTES = MAX_BATCH_BYTES + 1
_CORS = {"Access-Control-Allow-Origin": "*"}
_PREFLIGHT = {
    **_CORS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, Authorization",
    "Access-Control-Max-Age": "86400",
}
ID_TYPES = ("user_id", "anonymous_id", "email")
_NOT_FOUND = {"error": {"code": "not_found", "message": "Profile was not found."}}


class SegmentEmulator(EmulatorServer):
    name = "segment"
    RATE_LIMITS: ClassVar[dict[str, RateLimit]] = {
        # Profile API: 100 requests/s per space (Segment's Unify product limits).
        "profile": RateLimit.per_second(100),
        # Tracking API: 1,000 requests/s per workspace (HTTP API docs, "Rate limits").
        "tracking": RateLimit.per_second(1000),
    }

    def __init__(
        self,
        write_key: str = "sandbox-write-key",
        profile_token: str = "sandbox-profile-token",  # noqa: S107 - local test token
        space_id: str = "spa_sandbox",
        db_path: str | Path | None = None,
        purchase_events: Iterable[str] = ("Order Completed",),
        purchased_trait: str = "purchased_products",
        item_id_property: str = "sku",
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(seed=seed, host=host, port=port, rate_limits=rate_limits)
        self.write_key = write_key
        self.profile_token = profile_token
        self.space_id = space_id
        self.purchase_events = frozenset(purchase_events)
        self.purchased_trait = purchased_trait
        self.item_id_property = item_id_property
        self.store = SegmentStore(db_path)
        self.rejected = 0
        self.dropped: Counter[str] = Counter()
        self._ingest_lock = threading.Lock()
        self._id_rng = random.Random(f"segment-message-id:{seed}")
        self.destination: KinesisDestination | None = None

    def connect_kinesis(
        self, kinesis: KinesisClient, stream_name: str, **options: Unpack[DestinationOptions]
    ) -> KinesisDestination:
        """Connect Segment's Amazon Kinesis destination: every message accepted from now on is
        also delivered to ``stream_name`` (in a background thread, stopped by :meth:`close`)."""
        destination = KinesisDestination(kinesis, stream_name, seed=self.seed, **options)
        destination.start()
        self.destination = destination
        return destination

    def close(self) -> None:
        """Stop, deliver what the destination still holds (bounded), close the database (a
        file-backed one stays on disk). Leaving a ``with`` block does this; a bare
        :meth:`stop` keeps the data readable."""
        self.stop()
        if self.destination is not None:
            self.destination.stop()
        self.store.close()

    # -- test helpers ------------------------------------------------------------------------

    def traits(self, user_id: str) -> dict[str, Any] | None:
        """Merged traits of a user's profile, with the computed purchased trait; None if none."""
        profile = self.store.resolve("user_id", str(user_id))
        return self._profile_traits(profile) if profile else None

    def set_traits(self, user_id: str, traits: dict[str, Any]) -> None:
        """Seed a profile directly (test setup). A list under the purchased trait name seeds
        the computed purchases."""
        profile = self.store.ensure_profile(str(user_id), None)
        traits = dict(traits)
        purchased = traits.pop(self.purchased_trait, None)
        if traits:
            self.store.merge_traits(profile, traits)
        if isinstance(purchased, list):
            self.store.add_purchases(profile, [str(i) for i in purchased])

    def messages(self, type: str | None = None, user_id: str | None = None) -> list[dict[str, Any]]:
        """Accepted (stored) messages in arrival order, optionally of one type / user."""
        return self.store.messages(type=type, user_id=user_id)

    def reset_stats(self) -> None:
        super().reset_stats()
        with self._ingest_lock:
            self.rejected = 0
            self.dropped.clear()

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        with self._ingest_lock:
            stats["rejected"] = self.rejected
            stats["dropped"] = dict(self.dropped)
        stats["stored"] = self.store.message_count()
        if self.destination is not None:
            stats["kinesis"] = self.destination.stats()
        return stats

    def _profile_traits(self, profile: str) -> dict[str, Any] | None:
        traits = self.store.traits(profile)
        if traits is None:
            return None
        purchased = self.store.purchases(profile)
        if purchased:
            traits[self.purchased_trait] = purchased
        return traits

    # -- request flow ------------------------------------------------------------------------

    def route(self, request: Request) -> Routed | Response:
        parts = request.path.split("/")
        if len(parts) == 3 and parts[1] == "v1":
            kind = SHORT_ROUTES.get(parts[2], parts[2])
            tracking = kind in MESSAGE_TYPES or kind in ("batch", "import")
            if tracking and request.method == "OPTIONS":
                return Response(204, b"", dict(_PREFLIGHT))
            if tracking and request.method == "POST":
                operation = "batch" if kind in ("batch", "import") else kind
                decoded = _decoded_body(request)
                if isinstance(decoded, Response):
                    return decoded
                request.body = decoded  # the limits and the parsing apply to the JSON itself
                body = request.json
                return Routed(operation=operation, user_ids=_user_ids(body), body=body)
        if request.method == "GET" and request.path.startswith("/v1/spaces/"):
            profile_id = _profile_id_from_path(parts)
            users = (profile_id[1],) if profile_id else ()
            return Routed(operation="profile", user_ids=users, body=None)
        return Response.json(404, {"error": {"code": "not_found", "message": "Not found."}})

    def fault_response(self, kind: str, decision: Decision) -> Response:
        if kind == "429":
            retry = str(decision.retry_after_s)
            return Response.json(
                429,
                {"error": {"code": "rate_limit_error", "message": "Too Many Requests"}},
                {"Retry-After": retry, "X-RateLimit-Reset": retry, **_CORS},
            )
        status = int(kind)
        return Response.json(
            status, {"error": {"code": "server_error", "message": f"emulated {status}"}}, _CORS
        )

    def charges(self, request: Request, routed: Routed) -> list[Charge]:
        if routed.operation == "profile":
            parts = request.path.split("/")
            return [Charge("profile", parts[3] if len(parts) > 3 else "")]
        return [Charge("tracking", "workspace")]

    def throttled_response(self, refusal: Refusal) -> Response:
        # Both headers in whole seconds; never 0, which a client would read as "now".
        retry = str(max(1, math.ceil(refusal.retry_after_s)))
        return Response.json(
            429,
            {"error": {"code": "rate_limit_error", "message": "Too Many Requests"}},
            {"Retry-After": retry, "X-RateLimit-Reset": retry, **_CORS},
        )

    def handle(self, request: Request, routed: Routed) -> Response:
        if routed.operation == "profile":
            return self._profile(request)
        response = self._tracking(request, routed)
        response.headers.update(_CORS)  # browsers (analytics.js) read the answer too
        return response

    # -- Tracking API ------------------------------------------------------------------------

    def _tracking(self, request: Request, routed: Routed) -> Response:
        is_batch = routed.operation == "batch"
        limit = MAX_BATCH_BYTES if is_batch else MAX_MESSAGE_BYTES
        if len(request.body) > limit:
            return _bad_request(f"request body over {limit} bytes")
        body = routed.body
        if body is INVALID_JSON or not isinstance(body, dict):
            return _bad_request("invalid JSON")
        if is_batch:
            batch = body.get("batch")
            if not isinstance(batch, list):
                return _bad_request("batch must be a list of messages")
            shared = {k: body[k] for k in ("context", "integrations") if k in body}
            messages = [{**shared, **m} if isinstance(m, dict) else m for m in batch]
            for message in messages:
                if isinstance(message, dict) and _size(message) > MAX_MESSAGE_BYTES:
                    return _bad_request("a message in the batch is over 32 KB")
        else:
            messages = [{**body, "type": routed.operation}]
        key = request.auth_user if request.auth_user is not None else body.get("writeKey")
        with self._ingest_lock:
            if key != self.write_key:
                # Segment's edge is stateless: a wrong key is accepted and silently discarded.
                self.rejected += len(messages)
                return _ok()
            if is_batch and len(messages) > MAX_BATCH_EVENTS:
                self.dropped["too_many_events"] += len(messages)
                return _ok()
            sent_at = body.get("sentAt")
            for message in messages:
                self._ingest(message, sent_at)
        return _ok()

    def _ingest(self, message: Any, sent_at: Any) -> None:
        """Validate and store one message; silent drops are counted by reason."""
        if not isinstance(message, dict) or message.get("type") not in MESSAGE_TYPES:
            self.dropped["invalid_type"] += 1
            return
        user_id = _id_value(message.get("userId"))
        anonymous_id = _id_value(message.get("anonymousId"))
        if user_id is None and anonymous_id is None:
            self.dropped["no_user_anon_id"] += 1
            return
        kind = message["type"]
        if kind == "track" and not message.get("event"):
            self.dropped["no_event"] += 1
            return
        traits = message.get("traits")
        if kind == "identify" and isinstance(traits, dict) and len(traits) >= MAX_TRAITS:
            self.dropped["too_many_traits"] += 1
            return
        message_id = message.get("messageId")
        if message_id is None:
            message_id = f"emu-{uuid.UUID(int=self._id_rng.getrandbits(128), version=4)}"
        message_id = str(message_id)
        if len(message_id) > MAX_MESSAGE_ID:
            self.dropped["message_id_too_long"] += 1
            return
        now = _iso_now()
        # The write key authenticates the request; it is not part of the event downstream.
        stored = {k: v for k, v in message.items() if k != "writeKey"}
        stored.update(messageId=message_id, receivedAt=now)
        if sent_at is not None and "sentAt" not in stored:
            stored["sentAt"] = sent_at
        stored.setdefault("timestamp", stored.get("originalTimestamp") or now)
        if not self.store.add_message(stored):
            self.dropped["duplicate_message_id"] += 1
            return
        profile = self.store.ensure_profile(user_id, anonymous_id)
        if kind == "identify" and isinstance(traits, dict):
            self.store.merge_traits(profile, traits)
        if kind == "track" and message.get("event") in self.purchase_events:
            items = _purchased_items(message.get("properties"), self.item_id_property)
            if items:
                self.store.add_purchases(profile, items)
        if self.destination is not None and routed_to_kinesis(stored.get("integrations")):
            self.destination.deliver(stored)

    # -- Profile API -------------------------------------------------------------------------

    def _profile(self, request: Request) -> Response:
        if request.auth_user != self.profile_token:
            return Response.json(
                401,
                {"error": {"code": "authentication_error", "message": "Unauthorized"}},
                {"WWW-Authenticate": 'Basic realm="Segment"'},
            )
        parts = request.path.split("/")
        if len(parts) != 9 or parts[3] != self.space_id:
            return Response.json(404, _NOT_FOUND)
        profile_id = _profile_id_from_path(parts)
        if profile_id is None:
            return Response.json(404, _NOT_FOUND)
        id_type, id_value = profile_id
        profile = self.store.resolve(id_type, id_value.lower() if id_type == "email" else id_value)
        traits = self._profile_traits(profile) if profile else None
        if traits is None:
            return Response.json(404, _NOT_FOUND)
        raw_limit = request.query.get("limit", str(DEFAULT_PROFILE_LIMIT))
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_PROFILE_LIMIT:
            return Response.json(
                400,
                {
                    "error": {
                        "code": "validation_error",
                        "message": f"limit must be an integer from 1 to {MAX_PROFILE_LIMIT}",
                    }
                },
            )
        include = request.query.get("include")
        keys = sorted(traits)
        if include:
            wanted = {name.strip() for name in include.split(",")}
            keys = [k for k in keys if k in wanted]
        after = request.query.get("next")
        if after:
            keys = [k for k in keys if k > after]
        page, has_more = keys[:limit], len(keys) > limit
        return Response.json(
            200,
            {
                "traits": {k: traits[k] for k in page},
                "cursor": {
                    "url": request.path,
                    "has_more": has_more,
                    "next": page[-1] if has_more else "",
                    "limit": limit,
                },
            },
            {"Request-Id": str(uuid.uuid4())},
        )

    def extra_control(self, request: Request) -> Response:
        if request.path == "/_emulator/destination":
            return self._destination_control(request)
        prefix = "/_emulator/profiles/"
        if request.path == prefix.rstrip("/") and request.method == "GET":
            return Response.json(200, {"user_ids": self.store.user_ids()})
        if request.path.startswith(prefix) and request.method == "GET":
            traits = self.traits(unquote(request.path[len(prefix) :]))
            if traits is None:
                return Response.json(404, _NOT_FOUND)
            return Response.json(200, traits)
        return super().extra_control(request)

    def _destination_control(self, request: Request) -> Response:
        """``GET``: the Kinesis destination's settings and counters; ``POST`` a JSON object
        with ``use_message_id`` and/or ``duplicate_rate`` to change them."""
        destination = self.destination
        if destination is None:
            return Response.json(404, {"error": "no Kinesis destination connected"})
        if request.method == "POST":
            payload = request.json
            if not isinstance(payload, dict) or set(payload) - {"use_message_id", "duplicate_rate"}:
                return Response.json(
                    400, {"error": "expected a JSON object of use_message_id, duplicate_rate"}
                )
            try:
                destination.configure(**payload)
            except (TypeError, ValueError) as exc:
                return Response.json(400, {"error": str(exc)})
        elif request.method != "GET":
            return Response.json(405, {"error": "GET or POST"})
        return Response.json(200, destination.stats())


def _decoded_body(request: Request) -> bytes | Response:
    """The body without its ``Content-Encoding`` (gzip, as Segment's libraries send it)."""
    encoding = (request.headers.get("Content-Encoding") or "").strip().lower()
    if encoding in ("", "identity"):
        return request.body
    if encoding not in ("gzip", "x-gzip"):
        return _bad_request(f"unsupported Content-Encoding {encoding!r}")
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        decoded = decompressor.decompress(request.body, MAX_DECODED_BYTES)
    except zlib.error:
        return _bad_request("invalid gzip body")
    if len(decoded) < MAX_DECODED_BYTES and not decompressor.eof:
        return _bad_request("truncated gzip body")
    return decoded


def _ok() -> Response:
    return Response.json(200, {"success": True})


def _bad_request(message: str) -> Response:
    return Response.json(400, {"success": False, "message": message})


def _size(message: dict[str, Any]) -> int:
    return len(json.dumps(message, separators=(",", ":")).encode())


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _id_value(value: Any) -> str | None:
    """Segment accepts string or numeric ids; a number is its decimal string."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        text = str(value)
        return text or None
    return None


def _user_ids(body: Any) -> tuple[str, ...]:
    if not isinstance(body, dict):
        return ()
    messages = body.get("batch") if isinstance(body.get("batch"), list) else [body]
    found: list[str] = []
    for message in messages or []:
        if isinstance(message, dict):
            user = _id_value(message.get("userId"))
            if user is not None and user not in found:
                found.append(user)
    return tuple(found)


def _profile_id_from_path(parts: list[str]) -> tuple[str, str] | None:
    """``['', 'v1', 'spaces', S, 'collections', 'users', 'profiles', ID, 'traits']`` ->
    (id type, decoded value). The id part is split from the raw path before decoding, so an
    encoded ``/`` (``%2F``) stays inside the value."""
    if (
        len(parts) != 9
        or parts[4] != "collections"
        or parts[5] != "users"
        or parts[6] != "profiles"
        or parts[8] != "traits"
    ):
        return None
    id_type, colon, value = unquote(parts[7]).partition(":")
    if not colon or id_type not in ID_TYPES or not value:
        return None
    return id_type, value


def _purchased_items(properties: Any, item_id_property: str) -> list[str]:
    """Item ids in ``products[].<prop>`` and flat ``properties.<prop>``, as strings."""
    if not isinstance(properties, dict):
        return []
    found: list[str] = []
    products = properties.get("products")
    candidates = [p for p in products if isinstance(p, dict)] if isinstance(products, list) else []
    candidates.append(properties)
    for candidate in candidates:
        value = _id_value(candidate.get(item_id_property))
        if value is not None:
            found.append(value)
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.segment",
        description=(
            "Local Segment Tracking API + Profile API emulator. Prints 'ready <url>' when "
            "listening (SEGMENT_API_URL and SEGMENT_PROFILE_API_URL are <url>/v1); stops on "
            "SIGTERM/SIGINT. Control at runtime: POST /_emulator/controls, GET "
            "/_emulator/stats, POST /_emulator/reset, GET /_emulator/profiles[/<userId>], "
            "GET/POST /_emulator/destination."
        ),
    )
    parser.add_argument("--write-key", default="sandbox-write-key", help="accepted write key")
    parser.add_argument(
        "--profile-token", default="sandbox-profile-token", help="Profile API access token"
    )
    parser.add_argument("--space-id", default="spa_sandbox", help="Profile API space id")
    parser.add_argument("--db", type=Path, help="SQLite file (default: in memory)")
    parser.add_argument(
        "--purchase-events",
        default="Order Completed",
        help="comma-separated track events that feed the purchased trait",
    )
    parser.add_argument(
        "--purchased-trait", default="purchased_products", help="computed trait name"
    )
    parser.add_argument(
        "--item-id-property", default="sku", help="product field holding the item id"
    )
    kinesis = parser.add_argument_group(
        "Amazon Kinesis destination (off unless --kinesis-stream is given)"
    )
    kinesis.add_argument("--kinesis-stream", help="deliver every accepted message to this stream")
    kinesis.add_argument(
        "--kinesis-endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL_KINESIS") or os.environ.get("AWS_ENDPOINT_URL"),
        help="a local AWS emulator on 127.0.0.1, e.g. moto's server "
        "(default: AWS_ENDPOINT_URL_KINESIS, then AWS_ENDPOINT_URL)",
    )
    kinesis.add_argument(
        "--kinesis-region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help="the stream's region (default: AWS_REGION, then us-east-1)",
    )
    kinesis.add_argument(
        "--use-message-id",
        action="store_true",
        help="partition key messageId instead of userId || anonymousId (the destination's "
        "useMessageId option)",
    )
    kinesis.add_argument(
        "--duplicate-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="probability 0..1 that a delivered record is delivered again (at least once)",
    )
    add_control_arguments(parser, SegmentEmulator.RATE_LIMITS)
    args = parser.parse_args(argv)
    if args.kinesis_stream and not args.kinesis_endpoint_url:
        parser.error("--kinesis-stream needs --kinesis-endpoint-url (or AWS_ENDPOINT_URL_KINESIS)")
    if not 0.0 <= args.duplicate_rate <= 1.0:
        parser.error("--duplicate-rate must be from 0 to 1")
    emulator = SegmentEmulator(
        write_key=args.write_key,
        profile_token=args.profile_token,
        space_id=args.space_id,
        db_path=args.db,
        purchase_events=[e.strip() for e in args.purchase_events.split(",") if e.strip()],
        purchased_trait=args.purchased_trait,
        item_id_property=args.item_id_property,
        seed=args.seed,
        host=args.host,
        port=args.port,
    )
    apply_control_arguments(emulator, args)
    if args.kinesis_stream:
        try:
            client = loopback_kinesis_client(args.kinesis_endpoint_url, args.kinesis_region)
        except ValueError as exc:
            parser.error(str(exc))
        emulator.connect_kinesis(
            client,
            args.kinesis_stream,
            use_message_id=args.use_message_id,
            duplicate_rate=args.duplicate_rate,
        )

    def details() -> dict[str, Any]:
        return {
            "tracking_api_url": f"{emulator.url}/v1",
            "profile_api_url": f"{emulator.url}/v1",
            "space_id": emulator.space_id,
            "kinesis_stream": args.kinesis_stream,
        }

    return serve_until_signal(emulator, details)


if __name__ == "__main__":
    raise SystemExit(main())
