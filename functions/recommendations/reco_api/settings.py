"""The function's settings, read from the environment once per container and validated.

Every problem raises :class:`common.config.ConfigError` naming the variable, so the handler
answers 500 ``configuration_error`` with one log line instead of a stack trace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from common.config import (
    ConfigError,
    ProfileApiSettings,
    env_arn,
    env_float,
    env_int,
    env_profile_api,
    env_str,
)
from reco_api import capabilities
from reco_api.capabilities import Capabilities

DEFAULT_NUM_RESULTS = 25
DEFAULT_PURCHASED_TRAIT = "purchased_products"
# The Profile API read runs while Personalize answers; this is the most it may add.
DEFAULT_PROFILE_TIMEOUT_MS = 250
# Extra items asked of Personalize before the purchases are known (why: the function's
# README, purchased-item exclusion).
DEFAULT_EXCLUSION_HEADROOM = 25
# A user's purchases read within this many seconds are reused (0 = every request reads):
# a page that asks twice costs one read of the space's shared Profile API budget.
DEFAULT_PROFILE_CACHE_TTL_S = 5.0
# Threads reading the Profile API in the background, per container.
DEFAULT_PROFILE_WORKERS = 4

_ORIGIN = re.compile(r"^https?://[^\s/,]+$")
# DynamoDB table names: 3-255 of a-z A-Z 0-9 _ - .
# (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html)
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


@dataclass(frozen=True)
class ExclusionSettings:
    """Where the user's purchases come from: the user-state store when ``user_state_table``
    is set (then the Profile API, if configured, only for a user whose stored purchases
    reached the store's cap), else the Profile API."""

    purchased_trait: str
    budget_s: float
    headroom: int
    cache_ttl_s: float = DEFAULT_PROFILE_CACHE_TTL_S
    workers: int = DEFAULT_PROFILE_WORKERS
    profile: ProfileApiSettings | None = None
    user_state_table: str | None = None


@dataclass(frozen=True)
class Settings:
    campaign_arn: str
    # SIMS campaign or related-items recommender for itemId requests; None: the campaign.
    related_items_arn: str | None
    filter_arn: str | None
    num_results: int
    cors_origins: tuple[str, ...]
    exclusion: ExclusionSettings | None
    # Ranking, named filters, promotion, metadata columns, caching (reco_api.capabilities).
    capabilities: Capabilities = field(default_factory=Capabilities)


def load(env: Mapping[str, str]) -> Settings:
    campaign_arn = env_arn(
        env, "PERSONALIZE_CAMPAIGN_ARN", required=True, kinds=("campaign", "recommender")
    )
    assert campaign_arn is not None  # required=True never returns None
    v2 = capabilities.load(env)
    return Settings(
        campaign_arn=campaign_arn,
        related_items_arn=v2.related_items_arn,
        filter_arn=env_arn(env, "PERSONALIZE_FILTER_ARN", required=False, kinds=("filter",)),
        num_results=env_int(env, "NUM_RESULTS", DEFAULT_NUM_RESULTS, 1, 500),
        cors_origins=_cors_origins(env),
        exclusion=_exclusion(env),
        capabilities=v2,
    )


def _exclusion(env: Mapping[str, str]) -> ExclusionSettings | None:
    # Read every exclusion setting even when exclusion is off: a malformed value is
    # reported now, not on the day someone turns exclusion on.
    trait = env_str(env, "PURCHASED_TRAIT", DEFAULT_PURCHASED_TRAIT) or DEFAULT_PURCHASED_TRAIT
    if "," in trait or len(trait) > 255:
        # The Profile API takes the trait in a comma-separated include= list.
        raise ConfigError("PURCHASED_TRAIT", "must be one trait name without commas")
    timeout_ms = env_int(env, "PROFILE_TIMEOUT_MS", DEFAULT_PROFILE_TIMEOUT_MS, 10, 5000)
    headroom = env_int(env, "EXCLUSION_HEADROOM", DEFAULT_EXCLUSION_HEADROOM, 0, 500)
    cache_ttl_s = env_float(env, "PROFILE_CACHE_TTL_S", DEFAULT_PROFILE_CACHE_TTL_S, 0.0, 300.0)
    workers = env_int(env, "PROFILE_WORKERS", DEFAULT_PROFILE_WORKERS, 1, 32)
    profile = env_profile_api(env)
    table = _user_state_table(env)
    if profile is None and table is None:
        return None
    return ExclusionSettings(
        purchased_trait=trait,
        budget_s=timeout_ms / 1000.0,
        headroom=headroom,
        cache_ttl_s=cache_ttl_s,
        workers=workers,
        profile=profile,
        user_state_table=table,
    )


def _user_state_table(env: Mapping[str, str]) -> str | None:
    table = env_str(env, "USER_STATE_TABLE")
    if table is not None and not _TABLE_NAME.match(table):
        raise ConfigError(
            "USER_STATE_TABLE", "must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)"
        )
    return table


def _cors_origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """No CORS header unless asked; ``*``, or a comma-separated list of exact origins."""
    raw = env_str(env, "CORS_ALLOW_ORIGIN")
    if raw is None:
        return ()
    origins = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if origins == ("*",):
        return origins
    if not origins or any(not _ORIGIN.match(origin) for origin in origins):
        raise ConfigError(
            "CORS_ALLOW_ORIGIN",
            "must be * or comma-separated origins like https://shop.example.com",
        )
    return origins


# What each variable read here means, for the generated table in the function's README
# (scripts/docs/env_tables.py takes the name, default and bounds from the calls above).
ENV_DOCS = {
    "PERSONALIZE_CAMPAIGN_ARN": "campaign ARN (sent as `campaignArn`), or recommender ARN "
    "(`:recommender/`, sent as `recommenderArn`)",
    "PERSONALIZE_FILTER_ARN": "filter passed as `filterArn`, e.g. `EXCLUDE ItemID WHERE "
    'Interactions.EVENT_TYPE IN ("Order Completed")`; unset: no filter',
    "NUM_RESULTS": "default number of items",
    "PURCHASED_TRAIT": "the list trait holding the user's purchased item ids",
    "PROFILE_TIMEOUT_MS": "the most the purchases read (the store's, or the Profile API's) may "
    "add to a response",
    "EXCLUSION_HEADROOM": "extra items asked of Personalize before the purchases are known",
    "PROFILE_CACHE_TTL_S": "a user's purchases read from the Profile API within this many "
    "seconds are reused (0: every request reads); the store is read on every request",
    "PROFILE_WORKERS": "threads reading the purchases (the store or the Profile API) in the "
    "background",
    "USER_STATE_TABLE": "the user-state store's DynamoDB table: set, purchased-item exclusion "
    "reads the purchases there (GetItem) and no Profile API, except for a user whose stored "
    "purchases reached the store's cap when the Profile API is configured; unset: the "
    "Profile API, as before the store. Terraform sets it",
    "CORS_ALLOW_ORIGIN": "`*`, or comma-separated exact origins (`https://shop.example.com`); "
    "a listed origin is echoed with `Vary: Origin`; unset: no CORS header",
}
