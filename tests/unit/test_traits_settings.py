"""Traits sync settings: defaults, and one named ConfigError per missing or invalid value."""

from __future__ import annotations

import pytest

from common.config import ConfigError
from traits_sync.settings import load

CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/traits-dead-letters"
MINIMAL = {
    "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
    "SEGMENT_WRITE_KEY_PARAMETER": "/segment/write-key",
    "DEAD_LETTER_QUEUE_URL": QUEUE,
}


def test_defaults_follow_the_contract() -> None:
    settings = load(MINIMAL)
    assert settings.campaign_arn == CAMPAIGN
    assert settings.num_results == 25
    assert settings.tracking_id is None
    assert settings.filter_arn is None
    assert settings.profile is None
    assert settings.segment_api_url == "https://api.segment.io/v1"
    assert settings.tracked_events == {
        "Product Viewed",
        "Product Clicked",
        "Product Added",
        "Order Completed",
    }
    assert settings.purchase_events == {"Order Completed"}
    assert settings.item_id_property == "sku"
    assert settings.recommended_trait == "recommended_products"
    assert settings.purchased_trait == "purchased_products"
    assert settings.integrations == {"Amazon Kinesis": False}


def test_lists_ignore_surrounding_spaces_and_empty_entries() -> None:
    settings = load({**MINIMAL, "TRACKED_EVENTS": " Product Viewed ,Order Completed,, "})
    assert settings.tracked_events == {"Product Viewed", "Order Completed"}


def test_recommender_arn_profile_and_overrides() -> None:
    settings = load(
        {
            **MINIMAL,
            "PERSONALIZE_CAMPAIGN_ARN": "arn:aws:personalize:eu-west-1:123456789012:recommender/r",
            "PERSONALIZE_TRACKING_ID": "8f1e0d3c-tracking",
            "SEGMENT_PROFILE_TOKEN_PARAMETER": "/segment/profile-token",
            "SEGMENT_SPACE_ID": "spa_abc123",
            "SEGMENT_PROFILE_API_URL": "https://profiles.euw1.segment.com/v1/",
            "SEGMENT_API_URL": "https://events.eu1.segmentapis.com/v1",
            "ITEM_ID_PROPERTY": "product_id",
            "NUM_RESULTS": "10",
            "SEGMENT_IDENTIFY_INTEGRATIONS": '{"All": true, "Amazon Kinesis": false}',
        }
    )
    assert settings.tracking_id == "8f1e0d3c-tracking"
    assert settings.profile is not None
    assert settings.profile.api_url == "https://profiles.euw1.segment.com/v1"
    assert settings.profile.space_id == "spa_abc123"
    assert settings.segment_api_url == "https://events.eu1.segmentapis.com/v1"
    assert settings.item_id_property == "product_id"
    assert settings.num_results == 10
    assert settings.integrations == {"All": True, "Amazon Kinesis": False}


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"PERSONALIZE_CAMPAIGN_ARN": ""}, "PERSONALIZE_CAMPAIGN_ARN"),
        ({"PERSONALIZE_CAMPAIGN_ARN": "campaign/shop"}, "PERSONALIZE_CAMPAIGN_ARN"),
        ({"PERSONALIZE_FILTER_ARN": CAMPAIGN}, "PERSONALIZE_FILTER_ARN"),
        ({"NUM_RESULTS": "0"}, "NUM_RESULTS"),
        ({"NUM_RESULTS": "501"}, "NUM_RESULTS"),
        ({"NUM_RESULTS": "ten"}, "NUM_RESULTS"),
        ({"SEGMENT_WRITE_KEY_PARAMETER": ""}, "SEGMENT_WRITE_KEY_PARAMETER"),
        ({"SEGMENT_WRITE_KEY_PARAMETER": "has spaces"}, "SEGMENT_WRITE_KEY_PARAMETER"),
        ({"SEGMENT_SPACE_ID": "spa_1"}, "SEGMENT_PROFILE_TOKEN_PARAMETER"),
        ({"SEGMENT_PROFILE_TOKEN_PARAMETER": "/t"}, "SEGMENT_SPACE_ID"),
        (
            {"SEGMENT_PROFILE_TOKEN_PARAMETER": "/t", "SEGMENT_SPACE_ID": "spa 1"},
            "SEGMENT_SPACE_ID",
        ),
        ({"SEGMENT_API_URL": "api.segment.io"}, "SEGMENT_API_URL"),
        ({"TRACKED_EVENTS": " , "}, "TRACKED_EVENTS"),
        ({"ITEM_ID_PROPERTY": "name"}, "ITEM_ID_PROPERTY"),
        ({"RECOMMENDED_TRAIT": "a,b"}, "RECOMMENDED_TRAIT"),
        # The one trait rule (common.settings.TRAIT_NAME): before, a dot or a $ passed here.
        ({"RECOMMENDED_TRAIT": "recs.v2"}, "RECOMMENDED_TRAIT"),
        ({"PURCHASED_TRAIT": "orders.items"}, "PURCHASED_TRAIT"),
        ({"PURCHASED_TRAIT": "$orders"}, "PURCHASED_TRAIT"),
        ({"DEAD_LETTER_QUEUE_URL": ""}, "DEAD_LETTER_QUEUE_URL"),
        ({"DEAD_LETTER_QUEUE_URL": "arn:aws:sqs:us-east-1:1:q"}, "DEAD_LETTER_QUEUE_URL"),
        ({"SEGMENT_IDENTIFY_INTEGRATIONS": "{not json"}, "SEGMENT_IDENTIFY_INTEGRATIONS"),
        ({"SEGMENT_IDENTIFY_INTEGRATIONS": '{"All": "no"}'}, "SEGMENT_IDENTIFY_INTEGRATIONS"),
        ({"WORKER_THREADS": "0"}, "WORKER_THREADS"),
        ({"PERSONALIZE_TRACKING_ID": "x" * 257}, "PERSONALIZE_TRACKING_ID"),
    ],
)
def test_each_problem_names_its_setting(changes: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load({**MINIMAL, **changes})
    assert raised.value.name == name
