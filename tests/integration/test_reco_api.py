"""The recommendations handler with real boto3 against the Personalize emulator over HTTP:
every success and error path of the contract (functions/recommendations/README.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from functools import partial
from types import ModuleType
from typing import Any

import boto3
import pytest
from conftest import FIXTURES

from devkit.context import LambdaContext
from devkit.events import apigw_event
from devkit.fixtures import clear_env, trained_personalize, use_fake_aws
from devkit.loader import load_app
from emulators.controls import Controls
from emulators.personalize import PersonalizeEmulator
from emulators.segment import SegmentEmulator
from reco_api import runtime

Invoke = Callable[..., tuple[int, dict[str, str], Any]]


Context = partial(LambdaContext, aws_request_id="it-request")


def event(name: str, **query: str) -> dict[str, Any]:
    """A fixture event; ``query`` replaces its query string (as API Gateway would build it)."""
    return apigw_event(FIXTURES / "apigw" / name, query or None)


@pytest.fixture(scope="module")
def emulator() -> Iterator[PersonalizeEmulator]:
    with trained_personalize() as emu:
        yield emu


@pytest.fixture(scope="module")
def handler_module() -> ModuleType:
    return load_app("recommendations")


@pytest.fixture
def aws_env(emulator: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    clear_env(
        monkeypatch,
        *("AWS_", "PERSONALIZE_", "SEGMENT_", "NUM_RESULTS", "CORS_ALLOW_ORIGIN"),
        *("PROFILE_TIMEOUT_MS", "EXCLUSION_HEADROOM", "PURCHASED_TRAIT"),
    )
    use_fake_aws(monkeypatch, emulator.region, {"personalize-runtime": emulator.url})
    monkeypatch.setenv("PERSONALIZE_CAMPAIGN_ARN", emulator.campaign_arn)
    emulator.controls.reset()
    emulator.reset_stats()
    runtime.reset()
    yield
    runtime.reset()
    emulator.controls.reset()


@pytest.fixture
def invoke(aws_env: None, handler_module: ModuleType) -> Invoke:
    def call(evt: Any) -> tuple[int, dict[str, str], Any]:
        response = handler_module.lambda_handler(evt, Context())
        assert response["headers"]["Content-Type"] == "application/json"
        assert response["body"], "never an empty body"
        return response["statusCode"], response["headers"], json.loads(response["body"])

    return call


def direct(emulator: PersonalizeEmulator, **params: Any) -> list[str]:
    """The ranking as a bare boto3 call sees it."""
    client = boto3.client("personalize-runtime", endpoint_url=emulator.url)
    return [item["itemId"] for item in client.get_recommendations(**params)["itemList"]]


def personalize_bodies(emulator: PersonalizeEmulator) -> list[dict[str, Any]]:
    return [r.body for r in emulator.request_log() if r.operation == "GetRecommendations"]


def test_user_recommendations_match_personalize(
    invoke: Invoke, emulator: PersonalizeEmulator
) -> None:
    status, headers, body = invoke(event("get_user.json"))
    assert status == 200
    expected = direct(emulator, campaignArn=emulator.campaign_arn, userId="user-0042", numResults=5)
    assert [item["itemId"] for item in body["items"]] == expected
    assert all(isinstance(item["score"], float) for item in body["items"])
    assert body["recommendationId"]
    assert body["userId"] == "user-0042"
    assert "Access-Control-Allow-Origin" not in headers
    assert personalize_bodies(emulator)[0] == {
        "campaignArn": emulator.campaign_arn,
        "numResults": 5,
        "userId": "user-0042",
    }


def test_default_num_results(
    invoke: Invoke, emulator: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUM_RESULTS", "12")
    status, _, body = invoke(event("get_user_default_count.json"))
    assert status == 200
    assert len(body["items"]) == 12


def test_related_items(
    invoke: Invoke, emulator: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONALIZE_RELATED_ITEMS_ARN", emulator.related_items_campaign_arn)
    item = emulator.catalogue_item_ids[0]
    status, _, body = invoke(event("get_item.json", itemId=item, numResults="4"))
    assert status == 200
    assert body["itemId"] == item
    assert "userId" not in body
    expected = direct(
        emulator, campaignArn=emulator.related_items_campaign_arn, itemId=item, numResults=4
    )
    assert [entry["itemId"] for entry in body["items"]] == expected


def test_recommender_arn_and_filter(
    invoke: Invoke, emulator: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONALIZE_CAMPAIGN_ARN", emulator.recommender_arn)
    monkeypatch.setenv("PERSONALIZE_FILTER_ARN", emulator.purchase_filter_arn)
    status, _, body = invoke(event("get_user.json"))
    assert status == 200
    assert len(body["items"]) == 5
    assert personalize_bodies(emulator)[0] == {
        "recommenderArn": emulator.recommender_arn,
        "filterArn": emulator.purchase_filter_arn,
        "numResults": 5,
        "userId": "user-0042",
    }


def test_unicode_and_reserved_characters_reach_personalize_intact(
    invoke: Invoke, emulator: PersonalizeEmulator
) -> None:
    for name, user in (
        ("get_unicode_user.json", "Zoë-用户-🙂"),
        ("get_plus_slash_user.json", "a+b/c=="),
    ):
        status, _, body = invoke(event(name))
        assert status == 200
        assert body["userId"] == user
    assert [b["userId"] for b in personalize_bodies(emulator)] == ["Zoë-用户-🙂", "a+b/c=="]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("get_null_query.json", "missing_parameter"),
        ("get_repeated_user.json", "invalid_parameter"),
        ("get_bad_count.json", "invalid_parameter"),
        ("get_user_and_item.json", "missing_parameter"),
    ],
)
def test_bad_requests(invoke: Invoke, emulator: PersonalizeEmulator, name: str, code: str) -> None:
    status, _, body = invoke(event(name))
    assert (status, body["error"]["code"]) == (400, code)
    assert emulator.counters["GetRecommendations"] == 0


def test_too_long_id_is_a_400_before_personalize(
    invoke: Invoke, emulator: PersonalizeEmulator
) -> None:
    status, _, body = invoke(event("get_user.json", userId="u" * 257))
    assert status == 400
    assert "256" in body["error"]["message"]
    assert emulator.counters["GetRecommendations"] == 0


def test_personalize_invalid_input_is_a_400(
    invoke: Invoke, emulator: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A user id sent to a related-items campaign.
    monkeypatch.setenv("PERSONALIZE_CAMPAIGN_ARN", emulator.related_items_campaign_arn)
    status, _, body = invoke(event("get_user.json"))
    assert (status, body["error"]["code"]) == (400, "invalid_request")


def test_throttling_is_a_429_with_retry_after(
    invoke: Invoke, emulator: PersonalizeEmulator
) -> None:
    emulator.controls.set(fault_rate={"429": 1.0})
    status, headers, body = invoke(event("get_user.json"))
    assert (status, body["error"]["code"]) == (429, "throttled")
    assert int(headers["Retry-After"]) >= 1
    assert emulator.counters["GetRecommendations"] == 2  # botocore retried once, no more


def seed_for(sequence: list[str | None], rate: dict[str, float]) -> int:
    """A seed whose first fault draws are ``sequence`` (draws are seeded, so a run repeats)."""
    for seed in range(1000):
        controls = Controls(seed)
        controls.set(fault_rate=rate)
        if [controls.decide("GetRecommendations", ()).fault for _ in sequence] == sequence:
            return seed
    raise AssertionError("no seed gives that sequence")


def test_one_throttle_is_retried_transparently(
    invoke: Invoke, emulator: PersonalizeEmulator
) -> None:
    rate = {"429": 0.5}
    emulator.controls.set(fault_rate=rate, seed=seed_for(["429", None], rate))
    status, _, body = invoke(event("get_user.json"))
    assert [r.fault for r in emulator.request_log()] == ["429", None]
    assert status == 200
    assert len(body["items"]) == 5


@pytest.mark.parametrize(("fault", "attempts"), [("500", 2), ("503", 2), ("reset", 2)])
def test_personalize_failures_are_503(
    invoke: Invoke, emulator: PersonalizeEmulator, fault: str, attempts: int
) -> None:
    emulator.controls.set(fault_rate={fault: 1.0})
    status, headers, body = invoke(event("get_user.json"))
    assert (status, body["error"]["code"]) == (503, "unavailable")
    assert "Retry-After" not in headers
    assert emulator.counters["GetRecommendations"] == attempts


def test_hanging_personalize_answers_503_well_inside_29_seconds(
    invoke: Invoke, emulator: PersonalizeEmulator
) -> None:
    emulator.controls.set(fault_rate={"slow": 1.0}, slow_ms=20_000)
    started = time.monotonic()
    status, _, body = invoke(event("get_user.json"))
    elapsed = time.monotonic() - started
    assert (status, body["error"]["code"]) == (503, "unavailable")
    # Two attempts of a 2 s read timeout (runtime.PERSONALIZE_POLICY) plus a short backoff.
    assert 3.5 < elapsed < 8.0, elapsed


def test_unexpected_answer_is_a_502(invoke: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    # Something that is not Personalize answers at the endpoint (a proxy, a wrong URL).
    with SegmentEmulator() as impostor:
        monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME", impostor.url)
        status, _, body = invoke(event("get_user.json"))
        impostor.store.close()
    assert (status, body["error"]["code"]) == (502, "bad_gateway")


@pytest.mark.parametrize(
    ("setting", "resource"),
    [
        ("PERSONALIZE_CAMPAIGN_ARN", "campaign_arn"),
        ("PERSONALIZE_FILTER_ARN", "purchase_filter_arn"),
    ],
)
def test_an_unknown_arn_is_a_configuration_error_naming_its_setting(
    invoke: Invoke,
    emulator: PersonalizeEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    setting: str,
    resource: str,
) -> None:
    monkeypatch.setenv(setting, getattr(emulator, resource) + "-gone")
    status, _, body = invoke(event("get_user.json"))
    assert (status, body["error"]["code"]) == (500, "configuration_error")
    errors = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"ERROR"' in line
    ]
    assert [line["setting"] for line in errors] == [setting]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PERSONALIZE_CAMPAIGN_ARN", None),
        ("PERSONALIZE_CAMPAIGN_ARN", "campaign-name-not-arn"),
        ("NUM_RESULTS", "0"),
        ("SEGMENT_SPACE_ID", "spa_only"),
        ("CORS_ALLOW_ORIGIN", "shop.example.com"),
    ],
)
def test_misconfiguration_is_500_with_one_line_naming_it(
    invoke: Invoke,
    emulator: PersonalizeEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str | None,
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    for _ in range(2):  # settings are read once; every request still answers and logs
        status, _, body = invoke(event("get_user.json"))
        assert (status, body["error"]["code"]) == (500, "configuration_error")
    logs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    lines = [line for line in logs if "_aws" not in line]
    assert len(lines) == 2
    named = {
        "SEGMENT_SPACE_ID": "SEGMENT_PROFILE_TOKEN_PARAMETER",  # the missing partner is named
    }.get(variable, variable)
    assert all(line["setting"] == named and line["level"] == "ERROR" for line in lines)
    assert "Traceback" not in json.dumps(logs)
    assert emulator.counters["GetRecommendations"] == 0


def test_cors_and_request_ids_in_logs(
    invoke: Invoke, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGIN", "*")
    status, headers, _ = invoke(event("get_user.json"))
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "*"
    out = capsys.readouterr().out.splitlines()
    log = next(json.loads(line) for line in out if '"message":"request"' in line)
    emf = next(json.loads(line) for line in out if '"_aws"' in line)
    assert log["request_id"] == "it-request"
    assert log["latency_ms"] > 0
    assert log["cold_start"] is True
    assert "user-0042" not in "\n".join(out)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "SegmentPersonalize"
    assert emf["Requests"] == 1
    assert emf["ColdStart"] == 1


def test_client_created_once_per_container(invoke: Invoke) -> None:
    invoke(event("get_user.json"))
    first = runtime.get().personalize()
    invoke(event("get_item.json", userId="user-0001"))
    assert runtime.get().personalize() is first


def test_a_stalling_personalize_answers_503_json_a_second_before_the_timeout(
    aws_env: None, handler_module: ModuleType, emulator: PersonalizeEmulator
) -> None:
    emulator.controls.set(fault_rate={"slow": 1.0}, slow_ms=20_000)
    context = Context(timeout_s=5.0)  # too short for a call with its retry (7 s): one attempt
    response = handler_module.lambda_handler(event("get_user.json"), context)
    assert response["statusCode"] == 503
    assert response["headers"]["Content-Type"] == "application/json"
    assert json.loads(response["body"])["error"]["code"] == "unavailable"
    assert context.get_remaining_time_in_millis() >= 1000
    assert emulator.counters["GetRecommendations"] == 1  # no retry: it would not have fit
