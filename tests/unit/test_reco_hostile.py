"""Hostile input and edge semantics of the recommendations API (issue 12): every answer is
JSON with a documented status, in time."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from test_reco_handler import (
    ENV,
    FakePersonalize,
    FakeProfiles,
    body,
    exclusion_runtime,
    fixture,
)

from devkit.context import LambdaContext
from reco_api import runtime
from reco_api.deadline import SPARE_S
from reco_api.handler import FULL_CALL_S, SINGLE_ATTEMPT_S, handle_with
from reco_api.runtime import Runtime


def Context(remaining_ms: int = 10_000) -> LambdaContext:
    return LambdaContext(remaining_ms, aws_request_id="lambda-req-1")


def run(event: Any, personalize: Any = None, context: Any = None) -> dict[str, Any]:
    fake = personalize or FakePersonalize()
    rt = Runtime(ENV, personalize=lambda: fake)
    return handle_with(rt, event, context or Context())


# -- defect 2: ids that cannot be encoded as UTF-8 ------------------------------------------


@pytest.mark.parametrize("name", ["userId", "itemId"])
def test_an_unencodable_id_is_a_400_not_a_500(name: str) -> None:
    event = fixture("get_user.json")
    event["queryStringParameters"] = {name: "u\ud800"}
    event["multiValueQueryStringParameters"] = {name: ["u\ud800"]}
    fake = FakePersonalize()
    response = run(event, fake)
    assert response["statusCode"] == 400
    assert body(response)["error"] == {
        "code": "invalid_parameter",
        "message": f"{name} must be valid Unicode text",
    }
    assert fake.calls == []
    json.dumps(response, ensure_ascii=False).encode("utf-8")  # the answer itself is encodable


# -- defect 8: the API never outlives its Lambda ---------------------------------------------


class Stalling(FakePersonalize):
    """Each call uses up ``cost_ms`` of the function's remaining time."""

    def __init__(self, context: Context, cost_ms: int, size: int = 50) -> None:
        super().__init__(size=size)
        self.context = context
        self.cost_ms = cost_ms

    def get_recommendations(self, **params: Any) -> Any:
        self.context.remaining_ms -= self.cost_ms
        return super().get_recommendations(**params)


def test_worst_cases_follow_the_client_policies() -> None:
    # 2 attempts x (1 s connect + 2 s read) + at most 1 s of backoff; one attempt: 3 s.
    assert FULL_CALL_S == 7.0
    assert SINGLE_ATTEMPT_S == 3.0
    assert runtime.PERSONALIZE_POLICY.max_attempts == 1
    assert runtime.PERSONALIZE_SINGLE_ATTEMPT_POLICY.max_attempts == 0


@pytest.mark.parametrize("remaining_ms", [0, 1000, 3999])
def test_too_little_time_answers_503_json_without_calling(remaining_ms: int) -> None:
    fake = FakePersonalize()
    response = run(fixture("get_user.json"), fake, Context(remaining_ms))
    assert response["statusCode"] == 503
    assert body(response)["error"]["code"] == "unavailable"
    assert fake.calls == []


@pytest.mark.parametrize(
    ("remaining_ms", "policy"),
    [
        (10_000, runtime.PERSONALIZE_POLICY),
        (8_000, runtime.PERSONALIZE_POLICY),
        (7_999, runtime.PERSONALIZE_SINGLE_ATTEMPT_POLICY),
        (4_000, runtime.PERSONALIZE_SINGLE_ATTEMPT_POLICY),
    ],
)
def test_the_call_is_chosen_to_end_a_second_before_the_timeout(
    monkeypatch: pytest.MonkeyPatch, remaining_ms: int, policy: Any
) -> None:
    used: list[Any] = []
    fake = FakePersonalize()

    class Clients:
        def personalize_runtime(self, chosen: Any) -> Any:
            used.append(chosen)
            return fake

    rt = Runtime(ENV)
    rt.clients = Clients()
    response = handle_with(rt, fixture("get_user.json"), Context(remaining_ms))
    assert response["statusCode"] == 200
    assert used == [policy]
    assert remaining_ms / 1000 - runtime.worst_case_s(policy) >= SPARE_S


def test_a_refill_that_would_not_end_in_time_is_skipped(pool: ThreadPoolExecutor) -> None:
    context = Context(10_000)
    # The first call stalls 7 s: 3 s left, not enough for another call plus the spare.
    fake = Stalling(context, cost_ms=7_000)
    purchased = FakeProfiles({"purchased_products": [f"i{k}" for k in range(40)]})
    rt = exclusion_runtime(fake, purchased, pool)
    response = handle_with(rt, fixture("get_user.json"), context)
    assert response["statusCode"] == 200
    assert len(fake.calls) == 1
    # Every item of the first page was a purchase; there was no time to refill.
    assert body(response)["items"] == []
    assert context.remaining_ms >= SPARE_S * 1000


def test_no_time_for_the_profile_wait_serves_unfiltered(pool: ThreadPoolExecutor) -> None:
    context = Context(10_000)
    fake = Stalling(context, cost_ms=8_990)  # 1.01 s left: less than spare + 250 ms
    profiles = FakeProfiles({"purchased_products": ["i0"]})
    rt = exclusion_runtime(fake, profiles, pool, budget=0.25)
    response = handle_with(rt, fixture("get_user.json"), context)
    assert response["statusCode"] == 200
    assert body(response)["items"][0]["itemId"] == "i0"


# -- defect 10: a missing region names the variable botocore reads ---------------------------


def test_a_missing_region_is_a_configuration_error_naming_aws_default_region(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # botocore does not read it
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no region from IMDS either
    response = handle_with(Runtime(ENV), fixture("get_user.json"), Context())
    assert response["statusCode"] == 500
    assert body(response)["error"]["code"] == "configuration_error"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    (error,) = [line for line in lines if line.get("level") == "ERROR"]
    assert error["setting"] == "AWS_DEFAULT_REGION"
