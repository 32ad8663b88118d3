"""Parsing API Gateway REST (payload v1) events: null-safe, strict about what matters.

Each event goes through the edge (``reco_api.edge.read``) and then the GET query's parser, as
in the handler; the edge's own tests are in test_reco_edge.py."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from conftest import FIXTURES
from hypothesis import given
from hypothesis import strategies as st

from reco_api import edge, request
from reco_api.request import BadRequest, Query

DEFAULT = 25


def parse(event: Any, default_num_results: int) -> Query:
    return request.parse(edge.read(event), default_num_results)


def method(event: Any) -> str:
    return edge.read(event).method


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "apigw" / name).read_text(encoding="utf-8"))


def with_query(single: dict[str, str] | None, multi: dict[str, list[str]] | None = None) -> Any:
    event = fixture("get_null_query.json")
    event["queryStringParameters"] = single
    event["multiValueQueryStringParameters"] = multi
    return event


def bad(event: Any) -> BadRequest:
    with pytest.raises(BadRequest) as info:
        parse(event, DEFAULT)
    return info.value


def test_user_request_with_count() -> None:
    assert parse(fixture("get_user.json"), DEFAULT) == Query("user-0042", None, 5)


def test_default_count_comes_from_the_setting() -> None:
    assert parse(fixture("get_user_default_count.json"), 7).num_results == 7


def test_item_request() -> None:
    query = parse(fixture("get_item.json"), DEFAULT)
    assert query == Query(None, "SKU-1001", 10)
    assert query.subject == ("itemId", "SKU-1001")


def test_null_query_string_is_a_400_not_a_crash() -> None:
    error = bad(fixture("get_null_query.json"))
    assert error.code == "missing_parameter"


@pytest.mark.parametrize("event", [{}, {"queryStringParameters": None}, []])
def test_events_without_query_fields(event: Any) -> None:
    assert bad(event).code in ("missing_parameter", "invalid_request")


def test_repeated_parameter_is_a_400() -> None:
    error = bad(fixture("get_repeated_user.json"))
    assert error.code == "invalid_parameter"
    assert "userId" in error.message


def test_repeated_unknown_parameter_is_ignored() -> None:
    assert parse(fixture("get_repeated_unknown.json"), DEFAULT).user_id == "user-0042"


def test_unicode_id_is_kept_exactly() -> None:
    assert parse(fixture("get_unicode_user.json"), DEFAULT).user_id == "Zoë-用户-🙂"


def test_plus_and_slash_stay_as_decoded_by_api_gateway() -> None:
    assert parse(fixture("get_plus_slash_user.json"), DEFAULT).user_id == "a+b/c=="


def test_both_ids_is_a_400() -> None:
    assert bad(fixture("get_user_and_item.json")).code == "missing_parameter"


def test_only_multi_value_map_is_enough() -> None:
    query = parse(with_query(None, {"itemId": ["i-1"], "numResults": ["3"]}), DEFAULT)
    assert query == Query(None, "i-1", 3)


def test_empty_id_is_a_400() -> None:
    assert bad(with_query({"userId": ""})).code == "invalid_parameter"


def test_id_length_limit_is_256() -> None:
    assert parse(with_query({"userId": "u" * 256}), DEFAULT).user_id == "u" * 256
    assert "256" in bad(with_query({"userId": "u" * 257})).message


@pytest.mark.parametrize(
    "raw", ["0", "501", "-1", "ten", "", " 5", "5 ", "+5", "1_0", "5.0", "1e2", "٣", "10000"]
)
def test_bad_counts(raw: str) -> None:
    error = bad(with_query({"userId": "u", "numResults": raw}))
    assert error.code == "invalid_parameter"
    assert "numResults" in error.message


@pytest.mark.parametrize(("raw", "expected"), [("1", 1), ("500", 500), ("007", 7)])
def test_good_counts(raw: str, expected: int) -> None:
    assert parse(with_query({"userId": "u", "numResults": raw}), DEFAULT).num_results == expected


@given(st.integers(min_value=-1000, max_value=1000))
def test_counts_accepted_exactly_in_range(n: int) -> None:
    event = with_query({"userId": "u", "numResults": str(n)})
    if 1 <= n <= 500:
        assert parse(event, DEFAULT).num_results == n
    else:
        with pytest.raises(BadRequest):
            parse(event, DEFAULT)


@given(st.text(min_size=1, max_size=256))
def test_any_id_within_limits_round_trips(user_id: str) -> None:
    assert parse(with_query({"userId": user_id}), DEFAULT).user_id == user_id


def test_malformed_query_maps_are_a_400() -> None:
    assert bad(with_query({"userId": ["x"]})).code == "invalid_parameter"  # type: ignore[dict-item]
    event = with_query(None)
    event["queryStringParameters"] = "userId=x"
    assert bad(event).code == "invalid_request"


def test_method_defaults_to_get() -> None:
    assert method({}) == "GET"
    event = copy.deepcopy(fixture("options_preflight.json"))
    assert method(event) == "OPTIONS"
