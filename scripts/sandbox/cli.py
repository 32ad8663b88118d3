"""``python -m sandbox``: options, signals, exit codes."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

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


SWITCH = None  # a flag without a value (store_true); NEGATED names those Options negate
# (flag, its parser, a tuple of choices or SWITCH, help): the dest names the Options field,
# whose default is the option's. Grouped as ``--help`` shows them.
Argument = tuple[str, Callable[[str], Any] | tuple[str, ...] | None, str]
ARGUMENTS: tuple[tuple[str | None, tuple[Argument, ...]], ...] = (
    (
        "API gateway",
        (
            ("--port", _port, "port of the local API on 127.0.0.1"),
            (
                "--api-key",
                str,
                "API key clients must send in x-api-key (default: a new random key, printed)",
            ),
            ("--quiet-requests", SWITCH, "do not print a line per API request"),
        ),
    ),
    (
        "sample data and replay",
        (
            ("--seed", int, "seed of the generated data"),
            ("--items", _positive_int, "catalogue size"),
            ("--users", _positive_int, "number of users"),
            ("--history", _positive_int, "past interactions the model learns"),
            (
                "--rate",
                _non_negative,
                "generated Segment events sent per second with segment-analytics-python "
                "(0: none; send your own)",
            ),
            ("--events", int, "stop replaying after this many events (0: never)"),
        ),
    ),
    (
        "Segment's Amazon Kinesis destination (emulated)",
        (
            (
                "--duplicate-rate",
                _probability,
                "probability that a delivered record is delivered again (at least once)",
            ),
            (
                "--use-message-id",
                SWITCH,
                "partition key messageId instead of userId || anonymousId (useMessageId)",
            ),
        ),
    ),
    (
        "Kinesis event source mapping (update_traits)",
        (
            ("--shards", _positive_int, "shards of the stream"),
            ("--batch-size", _positive_int, "records per invocation (1..10000)"),
            (
                "--batching-window",
                _non_negative,
                "seconds to wait to fill a batch (0..300; 0: invoke as soon as records arrive)",
            ),
            (
                "--max-retries",
                int,
                "retries of a failing batch before its on-failure record is sent (-1: unbounded)",
            ),
            (
                "--retry-delay",
                _non_negative,
                "first retry delay in seconds; doubles per retry, at most 5 s",
            ),
            (
                "--poll-interval",
                _non_negative,
                "seconds between GetRecords calls on an idle shard (Lambda: about 1)",
            ),
            (
                "--starting-position",
                ("TRIM_HORIZON", "LATEST"),
                "where the poller starts reading each shard",
            ),
        ),
    ),
    (
        "functions",
        (
            (
                "--num-results",
                int,
                "NUM_RESULTS for both functions (default: unset, the functions' default 25)",
            ),
            (
                "--profile-api-share",
                _non_negative,
                "SEGMENT_PROFILE_API_RPS of update_traits: its container's Profile API requests/s "
                "(default: unset, the split below: 90%% of the emulator's limit, half of it "
                "without the store; e.g. 4, Terraform's share per container for its defaults)",
            ),
            (
                "--no-filter",
                SWITCH,
                "do not set PERSONALIZE_FILTER_ARN (the emulator's exclude-purchased filter): "
                "purchased items are then removed by the handlers alone (profile trait and the "
                "batch's own purchases)",
            ),
        ),
    ),
    (
        "user-state store (DynamoDB in moto; `scripts/bundle seed`)",
        (
            (
                "--user-state",
                ("on", "off"),
                "the table, the refresh queue and its poller into update_traits, and "
                "USER_STATE_TABLE for both functions (on, as Terraform deploys it); off: "
                "both read the Profile API as before the store",
            ),
            (
                "--min-refresh-interval",
                int,
                "MIN_REFRESH_INTERVAL_S of update_traits (0..900; 0: refresh every batch)",
            ),
        ),
    ),
    (
        "batch backfill (batch_traits; `scripts/bundle backfill`)",
        (
            (
                "--no-batch",
                SWITCH,
                "leave out the batch backfill (bucket, chunk queue, batch_traits poller)",
            ),
            (
                "--chunk-bytes",
                _positive_int,
                "CHUNK_BYTES of batch_traits: small, so the 200 users make several chunks",
            ),
            (
                "--chunk-visibility-timeout",
                _positive_int,
                "visibility timeout (s) of the chunk queue: how soon a failed chunk is retried",
            ),
        ),
    ),
    (
        "emulator ports (0: any free port)",
        (
            ("--moto-port", _port, "moto server"),
            ("--personalize-port", _port, "Personalize emulator"),
            ("--segment-port", _port, "Segment emulator"),
        ),
    ),
    (
        None,  # the parser's own options
        (
            (
                "--state-dir",
                Path,
                "where logs (handlers.log, moto.log) and state.json (URLs, key, pids) are written",
            ),
            ("--prefix", str, "name prefix of the created resources"),
            (
                "--totals-interval",
                _non_negative,
                "seconds between console totals lines (0: none; the summary at exit stays)",
            ),
        ),
    ),
)
# The switches whose Options field is their negation.
NEGATED = {"no_filter": "use_filter", "quiet_requests": "log_requests", "no_batch": "batch"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=(
            "Run the whole system locally: moto's server (Kinesis, SSM, SQS, DynamoDB) as a child "
            "process, the Personalize and Segment emulators trained on a generated history, a "
            "local API gateway in front of the unmodified recommendations handler, and a "
            "Kinesis event-source poller feeding the unmodified update_traits handler. The "
            "Segment emulator delivers what it accepts to the stream as Segment's Amazon Kinesis "
            "destination does; generated events are sent to it with segment-analytics-python, "
            "and any Segment library can send its own. Stops on Ctrl-C or SIGTERM."
        ),
        formatter_class=_Help,
    )
    for title, arguments in ARGUMENTS:
        group = p if title is None else p.add_argument_group(title)
        for flag, kind, text in arguments:
            if kind is SWITCH:
                group.add_argument(flag, action="store_true", help=text)
                continue
            default = getattr(DEFAULTS, flag.removeprefix("--").replace("-", "_"))
            if isinstance(kind, tuple):
                group.add_argument(flag, choices=kind, default=default, help=text)
            else:
                group.add_argument(flag, type=kind, default=default, help=text)
    return p


def options_from(args: argparse.Namespace) -> Options:
    """The options of the parsed arguments: each by its name, the switches in NEGATED
    negated."""
    values: dict[str, Any] = {
        NEGATED.get(name, name): not value if name in NEGATED else value
        for name, value in vars(args).items()
    }
    return Options(**values)


def _validate(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.batch_size > 10_000:
        p.error("--batch-size must be 1..10000 (Lambda's limit for Kinesis)")
    if args.batching_window > 300:
        p.error("--batching-window must be 0..300 seconds")
    if not -1 <= args.max_retries <= 10_000:
        p.error("--max-retries must be -1..10000")
    if not 0 <= args.min_refresh_interval <= 900:
        p.error("--min-refresh-interval must be 0..900 seconds (SQS's longest delay)")
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
