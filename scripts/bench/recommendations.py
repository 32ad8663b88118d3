"""Measurements of the recommendations function, against the local emulators.

    PYTHONPATH=scripts:functions .venv/bin/python scripts/bench/recommendations.py [--quick]

The Personalize and Segment emulators run as separate processes (as the real services are
remote, their CPU never shares the handler's interpreter lock); the profile token sits in
SSM on a moto server. Prints one table:

- warm handler overhead: p50/p99 of the handler minus a bare boto3 ``get_recommendations``
  against the same emulator at zero latency (the emulator's own service time cancels out),
  without and with purchased-item exclusion;
- the same for each v2 route (``/related-items``, ``POST /rankings``, ``/recommendations``
  with a filter value, context and metadata), each against the bare boto3 call it makes,
  over ``--route-iterations`` (1,000) warm calls, without exclusion;
- the Profile API read concurrent with Personalize (ours) vs reading the profile first,
  with emulated service latencies;
- cold start: import + first invocation of the handler vs ``import boto3`` +
  ``boto3.client`` + first call, in fresh interpreters;
- Powertools Logger + Metrics vs the standard-library ``common.log`` + ``common.metrics``
  import cost, in fresh interpreters.

Every number comes from this machine; compare ratios rather than absolute values.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
SCRIPTS = ROOT / "scripts"
for extra in (FUNCTIONS, FUNCTIONS / "recommendations", SCRIPTS):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from devkit.aws import apply_env, fake_aws_env, moto_server  # noqa: E402 - after the path setup
from devkit.context import LambdaContext  # noqa: E402
from devkit.events import apigw_event  # noqa: E402
from devkit.loader import load_app as load_function  # noqa: E402
from devkit.processes import stdout_lines, wait_ready  # noqa: E402

TOKEN_PARAMETER = "/bench/segment-profile-token"  # noqa: S105 - a parameter name
USER = "user-0042"
PURCHASED = ["SKU-0110", "SKU-0040", "SKU-9999"]
EXCLUSION_ENV = ("AWS_ENDPOINT_URL_SSM", "SEGMENT_SPACE_ID", "SEGMENT_PROFILE_TOKEN_PARAMETER")

# Without TCP_NODELAY the emulators' separate header and body writes meet the client's
# delayed ACK and every answer takes ~40 ms longer than its service time, which would drown
# the sub-millisecond figures measured here. (A no-op once the emulator sets it itself.)
EMULATOR = """
import sys
from emulators import server
server._Handler.disable_nagle_algorithm = True
module = __import__("emulators." + sys.argv[1], fromlist=["main"])
raise SystemExit(module.main(sys.argv[2:]))
"""


class Emulator:
    """One emulator in its own process, controlled over its /_emulator endpoints."""

    def __init__(self, name: str, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(SCRIPTS)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", EMULATOR, name, "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # its "stopped" line; failures show as not ready
            text=True,
            env=env,
        )
        try:
            self.url = wait_ready(stdout_lines(self.process), timeout_s=60)
        except AssertionError as exc:
            self.stop()
            raise RuntimeError(f"emulator {name} (exit {self.process.returncode}): {exc}") from None

    def controls(self, **values: Any) -> None:
        import requests

        requests.post(f"{self.url}/_emulator/controls", json=values, timeout=5).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def timed(call: Callable[[], Any], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The handler's log and EMF lines are still written (a real cost), just not shown."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def load_app() -> ModuleType:
    return load_function("recommendations", name="bench_recommendations_app")


def event(
    user_id: str,
    num_results: int,
    *,
    path: str = "/recommendations",
    query: dict[str, str] | None = None,
    method: str = "GET",
    body: str | None = None,
) -> dict[str, Any]:
    if query is None:
        query = {"userId": user_id, "numResults": str(num_results)}
    base = {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Accept": "application/json"},
        "requestContext": {"requestId": "bench"},
        "body": None,
        "isBase64Encoded": False,
    }
    return apigw_event(base, query, body=body)


# One context for every call: making one is not what is measured. Its clock stands at
# API Gateway's 29 s, so no call is ever cut short for time.
CONTEXT = LambdaContext(29_000, function_name="recommendations", aws_request_id="bench")


def row(label: str, samples: list[float], against: list[float] | None = None) -> tuple[str, str]:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    text = f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
    if against is not None:
        b50, b99 = percentile(against, 50), percentile(against, 99)
        text += f"  overhead p50 {p50 - b50:+.2f} ms, p99 {p99 - b99:+.2f} ms"
    return label, text


class Bench:
    def __init__(self, personalize: Emulator, segment: Emulator, moto_url: str) -> None:
        import requests

        self.personalize = personalize
        self.segment = segment
        self.moto_url = moto_url
        resources = requests.get(f"{personalize.url}/_emulator/resources", timeout=5).json()
        self.campaign_arn: str = resources["campaign_arn"]
        self.resources: dict[str, Any] = resources
        self.base_env = {
            **fake_aws_env(endpoints={"personalize-runtime": personalize.url}, credential="bench"),
            "PERSONALIZE_CAMPAIGN_ARN": self.campaign_arn,
            "SEGMENT_PROFILE_API_URL": f"{segment.url}/v1",
        }
        apply_env(self.base_env)

    def exclusion(self, on: bool) -> None:
        from reco_api import runtime

        values = [self.moto_url, "spa_sandbox", TOKEN_PARAMETER]
        for name, value in zip(EXCLUSION_ENV, values, strict=True):
            if on:
                os.environ[name] = value
            else:
                os.environ.pop(name, None)
        runtime.reset()

    def warm(self, n: int) -> list[tuple[str, str]]:
        import boto3
        import requests

        bare = boto3.client("personalize-runtime")
        arn = self.campaign_arn

        def bare_call(size: int) -> Callable[[], Any]:
            return lambda: bare.get_recommendations(campaignArn=arn, userId=USER, numResults=size)

        bare_25 = timed(bare_call(25), n)
        bare_50 = timed(bare_call(50), n)
        http = requests.Session()
        profile_url = (
            f"{self.segment.url}/v1/spaces/spa_sandbox/collections/users/profiles/"
            f"user_id:{USER}/traits"
        )
        bare_profile = timed(
            lambda: http.get(
                profile_url,
                params={"include": "purchased_products"},
                auth=("sandbox-profile-token", ""),
                timeout=5,
            ),
            n,
        )

        app = load_app()
        evt = event(USER, 25)
        self.exclusion(False)
        with quiet_stdout():
            plain = timed(lambda: app.lambda_handler(evt, CONTEXT), n)
        self.exclusion(True)
        with quiet_stdout():
            response = app.lambda_handler(evt, CONTEXT)
            assert '"SKU-0110"' not in response["body"], "exclusion did not apply"
            excluded = timed(lambda: app.lambda_handler(evt, CONTEXT), n)
        self.exclusion(False)
        return [
            row("bare boto3 GetRecommendations, 25 items", bare_25),
            row("bare boto3 GetRecommendations, 50 items", bare_50),
            row("bare requests Profile API read", bare_profile),
            row("handler, no exclusion (N=25)", plain, bare_25),
            row("handler + exclusion (N=25, asks 50) vs bare 50", excluded, bare_50),
        ]

    def routes(self, n: int) -> list[tuple[str, str]]:
        """Each v2 route through the handler vs the one bare boto3 call it makes."""
        import json

        import boto3

        from reco_api import runtime

        res = self.resources
        related, ranking = res["related_items_campaign_arn"], res["ranking_campaign_arn"]
        category = res["category_filter_arn"]
        v2_env = {
            "PERSONALIZE_RELATED_ITEMS_ARN": related,
            "PERSONALIZE_RANKING_CAMPAIGN_ARN": ranking,
            "PERSONALIZE_FILTERS": json.dumps(
                {"category": {"arn": category, "parameters": ["CATEGORIES"]}}
            ),
            "ITEM_METADATA_COLUMNS": "CATEGORY,PRICE",
        }
        os.environ.update(v2_env)
        runtime.reset()
        bare = boto3.client("personalize-runtime")
        item = "SKU-0001"
        items = [f"SKU-{k:04d}" for k in range(1, 26)]
        app = load_app()
        related_evt = event(
            USER, 25, path="/related-items", query={"itemId": item, "numResults": "25"}
        )
        ranking_evt = event(
            USER,
            25,
            path="/rankings",
            method="POST",
            query={},
            body=json.dumps({"userId": USER, "itemIds": items}),
        )
        ranking_evt["queryStringParameters"] = ranking_evt["multiValueQueryStringParameters"] = None
        options_evt = event(
            USER,
            25,
            query={
                "userId": USER,
                "numResults": "25",
                "filter": "category",
                "filterValues.CATEGORIES": "Books,Toys,Kitchen",
                "context.DEVICE": "mobile",
                "includeMetadata": "true",
            },
        )
        rows = []
        try:
            with quiet_stdout():
                for evt in (related_evt, ranking_evt, options_evt):
                    assert app.lambda_handler(evt, CONTEXT)["statusCode"] == 200
                h_related = timed(lambda: app.lambda_handler(related_evt, CONTEXT), n)
                h_ranking = timed(lambda: app.lambda_handler(ranking_evt, CONTEXT), n)
                h_options = timed(lambda: app.lambda_handler(options_evt, CONTEXT), n)
            b_related = timed(
                lambda: bare.get_recommendations(campaignArn=related, itemId=item, numResults=25),
                n,
            )
            b_ranking = timed(
                lambda: bare.get_personalized_ranking(
                    campaignArn=ranking, userId=USER, inputList=items
                ),
                n,
            )
            b_options = timed(
                lambda: bare.get_recommendations(
                    campaignArn=self.campaign_arn,
                    userId=USER,
                    numResults=25,
                    filterArn=category,
                    filterValues={"CATEGORIES": '"Books","Toys","Kitchen"'},
                    context={"DEVICE": "mobile"},
                    metadataColumns={"ITEMS": ["CATEGORY", "PRICE"]},
                ),
                n,
            )
            rows = [
                row("GET /related-items (N=25)", h_related, b_related),
                row("POST /rankings (25 ids)", h_ranking, b_ranking),
                row("GET /recommendations + filter value, context, metadata", h_options, b_options),
            ]
        finally:
            for name in v2_env:
                os.environ.pop(name, None)
            runtime.reset()
        return rows

    def concurrency(self, n: int) -> list[tuple[str, str]]:
        """Ours (the Profile read alongside Personalize) vs reading the profile first."""
        from common import aws
        from common.http import HttpPolicy, session
        from common.personalize import fetch_size, get_recommendations
        from common.profiles import ProfileClient
        from reco_api import runtime

        self.personalize.controls(latency_ms=40)
        self.segment.controls(latency_ms=60)
        try:
            self.exclusion(True)
            app = load_app()
            evt = event(USER, 25)
            with quiet_stdout():
                ours = timed(lambda: app.lambda_handler(evt, CONTEXT), n, warmup=5)
            profiles = ProfileClient(
                session(HttpPolicy()),
                f"{self.segment.url}/v1",
                "spa_sandbox",
                lambda: "sandbox-profile-token",
            )
            client = aws.Clients().personalize_runtime(runtime.PERSONALIZE_POLICY)

            def sequential() -> None:
                traits = profiles.traits(USER, ["purchased_products"])
                count = len(traits.get("purchased_products") or [])
                get_recommendations(
                    client, self.campaign_arn, user_id=USER, num_results=fetch_size(25, count)
                )

            seq = timed(sequential, n, warmup=5)
        finally:
            self.exclusion(False)
            self.personalize.controls(latency_ms=0)
            self.segment.controls(latency_ms=0)
        return [
            row("concurrent (ours): Personalize 40 ms || Profile 60 ms", ours),
            row("sequential: Profile 60 ms, then Personalize 40 ms", seq),
        ]

    def cold(self, runs: int) -> list[tuple[str, str]]:
        env = {
            **self.base_env,
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(
                [str(FUNCTIONS), str(FUNCTIONS / "recommendations"), str(SCRIPTS)]
            ),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        bare, handler, powertools, stdlib = [], [], [], []
        for _ in range(runs):  # interleaved, so drifting machine load hits every row alike
            bare.append(run(COLD_BARE, self.campaign_arn, env=env))
            handler.append(run(COLD_HANDLER, env=env))
            powertools.append(run(IMPORT_POWERTOOLS, env=env)[0])
            stdlib.append(run(IMPORT_STDLIB, env=env)[0])
        b_client = statistics.median(x[0] for x in bare)
        b_first = statistics.median(x[1] for x in bare)
        h_import = statistics.median(x[0] for x in handler)
        h_first = statistics.median(x[1] for x in handler)
        pt, sl = statistics.median(powertools), statistics.median(stdlib)
        return [
            ("bare: import boto3 + boto3.client", f"{b_client:7.1f} ms"),
            ("bare: ... + first GetRecommendations", f"{b_first:7.1f} ms"),
            ("handler: import app.py (no boto3 yet)", f"{h_import:7.1f} ms"),
            (
                "handler: import + first invocation",
                f"{h_first:7.1f} ms  ratio to bare first call x{h_first / b_first:.2f}",
            ),
            ("Powertools Logger + Metrics: import + construct", f"{pt:7.1f} ms"),
            (
                "common.log + common.metrics: import + construct",
                f"{sl:7.1f} ms  Powertools costs {pt - sl:+.1f} ms (x{pt / sl:.1f})",
            ),
        ]


COLD_BARE = """
import time, sys
t0 = time.perf_counter()
import boto3
from botocore.config import Config
client = boto3.client("personalize-runtime", config=Config(retries={"mode": "standard"}))
t1 = time.perf_counter()
client.get_recommendations(campaignArn=sys.argv[1], userId="user-0042", numResults=25)
t2 = time.perf_counter()
print(f"{(t1 - t0) * 1000:.1f} {(t2 - t0) * 1000:.1f}")
"""

COLD_HANDLER = """
import time, sys, os, contextlib
from devkit.loader import load_app  # before t0: the runtime's own loading is not measured
t0 = time.perf_counter()
module = load_app("recommendations", name="app")
t1 = time.perf_counter()
event = {"queryStringParameters": {"userId": "user-0042"}, "httpMethod": "GET"}
with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
    response = module.lambda_handler(event, None)
