"""Property-based: hostile API Gateway events through the recommendations handler, on the
Personalize emulator and the Segment Profile API emulator (token in moto's SSM).

Whatever the event holds (any Unicode including lone surrogates in every parameter, wrong
JSON types in every field, huge values, a remaining time from none to plenty), the answer
is a proxy response with a documented status, ``Content-Type: application/json`` and a JSON
body that is a list of items (200) or ``{"error": {"code", "message"}}``: never a stack
trace, never ``internal_error``, and always at least a second before the Lambda timeout.

Examples: ``property_examples`` in tests/conftest.py (``--hypothesis-profile=long`` for more).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import hypothesis
import pytest
from conftest import load_handler, property_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators.personalize import PersonalizeEmulator
from emulators.segment import SegmentEmulator
from reco_api import runtime
from reco_api.deadline import SPARE_S

TOKEN_PARAMETER = "/properties/profile-token"
# The API's answers (functions/recommendations/README.md): 200, 400 bad parameter, 404 a
# capability not configured (the OpenAPI document), 405 other methods, 429 throttled, 502/503
# Personalize failing (or no time left); 500 only as configuration_error.
DOCUMENTED = {200, 400, 404, 405, 429, 502, 503}


@pytest.fixture
def app(
    monkeypatch: pytest.MonkeyPatch,
    moto_url: str,
    personalize_env: PersonalizeEmulator,
    segment_emulator: SegmentEmulator,
) -> Iterator[tuple[ModuleType, set[str]]]:
    ssm = boto3.client("ssm", region_name=personalize_env.region, endpoint_url=moto_url)
    ssm.put_parameter(
        Name=TOKEN_PARAMETER,
        Value=segment_emulator.profile_token,
        Type="SecureString",
        Overwrite=True,
    )
    segment_emulator.set_traits(
        "u-1", {"purchased_products": personalize_env.catalogue_item_ids[:3]}
    )
    for name, value in {
        "AWS_ENDPOINT_URL_SSM": moto_url,
        "PERSONALIZE_CAMPAIGN_ARN": personalize_env.campaign_arn,
        "PERSONALIZE_RELATED_ITEMS_ARN": personalize_env.related_items_campaign_arn,
        "SEGMENT_SPACE_ID": segment_emulator.space_id,
        "SEGMENT_PROFILE_TOKEN_PARAMETER": TOKEN_PARAMETER,
        "SEGMENT_PROFILE_API_URL": f"{segment_emulator.url}/v1",
        "PROFILE_TIMEOUT_MS": "1000",
        "LOG_LEVEL": "ERROR",
    }.items():
        monkeypatch.setenv(name, value)
    runtime.reset()
    yield load_handler("recommendations"), set(personalize_env.catalogue_item_ids[:3])
    runtime.reset()


class Context:
    aws_request_id = "properties"

    def __init__(self, remaining_ms: Any) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> Any:
        return self.remaining_ms


# -- strategies -----------------------------------------------------------------------------

surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
any_text = st.text(st.one_of(st.characters(), surrogates), max_size=30)
huge_text = st.text(st.characters(max_codepoint=0x2FF), min_size=257, max_size=2000)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
ids = st.one_of(
    st.sampled_from(["u-1", "user-0042", "SKU-1001", "a+b/c d", "ünïcødé", ""]),
    any_text,
    huge_text,
    st.text(st.characters(), min_size=255, max_size=257),
)
counts = st.one_of(
    st.integers(min_value=-5, max_value=600).map(str),
    st.sampled_from(["", " 7", "+7", "1_0", "٣", "10.0", "1e2", "0x10"]),
    any_text,
)
names = st.sampled_from(["userId", "itemId", "numResults", "other"])
single_query = st.dictionaries(names, st.one_of(ids, counts, json_values), max_size=4)
multi_query = st.dictionaries(
    names, st.one_of(st.lists(st.one_of(ids, counts), max_size=3), json_values), max_size=4
)
events = st.one_of(
    st.fixed_dictionaries(
        {
            "resource": st.just("/recommendations"),
            "path": st.just("/recommendations"),
            "httpMethod": st.one_of(
                st.sampled_from(["GET", "HEAD", "POST", "OPTIONS"]), json_values
            ),
            "queryStringParameters": st.one_of(st.none(), single_query, json_values),
            "multiValueQueryStringParameters": st.one_of(st.none(), multi_query, json_values),
            "requestContext": st.one_of(
                st.fixed_dictionaries({"requestId": any_text}), json_values
            ),
        },
        optional={
            "headers": st.one_of(st.dictionaries(any_text, any_text, max_size=3), json_values)
        },
    ),
    json_values,  # not even an object
)


def good_query_of(kind: str, count: int | None) -> st.SearchStrategy[dict[str, str]]:
    pool = ["u-1", "user-0042", "a+b/c d", "ünïcødé"] if kind == "userId" else ["SKU-1001"]
    return st.sampled_from(pool).map(
        lambda value: {kind: value} if count is None else {kind: value, "numResults": str(count)}
    )


good_query = st.tuples(
    st.sampled_from(["userId", "userId", "userId", "itemId"]),
    st.one_of(st.none(), st.integers(min_value=1, max_value=500)),
).flatmap(lambda t: good_query_of(*t))
good_events = st.fixed_dictionaries(
    {
        "resource": st.just("/recommendations"),
        "path": st.just("/recommendations"),
        "httpMethod": st.sampled_from(["GET", "HEAD"]),
        "queryStringParameters": good_query,
        "headers": st.just({"Accept": "application/json"}),
        "requestContext": st.fixed_dictionaries({"requestId": st.uuids().map(str)}),
    }
).map(lambda e: {**e, "multiValueQueryStringParameters": None})
remaining = st.one_of(
    st.sampled_from([None, "soon", 10_000, 10_000, 29_000, 3999, 4000, 7999, 8000]),
    st.integers(min_value=0, max_value=30_000),
)


def matching_single(event: Any) -> Any:
    """API Gateway keeps the two query maps consistent: usually make them agree."""
    if isinstance(event, dict) and isinstance(event.get("queryStringParameters"), dict):
        single = event["queryStringParameters"]
        event = {**event, "multiValueQueryStringParameters": {k: [v] for k, v in single.items()}}
    return event


PROPERTY_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=property_examples(200), **PROPERTY_SETTINGS)
@given(event=good_events, remaining_ms=remaining)
def test_a_valid_request_is_answered_with_items_or_a_documented_error(
    app: tuple[ModuleType, set[str]], event: Any, remaining_ms: Any
) -> None:
    check(app, event, remaining_ms)


@settings(max_examples=property_examples(300), **PROPERTY_SETTINGS)
@given(event=st.one_of(events, events.map(matching_single)), remaining_ms=remaining)
def test_every_request_gets_a_documented_json_answer_in_time(
    app: tuple[ModuleType, set[str]], event: Any, remaining_ms: Any
) -> None:
    check(app, event, remaining_ms)


def check(app: tuple[ModuleType, set[str]], event: Any, remaining_ms: Any) -> None:
    handler, purchased = app
    started = time.monotonic()
    response = handler.lambda_handler(event, Context(remaining_ms))
    elapsed = time.monotonic() - started
    if isinstance(remaining_ms, int) and remaining_ms >= 1000:
        assert elapsed <= remaining_ms / 1000 - SPARE_S + 0.5, "a second to spare"

    assert set(response) >= {"statusCode", "headers", "body"}
    status = response["statusCode"]
    assert status in DOCUMENTED, (status, response["body"])
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["body"], "never an empty body"
    response["body"].encode("utf-8")  # sendable as it is
    body = json.loads(response["body"])
    code = body["error"]["code"] if status != 200 else "ok"
    hypothesis.event(f"{status} {code}")
    if status == 200:
        assert isinstance(body["items"], list)
        assert all(isinstance(i["itemId"], str) for i in body["items"])
        assert ("userId" in body) != ("itemId" in body)
        if body.get("userId") == "u-1":  # purchases removed (the profile answers in time)
            assert not purchased & {i["itemId"] for i in body["items"]}
    else:
        assert set(body) == {"error"}
        assert isinstance(code, str) and code
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert code != "internal_error"
