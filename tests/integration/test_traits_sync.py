"""The traits sync handler end to end over loopback HTTP: the Personalize and Segment
emulators, and moto's server for SQS (dead letters) and SSM (write key, profile token).

moto runs as a ThreadedMotoServer reached through AWS_ENDPOINT_URL_SQS / _SSM: ``mock_aws``
would intercept the emulators' traffic too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from conftest import FIXTURES

from devkit.aws import traits_resources
from devkit.context import LambdaContext
from devkit.events import STREAM_ARN, kinesis_event
from devkit.fixtures import started_segment, trained_personalize, use_fake_aws
from devkit.loader import load_app
from emulators.personalize import PersonalizeEmulator
from emulators.segment import SegmentEmulator
from traits_sync import runtime
from traits_sync.plan import derived_base

KINESIS = FIXTURES / "kinesis"
REGION = "us-east-1"


# -- shared servers -------------------------------------------------------------------------


@pytest.fixture
def personalize() -> Iterator[PersonalizeEmulator]:
    with trained_personalize() as emulator:
        yield emulator


@pytest.fixture
def segment() -> Iterator[SegmentEmulator]:
    with started_segment() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def app() -> ModuleType:
    return load_app("update_traits")


@dataclass
class Deployment:
    env: dict[str, str]
    queue_url: str
    sqs: Any

    def dead_letters(self, expected: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Poll the queue until ``expected`` messages arrived (or the deadline passes)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < expected and time.monotonic() < deadline:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            for message in response.get("Messages", []):
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
        return found

    def queue_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


@pytest.fixture
def deployment(
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
) -> Iterator[Deployment]:
    use_fake_aws(
        monkeypatch,
        REGION,
        {
            "sqs": moto_url,
            "ssm": moto_url,
            "personalize-runtime": personalize.url,
            "personalize-events": personalize.url,
        },
    )
    made = traits_resources(
        moto_url, "traits-test", write_key=segment.write_key, profile_token=segment.profile_token
    )
    env = {
        **made.env(),
        "PERSONALIZE_CAMPAIGN_ARN": personalize.campaign_arn,
        "PERSONALIZE_TRACKING_ID": personalize.tracking_id,
        "NUM_RESULTS": "10",
        "SEGMENT_SPACE_ID": segment.space_id,
        "SEGMENT_API_URL": f"{segment.url}/v1",
        "SEGMENT_PROFILE_API_URL": f"{segment.url}/v1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield Deployment(env, made.queue_url, made.sqs)
    runtime.reset()


def Context(remaining_ms: int = 60_000) -> LambdaContext:
    return LambdaContext(remaining_ms, function_name="update-traits")


# -- events ---------------------------------------------------------------------------------


def fixture_records(*names: str) -> list[dict[str, Any]]:
    return [r for n in names for r in json.loads((KINESIS / n).read_text())["Records"]]


def shop_events(n_records: int, n_users: int, skus: Sequence[str]) -> list[dict[str, Any]]:
    """Product views from ``n_users`` users (two sessions each), every 7th an order."""
    messages = []
    for i in range(n_records):
        user = f"user-{i % n_users + 1:04d}"
        sku = skus[(i * 7) % len(skus)]
        ordered = i % 7 == 0
        messages.append(
            {
                "type": "track",
                "event": "Order Completed" if ordered else "Product Viewed",
                "messageId": f"api-{uuid.UUID(int=i + 1)}",
                "userId": user,
                "anonymousId": f"anon-{user}-{i // n_users % 2}",
                "timestamp": f"2024-03-10T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "properties": {"products": [{"sku": sku, "quantity": 1}]}
                if ordered
                else {"sku": sku, "product_id": f"prod-{sku}"},
                "context": {"library": {"name": "analytics-python", "version": "2.3.2"}},
                "integrations": {},
                "version": 2,
            }
        )
    return messages


def sequence_numbers(event: dict[str, Any], user: str | None = None) -> list[str]:
    out = []
    for record in event["Records"]:
        if user is not None:
            message = json.loads(base64.b64decode(record["kinesis"]["data"]))
            if message.get("userId") != user:
                continue
        out.append(record["kinesis"]["sequenceNumber"])
    return out


def letter_id(record: dict[str, Any]) -> str:
    """The deduplicationId every dead-letter copy of this record carries
    (functions/update_traits/README.md)."""
    shard = record["eventID"].split(":", 1)[0]
    text = "\x1f".join([record["eventSourceARN"], shard, record["kinesis"]["sequenceNumber"]])
    return hashlib.sha256(text.encode()).hexdigest()


def batch_bodies(segment: SegmentEmulator) -> list[dict[str, Any]]:
    return [r.body for r in segment.request_log() if r.operation == "batch"]


def ranking(personalize: PersonalizeEmulator, user: str, n: int) -> list[str]:
    client = boto3.client("personalize-runtime", region_name=REGION, endpoint_url=personalize.url)
    response = client.get_recommendations(
        campaignArn=personalize.campaign_arn, userId=user, numResults=n
    )
    return [item["itemId"] for item in response["itemList"]]


# -- tests ----------------------------------------------------------------------------------


def test_fixture_batch_end_to_end(
    app: ModuleType,
    deployment: Deployment,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
) -> None:
    records = fixture_records("relevant.json", "skipped.json", "bad.json")
    result = app.lambda_handler({"Records": records}, Context())
    assert result == {"batchItemFailures": []}

    # PutEvents, in UTC epoch seconds: 13:00+02:00 is 11:00Z; offsets and fractions kept.
    events = sorted(personalize.accepted_events(), key=lambda e: e["sentAt"])
    assert [(e["userId"], e["sessionId"], e["itemId"], e["sentAt"]) for e in events] == [
        ("12345", "12345", "SKU-0002", 1710068400),  # 2024-03-10T11:00:00Z
        ("user-0001", "4f1c2a4e-8e0b-4f43-9f57-2b2d3a1c9e10", "SKU-0001", 1710072000.123),
        (None, "a9f3e2d1-7c6b-4a5e-8d9c-0b1a2f3e4d5c", "1007", 1710072060),
        ("user-0001", "4f1c2a4e-8e0b-4f43-9f57-2b2d3a1c9e10", "SKU-0003", 1710072310.5),
        ("user-0001", "4f1c2a4e-8e0b-4f43-9f57-2b2d3a1c9e10", "SKU-0004", 1710072310.5),
    ]
    order_ids = [e["eventId"] for e in events if e["eventType"] == "Order Completed"]
    # Derived from the messageId, longer than any Segment messageId (never equal to one).
    order = derived_base("ajs-next-0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a")
    assert order_ids == [f"{order}#1", f"{order}#2"]
    # One recommendation and one profile read per identified user; one batch request.
    assert personalize.counters["GetRecommendations"] == 2
    assert personalize.counters["PutEvents"] == 3
    assert segment.counters["profile"] == 2
    assert segment.counters["batch"] == 1

    # The trait: Personalize's ranking minus this batch's purchases, refilled to 10.
    identifies = {m["userId"]: m for m in segment.messages(type="identify")}
    assert set(identifies) == {"user-0001", "12345"}
    expected = [
        i for i in ranking(personalize, "user-0001", 12) if i not in {"SKU-0003", "SKU-0004"}
    ]
    trait = identifies["user-0001"]["traits"]["recommended_products"]
    assert trait == expected[:10]
    assert segment.traits("user-0001")["recommended_products"] == trait
    assert identifies["user-0001"]["integrations"] == {"Amazon Kinesis": False}
    assert [r.auth for r in segment.request_log() if r.operation == "batch"] == [segment.write_key]

    # Dead letters: reason, source, shard, sequence number and the raw data of each.
    bad = fixture_records("bad.json")
    expected_reasons = json.loads((KINESIS / "expected.json").read_text())["bad.json"]
    letters = deployment.dead_letters(len(bad))
    assert sorted(letters, key=lambda m: m["sequenceNumber"]) == [
        {
            "reason": reason,
            "eventSourceARN": STREAM_ARN,
            "shardId": "shardId-000000000000",
            "sequenceNumber": record["kinesis"]["sequenceNumber"],
            "data": record["kinesis"]["data"],
            "deduplicationId": letter_id(record),
        }
        for record, reason in sorted(
            zip(bad, expected_reasons, strict=True),
            key=lambda pair: pair[0]["kinesis"]["sequenceNumber"],
        )
    ]


def test_500_records_from_50_users_make_50_recommendation_calls(
    app: ModuleType,
    deployment: Deployment,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
) -> None:
    messages = shop_events(500, 50, personalize.catalogue_item_ids)
    result = app.lambda_handler(kinesis_event(messages), Context())
    assert result == {"batchItemFailures": []}
    assert personalize.counters["GetRecommendations"] == 50
    assert segment.counters["profile"] == 50
    sessions = Counter((m["userId"], m["anonymousId"]) for m in messages)
    assert personalize.counters["PutEvents"] == sum(math.ceil(n / 10) for n in sessions.values())
    assert all(
        1 <= len(r.body["eventList"]) <= 10
        for r in personalize.request_log()
        if r.operation == "PutEvents"
    )
    assert len(personalize.accepted_events()) == 500
    assert segment.counters["batch"] == 1
    assert len({m["userId"] for m in segment.messages(type="identify")}) == 50


def test_same_batch_twice_gives_the_same_message_ids(
    app: ModuleType,
    deployment: Deployment,
    segment: SegmentEmulator,
    personalize: PersonalizeEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the Profile API every delivery writes (no "unchanged" shortcut).
    monkeypatch.delenv("SEGMENT_PROFILE_TOKEN_PARAMETER")
    monkeypatch.delenv("SEGMENT_SPACE_ID")
    event = kinesis_event(shop_events(60, 12, personalize.catalogue_item_ids))
    # The first delivery computes some lists before other users' events reached the model;
    # from the second on the model has them all, and the lists (and ids) stay the same.
    for _ in range(3):
        assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    _, first, second = ([m["messageId"] for m in body["batch"]] for body in batch_bodies(segment))
    assert len(set(first)) == 12
    assert sorted(first) == sorted(second)
    incoming = {
        json.loads(base64.b64decode(r["kinesis"]["data"]))["messageId"] for r in event["Records"]
    }
    assert not set(first) & incoming
    assert all(len(m) <= 100 for m in first)
    # Segment deduplicates the retry: the third delivery stores nothing new.
    stored = {m["messageId"] for m in segment.messages(type="identify")}
    assert set(second) <= stored
    assert segment.dropped["duplicate_message_id"] >= 12


def test_a_redelivered_batch_leaves_an_unchanged_trait_alone(
    app: ModuleType,
    deployment: Deployment,
    segment: SegmentEmulator,
    personalize: PersonalizeEmulator,
) -> None:
    event = kinesis_event(shop_events(40, 8, personalize.catalogue_item_ids))
    assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    assert segment.counters["batch"] == 1
    assert len(segment.messages(type="identify")) == 8
    # The first pass computed some lists before other users' events reached the model, so
    # the second may still change a few; from then on the events are all duplicates (same
    # eventIds), the lists come out the same and nothing is written.
    assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    batches = segment.counters["batch"]
    assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    assert segment.counters["batch"] == batches
    assert segment.counters["profile"] == 24
    assert personalize.counters["GetRecommendations"] == 24


@pytest.mark.parametrize(
    ("target", "operation"),
    [("personalize", "GetRecommendations"), ("personalize", "PutEvents"), ("segment", "profile")],
)
def test_a_fault_for_one_user_reports_exactly_that_users_records(
    app: ModuleType,
    deployment: Deployment,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
    target: str,
    operation: str,
) -> None:
    emulator = personalize if target == "personalize" else segment
    emulator.controls.set(fault_rate={"500": 1.0}, only_users={"user-0007"}, operations={operation})
    event = kinesis_event(shop_events(100, 10, personalize.catalogue_item_ids))
    result = app.lambda_handler(event, Context())
    assert result == {
        "batchItemFailures": [
            {"itemIdentifier": s} for s in sequence_numbers(event, user="user-0007")
        ]
    }
    assert len(result["batchItemFailures"]) == 10
    written = {m["userId"] for m in segment.messages(type="identify")}
    assert written == {f"user-{u:04d}" for u in range(1, 11)} - {"user-0007"}
    assert emulator.counters["fault:500"] >= 1


def test_purchases_on_the_profile_are_excluded(
    app: ModuleType,
    deployment: Deployment,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
) -> None:
    top = ranking(personalize, "user-0002", 3)
    segment.set_traits("user-0002", {"purchased_products": top[:2], "plan": "plus"})
    personalize.reset_stats()
    message = shop_events(1, 1, ["SKU-0100"])[0] | {
        "userId": "user-0002",
        "event": "Product Viewed",
        "properties": {"sku": "SKU-0100"},
    }
    assert app.lambda_handler(kinesis_event([message]), Context()) == {"batchItemFailures": []}
    (call,) = [r.body for r in personalize.request_log() if r.operation == "GetRecommendations"]
    # Asked while the profile was read: 10 + 25 headroom; both purchases fit in that page.
    assert call["numResults"] == 35
    trait = segment.traits("user-0002")["recommended_products"]
    assert len(trait) == 10
    assert not set(top[:2]) & set(trait)


def test_an_exhausted_time_budget_reports_everything_and_writes_nothing(
    app: ModuleType,
    deployment: Deployment,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
) -> None:
    event = {"Records": fixture_records("relevant.json", "bad.json")}
    result = app.lambda_handler(event, Context(remaining_ms=1))
    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers(event)]}
    assert personalize.counters["GetRecommendations"] == 0
    assert personalize.counters["PutEvents"] == 0
    assert segment.counters["batch"] == 0
    assert segment.messages(type="identify") == []
    assert deployment.queue_depth() == 0


def test_a_failed_dead_letter_send_is_retried_not_lost(
    app: ModuleType,
    deployment: Deployment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = deployment.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", missing)
    event = {"Records": fixture_records("relevant.json", "bad.json")}
    result = app.lambda_handler(event, Context())
    bad = {r["kinesis"]["sequenceNumber"] for r in fixture_records("bad.json")}
    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == bad


def test_a_missing_write_key_retries_every_record_and_names_the_setting(
    app: ModuleType,
    deployment: Deployment,
    segment: SegmentEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEGMENT_WRITE_KEY_PARAMETER", "/traits-test/absent")
    event = {"Records": fixture_records("relevant.json", "bad.json")}
    result = app.lambda_handler(event, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers(event)]}
    errors = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"level":"ERROR"' in line
    ]
    assert [(e["setting"], e["permanent"]) for e in errors] == [
        ("SEGMENT_WRITE_KEY_PARAMETER", True)
    ]
    assert deployment.queue_depth() == 0
    assert segment.counters["batch"] == 0


@pytest.mark.parametrize("stored", ["set-out-of-band", "   \n"])
def test_a_placeholder_or_blank_write_key_is_a_missing_secret(
    app: ModuleType,
    deployment: Deployment,
    segment: SegmentEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stored: str,
) -> None:
    # Segment answers 200 to an unknown write key and drops the data: the placeholder that
    # Terraform writes without a value must never be sent as a key.
    name = f"/traits-test/{uuid.uuid4().hex}/write-key"
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=name, Value=stored, Type="SecureString")
    monkeypatch.setenv("SEGMENT_WRITE_KEY_PARAMETER", name)
    monkeypatch.setenv("DEPLOYMENT_NAME", "traits-test")
    event = {"Records": fixture_records("relevant.json", "bad.json")}
    result = app.lambda_handler(event, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers(event)]}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    errors = [line for line in lines if line.get("level") == "ERROR"]
    assert [(e["setting"], e["parameter"], e["permanent"]) for e in errors] == [
        ("SEGMENT_WRITE_KEY_PARAMETER", name, True)
    ]
    (blob,) = [line for line in lines if "_aws" in line]
    assert blob["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["deployment", "service"]]
    assert (blob["deployment"], blob["service"]) == ("traits-test", "update_traits")
    assert (blob["SecretErrors"], blob["FailedRecords"]) == (1, len(event["Records"]))
    assert deployment.queue_depth() == 0
    assert segment.counters["batch"] == 0


def test_a_record_dead_lettered_on_every_retry_keeps_one_deduplication_id(
    app: ModuleType, deployment: Deployment
) -> None:
    event = {"Records": fixture_records("relevant.json", "bad.json")}
    bad = fixture_records("bad.json")
    for _ in range(2):  # the batch retried for some other record's sake
        assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    letters = deployment.dead_letters(2 * len(bad))
    assert Counter(m["deduplicationId"] for m in letters) == {letter_id(r): 2 for r in bad}


def test_a_fifo_dead_letter_queue_keeps_one_message_per_record(
    app: ModuleType, deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"traits-dlq-{uuid.uuid4().hex[:12]}.fifo"
    fifo = deployment.sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})
    monkeypatch.setenv("DEAD_LETTER_QUEUE_URL", fifo["QueueUrl"])
    deployment.queue_url = fifo["QueueUrl"]
    event = {"Records": fixture_records("relevant.json", "bad.json")}
    for _ in range(2):
        assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    bad = fixture_records("bad.json")
    letters = deployment.dead_letters(len(bad) + 1, timeout=1.0)
    assert sorted(m["deduplicationId"] for m in letters) == sorted(letter_id(r) for r in bad)


def test_an_event_personalize_refuses_is_dead_lettered_the_rest_goes_on(
    app: ModuleType,
    deployment: Deployment,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Personalize takes event types of at most 256 characters: this one can never succeed.
    long_event = "Product Viewed " + "x" * 300
    monkeypatch.setenv("TRACKED_EVENTS", f"Product Viewed,Order Completed,{long_event}")
    messages = shop_events(30, 3, personalize.catalogue_item_ids)
    messages[4] = messages[4] | {"event": long_event}
    event = kinesis_event(messages)
    assert app.lambda_handler(event, Context()) == {"batchItemFailures": []}
    (letter,) = deployment.dead_letters(1)
    assert letter["sequenceNumber"] == event["Records"][4]["kinesis"]["sequenceNumber"]
    assert letter["reason"].startswith("PutEvents rejected the event: InvalidInputException: ")
    assert "eventType" in letter["reason"]
    assert len(personalize.accepted_events()) == 29
    assert len(segment.messages(type="identify")) == 3


def test_a_wrong_tracking_id_retries_everything_as_a_configuration_error(
    app: ModuleType,
    deployment: Deployment,
    personalize: PersonalizeEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PERSONALIZE_TRACKING_ID", "no-such-tracker")
    event = kinesis_event(shop_events(20, 4, personalize.catalogue_item_ids))
    result = app.lambda_handler(event, Context())
    assert result == {"batchItemFailures": [{"itemIdentifier": s} for s in sequence_numbers(event)]}
    assert deployment.queue_depth() == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [(o["setting"], o["step"]) for o in out if o.get("level") == "ERROR"] == [
        ("PERSONALIZE_TRACKING_ID", "PutEvents")
    ]
    (blob,) = [o for o in out if "_aws" in o]
    assert blob["ConfigurationErrors"] == 1


def test_attribution_properties_reach_put_events(
    app: ModuleType, deployment: Deployment, personalize: PersonalizeEmulator
) -> None:
    skus = personalize.catalogue_item_ids
    clicked, bad = shop_events(2, 1, skus)
    clicked["event"] = bad["event"] = "Product Clicked"
    clicked["properties"] = {
        "sku": skus[1],
        "recommendation_id": "RID-42",
        "impression": skus[:3],
    }
    # Outside PutEvents' limits: the click is kept, the attribution left out.
    bad["properties"] = {"sku": skus[2], "recommendation_id": "R" * 41, "impression": skus[:26]}
    result = app.lambda_handler(kinesis_event([clicked, bad]), Context())
    assert result == {"batchItemFailures": []}
    events = {e["eventId"]: e for e in personalize.accepted_events()}
    good = events[clicked["messageId"]]
    assert (good["recommendationId"], good["impression"]) == ("RID-42", skus[:3])
    kept = events[bad["messageId"]]
    assert (kept["itemId"], kept["recommendationId"], kept["impression"]) == (skus[2], None, None)


def test_a_failed_user_is_logged_as_its_hmac_under_the_deployments_key(
    app: ModuleType,
    deployment: Deployment,
    personalize: PersonalizeEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The key comes from LOG_HASH_KEY_PARAMETER (a SecureString, read in the background with
    the other secrets); the user of a line is its HMAC under that key, never its SHA-256."""
    from common.log import hash_id

    key = "traits-log-key-" + "y" * 40
    name = f"/traits-test/{uuid.uuid4().hex}/log-hash-key"
    boto3.client("ssm", region_name=REGION).put_parameter(Name=name, Value=key, Type="SecureString")
    monkeypatch.setenv("LOG_HASH_KEY_PARAMETER", name)
    runtime.reset()
    read = runtime.get().log_hash_key
    assert read is not None and read.wait(10)
    personalize.controls.set(
        fault_rate={"500": 1.0}, only_users={"user-0007"}, operations={"GetRecommendations"}
    )
    event = kinesis_event(shop_events(20, 10, personalize.catalogue_item_ids))
    assert len(app.lambda_handler(event, Context())["batchItemFailures"]) == 2
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    retried = [line for line in lines if line.get("message") == "records reported for retry"]
    assert {line["user"] for line in retried} == {hash_id("user-0007", key.encode())}
    unkeyed = hashlib.sha256(b"user-0007").hexdigest()[:16]
    assert "user-0007" not in json.dumps(lines) and unkeyed not in json.dumps(lines)
