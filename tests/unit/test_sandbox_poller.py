"""The sandbox's Kinesis event-source poller: Lambda's batch, partial-failure and retry
semantics, driven step by step with a fake Kinesis and a fake clock (no I/O)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.poller import (
    MappingSettings,
    ShardPoller,
    Stream,
    kinesis_event,
    lowest_failure,
)

STREAM = Stream(
    name="s",
    arn="arn:aws:kinesis:us-east-1:123456789012:stream/s",
    region="us-east-1",
    invoke_identity_arn="arn:aws:iam::123456789012:role/r",
)
SHARD = "shardId-000000000000"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"
BASE_SEQ = 49_600_000_000_000_000_000_000_000_000_000_000_000_000_000_000


class FakeKinesis:
    """One shard; iterators are positions in the record list."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.expire_next = False

    def put(self, *payloads: dict[str, Any]) -> list[str]:
        seqs = []
        for payload in payloads:
            seq = str(BASE_SEQ + 1000 * (len(self.records) + 1))
            self.records.append(
                {
                    "SequenceNumber": seq,
                    "ApproximateArrivalTimestamp": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
                    "Data": json.dumps(payload).encode(),
                    "PartitionKey": str(payload.get("userId", "anon")),
                }
            )
            seqs.append(seq)
        return seqs

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        kind = kwargs["ShardIteratorType"]
        if kind == "TRIM_HORIZON":
            pos = 0
        elif kind == "LATEST":
            pos = len(self.records)
        else:
            assert kind == "AFTER_SEQUENCE_NUMBER"
            seqs = [r["SequenceNumber"] for r in self.records]
            pos = seqs.index(kwargs["StartingSequenceNumber"]) + 1
        return {"ShardIterator": f"it:{pos}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict[str, Any]:
        if self.expire_next:
            self.expire_next = False
            error = Exception("expired")
            error.response = {"Error": {"Code": "ExpiredIteratorException"}}  # type: ignore[attr-defined]
            raise error
        pos = int(ShardIterator.split(":")[1])
        out = self.records[pos : pos + Limit]
        return {"Records": out, "NextShardIterator": f"it:{pos + len(out)}"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, responses: list[Any] | None = None, **settings: Any) -> None:
        self.kinesis = FakeKinesis()
        self.clock = Clock()
        self.events: list[dict[str, Any]] = []
        self.responses = list(responses or [])
        self.on_failure: list[dict[str, Any]] = []
        self.outcomes: list[Any] = []
        defaults: dict[str, Any] = {
            "batch_size": 10,
            "batching_window_s": 0.0,
            "max_retries": 2,
            "poll_interval_s": 0.5,
            "retry_base_s": 1.0,
            "retry_max_s": 4.0,
        }
        defaults.update(settings)
        self.poller = ShardPoller(
            kinesis=self.kinesis,
            stream=STREAM,
            shard_id=SHARD,
            invoke=self.invoke,
            function_arn=FUNCTION_ARN,
            send_on_failure=self.on_failure.append,
            settings=MappingSettings(**defaults),
            on_batch=self.outcomes.append,
            clock=self.clock,
            wall_clock=lambda: datetime(2025, 1, 2, 3, 5, 0, tzinfo=UTC),
        )

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        response = self.responses.pop(0) if self.responses else None
        if isinstance(response, Exception):
            raise response
        if callable(response):
            return response(event)
        return response

    def seqs(self, event: dict[str, Any]) -> list[str]:
        return [r["kinesis"]["sequenceNumber"] for r in event["Records"]]

    def run(self, steps: int) -> None:
        """Step the poller, letting the fake time pass as the poller asks."""
        for _ in range(steps):
            pause = self.poller.step()
            self.clock.now += pause


def fail(*seqs: str) -> dict[str, Any]:
    return {"batchItemFailures": [{"itemIdentifier": s} for s in seqs]}


def test_event_has_the_shape_lambda_builds() -> None:
    kinesis = FakeKinesis()
    kinesis.put({"userId": "u1", "type": "track"})
    event = kinesis_event(kinesis.records, STREAM, SHARD)
    (record,) = event["Records"]
    seq = kinesis.records[0]["SequenceNumber"]
    assert record == {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "u1",
            "sequenceNumber": seq,
            "data": base64.b64encode(kinesis.records[0]["Data"]).decode(),
            "approximateArrivalTimestamp": datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD}:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": STREAM.invoke_identity_arn,
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM.arn,
    }
    assert json.loads(base64.b64decode(record["kinesis"]["data"])) == {
        "userId": "u1",
        "type": "track",
    }


