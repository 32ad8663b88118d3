"""Purchased-item exclusion from the user-state store: the unmodified handler with real
boto3 against moto's DynamoDB (in-process) and the Personalize and Segment emulators (and
the profile token in moto's SSM, for the capped user's Profile API read); the emulators over
loopback HTTP. With USER_STATE_TABLE set, the API reads no Profile API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from types import ModuleType
from typing import Any

import boto3
import pytest
from conftest import FIXTURES
from moto import mock_aws

from common.userstate import MAX_PURCHASES, UserStateStore
from devkit.context import LambdaContext
from devkit.events import apigw_event
from devkit.fixtures import clear_env, started_segment, trained_personalize, use_fake_aws
from devkit.loader import load_app
from emulators.personalize import PersonalizeEmulator
from emulators.segment import SegmentEmulator
from reco_api import runtime

TABLE = "reco-test-user-state"
TOKEN_PARAMETER = "/reco-store-test/segment-profile-token"
TRAIT = "purchased_products"
Invoke = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]

Context = partial(LambdaContext, aws_request_id="it-store")


def event(user_id: str, num_results: int) -> dict[str, Any]:
    query = {"userId": user_id, "numResults": str(num_results)}
    return apigw_event(FIXTURES / "apigw" / "get_user.json", query)


@pytest.fixture(scope="module")
def personalize() -> Iterator[PersonalizeEmulator]:
    with trained_personalize() as emu:
        yield emu


@pytest.fixture
def segment() -> Iterator[SegmentEmulator]:
    with started_segment(purchased_trait=TRAIT) as emu:
        yield emu


@pytest.fixture(scope="module")
def handler_module() -> ModuleType:
    return load_app("recommendations")


@pytest.fixture
def env(
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clear_env(monkeypatch, "AWS_", "PERSONALIZE_", "SEGMENT_", "USER_STATE_")
    # DynamoDB and SSM keep the SDK's default endpoints, answered in-process by moto's mock
    # (it lets the Personalize emulator's loopback URL through).
    use_fake_aws(monkeypatch, endpoints={"personalize-runtime": personalize.url})
    monkeypatch.setenv("PERSONALIZE_CAMPAIGN_ARN", personalize.campaign_arn)
    monkeypatch.setenv("SEGMENT_SPACE_ID", segment.space_id)
    monkeypatch.setenv("SEGMENT_PROFILE_TOKEN_PARAMETER", TOKEN_PARAMETER)
    monkeypatch.setenv("SEGMENT_PROFILE_API_URL", segment.url + "/v1")
    monkeypatch.setenv("USER_STATE_TABLE", TABLE)
    # Generous, so that correctness never depends on machine load.
    monkeypatch.setenv("PROFILE_TIMEOUT_MS", "3000")
    monkeypatch.setenv("PROFILE_CACHE_TTL_S", "0")
    personalize.reset_stats()


@pytest.fixture
def store(env: None, segment: SegmentEmulator) -> Iterator[UserStateStore]:
    with mock_aws():
        boto3.client("ssm").put_parameter(
            Name=TOKEN_PARAMETER, Value=segment.profile_token, Type="SecureString"
        )
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "user_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "user_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield UserStateStore(client, TABLE)


@pytest.fixture
def invoke(handler_module: ModuleType) -> Iterator[Invoke]:
    runtime.reset()

    def call(evt: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = handler_module.lambda_handler(evt, Context())
        return response["statusCode"], json.loads(response["body"])

    yield call
    runtime.reset()


def ranking(personalize: PersonalizeEmulator, user_id: str, n: int = 100) -> list[str]:
    client = boto3.client("personalize-runtime", endpoint_url=personalize.url)
    answer = client.get_recommendations(
        campaignArn=personalize.campaign_arn, userId=user_id, numResults=n
    )
    return [item["itemId"] for item in answer["itemList"]]


def ids(body: dict[str, Any]) -> list[str]:
    return [item["itemId"] for item in body["items"]]


def profile_reads(segment: SegmentEmulator) -> int:
    return sum(1 for r in segment.request_log() if r.operation == "profile")


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_the_stored_purchases_are_excluded_and_no_profile_is_read(
    store: UserStateStore,
    invoke: Invoke,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
) -> None:
    user = "user-0042"
    top = ranking(personalize, user)
    store.add_purchases(user, [top[0]])  # from the stream
    store.seed(user, [top[2]])  # from the Profile API, merged by the seed
    # A purchase only the Profile API knows: with the store on, it is not read.
    segment.set_traits(user, {TRAIT: [top[1]]})
    status, body = invoke(event(user, 5))
    assert status == 200, body
    assert ids(body) == [top[1], *top[3:7]]
    assert profile_reads(segment) == 0


def test_a_user_the_store_does_not_know_gets_the_ranking(
    store: UserStateStore,
    invoke: Invoke,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
) -> None:
    status, body = invoke(event("user-0007", 5))
    assert status == 200
    assert ids(body) == ranking(personalize, "user-0007", 5)
    assert profile_reads(segment) == 0


def test_a_capped_user_is_read_from_the_profile_api_too(
    store: UserStateStore,
    invoke: Invoke,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
) -> None:
    user = "user-0011"
    top = ranking(personalize, user)
    filler = [f"OLD-{n:04d}" for n in range(MAX_PURCHASES - 1)]
    store.add_purchases(user, [top[0], *filler])  # the cap reached exactly
    capped = store.add_purchases(user, [top[1], top[2]])  # past it: not stored
    assert capped.capped and top[1] not in capped.purchased
    segment.set_traits(user, {TRAIT: [top[1], top[2]]})
    status, body = invoke(event(user, 5))
    assert status == 200
    assert ids(body) == top[3:8]
    assert profile_reads(segment) == 1


def test_a_missing_table_serves_unfiltered_and_names_the_setting(
    store: UserStateStore,
    invoke: Invoke,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("USER_STATE_TABLE", "no-such-table")
    user = "user-0042"
    top = ranking(personalize, user)
    store.add_purchases(user, [top[0]])
    for _ in range(2):
        status, body = invoke(event(user, 5))
        assert status == 200
        assert ids(body) == top[:5]
    out = lines(capsys)
    errors = [line for line in out if line.get("level") == "ERROR"]
    assert [line["setting"] for line in errors] == ["USER_STATE_TABLE"]  # once, then paused
    assert "ResourceNotFoundException" in errors[0]["reason"]
    requests = [line for line in out if line.get("message") == "request"]
    assert [line["exclusion_reason"] for line in requests] == ["store_misconfigured"] * 2
    assert profile_reads(segment) == 0
