"""common.personalize: parsing, error classification, exclusion and fetch sizes."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from hypothesis import given
from hypothesis import strategies as st

from common.personalize import (
    Item,
    PersonalizeError,
    classify,
    exclude,
    fetch_size,
    get_recommendations,
    parse_response,
    target_parameter,
)


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetRecommendations",
    )


def test_target_parameter() -> None:
    assert target_parameter("arn:aws:personalize:r:1:recommender/x") == "recommenderArn"
    assert target_parameter("arn:aws:personalize:r:1:campaign/x") == "campaignArn"


def test_parse_response_keeps_order_and_drops_duplicates() -> None:
    parsed = parse_response(
        {
            "itemList": [
                {"itemId": "b", "score": 0.9},
                {"itemId": "a"},
                {"itemId": "b", "score": 0.1},
                {"itemId": "c", "score": float("nan")},
                {"itemId": "d", "score": True},
            ],
            "recommendationId": "RID",
        }
    )
    assert parsed.items == [Item("b", 0.9), Item("a", None), Item("c", None), Item("d", None)]
    assert parsed.recommendation_id == "RID"
    assert parse_response({}).items == []


@pytest.mark.parametrize(
    "response", [None, [], {"itemList": {}}, {"itemList": [{"score": 1}]}, {"itemList": [1]}]
)
def test_parse_response_rejects_bad_shapes(response: Any) -> None:
    with pytest.raises(PersonalizeError) as info:
        parse_response(response)
    assert info.value.kind == "bad_response"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (client_error("InvalidInputException", 400), "invalid_input"),
        (client_error("ResourceNotFoundException", 404), "misconfigured"),
        (client_error("AccessDeniedException", 400), "misconfigured"),
        (client_error("ThrottlingException", 400), "throttled"),
        (client_error("InternalFailure", 500), "unavailable"),
        (client_error("ServiceUnavailable", 503), "unavailable"),
        (client_error("Teapot", 418), "bad_response"),
        (ReadTimeoutError(endpoint_url="https://x"), "unavailable"),
        (ConnectTimeoutError(endpoint_url="https://x"), "unavailable"),
    ],
)
def test_classify(exc: BaseException, kind: str) -> None:
    assert classify(exc).kind == kind


def test_get_recommendations_builds_the_request() -> None:
    seen: list[dict[str, Any]] = []

    class Client:
        def get_recommendations(self, **params: Any) -> Any:
            seen.append(params)
            return {"itemList": [{"itemId": "x", "score": 1}], "recommendationId": "r"}

    arn = "arn:aws:personalize:r:1:recommender/x"
    get_recommendations(Client(), arn, user_id="u", num_results=900, filter_arn="f")
    assert seen[0] == {
        "recommenderArn": arn,
        "numResults": 500,
        "userId": "u",
        "filterArn": "f",
    }


def test_exclude_keeps_ranking_and_limit() -> None:
    items = [Item(x, None) for x in "abcdefg"]
    assert [i.item_id for i in exclude(items, {"b", "d", "z"}, 3)] == ["a", "c", "e"]
    assert exclude(items, set("abcdefg"), 3) == []


def test_fetch_size() -> None:
    assert fetch_size(25, 0) == 25
    assert fetch_size(25, 10) == 35
    assert fetch_size(480, 100) == 500


@given(
    ranking=st.lists(st.text(min_size=1, max_size=3), unique=True, max_size=40),
    excluded=st.sets(st.text(min_size=1, max_size=3), max_size=20),
    limit=st.integers(1, 50),
)
def test_exclude_is_an_ordered_filter_never_a_set_operation(
    ranking: list[str], excluded: set[str], limit: int
) -> None:
    kept = [i.item_id for i in exclude([Item(x, None) for x in ranking], excluded, limit)]
    assert kept == [x for x in ranking if x not in excluded][:limit]
