"""Settings: typed, validated, and every problem names its variable."""

from __future__ import annotations

import pytest

from common.config import ConfigError
from reco_api.settings import load

CAMPAIGN = "arn:aws:personalize:us-east-1:123456789012:campaign/shop"
RECOMMENDER = "arn:aws:personalize:us-east-1:123456789012:recommender/shop"
FILTER = "arn:aws:personalize:us-east-1:123456789012:filter/no-purchases"
EXCLUSION = {"SEGMENT_SPACE_ID": "spa_123", "SEGMENT_PROFILE_TOKEN_PARAMETER": "/shop/token"}


def error(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(env)
    return info.value


def test_minimal_settings_and_defaults() -> None:
    settings = load({"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN})
    assert settings.campaign_arn == CAMPAIGN
    assert settings.filter_arn is None
    assert settings.related_items_arn is None
    assert settings.num_results == 25
    assert settings.cors_origins == ()
    assert settings.exclusion is None


def test_related_items_arn() -> None:
    related = "arn:aws:personalize:us-east-1:123456789012:recommender/more-like-this"
    env = {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "PERSONALIZE_RELATED_ITEMS_ARN": related}
    assert load(env).related_items_arn == related


def test_recommender_and_filter() -> None:
    settings = load(
        {
            "PERSONALIZE_CAMPAIGN_ARN": RECOMMENDER,
            "PERSONALIZE_FILTER_ARN": FILTER,
            "NUM_RESULTS": "10",
        }
    )
    assert (settings.campaign_arn, settings.filter_arn, settings.num_results) == (
        RECOMMENDER,
        FILTER,
        10,
    )


def test_exclusion_settings() -> None:
    env = {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, **EXCLUSION}
    env.update(
        {
            "SEGMENT_PROFILE_API_URL": "https://profiles.euw1.segment.com/v1/",
            "PURCHASED_TRAIT": "orders",
            "PROFILE_TIMEOUT_MS": "400",
            "EXCLUSION_HEADROOM": "0",
        }
    )
    exclusion = load(env).exclusion
    assert exclusion is not None
    assert exclusion.profile is not None
    assert exclusion.profile.space_id == "spa_123"
    assert exclusion.profile.token_parameter == "/shop/token"
    assert exclusion.profile.api_url == "https://profiles.euw1.segment.com/v1"
    assert exclusion.user_state_table is None
    assert exclusion.purchased_trait == "orders"
    assert exclusion.budget_s == pytest.approx(0.4)
    assert exclusion.headroom == 0


def test_exclusion_defaults() -> None:
    exclusion = load({"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, **EXCLUSION}).exclusion
    assert exclusion is not None
    assert exclusion.profile is not None
    assert exclusion.profile.api_url == "https://profiles.segment.com/v1"
    assert exclusion.purchased_trait == "purchased_products"
    assert exclusion.budget_s == pytest.approx(0.25)
    assert exclusion.headroom == 25


def test_the_store_alone_turns_exclusion_on() -> None:
    env = {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "USER_STATE_TABLE": "shop-user-state"}
    exclusion = load(env).exclusion
    assert exclusion is not None
    assert exclusion.user_state_table == "shop-user-state"
    assert exclusion.profile is None  # no Profile API at all: capped users get the stored set
    assert (exclusion.budget_s, exclusion.headroom) == (pytest.approx(0.25), 25)


def test_the_store_with_the_profile_api_keeps_both() -> None:
    env = {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, **EXCLUSION, "USER_STATE_TABLE": "t.1_a-b"}
    exclusion = load(env).exclusion
    assert exclusion is not None and exclusion.profile is not None
    assert exclusion.user_state_table == "t.1_a-b"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "PERSONALIZE_CAMPAIGN_ARN"),
        ({"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "USER_STATE_TABLE": "ab"}, "USER_STATE_TABLE"),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "USER_STATE_TABLE": "my table"},
            "USER_STATE_TABLE",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "USER_STATE_TABLE": "a" * 256},
            "USER_STATE_TABLE",
        ),
        ({"PERSONALIZE_CAMPAIGN_ARN": "  "}, "PERSONALIZE_CAMPAIGN_ARN"),
        ({"PERSONALIZE_CAMPAIGN_ARN": "my-campaign"}, "PERSONALIZE_CAMPAIGN_ARN"),
        ({"PERSONALIZE_CAMPAIGN_ARN": FILTER}, "PERSONALIZE_CAMPAIGN_ARN"),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "PERSONALIZE_FILTER_ARN": CAMPAIGN},
            "PERSONALIZE_FILTER_ARN",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "PERSONALIZE_RELATED_ITEMS_ARN": FILTER},
            "PERSONALIZE_RELATED_ITEMS_ARN",
        ),
        ({"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "NUM_RESULTS": "0"}, "NUM_RESULTS"),
        ({"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "NUM_RESULTS": "501"}, "NUM_RESULTS"),
        ({"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "NUM_RESULTS": "many"}, "NUM_RESULTS"),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "SEGMENT_SPACE_ID": "spa_1"},
            "SEGMENT_PROFILE_TOKEN_PARAMETER",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "SEGMENT_PROFILE_TOKEN_PARAMETER": "/t"},
            "SEGMENT_SPACE_ID",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, **EXCLUSION, "SEGMENT_SPACE_ID": "spa 1"},
            "SEGMENT_SPACE_ID",
        ),
        (
            {
                "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
                **EXCLUSION,
                "SEGMENT_PROFILE_TOKEN_PARAMETER": "a b",
            },
            "SEGMENT_PROFILE_TOKEN_PARAMETER",
        ),
        (
            {
                "PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN,
                **EXCLUSION,
                "SEGMENT_PROFILE_API_URL": "profiles",
            },
            "SEGMENT_PROFILE_API_URL",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, **EXCLUSION, "PURCHASED_TRAIT": "a,b"},
            "PURCHASED_TRAIT",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, **EXCLUSION, "PROFILE_TIMEOUT_MS": "5"},
            "PROFILE_TIMEOUT_MS",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, **EXCLUSION, "PROFILE_TIMEOUT_MS": "0.3"},
            "PROFILE_TIMEOUT_MS",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, **EXCLUSION, "EXCLUSION_HEADROOM": "-1"},
            "EXCLUSION_HEADROOM",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "CORS_ALLOW_ORIGIN": "shop.example.com"},
            "CORS_ALLOW_ORIGIN",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "CORS_ALLOW_ORIGIN": "*,https://a.com"},
            "CORS_ALLOW_ORIGIN",
        ),
        (
            {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "CORS_ALLOW_ORIGIN": "https://a.com/path"},
            "CORS_ALLOW_ORIGIN",
        ),
    ],
)
def test_each_problem_names_its_variable(env: dict[str, str], name: str) -> None:
    problem = error(env)
    assert problem.name == name
    assert problem.reason


def test_cors_origins() -> None:
    base = {"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN}
    assert load({**base, "CORS_ALLOW_ORIGIN": "*"}).cors_origins == ("*",)
    listed = load({**base, "CORS_ALLOW_ORIGIN": " https://a.com , http://localhost:3000 "})
    assert listed.cors_origins == ("https://a.com", "http://localhost:3000")


def test_exclusion_settings_are_checked_even_when_exclusion_is_off() -> None:
    assert error({"PERSONALIZE_CAMPAIGN_ARN": CAMPAIGN, "PROFILE_TIMEOUT_MS": "x"}).name == (
        "PROFILE_TIMEOUT_MS"
    )
