"""The function's settings, read from the environment once and validated.

Every problem raises :class:`common.config.ConfigError` naming the variable, so the handler
logs one line and reports every record for retry instead of dead-lettering good data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.config import (
    ConfigError,
    ProfileApiSettings,
    env_arn,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_parameter_name,
    env_profile_api,
    env_required,
    env_str,
    env_url,
)

DEFAULT_TRACKED_EVENTS = "Product Viewed,Product Clicked,Product Added,Order Completed"
DEFAULT_INTEGRATIONS: dict[str, Any] = {"Amazon Kinesis": False}
_SQS_URL = re.compile(r"^https?://[^\s/]+/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?$")
# The Profile API takes trait names in a comma-separated include= list.
_TRAIT_NAME = re.compile(r"^[^\s,]{1,255}$")
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
# SQS DelaySeconds is at most 900 (15 minutes): the longest coalescing window.
MAX_REFRESH_INTERVAL_S = 900


ProfileSettings = ProfileApiSettings


@dataclass(frozen=True)
class StoreSettings:
    """The user-state store (``USER_STATE_TABLE``) and what it makes possible: refresh
    coalescing through the refresh queue, seeding from the Profile API off the hot path."""

    table: str
    ttl_days: int = 400
    # A user refreshed less than this ago is not refreshed again now (unless they bought
    # something): a trailing refresh comes through the refresh queue. 0: every batch.
    min_refresh_interval_s: int = 30
    refresh_queue_url: str | None = None
    # True: a user's refresh waits for their first Profile API read (the strict behaviour).
    seed_wait: bool = False
    # Re-read the Profile API trait of users seeded longer ago than this; 0: never.
    reseed_interval_s: int = 0


@dataclass(frozen=True)
class Settings:
    campaign_arn: str
    filter_arn: str | None
    tracking_id: str | None
    num_results: int
    write_key_parameter: str
    profile: ProfileSettings | None
    segment_api_url: str
    tracked_events: frozenset[str]
    purchase_events: frozenset[str]
    item_id_property: str
    recommended_trait: str
    purchased_trait: str
    dead_letter_queue_url: str
    integrations: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_INTEGRATIONS))
    worker_threads: int = 8
    # Extra items asked for while the profile's purchases are still being read.
    exclusion_headroom: int = 25
    time_margin_ms: int = 2000
    # Event properties passed to PutEvents as recommendationId / impression (attribution).
    recommendation_id_property: str = "recommendation_id"
    impression_property: str = "impression"
    store: StoreSettings | None = None


def load(env: Mapping[str, str]) -> Settings:
    """Read and validate every setting; the first problem raises ConfigError."""
    tracking_id = env_str(env, "PERSONALIZE_TRACKING_ID")
    if tracking_id is not None and len(tracking_id) > 256:
        raise ConfigError("PERSONALIZE_TRACKING_ID", "must be at most 256 characters")
    return Settings(
        campaign_arn=_arn(env, "PERSONALIZE_CAMPAIGN_ARN", required=True),
        filter_arn=env_arn(env, "PERSONALIZE_FILTER_ARN", required=False, kinds=("filter",)),
        tracking_id=tracking_id,
        num_results=env_int(env, "NUM_RESULTS", 25, 1, 500),
        write_key_parameter=env_parameter_name(env, "SEGMENT_WRITE_KEY_PARAMETER"),
        profile=env_profile_api(env),
        segment_api_url=env_url(env, "SEGMENT_API_URL", "https://api.segment.io/v1"),
        tracked_events=frozenset(env_list(env, "TRACKED_EVENTS", DEFAULT_TRACKED_EVENTS)),
        purchase_events=frozenset(env_list(env, "PURCHASE_EVENTS", "Order Completed")),
        item_id_property=env_choice(env, "ITEM_ID_PROPERTY", "sku", ("sku", "product_id")),
        recommended_trait=_trait(env, "RECOMMENDED_TRAIT", "recommended_products"),
        purchased_trait=_trait(env, "PURCHASED_TRAIT", "purchased_products"),
        dead_letter_queue_url=_queue_url(env, "DEAD_LETTER_QUEUE_URL"),
        integrations=_integrations(env, "SEGMENT_IDENTIFY_INTEGRATIONS"),
        worker_threads=env_int(env, "WORKER_THREADS", 8, 1, 64),
        exclusion_headroom=env_int(env, "EXCLUSION_HEADROOM", 25, 0, 500),
        time_margin_ms=env_int(env, "TIME_BUDGET_MARGIN_MS", 2000, 0, 600_000),
        recommendation_id_property=_property(
            env, "RECOMMENDATION_ID_PROPERTY", "recommendation_id"
        ),
        impression_property=_property(env, "IMPRESSION_PROPERTY", "impression"),
        store=_store(env),
    )


def _store(env: Mapping[str, str]) -> StoreSettings | None:
    """The store's settings; None without ``USER_STATE_TABLE`` (the others are then unused
    and still validated, so a typo shows before the table is added)."""
    table = env_str(env, "USER_STATE_TABLE")
    interval = env_int(env, "MIN_REFRESH_INTERVAL_S", 30, 0, MAX_REFRESH_INTERVAL_S)
    queue = env_str(env, "REFRESH_QUEUE_URL")
    queue_url = None if queue is None else _queue_url(env, "REFRESH_QUEUE_URL")
    reseed = env_int(env, "RESEED_INTERVAL_SECONDS", 0, 0, 31_536_000)
    if 0 < reseed < 3600:
        raise ConfigError("RESEED_INTERVAL_SECONDS", "must be 0 (never) or 3600..31536000")
    ttl_days = env_int(env, "USER_STATE_TTL_DAYS", 400, 1, 3650)
    seed_wait = env_bool(env, "SEED_WAIT", False)
    if table is None:
        return None
    if not _TABLE_NAME.match(table):
        raise ConfigError("USER_STATE_TABLE", "must be a DynamoDB table name")
    if interval > 0 and queue_url is None:
        raise ConfigError(
            "REFRESH_QUEUE_URL",
            "is required with USER_STATE_TABLE when MIN_REFRESH_INTERVAL_S > 0",
        )
    return StoreSettings(
        table=table,
        ttl_days=ttl_days,
        min_refresh_interval_s=interval,
        refresh_queue_url=queue_url,
        seed_wait=seed_wait,
        reseed_interval_s=reseed,
    )


def _arn(env: Mapping[str, str], name: str, *, required: bool) -> str:
    value = env_arn(env, name, required=required, kinds=("campaign", "recommender"))
    assert value is not None  # required=True raised otherwise
    return value


def _property(env: Mapping[str, str], name: str, default: str) -> str:
    value = env_str(env, name, default) or default
    if len(value) > 255 or any(c.isspace() for c in value):
        raise ConfigError(name, "must be one event property name")
    return value


def _trait(env: Mapping[str, str], name: str, default: str) -> str:
    value = env_str(env, name, default) or default
    if not _TRAIT_NAME.match(value):
        raise ConfigError(name, "must be one trait name without spaces or commas")
    return value


def _queue_url(env: Mapping[str, str], name: str) -> str:
    value = env_required(env, name)
    if not _SQS_URL.match(value):
        raise ConfigError(name, "must be an SQS queue URL")
    return value


def _integrations(env: Mapping[str, str], name: str) -> dict[str, Any]:
    raw = env_str(env, name)
    if raw is None:
        return dict(DEFAULT_INTEGRATIONS)
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigError(name, "must be a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(v, bool | dict) for v in value.values()):
        raise ConfigError(name, "must be a JSON object of destination names to true/false")
    return value


# What each variable read here means, for the generated table in the function's README
# (scripts/docs/env_tables.py takes the name, default and bounds from the calls above).
ENV_DOCS = {
    "PERSONALIZE_CAMPAIGN_ARN": "campaign ARN, or recommender ARN (`:recommender/`)",
    "PERSONALIZE_FILTER_ARN": "filter for GetRecommendations; unset: no filter",
    "PERSONALIZE_TRACKING_ID": "event tracker id (at most 256 characters); when set, relevant "
    "events are sent with PutEvents",
    "NUM_RESULTS": "items in the trait",
    "SEGMENT_WRITE_KEY_PARAMETER": "name (or ARN) of the SSM SecureString holding the source "
    "write key",
    "SEGMENT_API_URL": "Tracking API base URL; EU: `https://events.eu1.segmentapis.com/v1`",
    "TRACKED_EVENTS": "track event names sent to Personalize; spaces around names ignored",
    "PURCHASE_EVENTS": "their items are always excluded, tracked or not",
    "ITEM_ID_PROPERTY": "which product field is the Personalize item id",
    "RECOMMENDED_TRAIT": "the trait the recommendations are written to",
    "PURCHASED_TRAIT": "the list trait holding the user's purchased item ids",
    "DEAD_LETTER_QUEUE_URL": "SQS queue (standard or `.fifo`) for records that can never succeed",
    "SEGMENT_IDENTIFY_INTEGRATIONS": "the identifies' `integrations` object (JSON object of "
    'destination names to true/false); unset: `{"Amazon Kinesis": false}`',
    "WORKER_THREADS": "users processed in parallel per invocation (as many threads again read "
    "the Profile API)",
    "EXCLUSION_HEADROOM": "extra items asked for while the profile is still being read",
    "TIME_BUDGET_MARGIN_MS": "stop this long before the Lambda timeout and report the rest for "
    "retry",
    "RECOMMENDATION_ID_PROPERTY": "event property passed to PutEvents as `recommendationId` "
    "(attribution)",
    "IMPRESSION_PROPERTY": "event property passed to PutEvents as `impression` (attribution)",
    "USER_STATE_TABLE": "DynamoDB table of the user-state store (purchases, seeds, last "
    "refresh); unset: a Profile API read per refreshed user, as before the store",
    "USER_STATE_TTL_DAYS": "a user's item expires this long after its last write",
    "MIN_REFRESH_INTERVAL_S": "a user refreshed less than this ago gets a trailing "
    "refresh through the refresh queue instead (purchases refresh at once); 0: every batch",
    "REFRESH_QUEUE_URL": "SQS queue of deferred refreshes, consumed by this function; required "
    "with the store when MIN_REFRESH_INTERVAL_S > 0",
    "SEED_WAIT": "true: a user's refresh waits for their first Profile API read (strict); "
    "false: the read runs beside it and a changed answer refreshes the user again",
    "RESEED_INTERVAL_SECONDS": "re-read the Profile API trait of users seeded longer ago "
    "(3600..31536000); 0: never",
}
