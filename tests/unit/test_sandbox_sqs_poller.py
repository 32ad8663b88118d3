"""The sandbox's SQS event source mapping: Lambda's SQS event shape and the partial batch
response rules (ReportBatchItemFailures), on a fake SQS client (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.sqs_poller import SqsEventSource

ARN = "arn:aws:sqs:us-east-1:123456789012:chunks"


class FakeSqs:
    def __init__(self, bodies: list[str]) -> None:
        self.messages = [
            {
                "MessageId": f"m{i}",
                "ReceiptHandle": f"r{i}",
                "Body": body,
                "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
            }
            for i, body in enumerate(bodies)
        ]
        self.deleted: list[str] = []
        self.received: list[dict[str, Any]] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.received.append(kwargs)
        return {"Messages": self.messages[: kwargs["MaxNumberOfMessages"]]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        assert len(Entries) <= 10
        self.deleted += [e["ReceiptHandle"] for e in Entries]


def _source(sqs: FakeSqs, invoke: Any) -> SqsEventSource:
    return SqsEventSource(sqs, "http://q", ARN, "us-east-1", invoke, batch_size=10)


def test_records_have_lambdas_sqs_shape_and_successes_are_deleted() -> None:
    sqs = FakeSqs(["a", "b", "c"])
    seen: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {"batchItemFailures": [{"itemIdentifier": "m1"}]}

    outcome = _source(sqs, invoke).poll_once()
    assert outcome is not None and (outcome.records, outcome.failed) == (3, 1)
    record = seen[0]["Records"][0]
    assert record["messageId"] == "m0" and record["body"] == "a"
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == ARN
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["awsRegion"] == "us-east-1" and len(record["md5OfBody"]) == 32
    assert sqs.received[0]["AttributeNames"] == ["All"]
    assert sqs.deleted == ["r0", "r2"]  # m1 stays for a retry (and, in time, the DLQ)


@pytest.mark.parametrize(
    "result",
    [
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": "m0"},
        "a string",
    ],
)
def test_a_malformed_response_fails_the_whole_batch(result: Any) -> None:
    sqs = FakeSqs(["a", "b"])
    outcome = _source(sqs, lambda event: result).poll_once()
    assert outcome is not None and outcome.failed == 2
    assert sqs.deleted == []


def test_an_exception_fails_the_whole_batch_and_none_or_empty_means_success() -> None:
    sqs = FakeSqs(["a", "b"])

    def boom(event: dict[str, Any]) -> None:
        raise RuntimeError("handler crashed")

    outcome = _source(sqs, boom).poll_once()
    assert outcome is not None and outcome.error == "RuntimeError: handler crashed"
    assert sqs.deleted == []
    assert _source(sqs, lambda e: None).poll_once() is not None
    assert _source(sqs, lambda e: {"batchItemFailures": []}).poll_once() is not None
    assert sqs.deleted == ["r0", "r1", "r0", "r1"]


def test_an_empty_queue_invokes_nothing() -> None:
    sqs = FakeSqs([])
    calls: list[Any] = []
    assert _source(sqs, calls.append).poll_once() is None
    assert calls == []
