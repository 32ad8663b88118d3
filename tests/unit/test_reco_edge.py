"""The API's edge (``reco_api.edge``): the raw API Gateway event (REST, payload v1) read once
into one typed request, and the handler's route table. Malformed events answer what they
always did."""

from __future__ import annotations

import base64
import copy
import json
import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, ROOT

from devkit.context import LambdaContext
from reco_api import edge, handler
from reco_api.handler import handle_with
from reco_api.runtime import Runtime

PREFIX = "arn:aws:personalize:us-east-1:123456789012"
ENV = {
    "PERSONALIZE_CAMPAIGN_ARN": f"{PREFIX}:campaign/shop",
    "PERSONALIZE_RELATED_ITEMS_ARN": f"{PREFIX}:campaign/shop-sims",
    "PERSONALIZE_RANKING_CAMPAIGN_ARN": f"{PREFIX}:campaign/shop-ranking",
}
Context = partial(LambdaContext, aws_request_id="lambda-req-edge")


class Personalize:
    """Answers every call; records them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_recommendations(self, **params: Any) -> Any:
        self.calls.append(("GetRecommendations", params))
        items = [{"itemId": f"i{k}", "score": 0.5} for k in range(params["numResults"])]
        return {"itemList": items, "recommendationId": "RID-1"}

    def get_personalized_ranking(self, **params: Any) -> Any:
        self.calls.append(("GetPersonalizedRanking", params))
        ranked = [{"itemId": item, "score": 0.5} for item in params["inputList"]]
        return {"personalizedRanking": ranked, "recommendationId": "RID-2"}


def fixture(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / "apigw" / name).read_text(encoding="utf-8"))
    return value


def get(single: Any, multi: Any) -> dict[str, Any]:
    event = copy.deepcopy(fixture("get_user.json"))
    event["queryStringParameters"] = single
    event["multiValueQueryStringParameters"] = multi
    return event


def call(event: Any, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    fake = Personalize()
    rt = Runtime(ENV if env is None else env, personalize=lambda: fake)
    response = handle_with(rt, event, Context())
    if response["statusCode"] != 304:  # which has no body
        assert response["headers"]["Content-Type"] == "application/json"
    answer = json.loads(response["body"]) if response["body"] else None
    return response["statusCode"], response["headers"], answer


# -- the query: one multi-map, one precedence rule --------------------------------------------


def test_the_multi_value_map_wins_over_the_single_one() -> None:
    query = edge.read(get({"userId": "single", "n": "1"}, {"userId": ["multi"]})).query
    assert query.get("userId") == ("multi",)
    assert query.get("n") == ("1",)  # the single map fills what the multi map lacks
    assert dict(query.values) == {"userId": ("multi",), "n": ("1",)}


def test_every_route_reads_the_one_precedence() -> None:
    """The GET parsers and the options see the same value: the multi-value map's."""
    status, _, answer = call(get({"userId": "single"}, {"userId": ["multi"]}))
    assert (status, answer["userId"]) == (200, "multi")
    event = get({"userId": "u", "numResults": "600"}, {"userId": ["u"], "numResults": ["3"]})
    status, _, answer = call(event)
    assert (status, len(answer["items"])) == (200, 3)
    event = get({"userId": "u", "includeMetadata": "yes"}, {"userId": ["u"]})
    event["multiValueQueryStringParameters"]["includeMetadata"] = ["false"]
    assert call(event)[0] == 200


def test_all_values_of_a_repeated_parameter_are_kept_in_order() -> None:
    query = edge.read(get({"tag": "b"}, {"tag": ["a", "b"]})).query
    assert query.get("tag") == ("a", "b")
    status, _, answer = call(get({"userId": "b"}, {"userId": ["a", "b"]}))
    assert (status, answer["error"]["message"]) == (400, "userId must be given once")


def test_an_empty_or_missing_multi_list_falls_back_to_the_single_map() -> None:
    query = edge.read(get({"userId": "u", "itemId": "i"}, {"userId": [], "itemId": "i"})).query
    assert query.get("userId") == ("u",) and query.get("itemId") == ("i",)
    assert edge.read(get({"userId": "u"}, None)).query.get("userId") == ("u",)
    assert edge.read(get(None, {"userId": ["u"]})).query.get("userId") == ("u",)