def test_batches_are_cut_at_batch_size_in_order() -> None:
    h = Harness(batch_size=3)
    seqs = h.kinesis.put(*({"userId": f"u{i}"} for i in range(7)))
    h.run(6)
    assert [h.seqs(e) for e in h.events] == [seqs[0:3], seqs[3:6], seqs[6:7]]
    assert h.poller.checkpoint == seqs[-1]


def test_batching_window_waits_to_fill_a_batch() -> None:
    h = Harness(batch_size=10, batching_window_s=5.0, poll_interval_s=1.0)
    first = h.kinesis.put({"userId": "a"}, {"userId": "b"})
    h.poller.step()
    assert h.events == []  # window not over, batch not full
    h.clock.now += 2.0
    more = h.kinesis.put({"userId": "c"})
    h.poller.step()
    assert h.events == []
    h.clock.now += 3.0  # 5 s since the first record was read
    h.poller.step()
    assert [h.seqs(e) for e in h.events] == [first + more]


def test_a_full_batch_does_not_wait_for_the_window() -> None:
    h = Harness(batch_size=2, batching_window_s=60.0)
    seqs = h.kinesis.put({"userId": "a"}, {"userId": "b"}, {"userId": "c"})
    h.poller.step()
    assert [h.seqs(e) for e in h.events] == [seqs[:2]]


def test_without_window_a_batch_goes_as_soon_as_records_arrive() -> None:
    h = Harness(batch_size=100, batching_window_s=0.0)
    h.run(1)
    assert h.events == []
    seqs = h.kinesis.put({"userId": "a"})
    h.run(1)
    assert [h.seqs(e) for e in h.events] == [seqs]


def test_partial_failure_resumes_from_the_lowest_failed_sequence_number() -> None:
    seqs_holder: list[str] = []
    h = Harness(responses=[lambda e: fail(seqs_holder[3], seqs_holder[1]), None, None])
    seqs = h.kinesis.put(*({"userId": f"u{i}"} for i in range(5)))
    seqs_holder.extend(seqs)
    h.run(1)
    assert h.poller.checkpoint == seqs[0]  # records before the lowest failure are done
    h.run(3)
    assert [h.seqs(e) for e in h.events] == [seqs, seqs[1:]]
    later = h.kinesis.put({"userId": "late"})
    h.run(3)
    assert h.seqs(h.events[2]) == later  # successful records are not sent again
    assert h.on_failure == []
    assert h.outcomes[0].failed_records == 4
    assert h.outcomes[0].retry_number == 1


@pytest.mark.parametrize(
    "response",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemId": "1"}]},
        {"batchItemFailures": [{"itemIdentifier": "12345"}]},  # not in the batch
        {"batchItemFailures": "oops"},
        "not an object",
        RuntimeError("boom"),
    ],
)
def test_invalid_responses_and_errors_fail_the_whole_batch(response: Any) -> None:
    h = Harness(responses=[response, None])
    seqs = h.kinesis.put({"userId": "a"}, {"userId": "b"})
    h.run(4)
    assert [h.seqs(e) for e in h.events] == [seqs, seqs]
    assert h.outcomes[0].whole_batch_failed
    assert h.outcomes[0].failed_records == 2


@pytest.mark.parametrize(
    "response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}]
)
def test_empty_or_null_responses_are_success(response: Any) -> None:
    h = Harness(responses=[response])
    seqs = h.kinesis.put({"userId": "a"})
    h.run(3)
    assert len(h.events) == 1
    assert h.poller.checkpoint == seqs[0]


def test_lowest_failure_compares_sequence_numbers_as_numbers() -> None:
    batch = ["9", "10", "11"]
    assert lowest_failure(fail("11", "10"), batch) == ("10", None)
    assert lowest_failure(fail("10", "9"), batch) == ("9", None)


