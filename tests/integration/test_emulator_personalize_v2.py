"""The Personalize emulator's v2 surface through real boto3: the related-items recommender,
filters with $PARAM values, context, promotions, metadata columns, and recommendationId /
impression in PutEvents, each refused where the real service refuses it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devkit.aws import local_client
from devkit.fixtures import trained_personalize
from emulators.personalize import PersonalizeEmulator

NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


@pytest.fixture(scope="module")
def emu() -> Iterator[PersonalizeEmulator]:
    with trained_personalize() as emulator:
        emulator.add_filter("by-category", "INCLUDE ItemID WHERE Items.category IN ($CATEGORIES)")
        yield emulator


@pytest.fixture(scope="module")
def runtime(emu: PersonalizeEmulator) -> Any:
    return local_client("personalize-runtime", emu.url, config=NO_RETRY)


def category(emu: PersonalizeEmulator, item: str) -> str:
    return str(emu.item_attributes[item]["category"])


def refused(call: Any, **params: Any) -> str:
    with pytest.raises(ClientError) as exc:
        call(**params)
    assert exc.value.response["Error"]["Code"] == "InvalidInputException"
    return str(exc.value.response["Error"]["Message"])


def test_related_items_recommender_takes_a_user(emu: PersonalizeEmulator, runtime: Any) -> None:
    item = emu.catalogue_item_ids[0]
    out = runtime.get_recommendations(
        recommenderArn=emu.related_items_recommender_arn,
        itemId=item,
        userId="user-0001",
        numResults=5,
    )
    assert len(out["itemList"]) == 5 and item not in [i["itemId"] for i in out["itemList"]]


def test_filter_values_select_and_missing_include_parameter_is_refused(
    emu: PersonalizeEmulator, runtime: Any
) -> None:
    arn = next(f.arn for f in emu.filters.values() if f.name == "by-category")
    out = runtime.get_recommendations(
        campaignArn=emu.campaign_arn,
        userId="user-0001",
        numResults=10,
        filterArn=arn,
        filterValues={"CATEGORIES": '"Books","Toys"'},
    )
    assert out["itemList"]
    assert {category(emu, i["itemId"]) for i in out["itemList"]} <= {"Books", "Toys"}
    refused(runtime.get_recommendations, campaignArn=emu.campaign_arn, userId="u", filterArn=arn)
    message = refused(
        runtime.get_recommendations,
        campaignArn=emu.campaign_arn,
        userId="u",
        filterArn=arn,
        filterValues={"BAD-KEY": '"Books"'},
    )
    assert "pattern" in message


def test_context_limits(emu: PersonalizeEmulator, runtime: Any) -> None:
    ok = runtime.get_recommendations(
        campaignArn=emu.campaign_arn, userId="u", context={"DEVICE": "mobile"}
    )
    assert ok["itemList"]
    for context in ({"bad key": "v"}, {"K": "v" * 1001}, {f"K{n}": "v" for n in range(151)}):
        refused(
            runtime.get_recommendations, campaignArn=emu.campaign_arn, userId="u", context=context
        )


def test_promotion_fills_its_share_from_its_filter(emu: PersonalizeEmulator, runtime: Any) -> None:
    arn = next(f.arn for f in emu.filters.values() if f.name == "by-category")
    promotion = {
        "name": "books",
        "percentPromotedItems": 20,
        "filterArn": arn,
        "filterValues": {"CATEGORIES": '"Books"'},
    }
    out = runtime.get_recommendations(
        campaignArn=emu.campaign_arn, userId="user-0001", numResults=10, promotions=[promotion]
    )
    promoted = [i for i in out["itemList"] if i.get("promotionName") == "books"]
    assert len(out["itemList"]) == 10 and len(promoted) == 2
    assert {category(emu, i["itemId"]) for i in promoted} == {"Books"}
    for bad in (
        [promotion, promotion],
        [{**promotion, "percentPromotedItems": 101}],
        [{**promotion, "name": "-starts-with-dash"}],
        [{k: v for k, v in promotion.items() if k != "filterArn"}],
    ):
        refused(
            runtime.get_recommendations, campaignArn=emu.campaign_arn, userId="u", promotions=bad
        )


def test_promoted_items_sit_at_random_slots_in_order_among_themselves(
    emu: PersonalizeEmulator, runtime: Any
) -> None:
    """As Personalize documents: promoted items "are positioned randomly relative to other
    recommended items, but in sorted order relative to other promoted items"; the emulator
    draws the slots from the request, so the same request gets the same answer."""
    arn = next(f.arn for f in emu.filters.values() if f.name == "by-category")
    promotion = {
        "name": "books",
        "percentPromotedItems": 30,
        "filterArn": arn,
        "filterValues": {"CATEGORIES": '"Books"'},
    }
    slots: set[tuple[int, ...]] = set()
    for n in range(1, 9):
        ask = {"campaignArn": emu.campaign_arn, "userId": f"user-000{n}", "numResults": 10}
        out = runtime.get_recommendations(**ask, promotions=[promotion])
        again = runtime.get_recommendations(**ask, promotions=[promotion])
        items = [i["itemId"] for i in out["itemList"]]
        assert items == [i["itemId"] for i in again["itemList"]]
        promoted = [k for k, i in enumerate(out["itemList"]) if i.get("promotionName")]
        assert len(promoted) == 3
        slots.add(tuple(promoted))
        # The rest keeps the model's order; the promoted ones keep it among themselves.
        plain = [i["itemId"] for i in runtime.get_recommendations(**ask)["itemList"]]
        others = [i for k, i in enumerate(items) if k not in promoted]
        assert others == [i for i in plain if i in others]
    assert len(slots) > 1 and slots != {(7, 8, 9)}  # not always the last slots


def test_metadata_columns(emu: PersonalizeEmulator, runtime: Any) -> None:
    out = runtime.get_recommendations(
        campaignArn=emu.campaign_arn,
        userId="user-0001",
        numResults=3,
        metadataColumns={"ITEMS": ["CATEGORY", "PRICE"]},
    )
    first = out["itemList"][0]
    assert set(first["metadata"]) == {"category", "price"}
    assert first["metadata"]["category"] == category(emu, first["itemId"])
    columns = {"ITEMS": ["CATEGORY"]}
    refused(
        runtime.get_recommendations,
        campaignArn=emu.campaign_arn,
        userId="u",
        numResults=51,
        metadataColumns=columns,
    )
    refused(
        runtime.get_recommendations,
        campaignArn=emu.campaign_arn,
        userId="u",
        metadataColumns={"ITEMS": [f"C{n}" for n in range(11)]},
    )
    ranked = runtime.get_personalized_ranking(
        campaignArn=emu.ranking_campaign_arn,
        userId="u",
        inputList=emu.catalogue_item_ids[:3],
        metadataColumns=columns,
    )
    assert all("category" in i["metadata"] for i in ranked["personalizedRanking"])
    refused(
        runtime.get_personalized_ranking,
        campaignArn=emu.ranking_campaign_arn,
        userId="u",
        inputList=emu.catalogue_item_ids[:51],
        metadataColumns=columns,
    )


def test_put_events_attribution(emu: PersonalizeEmulator) -> None:
    events = local_client("personalize-events", emu.url, config=NO_RETRY)
    event = {
        "eventId": "attr-1",
        "eventType": "Product Clicked",
        "itemId": emu.catalogue_item_ids[0],
        "sentAt": time.time(),
        "recommendationId": "RID-1",
        "impression": emu.catalogue_item_ids[:3],
    }
    events.put_events(trackingId=emu.tracking_id, sessionId="s", userId="u", eventList=[event])
    accepted = [e for e in emu.accepted_events() if e["eventId"] == "attr-1"]
    assert accepted[0]["recommendationId"] == "RID-1"
    assert accepted[0]["impression"] == emu.catalogue_item_ids[:3]
    for bad in (
        {"recommendationId": "R" * 41},
        {"impression": ["i"] * 26},
        {"impression": ["x" * 257]},
    ):
        with pytest.raises(ClientError) as exc:
            events.put_events(
                trackingId=emu.tracking_id,
                sessionId="s",
                eventList=[{**event, "eventId": "attr-2", **bad}],
            )
        assert exc.value.response["Error"]["Code"] == "InvalidInputException"
