"""Calls per batch and wall time of the traits sync, against the local emulators.

    PYTHONPATH=scripts:functions .venv/bin/python scripts/bench/traits.py [--records 500]
        [--users 100] [--workers 8] [--quick]

One Kinesis batch (500 track records from 100 users by default, one order in ten) goes
through:
- the handler (``functions/update_traits/app.py``, unmodified): PutEvents per session,
  one Profile API read and one GetRecommendations per user on the worker pool, one
  ``/v1/batch`` request for all identifies;
- a straightforward per-record sequential flow, written here only as the baseline: for each
  record PutEvents, GetRecommendations, a Profile API read and ``POST /v1/identify``, with
  the same pooled clients.

Emulated latencies: Personalize 20 ms, Profile API 30 ms, Segment tracking 40 ms. The
emulators' controls take one latency per server, so the Profile API and the Tracking API
run on two SegmentEmulator instances sharing one SQLite file. SSM (the secrets) and SQS
(the dead-letter queue) come from moto's server. Each flow gets fresh emulators and one
warm-up invocation (client creation, secret fetch) before the measured batch.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.util
import json
import logging
import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
for extra in (FUNCTIONS, FUNCTIONS / "update_traits", ROOT / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from emulators import data  # noqa: E402 - after the path setup above
from emulators.personalize import PersonalizeEmulator  # noqa: E402
from emulators.segment import SegmentEmulator  # noqa: E402

PERSONALIZE_MS = 20.0
PROFILE_MS = 30.0
TRACKING_MS = 40.0
NUM_RESULTS = 25
REGION = "us-east-1"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/segment-personalize-events"


@dataclass
class Stack:
    personalize: PersonalizeEmulator
    profile: SegmentEmulator
    tracking: SegmentEmulator

    def calls(self) -> dict[str, int]:
        p, pr, t = self.personalize.counters, self.profile.counters, self.tracking.counters
        tracking = sum(t[k] for k in ("batch", "identify", "track", "page"))
        counts = {
            "PutEvents": p["PutEvents"],
            "GetRecommendations": p["GetRecommendations"],
            "Profile API": pr["profile"],
            "Segment tracking": tracking,
        }
        counts["total"] = sum(counts.values())
        return counts

    def reset_stats(self) -> None:
        for emulator in (self.personalize, self.profile, self.tracking):
            emulator.reset_stats()


@contextlib.contextmanager
def stack(sample: tuple[Any, Any, Any]) -> Iterator[Stack]:
    catalogue, _, rows = sample
    with tempfile.TemporaryDirectory(prefix="traits-bench-") as folder:
        db = Path(folder) / "segment.sqlite"
        personalize = PersonalizeEmulator(interactions=rows, items=catalogue, seed=0)
        profile = SegmentEmulator(db_path=db, seed=0)
        tracking = SegmentEmulator(db_path=db, seed=0)
        personalize.controls.set(latency_ms=PERSONALIZE_MS)
        profile.controls.set(latency_ms=PROFILE_MS)
        tracking.controls.set(latency_ms=TRACKING_MS)
        with personalize, profile, tracking:
            try:
                yield Stack(personalize, profile, tracking)
            finally:
                profile.store.close()
                tracking.store.close()


@contextlib.contextmanager
def aws_emulator() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        yield f"http://127.0.0.1:{moto.get_host_and_port()[1]}"
    finally:
        moto.stop()


# -- the batch ------------------------------------------------------------------------------


def messages(n_records: int, n_users: int, catalogue: Sequence[dict[str, Any]]) -> list[Any]:
    """Track records in time order, round robin over users; every tenth an order."""
    out = []
    start = data.STREAM_START
    for i in range(n_records):
        user = f"user-{i % n_users + 1:04d}"
        product = catalogue[(i * 7919) % len(catalogue)]
        stamp = (start.timestamp() + i * 3) * 1000
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp / 1000))
        ordered = i % 10 == 9
        properties: dict[str, Any] = (
            {"order_id": f"O-{i}", "products": [{"sku": product["sku"], "quantity": 1}]}
            if ordered
            else {"sku": product["sku"], "product_id": product["product_id"]}
        )
        out.append(
            {
                "type": "track",
                "event": "Order Completed" if ordered else "Product Viewed",
                "messageId": f"api-{uuid.UUID(int=(n_users << 32) + i)}",
                "userId": user,
                "anonymousId": f"anon-{user}",
                "timestamp": f"{moment}.000Z",
                "properties": properties,
                "context": {"library": {"name": "analytics-python", "version": "2.3.2"}},
                "integrations": {},
                "version": 2,
            }
        )
    return out


def kinesis_event(batch: Sequence[dict[str, Any]], offset: int = 0) -> dict[str, Any]:
    records = []
    for n, message in enumerate(batch, start=offset):
        sequence = f"4959033827149025660855969253836157109592157598915{n:07d}"
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": message["userId"],
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(json.dumps(message).encode()).decode(),
                    "approximateArrivalTimestamp": 1711929600.0 + n / 100,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/update-traits",
                "awsRegion": REGION,
                "eventSourceARN": STREAM_ARN,
            }
        )
    return {"Records": records}


class Context:
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


# -- our handler ----------------------------------------------------------------------------


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "update_traits_app", FUNCTIONS / "update_traits" / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configure(moto_url: str, s: Stack, workers: int) -> None:
    import boto3

    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_ENDPOINT_URL_SSM": moto_url,
            "AWS_ENDPOINT_URL_SQS": moto_url,
            "AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME": s.personalize.url,
            "AWS_ENDPOINT_URL_PERSONALIZE_EVENTS": s.personalize.url,
        }
    )
    prefix = f"/bench/{uuid.uuid4().hex}"
    ssm = boto3.client("ssm", endpoint_url=moto_url, region_name=REGION)
    ssm.put_parameter(Name=f"{prefix}/write-key", Value=s.tracking.write_key, Type="SecureString")
    ssm.put_parameter(
        Name=f"{prefix}/profile-token", Value=s.profile.profile_token, Type="SecureString"
    )
    sqs = boto3.client("sqs", endpoint_url=moto_url, region_name=REGION)
    queue = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    os.environ.update(
        {
            "PERSONALIZE_CAMPAIGN_ARN": s.personalize.campaign_arn,
            "PERSONALIZE_TRACKING_ID": s.personalize.tracking_id,
            "NUM_RESULTS": str(NUM_RESULTS),
            "SEGMENT_WRITE_KEY_PARAMETER": f"{prefix}/write-key",
            "SEGMENT_PROFILE_TOKEN_PARAMETER": f"{prefix}/profile-token",
            "SEGMENT_SPACE_ID": s.profile.space_id,
            "SEGMENT_API_URL": f"{s.tracking.url}/v1",
            "SEGMENT_PROFILE_API_URL": f"{s.profile.url}/v1",
            "DEAD_LETTER_QUEUE_URL": queue,
            "WORKER_THREADS": str(workers),
            "LOG_LEVEL": "ERROR",
        }
    )


def run_handler(
    sample: Any, moto_url: str, batch: list[Any], warmup: list[Any], workers: int
) -> tuple[float, dict[str, int], int]:
    from traits_sync import runtime

    with stack(sample) as s:
        runtime.reset()
        configure(moto_url, s, workers)
        app = load_app()
        # The handler's JSON logs and EMF lines would drown the table.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            app.lambda_handler(kinesis_event(warmup, offset=len(batch)), Context())
            s.reset_stats()
            started = time.perf_counter()
            result = app.lambda_handler(kinesis_event(batch), Context())
            elapsed = time.perf_counter() - started
        runtime.reset()
        return elapsed, s.calls(), len(result["batchItemFailures"])


# -- the baseline: one record at a time -----------------------------------------------------


def run_baseline(sample: Any, batch: list[Any], warmup: list[Any]) -> tuple[float, dict[str, int]]:
    """What a handler that treats each record on its own does: four round trips each."""
    import boto3
    import requests
    from botocore.config import Config

    with stack(sample) as s:
        config = Config(region_name=REGION, retries={"mode": "standard", "max_attempts": 3})
        creds = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench"}
        events = boto3.client(
            "personalize-events", endpoint_url=s.personalize.url, config=config, **creds
        )
        recs = boto3.client(
            "personalize-runtime", endpoint_url=s.personalize.url, config=config, **creds
        )
        http = requests.Session()

        def one(record: dict[str, Any]) -> None:
            message = json.loads(base64.b64decode(record["kinesis"]["data"]))
            props = message["properties"]
            skus = [p["sku"] for p in props.get("products", [])] or [props["sku"]]
            sent_at = message["timestamp"]
            events.put_events(
                trackingId=s.personalize.tracking_id,
                userId=message["userId"],
                sessionId=message["anonymousId"],
                eventList=[
                    {
                        "eventId": f"{message['messageId']}-{n}",
                        "eventType": message["event"],
                        "itemId": sku,
                        "sentAt": sent_at,
                    }
                    for n, sku in enumerate(skus)
                ],
            )
            response = recs.get_recommendations(
                campaignArn=s.personalize.campaign_arn,
                userId=message["userId"],
                numResults=NUM_RESULTS + 10,
            )
            profile = http.get(
                f"{s.profile.url}/v1/spaces/{s.profile.space_id}/collections/users/profiles/"
                f"user_id:{message['userId']}/traits",
                params={"include": "purchased_products"},
                auth=(s.profile.profile_token, ""),
                timeout=5,
            )
            purchased: set[str] = set()
            if profile.status_code == 200:
                purchased = set(profile.json()["traits"].get("purchased_products") or [])
            items = [i["itemId"] for i in response["itemList"] if i["itemId"] not in purchased]
            http.post(
                f"{s.tracking.url}/v1/identify",
                json={
                    "userId": message["userId"],
                    "traits": {"recommended_products": items[:NUM_RESULTS]},
                    "messageId": str(uuid.uuid4()),
                },
                auth=(s.tracking.write_key, ""),
                timeout=5,
            ).raise_for_status()

        for record in kinesis_event(warmup, offset=len(batch))["Records"]:
            one(record)
        s.reset_stats()
        started = time.perf_counter()
        for record in kinesis_event(batch)["Records"]:
            one(record)
        elapsed = time.perf_counter() - started
        return elapsed, s.calls()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8, help="WORKER_THREADS of the handler")
    parser.add_argument("--quick", action="store_true", help="100 records from 20 users")
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.users = 100, 20
    if not 1 <= args.users <= args.records:
        parser.error("need 1 <= users <= records")

    catalogue = data.catalogue(0)
    users = data.users(0)
    sample = (catalogue, users, data.interactions(0, catalogue, users))
    batch = messages(args.records, args.users, catalogue)
    warmup = [dict(m, userId="user-0200", anonymousId="anon-warmup") for m in batch[:1]]
    warmup[0]["messageId"] = "api-warmup"

    print(
        f"traits sync: {args.records} records from {args.users} users; emulated latency "
        f"Personalize {PERSONALIZE_MS:.0f} ms, Profile API {PROFILE_MS:.0f} ms, "
        f"Segment tracking {TRACKING_MS:.0f} ms; handler WORKER_THREADS={args.workers}",
        flush=True,
    )
    with aws_emulator() as moto_url:
        ours, our_calls, failed = run_handler(sample, moto_url, batch, warmup, args.workers)
    if failed:
        print(f"warning: the handler reported {failed} records for retry", file=sys.stderr)
    theirs, their_calls = run_baseline(sample, batch, warmup)

    columns = ["PutEvents", "GetRecommendations", "Profile API", "Segment tracking", "total"]
    header = f"{'flow':<28}" + "".join(f"{c:>20}" for c in columns) + f"{'wall s':>10}"
    print(header)
    print("-" * len(header))
    for name, calls, seconds in (
        ("handler (batch)", our_calls, ours),
        ("per-record sequential", their_calls, theirs),
    ):
        print(f"{name:<28}" + "".join(f"{calls[c]:>20}" for c in columns) + f"{seconds:>10.2f}")
    ratio_calls = their_calls["total"] / max(1, our_calls["total"])
    print(
        f"{'ratio (sequential / ours)':<28}"
        + " " * 20 * (len(columns) - 1)
        + f"{ratio_calls:>19.1f}x"
        + f"{theirs / ours:>9.1f}x"
    )
    per_user = math.ceil(args.records / args.users / 10)
    print(
        f"expected handler calls: PutEvents {args.users * per_user} (one session per user), "
        f"GetRecommendations {args.users}, Profile API {args.users}, "
        f"Segment /v1/batch {math.ceil(args.users / 2500)} or more (475 KB per request)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
