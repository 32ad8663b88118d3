"""The sandbox's replay of Segment events into Kinesis (fake Kinesis, fake clocks; no I/O)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.replay import Replayer, endless, partition_key, restamp


class FakeKinesis:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.fail_first = fail_first  # entries to refuse (throttled) in the first call

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(list(Records))
        results: list[dict[str, Any]] = []
        for index, _ in enumerate(Records):
            if len(self.calls) == 1 and index < self.fail_first:
                results.append({"ErrorCode": "ProvisionedThroughputExceededException"})
            else:
                results.append({"SequenceNumber": str(index), "ShardId": "shardId-000000000000"})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedRecordCount": failed, "Records": results}


def _message(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": f"m{i}",
        "anonymousId": f"anon-{i}",
        "timestamp": "2024-04-01T00:00:10.000Z",
        "originalTimestamp": "2024-04-01T00:00:09.000Z",
        "sentAt": "2024-04-01T00:00:09.500Z",
        "receivedAt": "2024-04-01T00:00:11.000Z",
        **extra,
    }


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ({"userId": "u1", "anonymousId": "a1"}, "u1"),
        ({"userId": 42, "anonymousId": "a1"}, "42"),
        ({"userId": "", "anonymousId": "a1"}, "a1"),
        ({"userId": None, "anonymousId": "a1"}, "a1"),
        ({"anonymousId": "a1"}, "a1"),
    ],
)
def test_partition_key_is_user_id_or_anonymous_id(message: dict[str, Any], key: str) -> None:
    assert partition_key(message) == key


def test_restamp_moves_every_time_field_and_keeps_offsets() -> None:
    now = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    out = restamp(_message(1), now)
    assert out["timestamp"] == "2026-05-06T07:08:09.000Z"
    assert out["originalTimestamp"] == "2026-05-06T07:08:08.000Z"
    assert out["sentAt"] == "2026-05-06T07:08:08.500Z"
    assert out["receivedAt"] == "2026-05-06T07:08:10.000Z"
    assert out["messageId"] == "m1"


def _replayer(kinesis: FakeKinesis, messages: list[dict[str, Any]], rate: float) -> Any:
    clock = {"now": 0.0}
    profiles: list[dict[str, Any]] = []
    replayer = Replayer(
        kinesis=kinesis,
        stream_name="s",
        messages=iter(messages),
        rate=rate,
        to_profiles=profiles.extend,
        clock=lambda: clock["now"],
        wall_clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )
    return replayer, clock, profiles


def test_rate_paces_put_records_and_data_is_one_message_per_record() -> None:
    kinesis = FakeKinesis()
    messages = [_message(i, userId=f"u{i}") for i in range(20)]
    replayer, clock, profiles = _replayer(kinesis, messages, rate=5.0)
    replayer.step()
    assert replayer.stats.sent == 1
    clock["now"] = 1.0
    replayer.step()
    assert replayer.stats.sent == 6  # 5 per second
    clock["now"] = 10.0
    replayer.step()
    replayer.step()
    assert replayer.stats.sent == 20
    assert replayer.finished
    records = [r for call in kinesis.calls for r in call]
    assert [json.loads(r["Data"])["messageId"] for r in records] == [f"m{i}" for i in range(20)]
    assert [r["PartitionKey"] for r in records] == [f"u{i}" for i in range(20)]
    assert json.loads(records[0]["Data"])["timestamp"] == "2026-01-01T00:00:00.000Z"
    assert [m["messageId"] for m in profiles] == [f"m{i}" for i in range(20)]


def test_throttled_entries_are_resent_alone() -> None:
    kinesis = FakeKinesis(fail_first=2)
    messages = [_message(i) for i in range(4)]
    replayer, _, _ = _replayer(kinesis, messages, rate=0)
    replayer.stop.wait = lambda timeout=None: False  # type: ignore[method-assign]
    replayer.step()
    assert [len(call) for call in kinesis.calls] == [4, 2]
    assert [json.loads(r["Data"])["messageId"] for r in kinesis.calls[1]] == ["m0", "m1"]
    assert (replayer.stats.sent, replayer.stats.failed) == (4, 0)


def test_endless_draws_new_rounds_and_honours_the_limit() -> None:
    rounds: list[int] = []

    def make(n: int) -> Any:
        rounds.append(n)
        return iter([{"round": n, "i": i} for i in range(3)])

    out = list(endless(make, 7))
    assert len(out) == 7
    assert rounds == [0, 1, 2]
    assert [m["round"] for m in out] == [0, 0, 0, 1, 1, 1, 2]
