"""Time in the batch write-back, on fakes with a fake clock (batch_fakes.py): the records of
one SQS batch share a deadline, a chunk's last receive is recorded before it starts, and
what may still run after the deadline fits in TIME_MARGIN_MS."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from backfill import chunks, handler, runtime, settings, writer
from batch_fakes import BUCKET, Context, World, container, event
from batch_fakes import settings as batch_settings

from common import aws
from common.profiles import ProfileError
from common.tracking import TrackingError


class BudgetedProfiles:
    """The Profile API client as the writer sees it: no turn once the deadline has passed
    (the real client's limiter answers kind "budget" then), nobody has purchases."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.reads = 0

    def traits(
        self, user_id: str, include: list[str], *, deadline: float | None = None
    ) -> dict[str, Any]:
        if deadline is not None and self.world.clock.now >= deadline:
            raise ProfileError("budget", "no turn before the deadline")
        self.reads += 1
        return {}


def _two_chunks(world: World, users_each: int) -> list[chunks.ChunkMessage]:
    world.output("first", [f"a-{n}" for n in range(users_each)])
    world.output("second", [f"b-{n}" for n in range(users_each)])
    return world.sqs.take()


@pytest.mark.parametrize("profile_exclusion", [False, True])
def test_a_record_whose_turn_comes_after_the_deadline_goes_back_unchanged(
    monkeypatch: pytest.MonkeyPatch, profile_exclusion: bool
) -> None:
    world = World(batch_settings())
    if profile_exclusion:
        world.ports.profiles = BudgetedProfiles(world)
    first, second = _two_chunks(world, 400)  # 400 users at 5/s: longer than the deadline
    state, flushed = container(world, monkeypatch)
    # The second record arrives on what would be its LAST receive: before, it failed its
    # first line for lack of time ("profile api budget"), and was recorded failed with
    # none of its users written.
    result = handler.handle_with(state, event(first, second, receives=3), Context(30_000))
    assert result == {"batchItemFailures": []}  # neither spends a receive
    continuation = chunks.parse_chunk(json.loads(world.sqs.bodies[0]))
    assert (continuation.job, continuation.start > 0) == ("first", True)
    assert world.sqs.bodies[1:] == [second.body()]  # back unchanged, as a new message
    assert not any(u.startswith("b-") for u in world.tracking.users())  # never started
    # No state of its own, so no failure in any report, and nothing sent after the deadline
    # but the first record's one late batch.
    assert not [k for k in world.s3.objects if k.startswith("state/second/") and "/chunks/" in k]
    deadline = 30.0 - 1.0  # Context's remaining time less TIME_MARGIN_MS
    assert len([t for t in world.tracking.started if t >= deadline]) <= 1
    assert flushed[-1]["RecordsDeferred"] == 1
    # Both finish later, each user written once.
    world.run()
    users = world.tracking.users()
    assert sorted(users) == sorted({*users}) and len(users) == 800
    assert world.s3.json(chunks.report_key("second"))["status"] == "complete"


def test_a_record_that_cannot_do_one_line_in_time_goes_back_instead_of_failing() -> None:
    world = World(batch_settings(TIME_MARGIN_MS="0"))
    world.output("job", [f"u-{n}" for n in range(3)])
    (message,) = world.sqs.take()
    # The events/s bucket is empty and its next batch is due after this deadline.
    world.ports.bucket.acquire(world.clock.now, 5)
    deadline = world.clock.now + 0.1
    outcome = writer.process(message, world.settings, world.ports, deadline, deferrable=True)
    assert (outcome.status, outcome.handoff) == ("deferred", message)
    assert outcome.counts.values["lines"] == 0 and world.tracking.attempts == 0
    # The first record of a batch has had the whole budget: failing is its own fault.
    with pytest.raises(writer.ChunkFailed):
        writer.process(message, world.settings, world.ports, deadline)


def test_the_last_receive_is_recorded_failed_before_it_starts_so_a_kill_leaves_a_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World(batch_settings())
    world.output("job", [f"u-{n}" for n in range(3)])
    (message,) = world.sqs.take()
    state, _ = container(world, monkeypatch)

    class Killed(BaseException):
        """The Lambda runtime ending the invocation (timeout, out of memory)."""

    def killed(attempt: int) -> None:
        raise Killed

    world.tracking.refuse = killed
    with pytest.raises(Killed):
        handler.handle_with(state, event(message, receives=3), Context())  # maxReceiveCount 3
    saved = world.s3.json(message.state_key())
    assert (saved["status"], saved["reason"]) == ("failed", writer.LAST_RECEIVE_REASON)
    report = world.s3.json(chunks.report_key("job"))
    assert report["status"] == "partial"
    assert [(r["start"], r["end"]) for r in report["failed_ranges"]] == [(0, message.end)]


def test_a_last_receive_that_succeeds_overwrites_its_failed_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World(batch_settings())
    world.output("job", [f"u-{n}" for n in range(3)])
    (message,) = world.sqs.take()
    state, _ = container(world, monkeypatch)
    assert handler.handle_with(state, event(message, receives=3), Context()) == {
        "batchItemFailures": []
    }
    assert world.s3.json(message.state_key())["status"] == "done"
    assert world.s3.json(chunks.report_key("job"))["status"] == "complete"


def test_an_earlier_receive_records_nothing_before_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World(batch_settings())
    world.output("job", ["u-1"])
    (message,) = world.sqs.take()
    state, _ = container(world, monkeypatch)

    def refused(attempt: int) -> None:
        raise TrackingError("rejected", "HTTP 400", 400)

    world.tracking.refuse = refused
    result = handler.handle_with(state, event(message, receives=2), Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert message.state_key() not in world.s3.objects  # SQS retries it; nothing to report
    result = handler.handle_with(state, event(message, receives=3), Context())
    saved = world.s3.json(message.state_key())
    assert (saved["status"], saved["reason"]) == ("failed", "segment rejected: HTTP 400")


def test_a_chunk_that_ends_its_lines_after_the_deadline_records_itself_later() -> None:
    world = World(batch_settings())
    world.output("job", [f"u-{n}" for n in range(7)])  # a batch of 5, then one of 2
    (message,) = world.sqs.take()
    world.tracking.latency_s = 0.4  # the last send ends past the deadline
    deadline = world.clock.now + 0.5
    outcome = world.process(message, deadline)
    assert (outcome.status, outcome.continued_at) == ("continued", message.end)
    assert world.tracking.users() == [f"u-{n}" for n in range(7)]
    # No S3 call of the bookkeeping after the deadline: an empty continuation does it.
    assert [c for c in world.s3.calls if c[2] >= deadline] == []
    world.run()
    assert world.tracking.attempts == 2  # the continuation sends nothing again
    report = world.s3.json(chunks.report_key("job"))
    assert (report["status"], report["lines"], report["users_written"]) == ("complete", 7, 7)


def test_after_a_send_that_runs_past_the_deadline_no_second_send_starts() -> None:
    world = World(batch_settings())
    users = [f"u-{n}" for n in range(8)]
    world.output("job", users)
    (message,) = world.sqs.take()
    world.tracking.latency_s = 0.5
    deadline = world.clock.now + 0.3  # the first full batch's send straddles it
    outcome = world.process(message, deadline)
    assert outcome.status == "continued"
    assert [t for t in world.tracking.started if t >= deadline] == []
    world.run()
    assert world.tracking.users() == users  # the queued lines went to the continuation
    assert world.s3.json(chunks.report_key("job"))["lines"] == 8


# -- what may run after the deadline -----------------------------------------------------------


def _botocore_call_s(policy: aws.ClientPolicy) -> float:
    """One call of a client built as the function builds it, every attempt timing out,
    with botocore's own longest backoff before each retry."""
    from botocore.retries.standard import ExponentialBackoff, RetryContext

    client = aws._new_client("s3", policy)
    config = client.meta.config
    assert config.retries["mode"] == "standard"
    attempts = config.retries["total_max_attempts"]
    assert attempts == policy.max_attempts + 1  # max_attempts is retries after the first call

    class Throttled:
        def is_throttling_error_from_context(self, context: RetryContext) -> bool:
            return True  # the longest backoff: base 1 s

    backoff = ExponentialBackoff(random=lambda: 1.0, throttling_detector=Throttled())
    waits = [
        backoff.delay_amount(RetryContext(attempt_number=n, http_response=None))
        for n in range(1, attempts)
    ]
    return attempts * (config.connect_timeout + config.read_timeout) + sum(waits)


def test_what_may_run_after_the_deadline_fits_in_the_default_time_margin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)  # a client is built, never called
    for policy in (runtime.S3_POLICY, runtime.SQS_POLICY, runtime.SSM_POLICY):
        assert runtime.call_s(policy) == pytest.approx(_botocore_call_s(policy))
    # A Segment send: two tries (a failed connection or send is retried once), each up to
    # the connect and read timeouts; the Profile API read likewise with its own timeout.
    http = runtime.HTTP_POLICY
    assert (http.retries, http.status_retries) == (1, 0)
    send = 2 * (http.connect_timeout + http.read_timeout) + http.backoff_factor * 1.5
    profile = 2 * sum(runtime.PROFILE_TIMEOUT) + http.backoff_factor * 1.5
    assert runtime.http_s(http) == pytest.approx(send)
    assert runtime.http_s(replace(http, retries=1), runtime.PROFILE_TIMEOUT) == pytest.approx(
        profile
    )
    in_flight = max(
        _botocore_call_s(runtime.S3_POLICY),
        _botocore_call_s(runtime.SQS_POLICY),
        _botocore_call_s(runtime.SSM_POLICY),
        send,
        profile,
        writer.LATE_TOKEN_WAIT_S + send,  # or the one late send: its token wait and one try
    )
    worst = in_flight + _botocore_call_s(runtime.SQS_POLICY)  # then the hand-over
    assert runtime.worst_after_deadline_s() == pytest.approx(worst)
    assert worst <= settings.DEFAULT_TIME_MARGIN_MS / 1000
    assert settings.load(_minimal_env()).time_margin_ms == settings.DEFAULT_TIME_MARGIN_MS


def _minimal_env() -> dict[str, str]:
    return {
        "PERSONALIZE_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/c",
        "BATCH_BUCKET": BUCKET,
        "BATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/r",
        "CHUNK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/q",
        "SEGMENT_WRITE_KEY_PARAMETER": "/p/write-key",
    }