def test_retries_are_bounded_then_an_on_failure_record_is_sent_and_the_shard_moves_on() -> None:
    h = Harness(responses=[RuntimeError("boom")] * 3, max_retries=2)
    seqs = h.kinesis.put({"userId": "a"}, {"userId": "b"}, {"userId": "c"})
    h.run(6)
    assert [h.seqs(e) for e in h.events] == [seqs, seqs, seqs]  # 1 try + 2 retries
    (record,) = h.on_failure
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["functionArn"] == FUNCTION_ARN
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["version"] == "1.0"
    assert record["KinesisBatchInfo"] == {
        "shardId": SHARD,
        "startSequenceNumber": seqs[0],
        "endSequenceNumber": seqs[-1],
        "approximateArrivalOfFirstRecord": "2025-01-02T03:04:05.000Z",
        "approximateArrivalOfLastRecord": "2025-01-02T03:04:05.000Z",
        "batchSize": 3,
        "streamArn": STREAM.arn,
    }
    assert h.outcomes[-1].gave_up
    later = h.kinesis.put({"userId": "d"})
    h.run(3)
    assert h.seqs(h.events[-1]) == later
    assert h.poller.checkpoint == later[0]


def test_exhausted_partial_failure_reports_only_the_records_from_the_checkpoint() -> None:
    holder: list[str] = []
    h = Harness(responses=[lambda e: fail(holder[2])] * 2, max_retries=1)
    seqs = h.kinesis.put(*({"userId": f"u{i}"} for i in range(4)))
    holder.extend(seqs)
    h.run(4)
    assert [h.seqs(e) for e in h.events] == [seqs, seqs[2:]]
    (record,) = h.on_failure
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        seqs[2],
        seqs[3],
        2,
    )
    assert "functionError" not in record["responseContext"]


def test_progress_starts_a_new_retry_count() -> None:
    holder: list[str] = []
    # Each invocation fails one record further on: the shard progresses, never gives up.
    h = Harness(
        responses=[lambda e: fail(holder[1]), lambda e: fail(holder[2]), lambda e: fail(holder[3])],
        max_retries=1,
    )
    seqs = h.kinesis.put(*({"userId": f"u{i}"} for i in range(5)))
    holder.extend(seqs)
    h.run(8)
    assert [h.seqs(e) for e in h.events] == [seqs, seqs[1:], seqs[2:], seqs[3:]]
    assert h.on_failure == []
    assert h.poller.checkpoint == seqs[-1]


def test_unbounded_retries_never_give_up() -> None:
    h = Harness(responses=[RuntimeError("boom")] * 12, max_retries=-1)
    h.kinesis.put({"userId": "a"})
    h.run(30)
    assert len(h.events) == 13
    assert h.on_failure == []


def test_retries_back_off_and_hold_the_shard() -> None:
    h = Harness(responses=[RuntimeError("boom"), RuntimeError("boom")], retry_base_s=1.0)
    seqs = h.kinesis.put({"userId": "a"})
    h.poller.step()
    newer = h.kinesis.put({"userId": "b"})
    assert h.poller.step() == pytest.approx(1.0)  # first retry after the base delay
    assert len(h.events) == 1
    h.clock.now += 1.0
    h.poller.step()
    assert h.seqs(h.events[1]) == seqs  # in order: the newer record waits
    assert h.poller.step() == pytest.approx(2.0)  # doubled
    h.clock.now += 2.0
    h.run(3)
    assert [h.seqs(e) for e in h.events] == [seqs, seqs, seqs, newer]


def test_unreachable_on_failure_destination_keeps_the_records() -> None:
    h = Harness(responses=[RuntimeError("boom")] * 2 + [None], max_retries=0)
    sent: list[dict[str, Any]] = []

    def broken(record: dict[str, Any]) -> None:
        if not sent:
            sent.append({})
            raise ConnectionError("sqs down")
        h.on_failure.append(record)

    h.poller.send_on_failure = broken
    seqs = h.kinesis.put({"userId": "a"})
    h.run(4)
    assert [h.seqs(e) for e in h.events][:2] == [seqs, seqs]
    assert len(h.on_failure) == 1  # delivered on the second try, nothing lost silently


def test_latest_skips_records_written_before_the_poller_started() -> None:
    h = Harness(starting_position="LATEST")
    h.kinesis.put({"userId": "old"})
    h.poller.iterator = h.poller.new_iterator()
    new = h.kinesis.put({"userId": "new"})
    h.run(2)
    assert [h.seqs(e) for e in h.events] == [new]


def test_an_expired_iterator_is_renewed_after_the_last_record_read() -> None:
    h = Harness(batch_size=1)
    first = h.kinesis.put({"userId": "a"})
    h.run(1)
    second = h.kinesis.put({"userId": "b"})
    h.kinesis.expire_next = True
    h.run(3)
    assert [h.seqs(e) for e in h.events] == [first, second]
