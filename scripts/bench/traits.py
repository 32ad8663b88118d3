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
import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
        with personalize, profile, tracking:
            try:
                yield Stack(personalize, profile, tracking)
            finally:
                profile.store.close()
                tracking.store.close()


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


def Context() -> LambdaContext:
    return LambdaContext(300_000, function_name="update-traits", aws_request_id="bench")


# -- our handler ----------------------------------------------------------------------------


def configure(
    moto_url: str, s: Stack, workers: int, mode: str = "profile", rps: float | None = None
) -> None:
    endpoints = {
        **dict.fromkeys(("ssm", "sqs"), moto_url),
        **dict.fromkeys(("personalize-runtime", "personalize-events"), s.personalize.url),
    }
    apply_env(fake_aws_env(REGION, endpoints, credential="bench"))
    made = traits_resources(
        moto_url, "bench", write_key=s.tracking.write_key, profile_token=s.profile.profile_token
    )
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
            "LOG_LEVEL": "ERROR",
        }
    )
    for name in ("PERSONALIZE_FILTER_ARN", "SEGMENT_PROFILE_API_RPS"):
        os.environ.pop(name, None)
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


def run_handler(
    sample: Any,
    moto_url: str,
    batch: list[Any],
    warmup: list[Any],
    workers: int,
    *,
    mode: str = "profile",
    latency: bool = True,
    profile_limit: float | None = None,
) -> Run:
    """One measured batch on fresh emulators: ``mode`` profile (Profile API exclusion) or
    filter (Personalize filter); ``profile_limit`` turns the Profile API's rate limit on at
    that rate and gives the handler the same share (SEGMENT_PROFILE_API_RPS)."""
    from traits_sync import runtime

    with stack(sample, latency=latency) as s:
        runtime.reset()
        configure(moto_url, s, workers, mode, profile_limit)
        if profile_limit is not None:
            s.profile.rate_limits.configure({"profile": profile_limit})
        app = load_app("update_traits")
        # The handler's JSON logs and EMF lines would drown the table.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            app.lambda_handler(kinesis_event(warmup, offset=len(batch)), Context())
            s.reset_stats()
            started = time.perf_counter()
            result = app.lambda_handler(kinesis_event(batch), Context())
            elapsed = time.perf_counter() - started
        runtime.reset()
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        sent = kinesis_event(batch)
        failed_users = {
            message["userId"]
            for record, message in zip(sent["Records"], kinesis_messages(sent), strict=True)
            if record["kinesis"]["sequenceNumber"] in failed
        }
        throttled = sum(
            v
            for e in (s.personalize, s.profile, s.tracking)
            for k, v in e.counters.items()
            if k.startswith("throttled:") or k == "fault:429"
        )
        return Run(elapsed, s.calls(), len(failed), len(failed_users), throttled)


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
    with moto_server() as moto_url:

        def runs(**kwargs: Any) -> list[Run]:
            return [
                run_handler(sample, moto_url, batch, warmup, args.workers, **kwargs)
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
        for mode in ("filter", "profile"):
            ours = runs(mode=mode)
            floor = runs(mode=mode, latency=False)
            theirs, their_calls = run_baseline(sample, batch, warmup, mode)
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

        # (b) the Profile API limited to the function's share: the rate bound holds.
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
        failures += sum(r.failed_records for r in limited)
        print(
            f"\n(b) Profile API limited to the function's share, {args.share:g} req/s: "
            f"{fmt(wall)} for {args.users} users, bound users/share {rate_bound:.2f} s "
            f"({row['vs_rate_bound']:.2f}x); failed users {row['failed_users']}, "
            f"429 answers {row['answers_429']}",
            flush=True,
        )

    if args.json:
        merge_json(args.json, "traits", figures)
    if failures:
        print(f"warning: {failures} records were reported for retry", file=sys.stderr)
    return 0


def merge_json(path: Path, key: str, value: Any) -> None:
    """Add one bench's figures to the shared JSON file (build/bench.json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.is_file() else {}
    current[key] = value
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
