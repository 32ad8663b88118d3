"""Argument parsing: one parser per subcommand, the target options on every one of them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bundle_cli import backfill, commands, seed
from bundle_cli.target import (
    DEFAULT_STATE_DIR,
    DEFAULT_TERRAFORM_DIR,
    Target,
    TargetError,
    from_sandbox,
    from_terraform,
)

DESCRIPTION = """\
Operate a Segment x Amazon Personalize deployment: --sandbox targets a running
`make sandbox` (.sandbox/state.json); otherwise the stack deployed from terraform/
(`terraform output -json`, AWS credentials from the usual chain)."""


def _target_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("target")
    group.add_argument(
        "--sandbox",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="target the running sandbox (.sandbox/state.json) instead of the deployed stack",
    )
    group.add_argument(
        "--state-dir",
        type=Path,
        default=default,
        help=f"sandbox state folder ({DEFAULT_STATE_DIR})",
    )
    group.add_argument(
        "--terraform-dir",
        type=Path,
        default=default,
        help=f"folder to run `terraform output -json` in ({DEFAULT_TERRAFORM_DIR})",
    )


def _command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    help_text: str,
    run: Callable[..., int],
) -> argparse.ArgumentParser:
    """A subcommand that takes the target options and runs ``run``."""
    p = subparsers.add_parser(name, help=help_text, description=help_text)
    _target_options(p, suppress=True)
    p.set_defaults(run=run)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bundle", description=DESCRIPTION)
    _target_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    command = partial(_command, sub)

    p = command(
        "smoke",
        "Put one test event on the stream as Segment's destination would and wait (bounded) "
        "until the user's trait appears on the profile, or say which stage stalled.",
        commands.smoke,
    )
    p.add_argument("--user", help="user id (default: a fresh bundle-smoke-... id)")
    p.add_argument(
        "--item", default="bundle-smoke-item", help="item id in the event's sku/product_id"
    )
    p.add_argument("--event", default="Product Viewed", help="a TRACKED_EVENTS name")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait (default 120)")
    p.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)

    p = command(
        "call", "Call GET /recommendations with the API key and print the JSON.", commands.call
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="userId: recommendations for a user")
    who.add_argument("--item", help="itemId: related items")
    p.add_argument("--num-results", type=int, help="numResults (1-500)")

    dlq = sub.add_parser(
        "dlq",
        help="Dead-lettered records (bad data) with their reasons: list, show, redrive, purge.",
        description="Dead-lettered records: records update_traits can never process as they are.",
    )
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    dlq_command = partial(_command, dlq_sub)

    p = dlq_command(
        "list",
        "List dead-lettered records: message id, time, shard, sequence, reason.",
        commands.dlq_list,
    )
    p.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    p.add_argument("--json", action="store_true", help="print the message bodies as JSON")
    p = dlq_command(
        "show", "Show one dead-lettered record with its data decoded.", commands.dlq_show
    )
    p.add_argument("message_id")
    p = dlq_command(
        "redrive",
        "Put dead-lettered records back on the stream (after fixing their cause) and delete them.",
        commands.dlq_redrive,
    )
    p.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID")
    p.add_argument("--all", action="store_true", help="every message in the queue")
    p = dlq_command("purge", "Delete every dead-lettered record for good.", commands.dlq_purge)
    p.add_argument("--yes", action="store_true", help="really delete them")

    p = command(
        "replay-failed",
        "Re-put the records of each failed batch (on-failure queue: shard and sequence range) "
        "while the stream still holds them; say which ranges have expired.",
        commands.replay_failed,
    )
    p.add_argument("--limit", type=int, default=1000, help="at most this many ranges")
    p.add_argument("--dry-run", action="store_true", help="only say what would be replayed")
    p.add_argument(
        "--include-partial",
        action="store_true",
        help="also replay what is left of a partly expired range (its message is kept)",
    )

    bf = sub.add_parser(
        "backfill",
        help="Batch backfill of the recommended trait on every profile: start, status, report.",
        description="Batch backfill (the batch_traits module): a Personalize batch inference "
        "job over a users file, written back to Segment chunk by chunk.",
    )
    bf_sub = bf.add_subparsers(dest="backfill_command", required=True, metavar="ACTION")

    def bf_command(name: str, help_text: str, run: Callable[..., int]) -> argparse.ArgumentParser:
        p = bf_sub.add_parser(name, help=help_text, description=help_text)
        _target_options(p, suppress=True)
        p.set_defaults(run=run)
        return p

    p = bf_command(
        "start",
        "Start a batch inference job on the documented users file (input/users.json), or "
        "upload --users-file first; prints the job name.",
        backfill.start,
    )
    p.add_argument(
        "--users-file",
        type=Path,
        help='JSON lines of {"userId": "..."}, uploaded to input/<job>/users.json',
    )
    p.add_argument("--job-name", help="the job's name (default <deployment>-<UTC time>)")
    p.add_argument("--json", action="store_true", help='print {"jobName", "jobArn"} as JSON')
    for name, help_text, run in (
        (
            "status",
            "The job's state, then chunks done / total and users written (a progress bar "
            "on a terminal); --wait follows it to the end and prints the summary.",
            backfill.status,
        ),
        (
            "report",
            "The job's report: users written, skipped, failed by reason.",
            backfill.report,
        ),
    ):
        p = bf_command(name, help_text, run)
        p.add_argument("job", nargs="?", help="job name (default: the latest job of this bucket)")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        if name == "status":
            p.add_argument("--wait", action="store_true", help="follow the job until it ends")
            p.add_argument(
                "--timeout", type=float, default=3600.0, help="--wait at most this long (s)"
            )
            p.add_argument("--poll", type=float, default=1.0, help="seconds between checks")

    p = command(
        "seed",
        "Pre-seed the user-state store for a migration: read each user's purchased trait "
        "from the Profile API at a bounded rate and merge it into the store; resumable "
        "(users already seeded are skipped).",
        seed.seed,
    )
    p.add_argument(
        "--users-file",
        type=Path,
        required=True,
        help='JSON lines of {"userId": "..."} (the format backfill start --users-file takes)',
    )
    p.add_argument(
        "--rps",
        type=float,
        help="Profile API requests per second (default: the deployment's budget, at most "
        f"{seed.DEFAULT_MAX_RPS:g}; more than {seed.SPACE_LIMIT_RPS:g} is refused)",
    )
    p.add_argument("--force", action="store_true", help="also seed users already seeded")
    p.add_argument(
        "--workers",
        type=int,
        default=seed.DEFAULT_WORKERS,
        help=f"reads in flight (default {seed.DEFAULT_WORKERS}; the rate bounds them all)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    p = command(
        "set-secrets",
        "Store the Segment write key and Profile API token in their SSM SecureStrings, read "
        "from a hidden prompt or stdin (never from arguments or the environment).",
        commands.set_secrets,
    )
    p.add_argument("--write-key", action="store_true", help="only the write key")
    p.add_argument("--profile-token", action="store_true", help="only the Profile API token")
    p.add_argument(
        "--stdin",
        action="store_true",
        help="read the values from stdin, one a line (write key first), instead of prompting",
    )
    return parser


def resolve(args: argparse.Namespace) -> Target:
    if getattr(args, "sandbox", False):
        return from_sandbox(getattr(args, "state_dir", None) or DEFAULT_STATE_DIR)
    return from_terraform(getattr(args, "terraform_dir", None) or DEFAULT_TERRAFORM_DIR)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        target = resolve(args)
        return int(args.run(target, args))
    except TargetError as exc:
        print(f"bundle: {exc}", file=sys.stderr)
        return 2
    except backfill.BackfillError as exc:
        print(f"bundle backfill: {exc}", file=sys.stderr)
        return 1
    except seed.SeedError as exc:
        print(f"bundle seed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bundle: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        code = (
            getattr(exc, "response", {}).get("Error", {}).get("Code")
            if hasattr(exc, "response")
            else None
        )
        print(f"bundle: {code or type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
