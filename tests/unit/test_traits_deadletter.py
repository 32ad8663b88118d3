"""Dead-letter bodies and SendMessageBatch chunking, with a fake SQS client."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from traits_sync.deadletter import MAX_BYTES, DeadLetterQueue, body, deduplication_id
from traits_sync.kinesis import KinesisRecord
from traits_sync.messages import Bad

ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/events"


def bad(n: int, data: str = "bm90IGpzb24=", event_id: str | None = None) -> Bad:
    record = KinesisRecord(
        f"4959{n:04d}", data, ARN, event_id or f"shardId-000000000003:4959{n:04d}", None
    )
    return Bad(record, "data is not JSON")


class FakeSqs:
    def __init__(self, fail_calls: set[int] = frozenset(), refuse_ids: set[str] = frozenset()):
        self.calls: list[dict[str, Any]] = []
        self.fail_calls = fail_calls
        self.refuse_ids = refuse_ids

    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if len(self.calls) in self.fail_calls:
            raise ClientError({"Error": {"Code": "ServiceUnavailable"}}, "SendMessageBatch")
        failed = [
            {"Id": e["Id"], "Code": "InternalError", "SenderFault": False}
            for e in kwargs["Entries"]
            if e["Id"] in self.refuse_ids
        ]
        return {"Successful": [], "Failed": failed}


def test_body_carries_reason_source_shard_sequence_and_raw_data() -> None:
    assert json.loads(body(bad(1))) == {
        "reason": "data is not JSON",
        "eventSourceARN": ARN,
        "shardId": "shardId-000000000003",
        "sequenceNumber": "49590001",
        "data": "bm90IGpzb24=",
        "deduplicationId": deduplication_id(bad(1).record),
    }


def test_every_copy_of_one_record_carries_the_same_deduplication_id() -> None:
    first = json.loads(body(bad(1)))
    again = json.loads(body(Bad(bad(1).record, "PutEvents rejected the event")))
    assert first["deduplicationId"] == again["deduplicationId"]
    assert len(first["deduplicationId"]) == 64
    others = {json.loads(body(bad(n)))["deduplicationId"] for n in range(2, 50)}
    other_shard = bad(1, event_id="shardId-000000000004:49590001")
    others.add(json.loads(body(other_shard))["deduplicationId"])
    assert len(others) == 49
    assert first["deduplicationId"] not in others


def test_a_fifo_queue_gets_the_deduplication_id_and_a_group_per_shard() -> None:
    sqs = FakeSqs()
    DeadLetterQueue(sqs, "https://sqs.us-east-1.amazonaws.com/1/dlq.fifo").send([bad(1)])
    (entry,) = sqs.calls[0]["Entries"]
    assert entry["MessageDeduplicationId"] == deduplication_id(bad(1).record)
    assert entry["MessageGroupId"] == "shardId-000000000003"
    DeadLetterQueue(sqs, "https://q").send([bad(1)])
    assert set(sqs.calls[1]["Entries"][0]) == {"Id", "MessageBody"}


def test_body_falls_back_to_the_event_id_without_a_shard() -> None:
    message = json.loads(body(bad(1, event_id="opaque-id")))
    assert message["eventID"] == "opaque-id"
    assert "shardId" not in message


def test_an_oversized_record_keeps_the_start_of_its_data() -> None:
    data = "QUFB" * 100_000  # 400 KB of base64
    message = json.loads(body(bad(1, data=data)))
    assert len(body(bad(1, data=data)).encode()) <= MAX_BYTES
    assert message["dataTruncated"] is True
    assert message["dataLength"] == len(data)
    assert data.startswith(message["data"])


def test_sent_ten_at_a_time() -> None:
    sqs = FakeSqs()
    sent, failed = DeadLetterQueue(sqs, "https://q").send([bad(i) for i in range(23)])
    assert [len(c["Entries"]) for c in sqs.calls] == [10, 10, 3]
    assert all(c["QueueUrl"] == "https://q" for c in sqs.calls)
    assert len(sent) == 23
    assert failed == []


def test_failed_sends_come_back_to_be_retried() -> None:
    sqs = FakeSqs(fail_calls={2}, refuse_ids={"0"})
    records = [bad(i) for i in range(12)]
    sent, failed = DeadLetterQueue(sqs, "https://q").send(records)
    # Call 1: entries 0..9, entry "0" refused. Call 2 (entries 10, 11) raised.
    assert [b.record.sequence_number for b, _ in failed] == ["49590000", "49590010", "49590011"]
    assert [why for _, why in failed] == [
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailable",
    ]
    assert len(sent) == 9