@pytest.mark.parametrize("empty", [None, {}, "", [], 0, False])
def test_null_or_empty_query_maps_are_no_query_string(empty: Any) -> None:
    query = edge.read(get(empty, empty)).query
    assert (dict(query.values), query.not_text, query.error) == ({}, frozenset(), None)
    status, _, answer = call(get(empty, empty))
    assert (status, answer["error"]["code"]) == (400, "missing_parameter")


def test_values_that_are_not_text_are_named_not_kept() -> None:
    query = edge.read(get({"userId": ["x"], "b": None}, {"numResults": [5], "c": ["1", 2]})).query
    assert query.not_text == {"userId", "numResults", "c"}
    assert dict(query.values) == {"c": ("1",)}
    assert "userId" in query and "b" not in query  # a null value is no value
    status, _, answer = call(get({"userId": ["x"]}, None))
    assert (status, answer["error"]) == (
        400,
        {"code": "invalid_parameter", "message": "userId must be a string"},
    )


def test_an_option_with_no_text_value_is_not_given_never_a_500() -> None:
    """``context.X: [5]`` was an IndexError (500 internal_error) before the edge."""
    status, _, answer = call(get({"userId": "u"}, {"userId": ["u"], "context.X": [5]}))
    assert (status, answer["userId"]) == (200, "u")


@pytest.mark.parametrize(("single", "multi"), [("userId=x", None), (None, ["userId"]), (1, {})])
def test_query_maps_that_are_not_objects_are_a_400_on_get_only(single: Any, multi: Any) -> None:
    assert edge.read(get(single, multi)).query.error == edge.MALFORMED_QUERY
    status, _, answer = call(get(single, multi))
    assert (status, answer["error"]) == (
        400,
        {"code": "invalid_request", "message": "malformed query string"},
    )
    post = copy.deepcopy(fixture("post_rankings.json"))  # which reads no query
    post["queryStringParameters"], post["multiValueQueryStringParameters"] = single, multi
    assert call(post)[0] == 200


def test_the_query_is_read_only() -> None:
    request = edge.read(fixture("get_user.json"))
    with pytest.raises(TypeError):
        request.query.values["userId"] = ("other",)  # type: ignore[index]
    with pytest.raises(AttributeError):
        request.method = "POST"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        request.query.error = None  # type: ignore[misc]


# -- headers ----------------------------------------------------------------------------------


def test_headers_are_found_in_any_case() -> None:
    headers = edge.read(fixture("get_user.json")).headers
    assert headers["accept"] == headers["ACCEPT"] == headers.get("Accept") == "application/json"
    assert "X-API-KEY" in headers and "x-api-key" in headers
    assert headers.get("If-None-Match") is None
    with pytest.raises(KeyError):
        headers["nope"]


@pytest.mark.parametrize("raw", [None, "Origin: x", ["Origin"], 5])
def test_headers_that_are_not_an_object_are_none(raw: Any) -> None:
    event = fixture("get_user.json") | {"headers": raw}
    assert len(edge.read(event).headers) == 0
    assert call(event)[0] == 200


def test_header_entries_that_are_not_text_are_dropped_and_the_first_spelling_kept() -> None:
    headers = edge.Headers({"A": "1", "a": "2", "B": 3, 4: "x", "C": None})
    assert dict(headers) == {"a": "1"}


@pytest.mark.parametrize("name", ["If-None-Match", "if-none-match", "IF-NONE-MATCH"])
def test_if_none_match_in_any_case_gives_a_304(name: str) -> None:
    first = call(fixture("get_user.json"))
    event = copy.deepcopy(fixture("get_user.json"))
    event["headers"][name] = first[1]["ETag"]
    status, headers, answer = call(event)
    assert (status, headers["ETag"], answer) == (304, first[1]["ETag"], None)


@pytest.mark.parametrize("name", ["Origin", "origin", "ORIGIN"])
def test_the_origin_in_any_case_is_echoed(name: str) -> None:
    event = copy.deepcopy(fixture("get_user.json"))
    event["headers"][name] = "https://shop.example.com"
    env = ENV | {"CORS_ALLOW_ORIGIN": "https://shop.example.com"}
    status, headers, _ = call(event, env)
    assert (status, headers["Access-Control-Allow-Origin"]) == (200, "https://shop.example.com")


