"""The function's settings, read from the environment once and validated.

Every problem raises :class:`common.config.ConfigError` naming the variable, so the handler
logs one line and reports every record for retry instead of dead-lettering good data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from common.config import ProfileApiSettings
from common.settings import (
    EXCLUSION_HEADROOM,
    LOG_HASH_KEY_PARAMETER,
    NUM_RESULTS,
    PERSONALIZE_CAMPAIGN_ARN,
    PERSONALIZE_FILTER_ARN,
    PROFILE_API,
    PURCHASED_TRAIT,
    RECOMMENDED_TRAIT,
    RUNTIME,
    SEGMENT_API_URL,
    SEGMENT_WRITE_KEY_PARAMETER,
    USER_STATE_TABLE,
    Boolean,
    Choice,
    Integer,
    Names,
    Parsed,
    Setting,
    Text,
    env_log_hash_key,
    env_profile_api,
)

DEFAULT_TRACKED_EVENTS = "Product Viewed,Product Clicked,Product Added,Order Completed"
DEFAULT_INTEGRATIONS: dict[str, Any] = {"Amazon Kinesis": False}
# SQS queue URLs: https://<endpoint>/<account>/<name>, names of 1-80 (.fifo allowed).
SQS_URL = Text(r"https?://[^\s/]+/\d{12}/[A-Za-z0-9_-]{1,80}(\.fifo)?", "an SQS queue URL")
# SQS DelaySeconds is at most 900 (15 minutes): the longest coalescing window.
MAX_REFRESH_INTERVAL_S = 900


ProfileSettings = ProfileApiSettings


def _integrations(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValueError("must be a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(v, bool | dict) for v in value.values()):
        raise ValueError("must be a JSON object of destination names to true/false")
    return value


def _reseed_interval(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not (value == 0 or 3600 <= value <= 31_536_000):
        raise ValueError("must be 0 (never) or 3600..31536000")
    return value


PERSONALIZE_TRACKING_ID = Setting(
    "PERSONALIZE_TRACKING_ID",
    Text(r"(?s).{1,256}", "at most 256 characters"),
    "event tracker id (at most 256 characters); when set, relevant events are sent with PutEvents",
)
TRACKED_EVENTS = Setting(
    "TRACKED_EVENTS",
    Names(),
    "track event names sent to Personalize; spaces around names ignored",
    default=DEFAULT_TRACKED_EVENTS,
)
PURCHASE_EVENTS = Setting(
    "PURCHASE_EVENTS",
    Names(),
    "their items are always excluded, tracked or not",
    default="Order Completed",
)
ITEM_ID_PROPERTY = Setting(
    "ITEM_ID_PROPERTY",
    Choice(("sku", "product_id")),
    "which product field is the Personalize item id",
    default="sku",
)
DEAD_LETTER_QUEUE_URL = Setting(
    "DEAD_LETTER_QUEUE_URL",
    SQS_URL,
    "SQS queue (standard or `.fifo`) for records that can never succeed",
    required=True,
)
SEGMENT_IDENTIFY_INTEGRATIONS = Setting(
    "SEGMENT_IDENTIFY_INTEGRATIONS",
    Parsed(_integrations, "JSON object"),
    "the identifies' `integrations` object (JSON object of destination names to true/false); "
    'unset: `{"Amazon Kinesis": false}`',
)
WORKER_THREADS = Setting(
    "WORKER_THREADS",
    Integer(1, 64),
    "users processed in parallel per invocation (as many threads again read the Profile API)",
    default="8",
)
TIME_BUDGET_MARGIN_MS = Setting(
    "TIME_BUDGET_MARGIN_MS",
    Integer(0, 600_000),
    "stop this long before the Lambda timeout and report the rest for retry",
    default="2000",
)
EVENT_PROPERTY = Text(r"\S{1,255}", "one event property name")
RECOMMENDATION_ID_PROPERTY = Setting(
    "RECOMMENDATION_ID_PROPERTY",
    EVENT_PROPERTY,
    "event property passed to PutEvents as `recommendationId` (attribution)",
    default="recommendation_id",
)
IMPRESSION_PROPERTY = Setting(
    "IMPRESSION_PROPERTY",
    EVENT_PROPERTY,
    "event property passed to PutEvents as `impression` (attribution)",
    default="impression",
)
USER_STATE_TTL_DAYS = Setting(
    "USER_STATE_TTL_DAYS",
    Integer(1, 3650),
    "a user's item expires this long after its last write",
    default="400",
)
MIN_REFRESH_INTERVAL_S = Setting(
    "MIN_REFRESH_INTERVAL_S",
    Integer(0, MAX_REFRESH_INTERVAL_S),
    "a user refreshed less than this ago gets a trailing refresh through the refresh queue "
    "instead (purchases refresh at once); 0: every batch",
    default="30",
)
REFRESH_QUEUE_URL = Setting(
    "REFRESH_QUEUE_URL",
    SQS_URL,
    "SQS queue of deferred refreshes, consumed by this function; required with the store "
    "when MIN_REFRESH_INTERVAL_S > 0",
)
SEED_WAIT = Setting(
    "SEED_WAIT",
    Boolean(),
    "true: a user's refresh waits for their first Profile API read (strict); false: the read "
    "runs beside it and a changed answer refreshes the user again",
    default="false",
)
RESEED_INTERVAL_SECONDS = Setting(
    "RESEED_INTERVAL_SECONDS",
    Parsed(_reseed_interval, "`0`, or integer 3600..31,536,000"),
    "re-read the Profile API trait of users seeded longer ago than this; 0: never",
    default="0",
)

# Every setting the function reads, for its generated table (scripts/docs/env_tables.py).
SETTINGS: tuple[Setting[Any], ...] = (
    *RUNTIME,
    PERSONALIZE_TRACKING_ID,
    PERSONALIZE_CAMPAIGN_ARN,
    PERSONALIZE_FILTER_ARN,
    NUM_RESULTS,
    SEGMENT_WRITE_KEY_PARAMETER,
    *PROFILE_API,
    SEGMENT_API_URL,
    TRACKED_EVENTS,
    PURCHASE_EVENTS,
    ITEM_ID_PROPERTY,
    RECOMMENDED_TRAIT,
    PURCHASED_TRAIT,
    DEAD_LETTER_QUEUE_URL,
    SEGMENT_IDENTIFY_INTEGRATIONS,
    WORKER_THREADS,
    EXCLUSION_HEADROOM,
    TIME_BUDGET_MARGIN_MS,
    RECOMMENDATION_ID_PROPERTY,
    IMPRESSION_PROPERTY,
    LOG_HASH_KEY_PARAMETER,
    USER_STATE_TABLE,
    USER_STATE_TTL_DAYS,
    MIN_REFRESH_INTERVAL_S,
    REFRESH_QUEUE_URL,
    SEED_WAIT,
    RESEED_INTERVAL_SECONDS,
)


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
    # The SecureString keying the user pseudonyms in the logs; None: no user id is logged.
    log_hash_key_parameter: str | None = None
    store: StoreSettings | None = None


def load(env: Mapping[str, str]) -> Settings:
    """Read and validate every setting; the first problem raises ConfigError."""
    tracking_id = PERSONALIZE_TRACKING_ID.read(env)
    return Settings(
        campaign_arn=PERSONALIZE_CAMPAIGN_ARN.value(env),
        filter_arn=PERSONALIZE_FILTER_ARN.read(env),
        tracking_id=tracking_id,
        num_results=NUM_RESULTS.value(env),
        write_key_parameter=SEGMENT_WRITE_KEY_PARAMETER.value(env),
        profile=env_profile_api(env),
        segment_api_url=SEGMENT_API_URL.value(env),
        tracked_events=frozenset(TRACKED_EVENTS.value(env)),
        purchase_events=frozenset(PURCHASE_EVENTS.value(env)),
        item_id_property=ITEM_ID_PROPERTY.value(env),
        recommended_trait=RECOMMENDED_TRAIT.value(env),
        purchased_trait=PURCHASED_TRAIT.value(env),
        dead_letter_queue_url=DEAD_LETTER_QUEUE_URL.value(env),
        integrations=SEGMENT_IDENTIFY_INTEGRATIONS.read(env) or dict(DEFAULT_INTEGRATIONS),
        worker_threads=WORKER_THREADS.value(env),
        exclusion_headroom=EXCLUSION_HEADROOM.value(env),
        time_margin_ms=TIME_BUDGET_MARGIN_MS.value(env),
        recommendation_id_property=RECOMMENDATION_ID_PROPERTY.value(env),
        impression_property=IMPRESSION_PROPERTY.value(env),
        log_hash_key_parameter=env_log_hash_key(env),
        store=_store(env),
    )


def _store(env: Mapping[str, str]) -> StoreSettings | None:
    """The store's settings; None without ``USER_STATE_TABLE`` (the others are then unused
    and still validated, so a typo shows before the table is added)."""
    stored = USER_STATE_TABLE.is_set(env)
    interval = MIN_REFRESH_INTERVAL_S.value(env)
    queue_url = REFRESH_QUEUE_URL.read(env)
    reseed = RESEED_INTERVAL_SECONDS.value(env)
    ttl_days = USER_STATE_TTL_DAYS.value(env)
    seed_wait = SEED_WAIT.value(env)
    if not stored:
        return None
    table = USER_STATE_TABLE.value(env)
    if interval > 0 and queue_url is None:
        raise REFRESH_QUEUE_URL.error(
            f"is required with {USER_STATE_TABLE.name} when {MIN_REFRESH_INTERVAL_S.name} > 0"
        )
    return StoreSettings(
        table=table,
        ttl_days=ttl_days,
        min_refresh_interval_s=interval,
        refresh_queue_url=queue_url,
        seed_wait=seed_wait,
        reseed_interval_s=reseed,
    )
