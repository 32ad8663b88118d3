"""Sustained load on the sandbox with every rate limit on: does the Profile API budget hold?

    PYTHONPATH=scripts .venv/bin/python scripts/bench/sustained.py [--seconds 60]
        [--rate 120] [--shards 1 4] [--smoke] [--json build/bench.json]

For each shard count a fresh sandbox (``python -m sandbox``, replay off) gets Segment
track events through its Segment emulator's ``/v1/batch`` (as a Segment library sends them;
the emulator delivers them to the stream as the Amazon Kinesis destination does), at an
offered rate whose distinct users need more Profile API reads than the budget gives. Every
limit is the real service's: the Profile API 100 requests/s per space, split by the
sandbox over its two containers (45 each: 90% of it as in Terraform's default,
SEGMENT_PROFILE_API_RPS). Reported: records/s
processed (events Personalize accepted), the Profile API requests/s the emulator observed
(the most in any sliding second, and the mean), and the lag (records not yet processed)
when the offered load stops. Everything runs on 127.0.0.1; every wait has a deadline.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from bench.traits import merge_json  # noqa: E402 - after the path setup above

from devkit.sandbox import running_sandbox  # noqa: E402
from sandbox.processes import free_port  # noqa: E402

PROFILE_BUDGET = 100.0  # the Segment emulator's default: Segment's 100 requests/s per space
START_TIMEOUT_S = 90.0


def stats(url: str) -> dict[str, Any]:
    response = requests.get(f"{url}/_emulator/stats", timeout=5)
    response.raise_for_status()
    return dict(response.json())


def offer_load(state: dict[str, Any], seconds: float, rate: float, users: int, seed: int) -> int:
    """Track events at ``rate`` per second for ``seconds``, in /v1/batch requests every
    100 ms; returns how many were accepted."""
    segment = state["segment"]
    rng = random.Random(seed)
    items = [f"SKU-{n:04d}" for n in range(1, 121)]
    session = requests.Session()
    sent = 0
    started = time.monotonic()
    tick = 0.1
    while (elapsed := time.monotonic() - started) < seconds:
        due = int(rate * min(seconds, elapsed + tick)) - sent
        batch = []
        for _ in range(max(0, due)):
            user = f"load-{rng.randrange(users):05d}"
            item = rng.choice(items)
            batch.append(
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "userId": user,
                    "anonymousId": f"anon-{user}",
                    "messageId": f"load-{uuid.UUID(int=rng.getrandbits(128))}",
                    "properties": {"sku": item, "product_id": item},
                }
            )
        if batch:
            response = session.post(
                f"{segment['tracking_url']}/v1/batch",
                json={"batch": batch},
                auth=(segment["write_key"], ""),
                timeout=5,
            )
            if response.status_code == 200:
                sent += len(batch)
        time.sleep(max(0.0, started + elapsed + tick - time.monotonic()))
    return sent


def run(shards: int, seconds: float, rate: float, users: int) -> dict[str, Any]:
    args = ["--port", str(free_port()), "--shards", str(shards), "--rate", "0"]
    with (
        tempfile.TemporaryDirectory(prefix="sustained-") as folder,
        running_sandbox(
            args, Path(folder), Path(folder) / "console.log", START_TIMEOUT_S, signal.SIGINT
        ) as (_, state),
    ):
        personalize_url, segment_url = state["personalize_url"], state["segment_url"]
        events_before = stats(personalize_url).get("events", 0)
        started = time.monotonic()
        offered = offer_load(state, seconds, rate, users, seed=shards)
        elapsed = time.monotonic() - started
        processed = stats(personalize_url).get("events", 0) - events_before
        segment_stats = stats(segment_url)
    profile = segment_stats.get("rates", {}).get("profile", {})
    throttled = segment_stats.get("counters", {}).get("throttled:profile", 0)
    return {
        "shards": shards,
        "seconds": round(elapsed, 1),
        "offered_records": offered,
        "offered_per_second": round(offered / elapsed, 1),
        "processed_per_second": round(processed / elapsed, 1),
        "profile_peak_per_second": profile.get("peak_per_second", 0),
        "profile_mean_per_second": profile.get("mean_per_second", 0.0),
        "profile_budget": PROFILE_BUDGET,
        "profile_429": throttled,
        "lag_records": max(0, offered - processed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="offered load per run")
    parser.add_argument("--rate", type=float, default=120.0, help="records/s offered")
    parser.add_argument("--users", type=int, default=5000, help="distinct users offered")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--smoke", action="store_true", help="5 s, 1 shard (make test)")
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seconds, args.rate, args.shards = 5.0, 40.0, [1]
    print(
        f"(c) sustained: sandbox with all rate limits on (Profile API {PROFILE_BUDGET:g} req/s "
        f"per space, 45 per container), {args.rate:g} records/s from {args.users} users "
        f"for {args.seconds:g} s",
        flush=True,
    )
    header = (
        f"{'shards':>6}{'offered/s':>11}{'processed/s':>13}{'profile peak/s':>16}"
        f"{'profile mean/s':>16}{'429':>6}{'lag at end':>12}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for shards in args.shards:
        row = run(shards, args.seconds, args.rate, args.users)
        rows.append(row)
        print(
            f"{shards:>6}{row['offered_per_second']:>11.1f}{row['processed_per_second']:>13.1f}"
            f"{row['profile_peak_per_second']:>16}{row['profile_mean_per_second']:>16.1f}"
            f"{row['profile_429']:>6}{row['lag_records']:>12}",
            flush=True,
        )
    if args.json:
        merge_json(args.json, "sustained", rows)
    over = [r for r in rows if r["profile_peak_per_second"] > PROFILE_BUDGET]
    if over:
        print("the Profile API budget was exceeded in some second", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