# -- the body ---------------------------------------------------------------------------------


def ranking(raw: Any, *, encoded: Any = False) -> dict[str, Any]:
    event = copy.deepcopy(fixture("post_rankings.json"))
    event["body"], event["isBase64Encoded"] = raw, encoded
    return event


RANKING_BODY = json.dumps({"userId": "ü-1", "itemIds": ["a", "b"]})


def test_a_base64_body_is_decoded() -> None:
    encoded = base64.b64encode(RANKING_BODY.encode("utf-8")).decode("ascii")
    request = edge.read(ranking(encoded, encoded=True))
    assert (request.body, request.body_error) == (RANKING_BODY.encode("utf-8"), None)
    status, _, answer = call(ranking(encoded, encoded=True))
    assert (status, answer["userId"], [i["itemId"] for i in answer["items"]]) == (
        200,
        "ü-1",
        ["a", "b"],
    )


def test_a_text_body_is_kept_as_text() -> None:
    request = edge.read(ranking(RANKING_BODY))
    assert (request.body, request.body_error) == (RANKING_BODY, None)
    # Not base64-encoded: the same text, were it valid base64, is not decoded.
    assert edge.read(ranking("e30=")).body == "e30="


@pytest.mark.parametrize(
    ("raw", "encoded", "message"),
    [
        (None, False, "a JSON body is required"),
        ("", True, "a JSON body is required"),
        ({"userId": "u"}, False, "the body must be JSON text"),
        (5, True, "the body must be JSON text"),
        ("not base64!", True, "the body is not valid base64"),
        ("ünï", 1, "the body is not valid base64"),
        ("e30", True, "the body is not valid base64"),  # padding missing
        (base64.b64encode(b"\xff\xfe").decode(), True, "the body is not valid JSON"),
        ("{", False, "the body is not valid JSON"),
    ],
)
def test_bodies_that_cannot_be_read_are_a_400(raw: Any, encoded: Any, message: str) -> None:
    status, _, answer = call(ranking(raw, encoded=encoded))
    assert (status, answer["error"]) == (400, {"code": "invalid_body", "message": message})


# -- request ids ------------------------------------------------------------------------------


def test_request_ids_come_from_the_event_and_the_lambda_context() -> None:
    request = edge.read(fixture("get_user.json"), Context())
    assert request.api_request_id == "e0c4e7a2-5c41-4f0e-9b1e-3f4d2f1a9b10"
    assert request.lambda_request_id == "lambda-req-edge"
    for context in (None, {"requestId": 5}, "r-1", {}):
        assert (
            edge.read(fixture("get_user.json") | {"requestContext": context}).api_request_id is None
        )
    assert edge.read({}, None).lambda_request_id is None
    assert edge.read([], Context()).lambda_request_id == "lambda-req-edge"


def test_the_log_line_carries_both_request_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert call(fixture("get_user.json"))[0] == 200
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    (line,) = [line for line in lines if line.get("message") == "request"]
    assert line["request_id"] == "lambda-req-edge"
    assert line["api_request_id"] == "e0c4e7a2-5c41-4f0e-9b1e-3f4d2f1a9b10"


# -- malformed events -------------------------------------------------------------------------


@pytest.mark.parametrize("event", [None, [], "GET /recommendations", 5, ["userId", "u"]])
def test_an_event_that_is_not_an_object_is_a_400_or_the_configuration_500(event: Any) -> None:
    request = edge.read(event)
    assert (request.method, request.route, request.query.error) == (
        "GET",
        edge.RECOMMENDATIONS,
        edge.NOT_AN_EVENT,
    )
    status, _, answer = call(event)
    assert (status, answer["error"]) == (
        400,
        {"code": "invalid_request", "message": "expected an API Gateway proxy event"},
    )
    status, _, answer = call(event, env={})  # the settings are checked first, as always
    assert (status, answer["error"]["code"]) == (500, "configuration_error")


def test_an_event_with_no_keys_is_a_get_on_recommendations_without_a_query() -> None:
    assert edge.read({}) == edge.Request()
    status, _, answer = call({})
    assert (status, answer["error"]["code"]) == (400, "missing_parameter")
    status, _, answer = call({"queryStringParameters": {"userId": "u"}})  # a test event
    assert (status, answer["userId"]) == (200, "u")


