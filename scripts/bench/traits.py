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

Store mode is the handler with the user-state store (``USER_STATE_TABLE``, a table in moto's
DynamoDB): a first batch (every user unknown: seeded from the Profile API beside the
refresh) and a second batch of the same users, with ``MIN_REFRESH_INTERVAL_S`` 0
(every user refreshed again, the Profile API not read) and 30 (only the buyers refreshed,
the rest deferred to the refresh queue). The DynamoDB and SQS requests are counted on the
handler's own boto3 clients (a ``before-send`` hook: one count per HTTP request, retries
included).

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
import heapq
import io
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
for extra in (FUNCTIONS, FUNCTIONS / "update_traits", ROOT / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from devkit.aws import (  # noqa: E402 - after the path setup
    apply_env,
    fake_aws_env,
    local_client,
    moto_server,
    traits_resources,
)
from devkit.context import LambdaContext  # noqa: E402
from devkit.events import kinesis_event, kinesis_messages  # noqa: E402
from devkit.loader import load_app  # noqa: E402
from emulators import data  # noqa: E402
from emulators.personalize import PersonalizeEmulator  # noqa: E402
from emulators.segment import SegmentEmulator  # noqa: E402

PERSONALIZE_MS = 20.0
PROFILE_MS = 30.0
TRACKING_MS = 40.0
NUM_RESULTS = 25
REGION = "us-east-1"
# The handler's AWS requests counted per operation (store mode's DynamoDB and refresh queue).
COUNTED = {
    "dynamodb": ("BatchGetItem", "GetItem", "UpdateItem"),
    "sqs": ("SendMessageBatch",),
}


@dataclass
class Stack:
    personalize: PersonalizeEmulator
    profile: SegmentEmulator
    tracking: SegmentEmulator
    aws: Counter[str]

    def calls(self) -> dict[str, int]:
        p, pr, t = self.personalize.counters, self.profile.counters, self.tracking.counters
        tracking = sum(t[k] for k in ("batch", "identify", "track", "page"))
        counts = {
            "PutEvents": p["PutEvents"],
            "GetRecommendations": p["GetRecommendations"],
            "Profile API": pr["profile"],
            "Segment tracking": tracking,
        }
        counts.update({op: n for op, n in sorted(self.aws.items()) if n})
        counts["total"] = sum(counts.values())
        return counts

    def reset_stats(self) -> None:
        for emulator in (self.personalize, self.profile, self.tracking):
            emulator.reset_stats()
        self.aws.clear()


@contextlib.contextmanager
def moto_process(timeout_s: float = 60.0) -> Iterator[str]:
    """moto's server as a child process on a free 127.0.0.1 port (store mode's DynamoDB):
    in this process, moto's own CPU (milliseconds per UpdateItem, about 0.1 s per
    BatchGetItem of 100 keys) would share the interpreter lock with the handler and be
    counted as ours; out of it, its service time stands in for DynamoDB's latency."""
    from sandbox.processes import free_port, start_moto, wait_http

    with tempfile.TemporaryDirectory(prefix="traits-bench-moto-") as folder:
        port = free_port()
        child = start_moto("127.0.0.1", port, Path(folder) / "moto.log")
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/moto-api/", child, timeout_s)
            yield url
        finally:
            child.stop()


@contextlib.contextmanager
def counting_aws_requests(counter: Counter[str]) -> Iterator[None]:
    """Count the handler's DynamoDB and refresh-queue requests: every boto3 client the
    function's runtime makes (``common.aws._new_client``) gets a ``before-send`` hook,
    which botocore calls once per HTTP request, retries included."""
    from common import aws

    original = aws._new_client

    def hook(event_name: str, **kwargs: Any) -> None:
        _, service, operation = event_name.split(".", 2)  # before-send.<service>.<operation>
        if operation in COUNTED.get(service, ()):
            counter[operation] += 1

    def counted(service: str, policy: Any) -> Any:
        client = original(service, policy)
        client.meta.events.register("before-send", hook)
        return client

    aws._new_client = counted
    try:
        yield
    finally:
        aws._new_client = original


@contextlib.contextmanager
def stack(sample: tuple[Any, Any, Any], latency: bool = True) -> Iterator[Stack]:
    """Fresh emulators with the bench's latencies (or none: the CPU floor), rate limits off
    (a run that wants one turns it on)."""
    catalogue, _, rows = sample
    with tempfile.TemporaryDirectory(prefix="traits-bench-") as folder:
        db = Path(folder) / "segment.sqlite"
        personalize = PersonalizeEmulator(interactions=rows, items=catalogue, seed=0)
        profile = SegmentEmulator(db_path=db, seed=0)
        tracking = SegmentEmulator(db_path=db, seed=0)
        for emulator, ms in (
            (personalize, PERSONALIZE_MS),
            (profile, PROFILE_MS),
            (tracking, TRACKING_MS),
        ):
            emulator.rate_limits.disable()
            emulator.controls.set(latency_ms=ms if latency else 0.0)
        counter: Counter[str] = Counter()
        with personalize, profile, tracking, counting_aws_requests(counter):
            try:
                yield Stack(personalize, profile, tracking, counter)
            finally:
                profile.store.close()
                tracking.store.close()


# -- the batch ------------------------------------------------------------------------------


def messages(
    n_records: int, n_users: int, catalogue: Sequence[dict[str, Any]], batch: int = 0
) -> list[Any]:
    """Track records in time order, round robin over users; every tenth an order. Batch
    ``k`` > 0: the same users, later events (new messageIds, times and products)."""
    out = []
    start = data.STREAM_START
    for i in range(n_records):
        n = batch * n_records + i
        user = f"user-{i % n_users + 1:04d}"
        product = catalogue[(n * 7919) % len(catalogue)]
        stamp = (start.timestamp() + n * 3) * 1000
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp / 1000))
        ordered = i % 10 == 9
        properties: dict[str, Any] = (
            {"order_id": f"O-{n}", "products": [{"sku": product["sku"], "quantity": 1}]}
            if ordered
            else {"sku": product["sku"], "product_id": product["product_id"]}
        )
        out.append(
            {
                "type": "track",
                "event": "Order Completed" if ordered else "Product Viewed",
                "messageId": f"api-{uuid.UUID(int=(n_users << 32) + n)}",
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


def Context() -> LambdaContext:
    return LambdaContext(300_000, function_name="update-traits", aws_request_id="bench")


# -- our handler ----------------------------------------------------------------------------


def configure(
    moto_url: str,
    s: Stack,
    workers: int,
    mode: str = "profile",
    rps: float | None = None,
    interval: int = 0,
) -> None:
    """The handler's environment: ``mode`` filter, profile, or store (profile mode's
    settings plus a fresh user-state table and refresh queue, MIN_REFRESH_INTERVAL_S
    = ``interval``)."""
    endpoints = {
        **dict.fromkeys(("ssm", "sqs", "dynamodb"), moto_url),
        **dict.fromkeys(("personalize-runtime", "personalize-events"), s.personalize.url),
    }
    apply_env(fake_aws_env(REGION, endpoints, credential="bench"))
    made = traits_resources(
        moto_url,
        "bench",
        write_key=s.tracking.write_key,
        profile_token=s.profile.profile_token,
        user_state=mode == "store",
    )
    for name in (
        "PERSONALIZE_FILTER_ARN",
        "SEGMENT_PROFILE_API_RPS",
        "USER_STATE_TABLE",
        "REFRESH_QUEUE_URL",
        "MIN_REFRESH_INTERVAL_S",
    ):
        os.environ.pop(name, None)  # what an earlier run of another mode set
    os.environ.update(
        {
            **made.env(),
            "PERSONALIZE_CAMPAIGN_ARN": s.personalize.campaign_arn,
            "PERSONALIZE_TRACKING_ID": s.personalize.tracking_id,
            "NUM_RESULTS": str(NUM_RESULTS),
            "SEGMENT_SPACE_ID": s.profile.space_id,
            "SEGMENT_API_URL": f"{s.tracking.url}/v1",
            "SEGMENT_PROFILE_API_URL": f"{s.profile.url}/v1",
            "WORKER_THREADS": str(workers),
            "LOG_LEVEL": "INFO",  # the per-batch line's counters are read back (Run.stats)
        }
    )
    if mode == "store":
        os.environ["MIN_REFRESH_INTERVAL_S"] = str(interval)
    if mode == "filter":
        # Filter mode: Personalize excludes purchases itself, no Profile API at all.
        for name in ("SEGMENT_SPACE_ID", "SEGMENT_PROFILE_TOKEN_PARAMETER"):
            os.environ.pop(name, None)
        os.environ["PERSONALIZE_FILTER_ARN"] = s.personalize.purchase_filter_arn
    if rps is not None:
        os.environ["SEGMENT_PROFILE_API_RPS"] = f"{rps:g}"


@dataclass
class Run:
    seconds: float
    calls: dict[str, int]
    failed_records: int
    failed_users: int
    throttled: int  # answers 429 / ThrottlingException from the emulators
    stats: dict[str, int] = field(default_factory=dict)  # the handler's own counters
    # CPU time of this process during the batch: the handler, botocore and the emulators
    # in it (Personalize, Segment, moto's SSM and SQS; not store mode's DynamoDB process).
    cpu_s: float = 0.0


WARMUP_OFFSET = 1_000_000  # the warm-up record's sequence number, after every batch's


def run_handler(
    sample: Any,
    moto_url: str,
    batches: Sequence[list[Any]],
    warmup: list[Any],
    workers: int,
    *,
    mode: str = "profile",
    latency: bool = True,
    profile_limit: float | None = None,
    interval: int = 0,
) -> list[Run]:
    """Measured batches, one after another, on fresh emulators (and, in store mode, a fresh
    table): ``mode`` profile (Profile API exclusion), filter (Personalize filter) or store
    (the user-state store, MIN_REFRESH_INTERVAL_S = ``interval``); ``profile_limit``
    turns the Profile API's rate limit on at that rate and gives the handler the same share
    (SEGMENT_PROFILE_API_RPS)."""
    from traits_sync import runtime

    with stack(sample, latency=latency) as s:
        runtime.reset()
        configure(moto_url, s, workers, mode, profile_limit, interval)
        if profile_limit is not None:
            s.profile.rate_limits.configure({"profile": profile_limit})
        app = load_app("update_traits")
        # The handler's JSON logs and EMF lines would drown the table: kept aside, and the
        # per-batch line's counters read back.
        with contextlib.redirect_stdout(io.StringIO()):
            app.lambda_handler(kinesis_event(warmup, offset=WARMUP_OFFSET), Context())
        out: list[Run] = []
        offset = 0
        for batch in batches:
            s.reset_stats()
            event = kinesis_event(batch, offset=offset)
            offset += len(batch)
            log = io.StringIO()
            with contextlib.redirect_stdout(log):
                started, cpu = time.perf_counter(), time.process_time()
                result = app.lambda_handler(event, Context())
                elapsed = time.perf_counter() - started
                cpu = time.process_time() - cpu
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            failed_users = {
                message["userId"]
                for record, message in zip(event["Records"], kinesis_messages(event), strict=True)
                if record["kinesis"]["sequenceNumber"] in failed
            }
            throttled = sum(
                v
                for e in (s.personalize, s.profile, s.tracking)
                for k, v in e.counters.items()
                if k.startswith("throttled:") or k == "fault:429"
            )
            out.append(
                Run(
                    elapsed,
                    s.calls(),
                    len(failed),
                    len(failed_users),
                    throttled,
                    batch_counters(log.getvalue()),
                    cpu,
                )
            )
        runtime.reset()
        return out


def batch_counters(log: str) -> dict[str, int]:
    """The counters of the handler's "batch processed" line (its EMF metrics, by name)."""
    counts: Counter[str] = Counter()
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("message") == "batch processed":
            counts.update(
                {k: v for k, v in entry.items() if isinstance(v, int) and not isinstance(v, bool)}
            )
    return dict(counts)


# -- the baseline: one record at a time -----------------------------------------------------


def run_baseline(
    sample: Any, batch: list[Any], warmup: list[Any], mode: str = "profile"
) -> tuple[float, dict[str, int]]:
    """What a handler that treats each record on its own does: four round trips each (three
    in filter mode, where Personalize's filter replaces the Profile API read)."""
    import requests
    from botocore.config import Config

    with stack(sample) as s:
        config = Config(region_name=REGION, retries={"mode": "standard", "max_attempts": 3})
        events = local_client("personalize-events", s.personalize.url, REGION, config)
        recs = local_client("personalize-runtime", s.personalize.url, REGION, config)
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
            if mode == "filter":
                response = recs.get_recommendations(
                    campaignArn=s.personalize.campaign_arn,
                    userId=message["userId"],
                    numResults=NUM_RESULTS,
                    filterArn=s.personalize.purchase_filter_arn,
                )
                items = [i["itemId"] for i in response["itemList"]]
                identify(message, items)
                return
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
            identify(message, items)

        def identify(message: dict[str, Any], items: list[str]) -> None:
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


def median_range(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 4),
        "min": round(ordered[0], 4),
        "max": round(ordered[-1], 4),
    }


def critical_path_s(users: int, workers: int, mode: str) -> float:
    """The batch's latency floor at this concurrency: users in waves of ``workers``, each
    PutEvents then GetRecommendations (the Profile read overlaps them), then /v1/batch."""
    per_user = max(PERSONALIZE_MS * 2, PROFILE_MS if mode == "profile" else 0.0)
    waves = math.ceil(users / workers)
    profile_lane = math.ceil(users / workers) * PROFILE_MS if mode == "profile" else 0.0
    return (max(waves * per_user, profile_lane) + TRACKING_MS) / 1000.0


def store_critical_path_s(
    batch: Sequence[dict[str, Any]], workers: int, *, refreshed: set[str], seeding: bool
) -> float:
    """Store mode's latency floor: the units on a pool of ``workers`` in the handler's order
    (PutEvents, then GetRecommendations for a refreshed user; a deferred one only sends its
    events), then /v1/batch. The store's calls have no emulated latency (their CPU is in
    the floor). With ``seeding``, each user's Profile read starts after their refresh on a
    pool of its own, so the last one ends beside the /v1/batch request."""
    order = list(dict.fromkeys(m["userId"] for m in batch))
    free = [0.0] * workers
    for user in order:
        start = heapq.heappop(free)
        heapq.heappush(free, start + PERSONALIZE_MS * (2 if user in refreshed else 1))
    tail = max(TRACKING_MS, PROFILE_MS if seeding else 0.0)
    return (max(free) + tail) / 1000.0


def fmt(stat: dict[str, float], unit: str = "s") -> str:
    return f"{stat['median']:.2f} {unit} ({stat['min']:.2f}-{stat['max']:.2f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8, help="WORKER_THREADS of the handler")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per row (median)")
    parser.add_argument(
        "--share", type=float, default=25.0, help="(b): the function's Profile API share, req/s"
    )
    parser.add_argument("--quick", action="store_true", help="100 records from 20 users")
    parser.add_argument(
        "--smoke", action="store_true", help="seconds: 30 records, 6 users, 1 run (make test)"
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=("filter", "profile", "store"),
        default=["filter", "profile", "store"],
        help="(a): which rows; (b) runs with profile",
    )
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.records, args.users = 100, 20
    if args.smoke:
        args.records, args.users, args.runs, args.share = 30, 6, 1, 20.0
    if not 1 <= args.users <= args.records or args.runs < 1:
        parser.error("need 1 <= users <= records and runs >= 1")

    catalogue = data.catalogue(0)
    users = data.users(0)
    sample = (catalogue, users, data.interactions(0, catalogue, users))
    batch = messages(args.records, args.users, catalogue)
    second = messages(args.records, args.users, catalogue, batch=1)
    warmup = [dict(m, userId="user-0200", anonymousId="anon-warmup") for m in batch[:1]]
    warmup[0]["messageId"] = "api-warmup"

    print(
        f"traits sync: {args.records} records from {args.users} users; emulated latency "
        f"Personalize {PERSONALIZE_MS:.0f} ms, Profile API {PROFILE_MS:.0f} ms, "
        f"Segment tracking {TRACKING_MS:.0f} ms; WORKER_THREADS={args.workers}; "
        f"medians of {args.runs} runs (min-max)",
        flush=True,
    )
    figures: dict[str, Any] = {
        "records": args.records,
        "users": args.users,
        "workers": args.workers,
        "runs": args.runs,
    }
    failures = 0
    with (
        moto_server() as moto_url,
        moto_process() if "store" in args.modes else contextlib.nullcontext("") as store_url,
    ):

        def runs(**kwargs: Any) -> list[Run]:
            return [
                run_handler(sample, moto_url, [batch], warmup, args.workers, **kwargs)[0]
                for _ in range(args.runs)
            ]

        def paired(**kwargs: Any) -> list[list[Run]]:
            """Store mode: the batch, then the same users' second batch, per run."""
            return [
                run_handler(sample, store_url, [batch, second], warmup, args.workers, **kwargs)
                for _ in range(args.runs)
            ]

        # (a) both modes, no rate limits, beside the per-record flow and the lower bound.
        print("\n(a) one batch, no rate limits")
        header = (
            f"{'mode':<9}{'handler':>24}{'calls':>7}{'floor@0ms':>24}{'critical':>10}"
            f"{'vs bound':>10}{'per-record':>12}{'calls':>7}{'speed-up':>10}"
        )
        print(header)
        print("-" * len(header))
        per_record: dict[str, float] = {}
        for mode in (m for m in ("filter", "profile") if m in args.modes):
            ours = runs(mode=mode)
            floor = runs(mode=mode, latency=False)
            theirs, their_calls = run_baseline(sample, batch, warmup, mode)
            per_record[mode] = theirs
            wall = median_range([r.seconds for r in ours])
            cpu = median_range([r.seconds for r in floor])
            critical = critical_path_s(args.users, args.workers, mode)
            bound = max(critical, cpu["median"])
            failures += sum(r.failed_records for r in ours + floor)
            row = {
                "handler_s": wall,
                "handler_calls": ours[0].calls,
                "cpu_floor_s": cpu,
                "critical_path_s": round(critical, 4),
                "lower_bound_s": round(bound, 4),
                "vs_lower_bound": round(wall["median"] / bound, 3),
                "per_record_s": round(theirs, 3),
                "per_record_calls": their_calls,
                "speed_up": round(theirs / wall["median"], 1),
                "failed_records": sum(r.failed_records for r in ours),
            }
            figures[f"a_{mode}"] = row
            print(
                f"{mode:<9}{fmt(wall):>24}{ours[0].calls['total']:>7}{fmt(cpu):>24}"
                f"{critical:>9.2f}s{row['vs_lower_bound']:>9.2f}x{theirs:>11.1f}s"
                f"{their_calls['total']:>7}{row['speed_up']:>9.1f}x",
                flush=True,
            )

        if "store" in args.modes:
            failures += store_rows(args, batch, paired, per_record.get("profile"), figures)

        # (b) the Profile API limited to the function's share: the rate bound holds.
        if "profile" in args.modes:
            failures += limited_row(args, runs, figures)

    if args.json:
        merge_json(args.json, "traits", figures)
    if failures:
        print(f"warning: {failures} records were reported for retry", file=sys.stderr)
    return 0


