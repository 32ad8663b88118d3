"""The handler with fake clients: response shapes, error mapping, logs and metrics."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from conftest import FIXTURES
from test_reco_exclusion import FakeProfiles

from common.log import hash_id
from devkit.context import LambdaContext
from reco_api.exclusion import PurchaseReader
from reco_api.handler import handle_with
from reco_api.runtime import Runtime

CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
RECOMMENDER = "arn:aws:personalize:us-east-1:123456789012:recommender/shop"
FILTER = "arn:aws:personalize:us-east-1:123456789012:filter/no-purchases"
RELATED = "arn:aws:personalize:us-east-1:123456789012:campaign/shop-sims"
ENV = {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN}


Context = partial(LambdaContext, aws_request_id="lambda-req-1")


class FakePersonalize:
    def __init__(self, answer: Any = None, size: int = 50) -> None:
        self.answer = answer
        self.size = size
        self.calls: list[dict[str, Any]] = []

    def get_recommendations(self, **params: Any) -> Any:
        self.calls.append(params)
        if isinstance(self.answer, BaseException):
            raise self.answer
        if self.answer is not None:
            return self.answer
        n = min(params["numResults"], self.size)
        return {
            "itemList": [{"itemId": f"i{k}", "score": 0.5 - k / 1000} for k in range(n)],
            "recommendationId": "RID-1",
        }


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetRecommendations",
    )


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "apigw" / name).read_text(encoding="utf-8"))


def call(
    event: Any, env: dict[str, str] | None = None, personalize: Any = None, **kw: Any
) -> tuple[dict[str, Any], FakePersonalize]:
    fake = personalize or FakePersonalize()
    rt = Runtime(env or ENV, personalize=lambda: fake, **kw)
    return handle_with(rt, event, Context()), fake


def body(response: dict[str, Any]) -> Any:
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["body"]
    return json.loads(response["body"])


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


KEY = b"deployment-key-" * 3


def test_user_recommendations(capsys: pytest.CaptureFixture[str]) -> None:
    response, fake = call(fixture("get_user.json"), pseudonym_key=lambda: KEY)
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is False
    assert body(response) == {
        "items": [{"itemId": f"i{k}", "score": 0.5 - k / 1000} for k in range(5)],
        "recommendationId": "RID-1",
        "userId": "user-0042",
    }
    assert fake.calls == [{"campaignArn": CAMPAIGN, "numResults": 5, "userId": "user-0042"}]
    assert "Access-Control-Allow-Origin" not in response["headers"]
    out = lines(capsys)
    log = [line for line in out if line.get("message") == "request"]
    assert len(log) == 1
    assert log[0]["status"] == 200
    assert log[0]["request_id"] == "lambda-req-1"
    assert log[0]["api_request_id"] == "e0c4e7a2-5c41-4f0e-9b1e-3f4d2f1a9b10"
    assert log[0]["user"] == hash_id("user-0042", KEY)
    assert log[0]["returned"] == 5
    assert "user-0042" not in json.dumps(out)


@pytest.mark.parametrize("key", [None, lambda: None])
def test_without_the_pseudonym_key_no_user_is_logged(
    key: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not configured, or not read yet: the line has no user at all, never an unkeyed hash
    (a list of e-mail addresses hashed with SHA-256 would reverse it)."""
    response, _ = call(fixture("get_user.json"), **({} if key is None else {"pseudonym_key": key}))
    assert response["statusCode"] == 200
    (log,) = [line for line in lines(capsys) if line.get("message") == "request"]
    assert "user" not in log
    assert log["kind"] == "userId" and log["returned"] == 5


def test_item_recommendations_with_recommender_and_filter() -> None:
    env = {
        "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
        "PERSONALIZE_RELATED_ITEMS_ARN": RECOMMENDER,
        "PERSONALIZE_FILTER_ARN": FILTER,
    }
    response, fake = call(fixture("get_item.json"), env)
    assert body(response)["itemId"] == "SKU-1001"
    assert "userId" not in body(response)
    assert fake.calls == [
        {"recommenderArn": RECOMMENDER, "numResults": 10, "itemId": "SKU-1001", "filterArn": FILTER}
    ]


def test_default_count_from_setting() -> None:
    response, fake = call(fixture("get_user_default_count.json"), {**ENV, "NUM_RESULTS": "7"})
    assert len(body(response)["items"]) == 7
    assert fake.calls[0]["numResults"] == 7


def test_missing_score_is_null() -> None:
    answer = {"itemList": [{"itemId": "a"}, {"itemId": "b", "score": 0.2}], "recommendationId": "R"}
    response, _ = call(fixture("get_user.json"), personalize=FakePersonalize(answer))
    assert body(response)["items"] == [
        {"itemId": "a", "score": None},
        {"itemId": "b", "score": 0.2},
    ]


