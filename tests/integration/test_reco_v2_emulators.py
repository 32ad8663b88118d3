"""API v2 with real boto3 against the Personalize emulator and the Segment Profile API
emulator over HTTP: related items and rankings with purchased items removed, a named filter
with values, item metadata and the promotion, as Personalize answers them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_reco_purchases import (  # the same emulators, moto server and handler
    TRAIT,
    Invoke,
    event,
    handler_module,
    ids,
    invoke,
    personalize,
    profile_requests,
    segment,
    ssm,
)

from devkit.events import apigw_event
from emulators.personalize import PersonalizeEmulator
from emulators.segment import SegmentEmulator

__all__ = ["handler_module", "invoke", "personalize", "segment", "ssm"]


def capabilities(monkeypatch: pytest.MonkeyPatch, emu: PersonalizeEmulator, **extra: str) -> None:
    monkeypatch.setenv("PERSONALIZE_RELATED_ITEMS_ARN", emu.related_items_recommender_arn)
    monkeypatch.setenv("PERSONALIZE_RANKING_CAMPAIGN_ARN", emu.ranking_campaign_arn)
    monkeypatch.setenv(
        "PERSONALIZE_FILTERS",
        json.dumps({"category": {"arn": emu.category_filter_arn, "parameters": ["CATEGORIES"]}}),
    )
    monkeypatch.setenv("ITEM_METADATA_COLUMNS", "CATEGORY,PRICE")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def with_query(path: str, **query: str) -> dict[str, Any]:
    value = apigw_event(event("ignored", 1), query)
    value["resource"] = value["path"] = path
    return value


def test_related_items_for_a_user_drop_their_purchases(
    invoke: Invoke,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capabilities(monkeypatch, personalize)
    item, user = personalize.catalogue_item_ids[0], "user-0042"
    status, first = invoke(with_query("/related-items", itemId=item, numResults="5"))
    assert status == 200
    bought = ids(first)[:2]
    segment.set_traits(user, {TRAIT: bought})
    status, body = invoke(with_query("/related-items", itemId=item, userId=user, numResults="5"))
    assert status == 200
    assert len(body["items"]) == 5 and not set(bought) & set(ids(body))
    assert ids(body)[:3] == ids(first)[2:]  # Personalize's order kept, refilled
    assert (body["itemId"], body["userId"]) == (item, user)
    assert len(profile_requests(segment)) == 1


def test_ranking_ranks_and_drops_purchases_on_request(
    invoke: Invoke,
    personalize: PersonalizeEmulator,
    segment: SegmentEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    capabilities(monkeypatch, personalize)
    user = "user-0042"
    candidates = [*personalize.catalogue_item_ids[:6], "SKU-UNKNOWN"]
    segment.set_traits(user, {TRAIT: candidates[:2]})
    post = event("ignored", 1)
    post.update(resource="/rankings", path="/rankings", httpMethod="POST")
    post["queryStringParameters"] = post["multiValueQueryStringParameters"] = None
    post["body"] = json.dumps({"userId": user, "itemIds": candidates})
    status, plain = invoke(post)
    assert status == 200
    assert sorted(ids(plain)) == sorted(candidates)
    assert ids(plain)[-1] == "SKU-UNKNOWN"  # unknown to the model: last, as documented
    post["body"] = json.dumps({"userId": user, "itemIds": candidates, "excludePurchased": True})
    status, kept = invoke(post)
    assert status == 200
    assert ids(kept) == [i for i in ids(plain) if i not in candidates[:2]]


def test_filter_values_and_metadata_through_personalize(
    invoke: Invoke, personalize: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    capabilities(monkeypatch, personalize)
    query = {
        "userId": "user-0042",
        "numResults": "8",
        "filter": "category",
        "filterValues.CATEGORIES": "Books,Toys",
        "includeMetadata": "true",
        "context.DEVICE": "mobile",
    }
    status, body = invoke(with_query("/recommendations", **query))
    assert status == 200, body
    assert len(body["items"]) == 8
    assert {item["metadata"]["category"] for item in body["items"]} <= {"Books", "Toys"}
    for item in body["items"]:
        assert (
            item["metadata"]["category"] == personalize.item_attributes[item["itemId"]]["category"]
        )
    (sent,) = [r.body for r in personalize.request_log() if r.operation == "GetRecommendations"]
    assert sent["filterValues"] == {"CATEGORIES": '"Books","Toys"'}
    assert sent["context"] == {"DEVICE": "mobile"}


def test_the_promotion_places_its_items(
    invoke: Invoke, personalize: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With exclusion on, the handler asks for N + EXCLUSION_HEADROOM items and Personalize
    promotes its share of that longer list, anywhere in it: the N served still hold the share
    of N (20 % of 10 = 2) for every user."""
    promotion = [
        {
            "name": "toys",
            "percentPromotedItems": 20,
            "filter": "category",
            "filterValues": {"CATEGORIES": ["Toys"]},
        }
    ]
    capabilities(monkeypatch, personalize, PERSONALIZE_PROMOTIONS=json.dumps(promotion))
    for n in range(40, 50):
        user = f"user-00{n}"
        status, body = invoke(with_query("/recommendations", userId=user, numResults="10"))
        assert status == 200
        assert len(body["items"]) == 10
        promoted = [item for item in body["items"] if item.get("promotionName") == "toys"]
        assert len(promoted) >= 2, (user, body["items"])
        assert {personalize.item_attributes[i["itemId"]]["category"] for i in promoted} == {"Toys"}
    asked = [
        r.body["numResults"]
        for r in personalize.request_log()
        if r.operation == "GetRecommendations"
    ]
    assert set(asked) == {35}  # N + the headroom: exclusion was on