@pytest.mark.parametrize("method", [None, 5, ["GET"], {"GET": 1}])
def test_a_method_that_is_not_text_is_get(method: Any) -> None:
    assert edge.read(fixture("get_user.json") | {"httpMethod": method}).method == "GET"


def test_the_method_is_upper_case() -> None:
    assert edge.read(fixture("get_user.json") | {"httpMethod": "head"}).method == "HEAD"


# -- the route table --------------------------------------------------------------------------


def test_the_table_has_every_route_and_its_methods() -> None:
    assert set(handler.ROUTES) == set(edge.ROUTES)
    assert {name: route.methods for name, route in handler.ROUTES.items()} == {
        "/recommendations": ("GET", "HEAD"),
        "/related-items": ("GET", "HEAD"),
        "/rankings": ("POST",),
    }


@pytest.mark.parametrize(
    ("resource", "path", "route"),
    [
        ("/recommendations", "/recommendations", edge.RECOMMENDATIONS),
        ("/related-items", "/related-items", edge.RELATED_ITEMS),
        ("/rankings", "/rankings", edge.RANKINGS),
        (None, "/v1/shop/related-items/", edge.RELATED_ITEMS),  # a custom domain's base path
        ("/{proxy+}", "/rankings", edge.RANKINGS),  # the path when the resource is a template
        ("/nope", "/nope", edge.RECOMMENDATIONS),  # an unknown route: as it always was
        (5, None, edge.RECOMMENDATIONS),
    ],
)
def test_the_route_is_the_resource_else_the_path(resource: Any, path: Any, route: str) -> None:
    event = fixture("get_user.json") | {"resource": resource, "path": path}
    assert edge.read(event).route == route


def test_an_unknown_route_is_answered_as_recommendations() -> None:
    event = fixture("get_user.json") | {"resource": "/nope", "path": "/nope"}
    status, _, answer = call(event)
    assert (status, answer["userId"], len(answer["items"])) == (200, "user-0042", 5)


def test_the_related_items_route_goes_to_its_parser() -> None:
    event = get({"userId": "u"}, None) | {"resource": "/related-items", "path": "/related-items"}
    status, _, answer = call(event)
    assert (status, answer["error"]["message"]) == (400, "itemId is required")


@pytest.mark.parametrize(
    ("name", "method", "allow", "message"),
    [
        ("get_user.json", "POST", "GET, HEAD", "use GET"),
        ("get_related_items.json", "DELETE", "GET, HEAD", "use GET"),
        ("post_rankings.json", "GET", "POST", "use POST"),
        ("post_rankings.json", "HEAD", "POST", "use POST"),
        ("get_user.json", "OPTIONS", "GET, HEAD", "use GET"),  # without CORS
    ],
)
def test_a_method_the_route_does_not_take_is_a_405(
    name: str, method: str, allow: str, message: str
) -> None:
    status, headers, answer = call(fixture(name) | {"httpMethod": method})
    assert (status, headers["Allow"], answer["error"]) == (
        405,
        allow,
        {"code": "method_not_allowed", "message": message},
    )


def test_options_with_cors_is_the_preflight_on_any_route() -> None:
    env = ENV | {"CORS_ALLOW_ORIGIN": "*"}
    for name in ("get_user.json", "post_rankings.json"):
        event = fixture(name) | {"httpMethod": "OPTIONS"}
        fake = Personalize()
        response = handle_with(Runtime(env, personalize=lambda f=fake: f), event, Context())
        assert (response["statusCode"], fake.calls) == (204, [])


# -- only the edge reads the event ------------------------------------------------------------

EVENT_KEYS = (
    "queryStringParameters",
    "multiValueQueryStringParameters",
    "httpMethod",
    "requestContext",
    '"resource"',
    '"path"',
    '.get("headers")',
    '.get("body")',
    '.get("isBase64Encoded")',
    "isinstance(event",
)


def test_only_the_edge_module_reads_api_gateway_event_keys() -> None:
    package = Path(ROOT / "functions" / "recommendations")
    readers = {
        str(path.relative_to(package)): key
        for path in sorted(package.rglob("*.py"))
        for key in EVENT_KEYS
        if re.search(re.escape(key), path.read_text(encoding="utf-8"))
    }
    assert set(readers) == {"reco_api/edge.py"}, readers
