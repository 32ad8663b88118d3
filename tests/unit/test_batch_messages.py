"""S3 notifications (real-shaped fixtures) and chunk messages: what is accepted, what is not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from backfill import chunks, parser, splitter
from conftest import FIXTURES


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "batch" / name).read_text())


def test_an_object_created_notification_names_the_decoded_key() -> None:
    body = fixture("s3_object_created.json")
    assert splitter.is_s3_notification(body)
    (created,) = splitter.created_objects(body)
    assert created.bucket == "shop-batch-123456789012-us-east-1"
    assert created.key == "output/shop-20240310T030000/users 2024.json.out"  # "+" is a space
    assert chunks.job_of_output_key(created.key) == "shop-20240310T030000"


def test_the_s3_test_event_and_other_events_create_nothing() -> None:
    assert splitter.created_objects(fixture("s3_test_event.json")) == []
    removed = fixture("s3_object_created.json")
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert splitter.created_objects(removed) == []
    with pytest.raises(chunks.BadMessage):
        splitter.created_objects({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]})


@pytest.mark.parametrize(
    ("key", "job"),
    [
        ("output/job-1/users.json.out", "job-1"),
        ("output/job-1/users.json", None),
        ("output/job-1/sub/users.json.out", None),
        ("input/job-1/users.json.out", None),
        ("output/-bad/users.json.out", None),
    ],
)
def test_only_a_jobs_output_file_is_split(key: str, job: str | None) -> None:
    assert chunks.job_of_output_key(key) == job


def message(**changes: Any) -> dict[str, Any]:
    body = json.loads(
        chunks.ChunkMessage("job-1", "b", "output/job-1/u.out", '"e"', 2, 5, 100, 200).body()
    )
    body.update(changes)
    return body


def test_a_chunk_message_round_trips_and_a_continuation_carries_its_counts() -> None:
    parsed = chunks.parse_chunk(message())
    assert (parsed.index, parsed.total, parsed.start, parsed.end) == (2, 5, 100, 200)
    counts = chunks.Counts()
    counts.add("lines", 7)
    counts.add(parser.UNDECODABLE, 1)
    rest = parsed.continuation(150, counts)
    again = chunks.parse_chunk(json.loads(rest.body()))
    assert (again.index, again.start, again.end) == (2, 150, 200)
    assert again.carried is not None and again.carried.values["lines"] == 7


@pytest.mark.parametrize(
    "changes",
    [
        {"v": 2},
        {"index": 5},
        {"start": 300},
        {"start": -1},
        {"end": "200"},
        {"index": True},
        {"job": "other"},  # not the key's job
        {"key": "output/job-1/u.json"},
        {"bucket": ""},
        {"carried": {"lines": -1}},
        {"carried": {"unknown": 1}},
    ],
)
def test_malformed_chunk_messages_are_bad_messages(changes: dict[str, Any]) -> None:
    with pytest.raises(chunks.BadMessage):
        chunks.parse_chunk(message(**changes))


def test_the_report_sums_the_chunks_and_names_failed_ranges() -> None:
    def state(index: int, status: str, written: int, reason: str | None = None) -> dict[str, Any]:
        counts = chunks.Counts()
        counts.add("lines", written + 1)
        counts.add(chunks.WRITTEN, written)
        counts.add(parser.ERROR_LINE, 1)
        m = chunks.ChunkMessage(
            "j", "b", "output/j/u.out", "e", index, 3, index * 10, index * 10 + 10
        )
        return chunks.chunk_state(m, status, counts, reason)

    states = [
        state(2, "done", 5),
        state(0, "done", 4),
        state(1, "failed", 0, "segment unavailable"),
    ]
    report = chunks.report("j", [], states)
    assert report["status"] == "partial"
    assert (report["chunks_total"], report["chunks_done"], report["chunks_failed"]) == (3, 2, 1)
    assert report["failed_ranges"] == [
        {
            "key": "output/j/u.out",
            "index": 1,
            "start": 10,
            "end": 20,
            "reason": "segment unavailable",
        }
    ]
    assert report["users_written"] == 9
    assert report["users_failed"] == 3
    assert report["lines"] == 12
    assert chunks.report("j", [], list(reversed(states))) == report  # order-independent
