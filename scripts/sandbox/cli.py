"""``python -m sandbox``: options, signals, exit codes."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from types import FrameType

from sandbox.console import Console
from sandbox.processes import PortInUse
from sandbox.runner import Options, Sandbox, StartError
from sandbox.statedir import StateDirBusy

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
DEFAULTS = Options()  # every option's default, declared once (sandbox.runner.Options)


class _Help(argparse.HelpFormatter):
    """Shows a default only where it says something (not None/False, not already written)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: raised in the main thread wherever it is, start-up included."""


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError("a port is 0..65535")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return number


def _non_negative(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return number


def _probability(value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError("must be from 0 to 1")
    return number


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=(
            "Run the whole system locally: moto's server (Kinesis, SSM, SQS) as a child "
            "process, the Personalize and Segment emulators trained on a generated history, a "
            "local API gateway in front of the unmodified recommendations handler, and a "
            "Kinesis event-source poller feeding the unmodified update_traits handler. The "
            "Segment emulator delivers what it accepts to the stream as Segment's Amazon Kinesis "
            "destination does; generated events are sent to it with segment-analytics-python, "
            "and any Segment library can send its own. Stops on Ctrl-C or SIGTERM."
        ),
        formatter_class=_Help,
    )
    api = p.add_argument_group("API gateway")
    api.add_argument(
        "--port", type=_port, default=DEFAULTS.port, help="port of the local API on 127.0.0.1"
    )
    api.add_argument(
        "--api-key",
        default=DEFAULTS.api_key,
        help="API key clients must send in x-api-key (default: a new random key, printed)",
    )
    api.add_argument(
        "--quiet-requests", action="store_true", help="do not print a line per API request"
    )

    data = p.add_argument_group("sample data and replay")
    data.add_argument("--seed", type=int, default=DEFAULTS.seed, help="seed of the generated data")
    data.add_argument("--items", type=_positive_int, default=DEFAULTS.items, help="catalogue size")
    data.add_argument("--users", type=_positive_int, default=DEFAULTS.users, help="number of users")
    data.add_argument(
        "--history",
        type=_positive_int,
        default=DEFAULTS.history,
        help="past interactions the model learns",
    )
    data.add_argument(
        "--rate",
        type=_non_negative,
        default=DEFAULTS.rate,
        help="generated Segment events sent per second with segment-analytics-python "
        "(0: none; send your own)",
    )
    data.add_argument(
        "--events",
        type=int,
        default=DEFAULTS.events,
        help="stop replaying after this many events (0: never)",
    )

    destination = p.add_argument_group("Segment's Amazon Kinesis destination (emulated)")
    destination.add_argument(
        "--duplicate-rate",
        type=_probability,
        default=DEFAULTS.duplicate_rate,
        help="probability that a delivered record is delivered again (at least once)",
    )
    destination.add_argument(
        "--use-message-id",
        action="store_true",
        help="partition key messageId instead of userId || anonymousId (useMessageId)",
    )

    esm = p.add_argument_group("Kinesis event source mapping (update_traits)")
    esm.add_argument(
        "--shards", type=_positive_int, default=DEFAULTS.shards, help="shards of the stream"
    )
    esm.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULTS.batch_size,
        help="records per invocation (1..10000)",
    )
    esm.add_argument(
        "--batching-window",
        type=_non_negative,
        default=DEFAULTS.batching_window,
        help="seconds to wait to fill a batch (0..300; 0: invoke as soon as records arrive)",
    )
    esm.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULTS.max_retries,
        help="retries of a failing batch before its on-failure record is sent (-1: unbounded)",
    )
    esm.add_argument(
        "--retry-delay",
        type=_non_negative,
        default=DEFAULTS.retry_delay,
        help="first retry delay in seconds; doubles per retry, at most 5 s",
    )
    esm.add_argument(
        "--poll-interval",
        type=_non_negative,
        default=DEFAULTS.poll_interval,
        help="seconds between GetRecords calls on an idle shard (Lambda: about 1)",
    )
    esm.add_argument(
        "--starting-position",
        choices=("TRIM_HORIZON", "LATEST"),
        default=DEFAULTS.starting_position,
        help="where the poller starts reading each shard",
    )

    fn = p.add_argument_group("functions")
    fn.add_argument(
        "--num-results",
        type=int,
        default=DEFAULTS.num_results,
        help="NUM_RESULTS for both functions (default: unset, the functions' default 25)",
    )
    fn.add_argument(
        "--no-filter",
        action="store_true",
        help="do not set PERSONALIZE_FILTER_ARN (the emulator's exclude-purchased filter): "
        "purchased items are then removed by the handlers alone (profile trait and the "
        "batch's own purchases)",
    )

    batch = p.add_argument_group("batch backfill (batch_traits; `scripts/bundle backfill`)")
    batch.add_argument(
        "--no-batch",
        action="store_true",
        help="leave out the batch backfill (bucket, chunk queue, batch_traits poller)",
    )
    batch.add_argument(
        "--chunk-bytes",
        type=_positive_int,
        default=DEFAULTS.chunk_bytes,
        help="CHUNK_BYTES of batch_traits: small, so the 200 users make several chunks",
    )
    batch.add_argument(
        "--chunk-visibility-timeout",
        type=_positive_int,
        default=DEFAULTS.chunk_visibility_timeout,
        help="visibility timeout (s) of the chunk queue: how soon a failed chunk is retried",
    )

    ports = p.add_argument_group("emulator ports (0: any free port)")
    ports.add_argument("--moto-port", type=_port, default=DEFAULTS.moto_port, help="moto server")
    ports.add_argument(
        "--personalize-port",
        type=_port,
        default=DEFAULTS.personalize_port,
        help="Personalize emulator",
    )
    ports.add_argument(
        "--segment-port", type=_port, default=DEFAULTS.segment_port, help="Segment emulator"
    )

    p.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULTS.state_dir,
        help="where logs (handlers.log, moto.log) and state.json (URLs, key, pids) are written",
    )
    p.add_argument("--prefix", default=DEFAULTS.prefix, help="name prefix of the created resources")
    p.add_argument(
        "--totals-interval",
        type=_non_negative,
        default=DEFAULTS.totals_interval,
        help="seconds between console totals lines (0: none; the summary at exit stays)",
    )
    return p


def options_from(args: argparse.Namespace) -> Options:
    """The options of the parsed arguments: each by its name, the three ``--no-...`` /
    ``--quiet-...`` switches negated."""
    negated = {
        "use_filter": not args.no_filter,
        "log_requests": not args.quiet_requests,
        "batch": not args.no_batch,
    }
    return Options(
        **{
            f.name: negated[f.name] if f.name in negated else getattr(args, f.name)
            for f in fields(Options)
        }
    )


def _validate(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.batch_size > 10_000:
        p.error("--batch-size must be 1..10000 (Lambda's limit for Kinesis)")
    if args.batching_window > 300:
        p.error("--batching-window must be 0..300 seconds")
    if not -1 <= args.max_retries <= 10_000:
        p.error("--max-retries must be -1..10000")
    if args.events < 0:
        p.error("--events must be >= 0")
    if args.num_results is not None and not 1 <= args.num_results <= 500:
        p.error("--num-results must be 1..500")
    if args.api_key is not None and not 20 <= len(args.api_key) <= 128:
        p.error("--api-key must be 20..128 characters (API Gateway's rule)")
    fixed = [v for v in (args.port, args.moto_port, args.personalize_port, args.segment_port) if v]
    if len(fixed) != len(set(fixed)):
        p.error("the ports must differ")


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    _validate(p, args)
    console = Console()
    sandbox = Sandbox(options_from(args), console)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        # Further signals are ignored: the stop below is bounded and must run to the end.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    code = EXIT_OK
    try:
        sandbox.start()
        while (problem := sandbox.dead_child()) is None:
            time.sleep(1.0)
        console.line(f"sandbox: {problem}")
        code = EXIT_FAILED
    except Interrupted:
        console.line("")
        console.line("sandbox: stopping...")
    except (PortInUse, StateDirBusy) as exc:
        console.line(f"sandbox: {exc}")
        code = EXIT_USAGE
    except StartError as exc:
        console.line(f"sandbox: {exc}")
        code = EXIT_FAILED
    except Exception as exc:
        console.line(f"sandbox: failed to start: {type(exc).__name__}: {exc}")
        code = EXIT_FAILED
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sandbox.stop()
        console.line("sandbox: stopped")
    sys.stdout.flush()
    return code
