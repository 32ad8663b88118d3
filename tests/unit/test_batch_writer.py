"""The chunk worker and the SQS handler on in-memory S3, SQS and Tracking fakes with a fake
clock (batch_fakes.py): several output files per job, a re-uploaded output, a lost report,
one user's Profile API refusal, metrics of a continuation, time-stopped batches, the
events/s bucket, and what a chunk reads of its file."""

from __future__ import annotations

from typing import Any

import pytest
from backfill import chunks, handler, parser, writer
from batch_fakes import (
    Context,
    FakeSQS,
    World,
    container,
    error,
    event,
    line,
    settings,
)
from botocore.exceptions import ClientError

from common.profiles import ProfileError
from common.tracking import TrackingError


@pytest.fixture
def world() -> World:
    return World(settings())


def test_every_output_file_of_a_job_is_written_and_reported() -> None:
    # Personalize treats the input path as a prefix: one job, several .out files.
    world = World(settings(CHUNK_BYTES="1024"))  # several chunks per file
    first = [f"a-{n}" for n in range(30)]
    second = [f"b-{n}" for n in range(40)]
    key_a = world.output("job", first, "part-1.out")
    key_b = world.output("job", second, "part-2.out")
    assert chunks.plan_key("job", key_a) != chunks.plan_key("job", key_b)
    world.run()
    assert sorted(world.tracking.users()) == sorted(first + second)
    report = world.s3.json(chunks.report_key("job"))
    plans = [world.s3.json(chunks.plan_key("job", k)) for k in (key_a, key_b)]
    assert report["status"] == "complete"
    assert report["users_written"] == len(first) + len(second)
    assert report["chunks_total"] == report["chunks_done"] == sum(p["chunks"] for p in plans)
    assert [s["key"] for s in report["sources"]] == [key_a, key_b]
    assert report["source"] is None


def test_a_reuploaded_output_is_written_again_not_taken_for_a_duplicate(world: World) -> None:
    world.output("job", [f"old-{n}" for n in range(20)])
    world.run()
    newer = [f"new-{n}" for n in range(20)]
    key = world.output("job", newer)  # same key, another object (ETag)
    world.run()
    assert set(newer) <= set(world.tracking.users())
    report = world.s3.json(chunks.report_key("job"))
    assert report["sources"][0]["etag"] == world.s3.objects[key][1]
    assert report["users_written"] == len(newer)  # the new object's chunks only


def test_keys_of_the_former_layout_do_not_hold_the_report_back(world: World) -> None:
    # state/<job>/plan.json and state/<job>/chunks/<i>.json from before (a job in flight).
    world.s3.put("state/job/plan.json", b"{}")
    world.s3.put("state/job/chunks/0.json", b'{"status": "done"}')
    world.output("job", ["u-1"])
    world.run()
    assert world.s3.json(chunks.report_key("job"))["users_written"] == 1


def test_a_report_lost_after_the_last_chunk_is_written_by_its_retry(world: World) -> None:
    world.output("job", [f"u-{n}" for n in range(5)])
    (message,) = world.sqs.take()
    world.s3.failing_puts["reports/"] = 1
    with pytest.raises(ClientError):
        writer.process(message, world.settings, world.ports, 1e6)
    assert chunks.report_key("job") not in world.s3.objects
    again = writer.process(message, world.settings, world.ports, 1e6)
    assert (again.status, again.report_written) == ("duplicate", True)
    assert world.s3.json(chunks.report_key("job"))["users_written"] == 5
    # Once it is there, a further duplicate leaves it alone.
    assert writer.process(message, world.settings, world.ports, 1e6).report_written is False


def test_one_users_profile_api_refusal_counts_profile_failed_and_the_chunk_goes_on(
    world: World,
) -> None:
    class Profiles:
        def traits(
            self, user_id: str, include: list[str], *, deadline: float | None = None
        ) -> dict[str, Any]:
            if user_id == "odd/user":
                raise ProfileError("rejected", "HTTP 400")
            return {}

    world.ports.profiles = Profiles()
    world.output("job", ["u-1", "odd/user", "u-2"])
    (outcome,) = world.run()
    assert outcome.status == "done"
    assert world.tracking.users() == ["u-1", "u-2"]
    report = world.s3.json(chunks.report_key("job"))
    assert report["by_reason"][chunks.PROFILE_FAILED] == 1
    assert report["users_failed"] == 1
    assert report["lines"] == 3


def test_a_retry_after_past_the_deadline_continues_from_the_unsent_batch(world: World) -> None:
    users = [f"u-{n}" for n in range(12)]  # batches of 5 (SEGMENT_EVENTS_PER_S)
    world.output("job", users)

    def second_request_throttled(attempt: int) -> None:
        if attempt == 2:
            raise TrackingError("unavailable", "HTTP 429", 429, retry_after=30.0)

    world.tracking.refuse = second_request_throttled
    (message,) = world.sqs.take()
    outcome = world.process(message, world.clock.now + 10)
    assert outcome.status == "continued"
    assert world.tracking.users() == users[:5]
    assert outcome.continued_at == len(b"".join(line(u) for u in users[:5]))
    assert outcome.counts.values["lines"] == 5  # the unsent batch is the continuation's
    assert outcome.counts.values[chunks.SEGMENT_FAILED] == 0
    world.run()
    assert world.tracking.users() == users  # each user once
    report = world.s3.json(chunks.report_key("job"))
    assert (report["status"], report["lines"], report["users_written"]) == ("complete", 12, 12)


