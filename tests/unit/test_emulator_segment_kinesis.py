"""The emulated Amazon Kinesis destination against a fake Kinesis client (no I/O): partition
keys, routing, PutRecords limits, retries of refused entries and failed calls, duplicates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulators.segment_kinesis import KinesisDestination, partition_key, routed_to_kinesis


class FakeKinesis:
    def __init__(self, refuse: set[int] | None = None, raise_calls: int = 0) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse or set()  # indexes refused in the first successful call
        self.raise_calls = raise_calls

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(list(Records))
        if self.raise_calls:
            self.raise_calls -= 1
            raise ConnectionError("stream unreachable")
        results: list[dict[str, Any]] = []
        for index, _ in enumerate(Records):
            if index in self.refuse:
                results.append({"ErrorCode": "ProvisionedThroughputExceededException"})
            else:
                results.append({"SequenceNumber": str(index), "ShardId": "shardId-000000000000"})
        self.refuse = set()
        return {"FailedRecordCount": sum("ErrorCode" in r for r in results), "Records": results}

    def delivered(self) -> list[str]:
        return [json.loads(r["Data"])["messageId"] for call in self.calls for r in call]


def _message(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "E", "messageId": f"m{i}", "userId": f"u{i}", **extra}


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ({"userId": "u1", "anonymousId": "a1", "messageId": "m"}, "u1"),
        ({"userId": 42, "anonymousId": "a1", "messageId": "m"}, "42"),
        ({"userId": "", "anonymousId": "a1", "messageId": "m"}, "a1"),
        ({"userId": None, "anonymousId": "a1", "messageId": "m"}, "a1"),
        ({"anonymousId": "a1", "messageId": "m"}, "a1"),
    ],
)
def test_partition_key_is_user_id_or_anonymous_id(message: dict[str, Any], key: str) -> None:
    assert partition_key(message) == key
    assert partition_key(message, use_message_id=True) == "m"


@pytest.mark.parametrize(
    ("integrations", "routed"),
    [
        (None, True),
        ({}, True),
        ({"Amazon Kinesis": False}, False),
        ({"amazon kinesis": False}, True),  # names are case-sensitive
        ({"All": False}, False),
        ({"All": False, "Amazon Kinesis": True}, True),
        ({"All": False, "Amazon Kinesis": {"stream": "x"}}, True),
        ({"All": True, "Amazon Kinesis": False}, False),
    ],
)
def test_integrations_routing(integrations: Any, routed: bool) -> None:
    assert routed_to_kinesis(integrations) is routed


def test_records_are_the_full_message_json_batched_by_500() -> None:
    kinesis = FakeKinesis()
    destination = KinesisDestination(kinesis, "s")
    messages = [_message(i, properties={"sku": f"S{i}"}) for i in range(1001)]
    for message in messages:
        destination.deliver(message)
    assert destination.flush(5)
    assert [len(call) for call in kinesis.calls] == [500, 500, 1]
    first = kinesis.calls[0][0]
    assert json.loads(first["Data"]) == messages[0]
    assert first["Data"] == json.dumps(messages[0], separators=(",", ":")).encode()
    assert first["PartitionKey"] == "u0"
    assert destination.stats()["delivered"] == 1001


def test_a_call_stays_under_5_mib() -> None:
    kinesis = FakeKinesis()
    destination = KinesisDestination(kinesis, "s")
    for i in range(200):  # 200 x ~31 KB = ~6 MB
        destination.deliver(_message(i, properties={"blob": "x" * 31_000}))
    assert destination.flush(5)
    assert len(kinesis.calls) == 2
    for call in kinesis.calls:
        assert sum(len(r["Data"]) + len(r["PartitionKey"]) for r in call) <= 5 * 1024 * 1024


def test_refused_entries_are_sent_again_first() -> None:
    kinesis = FakeKinesis(refuse={1, 2})
    destination = KinesisDestination(kinesis, "s", retry_base_s=0.0)
    for i in range(4):
        destination.deliver(_message(i))
    assert destination.step() == 0.0  # base 0: no wait, but it was a failure
    destination.deliver(_message(4))
    assert destination.flush(5)
    assert kinesis.delivered() == ["m0", "m1", "m2", "m3", "m1", "m2", "m4"]
    stats = destination.stats()
    assert (stats["delivered"], stats["refused_entries"], stats["pending"]) == (5, 2, 0)
    assert "ProvisionedThroughputExceededException" in stats["last_error"]


def test_failed_calls_back_off_and_lose_nothing() -> None:
    kinesis = FakeKinesis(raise_calls=3)
    destination = KinesisDestination(kinesis, "s", retry_base_s=0.5, retry_max_s=1.5)
    destination.deliver(_message(0))
    assert [destination.step() for _ in range(4)] == [0.5, 1.0, 1.5, 0.0]
    assert kinesis.delivered() == ["m0"] * 4
    stats = destination.stats()
    assert (stats["delivered"], stats["failed_calls"], stats["pending"]) == (1, 3, 0)


def test_duplicates_follow_the_rate_and_are_not_duplicated_again() -> None:
    kinesis = FakeKinesis()
    destination = KinesisDestination(kinesis, "s", duplicate_rate=1.0)
    for i in range(3):
        destination.deliver(_message(i))
    assert destination.flush(5)
    assert sorted(kinesis.delivered()) == ["m0", "m0", "m1", "m1", "m2", "m2"]
    assert destination.stats()["duplicates"] == 3

    seeded = [KinesisDestination(FakeKinesis(), "s", duplicate_rate=0.3, seed=7) for _ in "ab"]
    for each in seeded:
        for i in range(200):
            each.deliver(_message(i))
        assert each.flush(5)
    counts = [each.stats()["duplicates"] for each in seeded]
    assert counts[0] == counts[1] and 30 < counts[0] < 90  # seeded, about 30 %


def test_what_cannot_be_a_record_is_counted_not_sent() -> None:
    kinesis = FakeKinesis()
    destination = KinesisDestination(kinesis, "s")
    destination.deliver({"type": "track", "messageId": "m"})  # no id at all
    destination.deliver(_message(1, userId="u" * 257))
    assert destination.flush(1)
    assert kinesis.calls == []
    assert destination.stats()["undeliverable"] == {
        "no_partition_key": 1,
        "partition_key_over_256": 1,
    }


def test_the_thread_delivers_and_stop_drains() -> None:
    kinesis = FakeKinesis()
    destination = KinesisDestination(kinesis, "s", linger_s=0.01).start()
    for i in range(10):
        destination.deliver(_message(i))
    destination.stop(timeout_s=5)
    assert sorted(kinesis.delivered()) == sorted(f"m{i}" for i in range(10))
    assert destination.left_at_stop == 0


def test_configure_validates() -> None:
    destination = KinesisDestination(FakeKinesis(), "s")
    with pytest.raises(ValueError, match="duplicate_rate"):
        destination.configure(duplicate_rate=1.5)
    with pytest.raises(ValueError, match="use_message_id"):
        destination.configure(use_message_id="yes")  # type: ignore[arg-type]
    destination.configure(use_message_id=True, duplicate_rate=0.25)
    assert destination.stats()["use_message_id"] is True
    assert destination.stats()["duplicate_rate"] == 0.25
