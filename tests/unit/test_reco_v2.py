"""API v2 with fake clients: /related-items, POST /rankings, named filters with values,
context, promotions, item metadata, caching, and the settings that enable each."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest
from conftest import FIXTURES

from devkit.context import LambdaContext
from reco_api.exclusion import PurchaseReader
from reco_api.handler import handle_with
from reco_api.runtime import Runtime

PREFIX = "arn:aws:personalize:us-east-1:123456789012"
CAMPAIGN = f"{PREFIX}:campaign/shop"
RELATED = f"{PREFIX}:recommender/more-like-x"
RANKING = f"{PREFIX}:campaign/shop-ranking"
GENRE = f"{PREFIX}:filter/by-genre"
PROMO = f"{PREFIX}:filter/promoted"
FULL = {
    "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
    "PERSONALIZE_RELATED_ITEMS_ARN": RELATED,
    "PERSONALIZE_RANKING_CAMPAIGN_ARN": RANKING,
    "PERSONALIZE_FILTERS": json.dumps(
        {"genre": {"arn": GENRE, "parameters": ["GENRES"]}, "promoted": PROMO}
    ),
    "ITEM_METADATA_COLUMNS": "CATEGORY,PRICE",
}


Context = partial(LambdaContext, aws_request_id="lambda-req-1")


class Fake:
    def __init__(self, rid: str = "RID-1") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.rid = rid

    def get_recommendations(self, **params: Any) -> Any:
        self.calls.append(("GetRecommendations", params))
        items = []
        for k in range(params["numResults"]):
            entry: dict[str, Any] = {"itemId": f"i{k}", "score": 0.5 - k / 1000}
            if "metadataColumns" in params:
                entry["metadata"] = {"category": "Books", "price": "12.5"}
            items.append(entry)
        return {"itemList": items, "recommendationId": self.rid}

    def get_personalized_ranking(self, **params: Any) -> Any:
        self.calls.append(("GetPersonalizedRanking", params))
        ranked = list(reversed(params["inputList"]))
        return {
            "personalizedRanking": [
                {"itemId": item, "score": round(1 / (n + 2), 4)} for n, item in enumerate(ranked)
            ],
            "recommendationId": self.rid,
        }


def fixture(name: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((FIXTURES / "apigw" / name).read_text(encoding="utf-8"))
    return value


def with_query(name: str, **query: str | list[str]) -> dict[str, Any]:
    event = copy.deepcopy(fixture(name))
    multi = {k: v if isinstance(v, list) else [v] for k, v in query.items()}
    event["queryStringParameters"] = {k: v[-1] for k, v in multi.items()}
    event["multiValueQueryStringParameters"] = multi
    return event


def ranking(body: Any, raw: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(fixture("post_rankings.json"))
    event["body"] = raw if raw is not None else json.dumps(body)
    return event


def call(
    event: Any, env: dict[str, str] | None = None, fake: Fake | None = None, **kw: Any
) -> tuple[dict[str, Any], Fake]:
    client = fake or Fake()
    rt = Runtime(FULL if env is None else env, personalize=lambda: client, **kw)
    return handle_with(rt, event, Context()), client


def body(response: dict[str, Any]) -> Any:
    assert response["headers"]["Content-Type"] == "application/json"
    return json.loads(response["body"])


# -- related items --------------------------------------------------------------------------


def test_related_items_with_a_user_go_to_the_related_items_resource() -> None:
    response, fake = call(fixture("get_related_items.json"))
    assert response["statusCode"] == 200
    out = body(response)
    assert (out["itemId"], out["userId"], len(out["items"])) == ("SKU-1001", "user-0042", 5)
    assert fake.calls == [
        (
            "GetRecommendations",
            {
                "recommenderArn": RELATED,
                "numResults": 5,
                "userId": "user-0042",
                "itemId": "SKU-1001",
            },
        )
    ]


def test_recommendations_item_id_is_an_alias_of_related_items() -> None:
    response, fake = call(fixture("get_item.json"))
    assert response["statusCode"] == 200
    assert fake.calls[0][1]["recommenderArn"] == RELATED
    assert "userId" not in body(response)


def test_related_items_need_an_item_id() -> None:
    response, fake = call(with_query("get_related_items.json", userId="u1"))
    assert response["statusCode"] == 400
    assert "itemId" in body(response)["error"]["message"]
    assert fake.calls == []


@pytest.mark.parametrize(
    ("event_name", "setting"),
    [("get_related_items.json", "PERSONALIZE_RELATED_ITEMS_ARN")],
)
def test_unconfigured_capability_names_its_setting(event_name: str, setting: str) -> None:
    response, fake = call(fixture(event_name), {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN})
    assert response["statusCode"] == 404
    assert body(response)["error"]["code"] == "not_configured"
    assert setting in body(response)["error"]["message"]
    assert fake.calls == []


def test_related_items_exclude_the_users_purchases() -> None:
    class Profiles:
        def traits(self, user_id: str, include: Any, **kw: Any) -> dict[str, Any]:
            assert user_id == "user-0042"
            return {"purchased_products": ["i0", "i2"]}

    pool = ThreadPoolExecutor(1)
    reader = PurchaseReader(
        Profiles(),
        "purchased_products",
        1.0,
        lambda: pool,
        on_config_problem=lambda s, d: None,
    )
    env = {**FULL, "SEGMENT_SPACE_ID": "spa_1", "SEGMENT_PROFILE_TOKEN_PARAMETER": "/t"}
    response, _ = call(fixture("get_related_items.json"), env, purchases=reader)
    pool.shutdown(wait=True)
    ids = [item["itemId"] for item in body(response)["items"]]
    assert ids == ["i1", "i3", "i4", "i5", "i6"]


# -- rankings -------------------------------------------------------------------------------


def test_ranking_answers_in_personalizes_order() -> None:
    response, fake = call(fixture("post_rankings.json"))
    assert response["statusCode"] == 200
    out = body(response)
    assert [i["itemId"] for i in out["items"]] == ["SKU-1003", "SKU-1002", "SKU-1001"]
    assert out["userId"] == "user-0042" and out["recommendationId"] == "RID-1"
    assert fake.calls == [
        (
            "GetPersonalizedRanking",
            {
                "campaignArn": RANKING,
                "userId": "user-0042",
                "inputList": ["SKU-1001", "SKU-1002", "SKU-1003"],
                "context": {"DEVICE": "mobile"},
            },
        )
    ]
    assert response["headers"]["ETag"].startswith('W/"')
    assert response["headers"]["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (ranking(None, raw="{not json"), "JSON"),
        (ranking(None, raw=""), "body"),
        (ranking([1, 2]), "object"),
        (ranking({"itemIds": ["a"]}), "userId"),
        (ranking({"userId": 7, "itemIds": ["a"]}), "userId"),
        (ranking({"userId": "u"}), "itemIds"),
        (ranking({"userId": "u", "itemIds": "a"}), "itemIds"),
        (ranking({"userId": "u", "itemIds": []}), "itemIds"),
        (ranking({"userId": "u", "itemIds": [f"i{n}" for n in range(501)]}), "itemIds"),
        (ranking({"userId": "u", "itemIds": ["a", "b", "a"]}), "itemIds[2]"),
        (ranking({"userId": "u", "itemIds": ["a", "x" * 257]}), "itemIds[1]"),
        (ranking({"userId": "u" * 257, "itemIds": ["a"]}), "userId"),
        (ranking({"userId": "u", "itemIds": ["a", 3]}), "itemIds[1]"),
        # A lone surrogate (JSON may carry one) has no UTF-8 form: no request could carry it.
        (ranking(None, raw='{"userId": "\\ud800", "itemIds": ["a"]}'), "userId"),
        (ranking(None, raw='{"userId": "u", "itemIds": ["a", "b\\udfff"]}'), "itemIds[1]"),
        (ranking({"userId": "u", "itemIds": ["a"], "excludePurchased": "yes"}), "excludePurchased"),
        (ranking({"userId": "u", "itemIds": ["a"], "context": {"bad key": "v"}}), "context"),
        (ranking({"userId": "u", "itemIds": ["a"], "context": {"K": 1}}), "context.K"),
        (ranking({"userId": "u", "itemIds": ["a"], "numResults": 3}), "numResults"),
    ],
)
def test_bad_ranking_bodies_are_400_naming_the_field(event: dict[str, Any], field: str) -> None:
    response, fake = call(event)
    assert response["statusCode"] == 400, response["body"]
    assert field in body(response)["error"]["message"]
    assert fake.calls == []


def test_ranking_not_configured_names_its_setting() -> None:
    response, fake = call(fixture("post_rankings.json"), {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN})
    assert response["statusCode"] == 404
    assert "PERSONALIZE_RANKING_CAMPAIGN_ARN" in body(response)["error"]["message"]
    assert fake.calls == []


def test_ranking_exclusion_needs_the_profile_api() -> None:
    event = ranking({"userId": "u", "itemIds": ["a"], "excludePurchased": True})
    response, fake = call(event)
    assert response["statusCode"] == 404
    assert "SEGMENT_SPACE_ID" in body(response)["error"]["message"]
    assert fake.calls == []


def test_get_on_rankings_is_405_and_post_on_recommendations_too() -> None:
    event = fixture("post_rankings.json") | {"httpMethod": "GET"}
    response, _ = call(event)
    assert (response["statusCode"], response["headers"]["Allow"]) == (405, "POST")
    event = fixture("get_user.json") | {"httpMethod": "POST"}
    assert call(event)[0]["statusCode"] == 405


# -- filters with values, context, promotions, metadata ---------------------------------------


def test_named_filter_values_are_quoted_as_personalize_requires() -> None:
    event = with_query(
        "get_user.json", userId="u1", filter="genre", **{"filterValues.GENRES": "comedy,drama"}
    )
    response, fake = call(event)
    assert response["statusCode"] == 200
    params = fake.calls[0][1]
    assert params["filterArn"] == GENRE
    assert params["filterValues"] == {"GENRES": '"comedy","drama"'}


def test_filter_values_are_trimmed_around_the_commas() -> None:
    event = with_query(
        "get_user.json",
        userId="u1",
        filter="genre",
        **{"filterValues.GENRES": " comedy ,drama , science fiction "},
    )
    response, fake = call(event)
    assert response["statusCode"] == 200, response["body"]
    assert fake.calls[0][1]["filterValues"] == {"GENRES": '"comedy","drama","science fiction"'}


def test_a_backslash_in_a_filter_value_is_refused_by_name() -> None:
    """Personalize quotes each value ("a","b") and documents no escape inside the quotes: a
    backslash could only be read as one, so it is refused rather than guessed."""
    event = with_query(
        "get_user.json", userId="u1", filter="genre", **{"filterValues.GENRES": "a\\b"}
    )
    response, fake = call(event)
    assert response["statusCode"] == 400
    message = body(response)["error"]["message"]
    assert "filterValues.GENRES" in message and "\\" in message
    assert fake.calls == []


def test_named_filter_replaces_the_default_filter() -> None:
    env = {**FULL, "PERSONALIZE_FILTER_ARN": f"{PREFIX}:filter/default"}
    _, fake = call(with_query("get_user.json", userId="u1", filter="promoted"), env)
    assert fake.calls[0][1]["filterArn"] == PROMO
    _, fake = call(with_query("get_user.json", userId="u1"), env)
    assert fake.calls[0][1]["filterArn"] == f"{PREFIX}:filter/default"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"filter": "nope"}, "filter"),
        ({"filter": "genre"}, "filterValues.GENRES"),
        (
            {"filter": "genre", "filterValues.GENRES": "a", "filterValues.EXTRA": "b"},
            "filterValues.EXTRA",
        ),
        (
            {"filter": "genre", "filterValues.GENRES": ",".join(["abcdefgh"] * 120)},
            "filterValues.GENRES",
        ),
        ({"filter": "genre", "filterValues.GENRES": "a,,b"}, "filterValues.GENRES"),
        ({"filter": "genre", "filterValues.GENRES": 'a"b'}, "filterValues.GENRES"),
        ({"filter": "genre", "filterValues.GENRES": ["a", "b"]}, "filterValues.GENRES"),
        ({"filterValues.GENRES": "a"}, "filter"),
        ({"filter": ["genre", "promoted"]}, "filter"),
        ({"context.bad-key": "v"}, "context.bad-key"),
        ({"context.DEVICE": "x" * 1001}, "context.DEVICE"),
        ({"includeMetadata": "yes"}, "includeMetadata"),
        ({"includeMetadata": "true", "numResults": "51"}, "numResults"),
    ],
)
def test_bad_options_are_400_naming_them(query: dict[str, Any], named: str) -> None:
    response, fake = call(with_query("get_user.json", userId="u1", **query))
    assert response["statusCode"] == 400, response["body"]
    assert named in body(response)["error"]["message"]
    assert fake.calls == []


def test_too_many_context_entries_is_a_400() -> None:
    query = {f"context.K{n}": "v" for n in range(151)}
    response, fake = call(with_query("get_user.json", userId="u1", **query))
    assert response["statusCode"] == 400
    assert "150" in body(response)["error"]["message"]
    _, fake = call(with_query("get_user.json", userId="u1", **dict(list(query.items())[:150])))
    assert len(fake.calls[0][1]["context"]) == 150


def test_context_and_metadata_reach_personalize_and_the_caller() -> None:
    event = with_query(
        "get_user.json", userId="u1", includeMetadata="true", **{"context.DEVICE": "mobile"}
    )
    response, fake = call(event)
    params = fake.calls[0][1]
    assert params["context"] == {"DEVICE": "mobile"}
    assert params["metadataColumns"] == {"ITEMS": ["CATEGORY", "PRICE"]}
    assert params["numResults"] == 25
    first = body(response)["items"][0]
    assert first["metadata"] == {"category": "Books", "price": "12.5"}


def test_metadata_without_numresults_caps_the_default_at_50() -> None:
    env = {**FULL, "NUM_RESULTS": "100"}
    _, fake = call(with_query("get_user.json", userId="u1", includeMetadata="true"), env)
    assert fake.calls[0][1]["numResults"] == 50


@pytest.mark.parametrize(
    ("query", "setting"),
    [
        ({"includeMetadata": "true"}, "ITEM_METADATA_COLUMNS"),
        ({"filter": "genre"}, "PERSONALIZE_FILTERS"),
    ],
)
def test_unconfigured_options_name_their_setting(query: dict[str, str], setting: str) -> None:
    response, fake = call(
        with_query("get_user.json", userId="u1", **query), {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN}
    )
    assert response["statusCode"] == 404
    assert setting in body(response)["error"]["message"]
    assert fake.calls == []


def test_the_promotion_is_sent_on_every_get_and_never_on_ranking() -> None:
    promo = [
        {
            "name": "summer",
            "percentPromotedItems": 20,
            "filter": "genre",
            "filterValues": {"GENRES": ["beach", "sun"]},
        }
    ]
    env = {**FULL, "PERSONALIZE_PROMOTIONS": json.dumps(promo)}
    expected = [
        {
            "name": "summer",
            "percentPromotedItems": 20,
            "filterArn": GENRE,
            "filterValues": {"GENRES": '"beach","sun"'},
        }
    ]
    for name in ("get_user.json", "get_related_items.json"):
        _, fake = call(fixture(name), env)
        assert fake.calls[0][1]["promotions"] == expected
    _, fake = call(fixture("post_rankings.json"), env)
    assert "promotions" not in fake.calls[0][1]


# -- caching --------------------------------------------------------------------------------


def test_etag_is_weak_ignores_the_recommendation_id_and_304_on_a_weak_match() -> None:
    """Two answers that differ only in recommendationId are not byte-identical: they share a
    weak validator, never a strong one (RFC 9110 8.8.1). If-None-Match compares weakly
    (13.1.2): W/"x" and "x" both match W/"x"."""
    first, _ = call(fixture("get_user.json"), fake=Fake("RID-1"))
    second, _ = call(fixture("get_user.json"), fake=Fake("RID-2"))
    tag = first["headers"]["ETag"]
    assert tag.startswith('W/"') and tag.endswith('"')
    assert tag == second["headers"]["ETag"]
    assert body(first)["recommendationId"] != body(second)["recommendationId"]
    assert first["headers"]["Cache-Control"] == "no-store"
    opaque = tag.removeprefix("W/")
    for sent in (f'"other", {tag}', opaque, f"W/{opaque}", "*"):
        event = copy.deepcopy(fixture("get_user.json"))
        event["headers"]["If-None-Match"] = sent
        response, _ = call(event, fake=Fake("RID-3"))
        assert response["statusCode"] == 304, sent
        assert response["body"] == ""
        assert response["headers"]["ETag"] == tag
    event = copy.deepcopy(fixture("get_user.json"))
    event["headers"]["If-None-Match"] = '"other", W/"other"'
    assert call(event)[0]["statusCode"] == 200


def test_different_content_has_a_different_etag() -> None:
    a, _ = call(with_query("get_user.json", userId="u1", numResults="3"))
    b, _ = call(with_query("get_user.json", userId="u1", numResults="4"))
    c, _ = call(with_query("get_user.json", userId="u2", numResults="3"))
    assert len({a["headers"]["ETag"], b["headers"]["ETag"], c["headers"]["ETag"]}) == 3


def test_cache_max_age_setting() -> None:
    response, _ = call(fixture("get_user.json"), {**FULL, "CACHE_MAX_AGE_S": "30"})
    assert response["headers"]["Cache-Control"] == "private, max-age=30"
    # A ranking is a POST: never cached.
    response, _ = call(fixture("post_rankings.json"), {**FULL, "CACHE_MAX_AGE_S": "30"})
    assert response["headers"]["Cache-Control"] == "no-store"


# -- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"PERSONALIZE_FILTERS": "{not json"}, "PERSONALIZE_FILTERS"),
        ({"PERSONALIZE_FILTERS": '{"x": "arn:nope"}'}, "PERSONALIZE_FILTERS"),
        (
            {"PERSONALIZE_FILTERS": json.dumps({"x": {"arn": GENRE, "parameters": ["a-b"]}})},
            "PERSONALIZE_FILTERS",
        ),
        ({"PERSONALIZE_RANKING_CAMPAIGN_ARN": RELATED}, "PERSONALIZE_RANKING_CAMPAIGN_ARN"),
        ({"ITEM_METADATA_COLUMNS": ",".join(f"C{n}" for n in range(11))}, "ITEM_METADATA_COLUMNS"),
        ({"CACHE_MAX_AGE_S": "-1"}, "CACHE_MAX_AGE_S"),
        (
            {
                "PERSONALIZE_PROMOTIONS": json.dumps(
                    [{"name": "a", "percentPromotedItems": 10, "filterArn": PROMO}] * 2
                )
            },
            "PERSONALIZE_PROMOTIONS",
        ),
        (
            {
                "PERSONALIZE_PROMOTIONS": json.dumps(
                    [{"name": "a", "percentPromotedItems": 101, "filterArn": PROMO}]
                )
            },
            "PERSONALIZE_PROMOTIONS",
        ),
        (
            {
                "PERSONALIZE_PROMOTIONS": json.dumps(
                    [{"name": "a", "percentPromotedItems": 5, "filter": "nope"}]
                )
            },
            "PERSONALIZE_PROMOTIONS",
        ),
    ],
)
def test_bad_v2_settings_are_named(
    extra: dict[str, str], setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    response, fake = call(fixture("get_user.json"), {**FULL, **extra})
    assert response["statusCode"] == 500
    assert body(response)["error"]["code"] == "configuration_error"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [line.get("setting") for line in logged if line.get("level") == "ERROR"] == [setting]
    assert fake.calls == []


@pytest.mark.parametrize(
    ("event_name", "arn", "setting"),
    [
        ("post_rankings.json", RANKING, "PERSONALIZE_RANKING_CAMPAIGN_ARN"),
        ("get_related_items.json", RELATED, "PERSONALIZE_RELATED_ITEMS_ARN"),
    ],
)
def test_a_refused_capability_arn_is_named_in_the_log(
    event_name: str, arn: str, setting: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from botocore.exceptions import ClientError

    class Refusing(Fake):
        def _refuse(self, **params: Any) -> Any:
            raise ClientError(
                {
                    "Error": {"Code": "ResourceNotFoundException", "Message": f"{arn} not found"},
                    "ResponseMetadata": {"HTTPStatusCode": 404},
                },
                "Get",
            )

        get_recommendations = get_personalized_ranking = _refuse

    response, _ = call(fixture(event_name), fake=Refusing())
    assert response["statusCode"] == 500
    assert body(response)["error"]["code"] == "configuration_error"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [line.get("setting") for line in logged if line.get("level") == "ERROR"] == [setting]