def test_no_budget_token_before_the_deadline_continues_instead_of_failing() -> None:
    world = World(settings(TIME_MARGIN_MS="0"))
    users = [f"u-{n}" for n in range(15)]
    world.output("job", users)
    (message,) = world.sqs.take()
    # 5 events/s in batches of 5, the bucket full: the first batch leaves at once, the
    # second one's tokens are due 1 s later, past this 0.5 s deadline.
    outcome = world.process(message, world.clock.now + 0.5)
    assert outcome.status == "continued"
    assert world.tracking.users() == users[:5]
    assert outcome.counts.values["lines"] == 5
    world.run()
    assert world.tracking.users() == users


def test_an_attempt_that_could_not_send_its_first_batch_fails(world: World) -> None:
    world.output("job", [f"u-{n}" for n in range(3)])

    def throttled(attempt: int) -> None:
        raise TrackingError("unavailable", "HTTP 429", 429, retry_after=30.0)

    world.tracking.refuse = throttled
    (message,) = world.sqs.take()
    with pytest.raises(writer.ChunkFailed) as failed:
        writer.process(message, world.settings, world.ports, world.clock.now + 10)
    assert failed.value.counts.values[chunks.SEGMENT_FAILED] == 3
    assert world.sqs.bodies == []  # no continuation of the very same range


def test_a_persistent_segment_error_still_fails_the_chunk(world: World) -> None:
    world.output("job", [f"u-{n}" for n in range(12)])

    def failing_after_one(attempt: int) -> None:
        if attempt > 1:
            raise TrackingError("unavailable", "HTTP 503", 503)

    world.tracking.refuse = failing_after_one
    (message,) = world.sqs.take()
    with pytest.raises(writer.ChunkFailed) as failed:
        writer.process(message, world.settings, world.ports, world.clock.now + 100)
    assert "503" in failed.value.reason
    assert world.tracking.attempts == 1 + writer.SEND_ATTEMPTS
    assert world.sqs.bodies == []


def test_a_send_after_the_deadline_gets_one_attempt(world: World) -> None:
    world.output("job", [f"u-{n}" for n in range(3)])

    def throttled(attempt: int) -> None:
        raise TrackingError("unavailable", "HTTP 429", 429, retry_after=0.0)

    world.tracking.refuse = throttled
    (message,) = world.sqs.take()
    with pytest.raises(writer.ChunkFailed):
        writer.process(message, world.settings, world.ports, world.clock.now - 1)
    assert world.tracking.attempts == 1


def test_the_writer_keeps_to_the_events_per_second_bucket() -> None:
    world = World(settings(CHUNK_BYTES="1024"))
    users = [f"u-{n}" for n in range(60)]
    world.output("job", users)
    world.run()
    assert world.tracking.users() == users
    rate = world.settings.events_per_s
    burst = writer.max_batch_messages(rate)
    sent = 0
    for at, batch in world.tracking.sent:
        sent += len(batch)
        # A token bucket: at most its capacity plus rate x elapsed, by every send.
        assert sent <= burst + rate * at + 1e-9, (at, sent)
    last = world.tracking.sent[-1][0]
    assert last >= (len(users) - burst) / rate - 1e-9


# -- the handler -----------------------------------------------------------------------------


