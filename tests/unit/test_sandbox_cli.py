"""``python -m sandbox``'s options: each maps to one field of sandbox.runner.Options, whose
defaults are the command line's."""

from __future__ import annotations

from pathlib import Path

from sandbox.cli import options_from, parser
from sandbox.runner import Options


def test_no_arguments_give_the_declared_defaults() -> None:
    assert options_from(parser().parse_args([])) == Options()


def test_every_option_reaches_its_field() -> None:
    args = parser().parse_args(
        [
            "--port", "9000", "--api-key", "k" * 20, "--quiet-requests", "--seed", "3",
            "--items", "10", "--users", "20", "--history", "30", "--rate", "0", "--events", "4",
            "--duplicate-rate", "0.5", "--use-message-id", "--shards", "2", "--batch-size", "5",
            "--batching-window", "0.2", "--max-retries", "-1", "--retry-delay", "0.1",
            "--poll-interval", "0.3", "--starting-position", "LATEST", "--num-results", "7",
            "--no-filter", "--no-batch", "--chunk-bytes", "2048", "--chunk-visibility-timeout",
            "2", "--moto-port", "9001", "--personalize-port", "9002", "--segment-port", "9003",
            "--state-dir", "/tmp/sb", "--prefix", "p", "--totals-interval", "0",
            "--user-state", "on", "--min-refresh-interval", "0", "--profile-api-share", "4",
        ]
    )  # fmt: skip
    assert options_from(args) == Options(
        port=9000, api_key="k" * 20, log_requests=False, seed=3, items=10, users=20,
        history=30, rate=0.0, events=4, duplicate_rate=0.5, use_message_id=True, shards=2,
        batch_size=5, batching_window=0.2, max_retries=-1, retry_delay=0.1, poll_interval=0.3,
        starting_position="LATEST", num_results=7, use_filter=False, batch=False,
        chunk_bytes=2048, chunk_visibility_timeout=2, moto_port=9001, personalize_port=9002,
        segment_port=9003, state_dir=Path("/tmp/sb"), prefix="p", totals_interval=0.0,
        user_state="on", min_refresh_interval=0, profile_api_share=4.0,
    )  # fmt: skip
