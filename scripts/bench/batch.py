"""Lines/s and peak memory of one batch write-back chunk worker, against the Segment emulator.

    PYTHONPATH=scripts:functions .venv/bin/python scripts/bench/batch.py [--lines 100000]
        [--runs 3] [--smoke] [--json build/bench.json]

A Personalize-format output file (25 items and scores per user, one error line in 50) is
generated in a temporary folder and written back by the chunk worker
(``functions/batch_traits/backfill/writer.py``, unmodified) as ONE byte range covering the
whole file: one worker streams it, so its peak memory must not depend on the file's size.
Sizes: 10,000 and 100,000 lines, at least 3 runs each (fresh emulator and job per run).

- Segment: the emulator as its own process (``python -m emulators.segment``) on 127.0.0.1,
  with its rate limits on (1,000 requests/s); the worker's own events/s budget is set far
  above what one worker reaches, so the figure is the worker's (and the emulator's) speed.
- S3: the worker reads the local file through a minimal stand-in with S3's GetObject
  Range/IfMatch semantics (moto's server would measure moto); state objects stay in memory.
- Memory: tracemalloc's peak over the worker's run (the emulator is another process).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
for extra in (FUNCTIONS, FUNCTIONS / "batch_traits", ROOT / "scripts"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from backfill import chunks, writer  # noqa: E402 - after the path setup above
from backfill.settings import load  # noqa: E402

from common.http import HttpPolicy, session  # noqa: E402
from common.ratelimit import TokenBucket  # noqa: E402
from common.tracking import TrackingClient  # noqa: E402
from devkit.processes import emulator_process  # noqa: E402

WRITE_KEY = "bench-write-key"
CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/bench"
BUCKET = "bench-batch"
ITEMS = 25
EVENTS_PER_S = 100_000.0  # far above one worker: the budget never waits


def generate(path: Path, lines: int, seed: int = 0) -> int:
    """A Personalize batch output file; returns the number of error lines."""
    rng = random.Random(seed)
    errors = 0
    with path.open("wb") as out:
        for n in range(lines):
            user = f"user-{n:07d}"
            if n % 50 == 17:
                errors += 1
                record: dict[str, Any] = {
                    "input": {"userId": user},
                    "output": {},
                    "error": "User not found",
                }
            else:
                items = rng.sample(range(50_000), ITEMS)
                scores = sorted((round(rng.random() / 10, 7) for _ in items), reverse=True)
                record = {
                    "input": {"userId": user},
                    "output": {"recommendedItems": [str(i) for i in items], "scores": scores},
                    "error": None,
                }
            out.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
    return errors


class _Body:
    def __init__(self, path: Path, start: int, last: int | None) -> None:
        self._file = path.open("rb")
        self._file.seek(start)
        self._left = None if last is None else max(0, last + 1 - start)

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        while self._left is None or self._left > 0:
            block = self._file.read(size if self._left is None else min(size, self._left))
            if not block:
                return
            if self._left is not None:
                self._left -= len(block)
            yield block

    def read(self) -> bytes:
        return self._file.read()

    def close(self) -> None:
        self._file.close()


class LocalS3:
    """GetObject (Range ``bytes=N-`` or ``bytes=N-M``, IfMatch), PutObject and listing, on one
    local file."""

    def __init__(self, key: str, path: Path) -> None:
        self.key = key
        self.path = path
        self.etag = '"' + hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest() + '"'
        self.objects: dict[str, bytes] = {}

    def get_object(
        self, Bucket: str, Key: str, Range: str | None = None, IfMatch: str | None = None
    ) -> dict[str, Any]:
        if Key == self.key:
            if IfMatch is not None and IfMatch != self.etag:
                raise RuntimeError("PreconditionFailed")
            # bytes=first- or bytes=first-last (a last byte past the end: to the end)
            first, _, last = (Range or "bytes=0-").removeprefix("bytes=").partition("-")
            return {"Body": _Body(self.path, int(first), int(last) if last else None)}
        if Key not in self.objects:
            error = RuntimeError("NoSuchKey")
            error.response = {"Error": {"Code": "NoSuchKey"}}  # type: ignore[attr-defined]
            raise error
        data = self.objects[Key]

        class _Bytes:
            def read(self) -> bytes:
                return data

        return {"Body": _Bytes()}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str = "") -> None:
        self.objects[Key] = Body

    def get_paginator(self, name: str) -> Any:
        objects = self.objects

        class _Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, Any]]:
                return [{"Contents": [{"Key": k} for k in sorted(objects) if k.startswith(Prefix)]}]

        return _Paginator()


class _NoQueue:
    def send_message(self, **_: Any) -> None:
        raise AssertionError("the bench's deadline is far away: no continuation expected")


class TimedTracking:
    """The real Tracking client, with the time spent waiting for Segment measured."""

    def __init__(self, client: TrackingClient) -> None:
        self.client = client
        self.seconds = 0.0
        self.requests = 0

    def send_batch(self, body: bytes) -> None:
        began = time.perf_counter()
        try:
            self.client.send_batch(body)
        finally:
            self.seconds += time.perf_counter() - began
            self.requests += 1


def run_once(path: Path, lines: int, errors: int, job: str) -> dict[str, Any]:
    with emulator_process("emulators.segment", "--write-key", WRITE_KEY) as (_, _, url):
        settings = load(
            {
                "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
                "BATCH_BUCKET": BUCKET,
                "BATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/bench",
                "CHUNK_QUEUE_URL": "http://127.0.0.1:1/123456789012/bench",
                "SEGMENT_WRITE_KEY_PARAMETER": "/bench/write-key",
                "SEGMENT_API_URL": f"{url}/v1",
                "SEGMENT_EVENTS_PER_S": str(EVENTS_PER_S),
            }
        )
        key = f"output/{job}/users.json.out"
        s3 = LocalS3(key, path)
        size = path.stat().st_size
        tracking = TimedTracking(
            TrackingClient(
                session=session(
                    HttpPolicy(connect_timeout=2.0, read_timeout=30.0, retries=2, status_retries=0)
                ),
                base_url=settings.segment_api_url,
                write_key=lambda: WRITE_KEY,
                timeout=(2.0, 30.0),
            )
        )
        rate = settings.events_per_s
        ports = writer.Ports(
            s3=s3,
            sqs=_NoQueue(),
            tracking=tracking,
            bucket=TokenBucket(rate, capacity=float(writer.max_batch_messages(rate))),
        )
        message = chunks.ChunkMessage(job, BUCKET, key, s3.etag, 0, 1, 0, size)
        tracemalloc.start()
        began = time.perf_counter()
        outcome = writer.process(message, settings, ports, time.monotonic() + 3600)
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    counts = outcome.counts.values
    assert outcome.status == "done", outcome
    assert counts["written"] == lines - errors and counts["failed_error_line"] == errors, counts
    return {
        "seconds": elapsed,
        "lines_per_s": lines / elapsed,
        "worker_lines_per_s": lines / max(elapsed - tracking.seconds, 1e-9),
        "segment_s": tracking.seconds,
        "requests": tracking.requests,
        "peak_mib": peak / 2**20,
        "file_mib": size / 2**20,
    }


def median_range(values: Sequence[float], digits: int = 1) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def merge_json(path: Path, key: str, value: Any) -> None:
    """Add one bench's figures to the shared JSON file (build/bench.json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = json.loads(path.read_text()) if path.is_file() else {}
    current[key] = value
    path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000, help="lines of the large file")
    parser.add_argument("--small", type=int, default=10_000, help="lines of the small file")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (>= 3 for figures)")
    parser.add_argument("--smoke", action="store_true", help="seconds: 500 and 2,000 lines, 1 run")
    parser.add_argument("--json", type=Path, help="merge the figures into this JSON file")
    args = parser.parse_args(argv)
    sizes = [500, 2_000] if args.smoke else [args.small, args.lines]
    runs = 1 if args.smoke else max(1, args.runs)

    figures: dict[str, Any] = {"runs": runs, "items_per_user": ITEMS, "sizes": {}}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        for lines in sizes:
            path = Path(tmp) / f"users-{lines}.json.out"
            errors = generate(path, lines)
            results = [run_once(path, lines, errors, f"bench-{lines}-{n}") for n in range(runs)]
            figures["sizes"][str(lines)] = {
                "lines": lines,
                "file_mib": round(results[0]["file_mib"], 1),
                "requests": results[0]["requests"],
                "lines_per_s": median_range([r["lines_per_s"] for r in results], 0),
                "worker_lines_per_s": median_range([r["worker_lines_per_s"] for r in results], 0),
                "seconds": median_range([r["seconds"] for r in results], 2),
                "peak_mib": median_range([r["peak_mib"] for r in results], 2),
            }
    print(f"batch write-back, one chunk worker, {ITEMS} items per user, {runs} run(s) per size")
    print(
        f"{'lines':>8} {'file MiB':>9} {'requests':>9} {'lines/s (median, min-max)':>28} "
        f"{'excl. Segment':>14} {'peak MiB':>9}"
    )
    for row in figures["sizes"].values():
        lps = row["lines_per_s"]
        print(
            f"{row['lines']:>8} {row['file_mib']:>9} {row['requests']:>9} "
            f"{lps['median']:>12.0f} ({lps['min']:.0f}-{lps['max']:.0f}){'':>5} "
            f"{row['worker_lines_per_s']['median']:>14.0f} {row['peak_mib']['median']:>9.2f}"
        )
    if args.json:
        merge_json(args.json, "batch", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