STORE_CALLS = (
    "PutEvents",
    "BatchGetItem",
    "UpdateItem",
    "GetRecommendations",
    "Profile API",
    "SendMessageBatch",
    "Segment tracking",
)


def store_rows(
    args: argparse.Namespace,
    batch: list[Any],
    paired: Any,
    per_record_s: float | None,
    figures: dict[str, Any],
) -> int:
    """(a) store mode: the first batch (every user seeded beside the refresh) and a second
    batch of the same users at T = 0 and T = 30 s, each beside its CPU floor and its
    critical path. Returns the records reported for retry."""
    t0, t0_floor = paired(mode="store"), paired(mode="store", latency=False)
    t30, t30_floor = (
        paired(mode="store", interval=30),
        paired(mode="store", interval=30, latency=False),
    )
    everyone = {m["userId"] for m in batch}
    bought = {m["userId"] for m in batch if m["event"] == "Order Completed"}
    n_buyers = len(bought)
    rows = {
        "first": ([r[0] for r in t0], [r[0] for r in t0_floor], everyone, True),
        "second": ([r[1] for r in t0], [r[1] for r in t0_floor], everyone, False),
        "second_t30": ([r[1] for r in t30], [r[1] for r in t30_floor], bought, False),
    }
    labels = {
        "first": "store, 1st batch (T=0, seeding)",
        "second": "store, 2nd batch (T=0)",
        "second_t30": "store, 2nd batch (T=30 s)",
    }
    out: dict[str, Any] = {"buyers": n_buyers}
    print(
        "\n(a) store mode: the user-state store (moto's DynamoDB in its own process: its "
        "service time is the store's latency; CPU here: this process's CPU time)"
    )
    header = (
        f"{'batch':<33}{'handler':>20}{'calls':>7}{'floor@0ms':>22}{'critical':>10}"
        f"{'vs bound':>10}{'CPU here':>10}"
    )
    print(header)
    print("-" * len(header))
    for key, (ours, floor, refreshed, seeding) in rows.items():
        wall = median_range([r.seconds for r in ours])
        cpu = median_range([r.seconds for r in floor])
        own_cpu = median_range([r.cpu_s for r in ours])
        critical = store_critical_path_s(batch, args.workers, refreshed=refreshed, seeding=seeding)
        bound = max(critical, cpu["median"])
        row = {
            "handler_s": wall,
            "handler_calls": ours[0].calls,
            "handler_stats": {
                k: ours[0].stats.get(k, 0)
                for k in (
                    "RefreshesClaimed",
                    "RefreshesDeferred",
                    "PurchasesMerged",
                    "StoreReads",
                    "ProfileReads",
                    "Seeded",
                    "SeedRefreshes",
                    "ClaimsLost",
                )
            },
            "cpu_floor_s": cpu,
            "process_cpu_s": own_cpu,
            "critical_path_s": round(critical, 4),
            "lower_bound_s": round(bound, 4),
            "vs_lower_bound": round(wall["median"] / bound, 3),
            "failed_records": sum(r.failed_records for r in ours),
        }
        if per_record_s is not None:
            row["speed_up_vs_profile_per_record"] = round(per_record_s / wall["median"], 1)
        out[key] = row
        print(
            f"{labels[key]:<33}{fmt(wall):>20}{ours[0].calls['total']:>7}{fmt(cpu):>22}"
            f"{critical:>9.2f}s{row['vs_lower_bound']:>9.2f}x{own_cpu['median']:>9.2f}s",
            flush=True,
        )
    print(f"\nstore mode: calls per batch ({n_buyers} of {args.users} users bought)")
    header = f"{'batch':<33}" + "".join(f"{name:>19}" for name in STORE_CALLS)
    print(header)
    print("-" * len(header))
    for key, row in ((k, v) for k, v in out.items() if isinstance(v, dict)):
        calls = row["handler_calls"]
        print(
            f"{labels[key]:<33}" + "".join(f"{calls.get(name, 0):>19}" for name in STORE_CALLS),
            flush=True,
        )
    figures["a_store"] = out
    return sum(
        r.failed_records for group in (t0, t0_floor, t30, t30_floor) for pair in group for r in pair
    )


def limited_row(args: argparse.Namespace, runs: Any, figures: dict[str, Any]) -> int:
    """(b) the Profile API limited to the function's share; returns the records reported
    for retry."""
    limited = runs(mode="profile", profile_limit=args.share)
    wall = median_range([r.seconds for r in limited])
    rate_bound = args.users / args.share
    row = {
        "share_rps": args.share,
        "handler_s": wall,
        "rate_bound_s": round(rate_bound, 3),
        "vs_rate_bound": round(wall["median"] / rate_bound, 3),
        "failed_users": max(r.failed_users for r in limited),
        "answers_429": max(r.throttled for r in limited),
    }
    figures["b_profile_limited"] = row
    print(
        f"\n(b) Profile API limited to the function's share, {args.share:g} req/s: "
        f"{fmt(wall)} for {args.users} users, bound users/share {rate_bound:.2f} s "
        f"({row['vs_rate_bound']:.2f}x); failed users {row['failed_users']}, "
        f"429 answers {row['answers_429']}",
        flush=True,
    )
    return sum(r.failed_records for r in limited)


def merge_json(path: Path, key: str, value: Any) -> None:
    """Add one bench's figures to the shared JSON file (build/bench.json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.is_file() else {}
    current[key] = value
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