def test_a_records_unexpected_error_fails_that_record_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.output("one", ["u-1"])
    world.output("two", ["u-2"])
    first, second = world.sqs.take()
    state, _ = container(world, monkeypatch)
    world.s3.failing_gets[first.state_key()] = 1  # the duplicate check
    result = handler.handle_with(state, event(first, second), Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert world.tracking.users() == ["u-2"]


def test_on_the_last_receive_a_continuation_not_queued_leaves_the_chunk_failed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.output("job", [f"u-{n}" for n in range(3)])
    (message,) = world.sqs.take()
    state, _ = container(world, monkeypatch)

    class BrokenSQS(FakeSQS):
        def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> Any:
            raise error("InternalError", "SendMessageBatch")

    world.ports.sqs = BrokenSQS()
    # No time left from the start: one line, then a continuation that cannot be queued.
    result = handler.handle_with(state, event(message, receives=3), Context(1000))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert world.tracking.users() == ["u-0"]
    # The state recorded at the start of the last receive stands, and the report names it.
    saved = world.s3.json(message.state_key())
    assert (saved["status"], saved["reason"]) == ("failed", writer.LAST_RECEIVE_REASON)
    report = world.s3.json(chunks.report_key("job"))
    assert report["status"] == "partial"
    assert report["failed_ranges"][0]["reason"] == writer.LAST_RECEIVE_REASON


def test_a_continuations_metrics_count_only_its_own_part(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.output("job", ["u-1", "u-2"])
    (message,) = world.sqs.take()
    carried = chunks.Counts()
    carried.add("lines", 500)
    carried.add(chunks.WRITTEN, 480)
    carried.add(chunks.parser.ERROR_LINE, 20)
    continued = message.continuation(message.start, carried)
    state, flushed = container(world, monkeypatch)
    assert handler.handle_with(state, event(continued), Context()) == {"batchItemFailures": []}
    (metrics,) = flushed
    assert metrics["UsersWritten"] == 2
    assert metrics["UsersFailed_failed_error_line"] == 0
    report = world.s3.json(chunks.report_key("job"))
    assert report["users_written"] == 482  # the report does include what was carried


# -- a re-uploaded output file -----------------------------------------------------------------


@pytest.mark.parametrize("versioned", [False, True])
def test_a_chunk_of_a_replaced_object_cannot_undo_the_new_objects_state(
    monkeypatch: pytest.MonkeyPatch, versioned: bool
) -> None:
    world = World(settings(CHUNK_BYTES="1024"))
    world.s3.versioned = versioned
    world.output("job", [f"old-{n}" for n in range(30)])
    old = world.sqs.take()
    newer = [f"new-{n}" for n in range(30)]
    key = world.output("job", newer)  # the same key: a corrected file, another object
    first_new, *rest_new = world.sqs.take()
    assert len(old) == len(rest_new) + 1 > 1
    world.process(first_new, 1e6)
    assert world.s3.json(first_new.state_key())["status"] == "done"
    # The old object's chunk 0, on its last receive, after the new chunk 0 was recorded.
    state, _ = container(world, monkeypatch)
    result = handler.handle_with(state, event(old[0], receives=3), Context())
    assert result == {"batchItemFailures": []}  # obsolete, dropped: no dead letter
    assert world.s3.json(first_new.state_key())["status"] == "done"
    for message in rest_new:
        world.process(message, 1e6)
    report = world.s3.json(chunks.report_key("job"))  # before: never written
    assert (report["status"], report["users_written"]) == ("complete", len(newer))
    (source,) = report["sources"]
    assert source["etag"] == world.s3.objects[key][1]
    assert not any(u.startswith("old-") for u in world.tracking.users())


def test_a_finished_chunk_of_a_replaced_object_writes_no_report(world: World) -> None:
    world.output("job", ["u-1", "u-2"])
    (old,) = world.sqs.take()
    world.process(old, 1e6)
    world.output("job", ["u-1", "u-2", "u-3"])  # replaced; its chunk is still to run
    world.s3.objects.pop(chunks.report_key("job"))
    # A redelivery of the old chunk finds its own state done, and the report missing: the
    # key now holds another object, so it is not that object's report to write.
    assert world.process(old, 1e6).report_written is False
    assert chunks.report_key("job") not in world.s3.objects
    world.run()
    assert world.s3.json(chunks.report_key("job"))["users_written"] == 3


@pytest.mark.parametrize("versioned", [False, True])
def test_a_corrected_reupload_gets_new_message_ids_and_a_redelivery_the_same(
    versioned: bool,
) -> None:
    world = World(settings())
    world.s3.versioned = versioned
    users = ["u-1", "u-2"]
    world.output("job", users, data=b"".join(line(u, ["wrong"]) for u in users))
    world.run()
    # Corrected items, same users: Segment de-duplicates on messageId, so the same ids
    # would have had the correction dropped while the report said it was written.
    world.output("job", users, data=b"".join(line(u, ["right"]) for u in users))
    (message,) = world.sqs.take()
    world.process(message, 1e6)
    ids = world.tracking.message_ids
    assert all(len(set(ids[u])) == 2 for u in users)
    # The same version delivered again (its state removed, as after a crash): same ids.
    world.s3.objects.pop(message.state_key())
    world.process(message, 1e6)
    assert all(ids[u][2] == ids[u][1] for u in users)
    if versioned:  # the same bytes uploaded again are a new version too: written again
        world.output("job", users, data=b"".join(line(u, ["right"]) for u in users))
        world.run()
        assert all(len(set(ids[u])) == 3 for u in users)


# -- what a chunk reads ------------------------------------------------------------------------


def test_chunks_over_an_unterminated_tail_read_their_range_not_the_rest_of_the_file() -> None:
    mib = 1 << 20
    world = World(settings(CHUNK_BYTES=str(mib)))
    head = b"".join(line(f"u-{n}") for n in range(40))
    data = head + b"x" * (64 * mib - len(head))  # the last line never ends
    world.output("job", [], data=data)
    world.run()
    # Before: each chunk read to the end of the object, 64 + 63 + ... + 1 = 2,080 MiB.
    assert world.s3.bytes_read <= len(data) + 64 * parser.MAX_LINE_BYTES
    assert world.s3.bytes_read <= len(data) + 2 * writer.READ_BLOCK
    report = world.s3.json(chunks.report_key("job"))
    assert (report["chunks_done"], report["lines"]) == (64, 41)
    assert (report["users_written"], report["by_reason"]["undecodable"]) == (40, 1)