@pytest.mark.parametrize(
    "name", ["get_null_query.json", "get_repeated_user.json", "get_bad_count.json"]
)
def test_bad_requests_are_400_without_calling_personalize(name: str) -> None:
    response, fake = call(fixture(name))
    assert response["statusCode"] == 400
    error = body(response)["error"]
    assert error["code"] in ("missing_parameter", "invalid_parameter")
    assert error["message"]
    assert fake.calls == []


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (client_error("InvalidInputException", 400), 400, "invalid_request"),
        (client_error("ThrottlingException", 400), 429, "throttled"),
        (client_error("InternalFailure", 500), 503, "unavailable"),
        (client_error("ServiceUnavailable", 503), 503, "unavailable"),
        (client_error("SomethingNew", 400), 502, "bad_gateway"),
        (EndpointConnectionError(endpoint_url="https://personalize-runtime"), 503, "unavailable"),
        (ReadTimeoutError(endpoint_url="https://personalize-runtime"), 503, "unavailable"),
        (client_error("ResourceNotFoundException", 404), 500, "configuration_error"),
        (client_error("AccessDeniedException", 400), 500, "configuration_error"),
    ],
)
def test_personalize_errors(
    exc: BaseException, status: int, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    response, _ = call(fixture("get_user.json"), personalize=FakePersonalize(exc))
    assert response["statusCode"] == status
    assert body(response)["error"]["code"] == code
    assert ("Retry-After" in response["headers"]) == (status == 429)
    if status == 429:
        assert int(response["headers"]["Retry-After"]) >= 1
    out = lines(capsys)
    emf = [line for line in out if "_aws" in line]
    assert emf[0][f"Error_{code}"] == 1
    assert "Traceback" not in response["body"]


def test_bad_personalize_answer_is_502() -> None:
    answer = {"itemList": "nope"}
    response, _ = call(fixture("get_user.json"), personalize=FakePersonalize(answer))
    assert response["statusCode"] == 502
    assert body(response)["error"]["code"] == "bad_gateway"


@pytest.mark.parametrize(
    ("request_fixture", "setting", "arn", "message"),
    [
        ("get_user.json", "PERSONALIZE_FILTER_ARN", FILTER, f"Filter {FILTER} does not exist"),
        (
            "get_item.json",
            "PERSONALIZE_RELATED_ITEMS_ARN",
            RELATED,
            f"Resource {RELATED} does not exist.",
        ),
    ],
)
def test_a_refused_arn_is_named(
    capsys: pytest.CaptureFixture[str], request_fixture: str, setting: str, arn: str, message: str
) -> None:
    exc = client_error("ResourceNotFoundException", 404, message)
    env = {**ENV, setting: arn}
    response, _ = call(fixture(request_fixture), env, FakePersonalize(exc))
    assert response["statusCode"] == 500
    errors = [line for line in lines(capsys) if line.get("level") == "ERROR"]
    assert [e["setting"] for e in errors] == [setting]


def test_missing_setting_is_500_with_one_line_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    response, fake = call(fixture("get_user.json"), {"NUM_RESULTS": "7"})
    assert response["statusCode"] == 500
    assert body(response)["error"]["code"] == "configuration_error"
    assert fake.calls == []
    logs = [line for line in lines(capsys) if "_aws" not in line]
    assert len(logs) == 1
    assert logs[0]["level"] == "ERROR"
    assert logs[0]["setting"] == "PERSONALIZE_CAMPAIGN_ARN"
    assert "PERSONALIZE_CAMPAIGN_ARN" not in response["body"]  # callers learn nothing internal


def test_unexpected_failure_is_a_json_500_without_a_trace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken:
        def get_recommendations(self, **params: Any) -> Any:
            raise AssertionError("secret internals")

    # An AssertionError is not a botocore error: classify() turns it into "unavailable".
    response, _ = call(fixture("get_user.json"), personalize=Broken())
    assert response["statusCode"] == 503

    def explode() -> Any:
        raise KeyError("secret internals")

    rt = Runtime(ENV, personalize=explode)
    response = handle_with(rt, fixture("get_user.json"), Context())
    assert response["statusCode"] == 500
    assert body(response) == {"error": {"code": "internal_error", "message": "internal error"}}
    log = [line for line in lines(capsys) if line.get("error_type") == "KeyError"]
    assert log and "secret internals" not in json.dumps(log)


def test_cors_single_origin_and_list() -> None:
    event = fixture("get_user.json")
    event["headers"]["origin"] = "https://shop.example.com"
    response, _ = call(event, {**ENV, "CORS_ALLOW_ORIGIN": "*"})
    assert response["headers"]["Access-Control-Allow-Origin"] == "*"
    listed = {**ENV, "CORS_ALLOW_ORIGIN": "https://shop.example.com,https://m.example.com"}
    response, _ = call(event, listed)
    assert response["headers"]["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert response["headers"]["Vary"] == "Origin"
    event["headers"]["origin"] = "https://evil.example.net"
    response, _ = call(event, listed)
    assert "Access-Control-Allow-Origin" not in response["headers"]


def test_preflight() -> None:
    env = {**ENV, "CORS_ALLOW_ORIGIN": "https://shop.example.com"}
    response, fake = call(fixture("options_preflight.json"), env)
    assert response["statusCode"] == 204
    assert response["headers"]["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "x-api-key" in response["headers"]["Access-Control-Allow-Headers"].lower()
    assert fake.calls == []
    response, _ = call(fixture("options_preflight.json"))
    assert response["statusCode"] == 405
    assert body(response)["error"]["code"] == "method_not_allowed"


def exclusion_runtime(
    fake: FakePersonalize, profiles: FakeProfiles, pool: ThreadPoolExecutor, budget: float = 1.0
) -> Runtime:
    env = {
        **ENV,
        "PERSONALIZE_RELATED_ITEMS_ARN": RECOMMENDER,
        "SEGMENT_SPACE_ID": "spa_1",
        "SEGMENT_PROFILE_TOKEN_PARAMETER": "/t",
    }
    reader = PurchaseReader(
        profiles,
        "purchased_products",
        budget,
        lambda: pool,
        on_config_problem=lambda setting, detail: None,
    )
    return Runtime(env, personalize=lambda: fake, purchases=reader)


def test_purchases_excluded_and_counted(
    pool: ThreadPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakePersonalize()
    rt = exclusion_runtime(fake, FakeProfiles({"purchased_products": ["i0", "i2"]}), pool)
    response = handle_with(rt, fixture("get_user.json"), Context())
    assert [item["itemId"] for item in body(response)["items"]] == ["i1", "i3", "i4", "i5", "i6"]
    assert fake.calls[0]["numResults"] == 30  # 5 + the default headroom, in one call
    out = lines(capsys)
    emf = next(line for line in out if "_aws" in line)
    assert emf["ExclusionApplied"] == 1
    assert emf["PurchasedItemsExcluded"] == 2
    log = next(line for line in out if line.get("message") == "request")
    assert (log["exclusion"], log["purchased"], log["excluded"]) == ("applied", 2, 2)


def test_slow_profile_serves_unfiltered_and_counts(
    pool: ThreadPoolExecutor, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = threading.Event()
    profiles = FakeProfiles({"purchased_products": ["i0"]}, release=gate)
    rt = exclusion_runtime(FakePersonalize(), profiles, pool, budget=0.05)
    response = handle_with(rt, fixture("get_user.json"), Context())
    gate.set()
    assert response["statusCode"] == 200
    assert body(response)["items"][0]["itemId"] == "i0"
    out = lines(capsys)
    emf = next(line for line in out if "_aws" in line)
    assert emf["ExclusionUnavailable"] == 1
    assert emf["exclusion_reason"] == "timeout"
    log = next(line for line in out if line.get("message") == "request")
    assert log["level"] == "WARNING"


def test_item_requests_never_read_profiles(pool: ThreadPoolExecutor) -> None:
    profiles = FakeProfiles({"purchased_products": ["i0"]})
    rt = exclusion_runtime(FakePersonalize(), profiles, pool)
    response = handle_with(rt, fixture("get_item.json"), Context())
    assert response["statusCode"] == 200
    assert [item["itemId"] for item in body(response)["items"]][:1] == ["i0"]
    assert len(body(response)["items"]) == 10
    pool.shutdown(wait=True)  # any read would have finished by now
    assert profiles.calls == []


def test_rejected_credentials_are_named_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    exc = client_error("UnrecognizedClientException", 403)
    response, _ = call(fixture("get_user.json"), personalize=FakePersonalize(exc))
    assert response["statusCode"] == 500
    errors = [line for line in lines(capsys) if line.get("level") == "ERROR"]
    assert [line["setting"] for line in errors] == ["AWS credentials"]


def test_item_requests_go_to_the_related_items_arn_when_set() -> None:
    env = {**ENV, "PERSONALIZE_RELATED_ITEMS_ARN": RELATED}
    response, fake = call(fixture("get_item.json"), env)
    assert response["statusCode"] == 200
    assert body(response)["itemId"] == "SKU-1001"
    user_response, _ = call(fixture("get_user.json"), env, fake)
    assert user_response["statusCode"] == 200
    assert [c.get("campaignArn") for c in fake.calls] == [RELATED, CAMPAIGN]
    assert fake.calls[0]["itemId"] == "SKU-1001"


def test_item_requests_without_a_related_items_arn_name_the_setting() -> None:
    # A USER_PERSONALIZATION campaign rejects itemId: no fallback to it (issue 14).
    response, fake = call(fixture("get_item.json"))
    assert response["statusCode"] == 404
    error = body(response)["error"]
    assert error["code"] == "not_configured"
    assert "PERSONALIZE_RELATED_ITEMS_ARN" in error["message"]
    assert fake.calls == []