t2 = time.perf_counter()
assert response["statusCode"] == 200, response
print(f"{(t1 - t0) * 1000:.1f} {(t2 - t0) * 1000:.1f}")
"""

IMPORT_POWERTOOLS = """
import time
t0 = time.perf_counter()
from aws_lambda_powertools import Logger, Metrics
Logger(service="recommendations")
Metrics(namespace="SegmentPersonalize", service="recommendations")
print(f"{(time.perf_counter() - t0) * 1000:.1f}")
"""

IMPORT_STDLIB = """
import time
t0 = time.perf_counter()
from common.log import Logger
from common.metrics import Metrics
Logger("recommendations")
Metrics("SegmentPersonalize", "recommendations")
print(f"{(time.perf_counter() - t0) * 1000:.1f}")
"""


def run(code: str, *args: str, env: dict[str, str]) -> list[float]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return [float(x) for x in result.stdout.split()]


def seed_purchases(segment: Emulator) -> None:
    """An Order Completed through the Tracking API feeds the computed purchased trait."""
    import requests

    message = {
        "type": "track",
        "userId": USER,
        "event": "Order Completed",
        "messageId": "bench-order-1",
        "timestamp": "2025-01-01T00:00:00Z",
        "properties": {"products": [{"sku": sku} for sku in PURCHASED]},
    }
    response = requests.post(
        f"{segment.url}/v1/track", json=message, auth=("sandbox-write-key", ""), timeout=5
    )
    response.raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=500, help="warm invocations per row")
    parser.add_argument("--cold-runs", type=int, default=7, help="fresh interpreters per row")
    parser.add_argument(
        "--route-iterations", type=int, default=1000, help="warm invocations per v2 route row"
    )
    parser.add_argument("--quick", action="store_true", help="100 iterations, 3 cold runs")
    parser.add_argument("--routes-only", action="store_true", help="only the v2 route rows")
    args = parser.parse_args(argv)
    iterations = 100 if args.quick else args.iterations
    route_iterations = 200 if args.quick else max(1000, args.route_iterations)
    cold_runs = 3 if args.quick else args.cold_runs

    import boto3

    cleanup = contextlib.ExitStack()
    moto_url = cleanup.enter_context(moto_server())
    emulators: list[Emulator] = []
    rows: list[tuple[str, str | None]] = []
    try:
        personalize = Emulator("personalize", "--seed", "0")
        emulators.append(personalize)
        segment = Emulator("segment", "--seed", "0")
        emulators.append(segment)
        seed_purchases(segment)
        boto3.client(
            "ssm",
            endpoint_url=moto_url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",  # noqa: S106 - moto accepts anything
        ).put_parameter(
            Name=TOKEN_PARAMETER, Value="sandbox-profile-token", Type="SecureString", Overwrite=True
        )
        bench = Bench(personalize, segment, moto_url)
        if not args.routes_only:
            rows.append((f"Warm, emulators at 0 ms latency, {iterations} invocations each", None))
            rows += bench.warm(iterations)
        rows.append((f"v2 routes, warm, no exclusion, {route_iterations} invocations each", None))
        rows += bench.routes(route_iterations)
        if not args.routes_only:
            rows.append(("Profile API read concurrent with Personalize, or before it", None))
            rows += bench.concurrency(max(30, iterations // 5))
            rows.append((f"Cold start, fresh interpreters, median of {cold_runs}", None))
            rows += bench.cold(cold_runs)
    finally:
        for emulator in emulators:
            emulator.stop()
        cleanup.close()

    width = max(len(label) for label, value in rows if value is not None)
    print(f"recommendations bench (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    for label, value in rows:
        print(f"\n{label}" if value is None else f"  {label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
