"""Command-line plumbing shared by ``python -m emulators.personalize`` and ``...segment``:
the control flags, and serving in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from emulators.ratelimit import RateLimit
from emulators.server import EmulatorServer


def add_control_arguments(
    parser: argparse.ArgumentParser, rate_limits: Mapping[str, RateLimit] | None = None
) -> None:
    group = parser.add_argument_group("server")
    group.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    group.add_argument("--port", type=int, default=0, help="port (default 0 = any free port)")
    group.add_argument("--seed", type=int, default=0, help="seed for data, model and faults")
    group.add_argument("--verbose", action="store_true", help="log each request to stderr")
    controls = parser.add_argument_group(
        "controls (at runtime: POST /_emulator/controls with a JSON object of latency_ms, "
        'jitter_ms, fault_rate {"429": p, ...}, slow_ms, retry_after_s, only_users, '
        "operations, seed)"
    )
    controls.add_argument("--latency-ms", type=float, default=0.0, help="fixed added latency")
    controls.add_argument(
        "--jitter-ms", type=float, default=0.0, help="extra latency, uniform in [0, jitter]"
    )
    for kind, meaning in (
        ("429", "answer 429 (Personalize: ThrottlingException, HTTP 400) with Retry-After"),
        ("500", "answer 500 (Personalize: InternalFailure)"),
        ("503", "answer 503 (Personalize: ServiceUnavailable)"),
        ("slow", "stall --slow-ms before answering normally"),
        ("reset", "close the TCP connection (RST) without answering"),
    ):
        controls.add_argument(
            f"--fault-{kind}",
            type=float,
            default=0.0,
            metavar="P",
            help=f"probability 0..1 to {meaning}",
        )
    controls.add_argument(
        "--slow-ms", type=float, default=2000.0, help="stall of a 'slow' fault (default 2000)"
    )
    controls.add_argument(
        "--retry-after-s", type=int, default=1, help="Retry-After seconds on 429 (default 1)"
    )
    controls.add_argument(
        "--only-users",
        default=None,
        metavar="ID,ID",
        help="faults only for requests about these user ids (comma-separated)",
    )
    controls.add_argument(
        "--operations",
        default=None,
        metavar="OP,OP",
        help="faults only for these operations, e.g. GetRecommendations,PutEvents or "
        "identify,track,batch,profile",
    )
    if rate_limits:
        defaults = ", ".join(f"{name}={limit.rate:g}/s" for name, limit in rate_limits.items())
        limits = parser.add_argument_group(
            "rate limits (the real service's, on by default: "
            f"{defaults}; at runtime: POST /_emulator/controls "
            '{"rate_limits": {"NAME": RATE | {"rate": R, "burst": B} | null}})'
        )
        limits.add_argument(
            "--rate-limit",
            action="append",
            default=[],
            metavar="NAME=RATE",
            help="change one limit: requests (PutEvents: events) per second, or 'off'",
        )
        limits.add_argument(
            "--no-rate-limits", action="store_true", help="turn every rate limit off"
        )


def apply_control_arguments(emulator: EmulatorServer, args: argparse.Namespace) -> None:
    emulator.verbose = bool(args.verbose)
    options: dict[str, Any] = {
        "latency_ms": args.latency_ms,
        "jitter_ms": args.jitter_ms,
        "fault_rate": {
            "429": args.fault_429,
            "500": args.fault_500,
            "503": args.fault_503,
            "slow": args.fault_slow,
            "reset": args.fault_reset,
        },
        "slow_ms": args.slow_ms,
        "retry_after_s": args.retry_after_s,
        "seed": args.seed,
    }
    if args.only_users:
        options["only_users"] = [u for u in args.only_users.split(",") if u]
    if args.operations:
        options["operations"] = [o.strip() for o in args.operations.split(",") if o.strip()]
    emulator.controls.set(**options)
    if getattr(args, "no_rate_limits", False):
        emulator.rate_limits.disable()
    changes: dict[str, str | float] = {}
    for spec in getattr(args, "rate_limit", []):
        name, sep, value = spec.partition("=")
        if not sep:
            raise SystemExit(f"--rate-limit takes NAME=RATE, got {spec!r}")
        changes[name.strip()] = "off" if value.strip() == "off" else float(value)
    try:
        emulator.rate_limits.configure(changes)
    except ValueError as exc:
        raise SystemExit(f"--rate-limit: {exc}") from None


def serve_until_signal(emulator: EmulatorServer, details: Callable[[], dict[str, Any]]) -> int:
    """Start, print ``ready <url>`` (then one JSON line of details), block until a signal."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    emulator.start()
    try:
        print(f"ready {emulator.url}", flush=True)
        print(json.dumps(details(), sort_keys=True), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    print("stopped", file=sys.stderr, flush=True)
    return 0
