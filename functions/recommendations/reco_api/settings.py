"""The function's settings, read from the environment once per container and validated.

Every problem raises :class:`common.config.ConfigError` naming the variable, so the handler
answers 500 ``configuration_error`` with one log line instead of a stack trace.
"""

from __future__ import annotations

import re
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
    RUNTIME,
    USER_STATE_TABLE,
    Integer,
    Number,
    Parsed,
    Setting,
    env_log_hash_key,
    env_profile_api,
)
from reco_api import capabilities
from reco_api.capabilities import Capabilities

DEFAULT_NUM_RESULTS = NUM_RESULTS.value({})
DEFAULT_PURCHASED_TRAIT = PURCHASED_TRAIT.value({})
# The Profile API read runs while Personalize answers; this is the most it may add.
DEFAULT_PROFILE_TIMEOUT_MS = 250
# Extra items asked of Personalize before the purchases are known (why: the function's
# README, purchased-item exclusion).
DEFAULT_EXCLUSION_HEADROOM = EXCLUSION_HEADROOM.value({})
# A user's purchases read within this many seconds are reused (0 = every request reads):
# a page that asks twice costs one read of the space's shared Profile API budget.
DEFAULT_PROFILE_CACHE_TTL_S = 5.0
# Threads reading the Profile API in the background, per container.
DEFAULT_PROFILE_WORKERS = 4

_ORIGIN = re.compile(r"^https?://[^\s/,]+$")


def _cors_origins(raw: str) -> tuple[str, ...]:
    """No CORS header unless asked; ``*``, or a comma-separated list of exact origins."""
    origins = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if origins == ("*",):
        return origins
    if not origins or any(not _ORIGIN.match(origin) for origin in origins):
        raise ValueError("must be * or comma-separated origins like https://shop.example.com")
    return origins


PROFILE_TIMEOUT_MS = Setting(
    "PROFILE_TIMEOUT_MS",
    Integer(10, 5000),
    "the most the purchases read (the store's, or the Profile API's) may add to a response",
    default=str(DEFAULT_PROFILE_TIMEOUT_MS),
)
PROFILE_CACHE_TTL_S = Setting(
    "PROFILE_CACHE_TTL_S",
    Number(0.0, 300.0),
    "a user's purchases read from the Profile API within this many seconds are reused (0: "
    "every request reads); the store is read on every request",
    default=f"{DEFAULT_PROFILE_CACHE_TTL_S:g}",
)
PROFILE_WORKERS = Setting(
    "PROFILE_WORKERS",
    Integer(1, 32),
    "threads reading the purchases (the store or the Profile API) in the background",
    default=str(DEFAULT_PROFILE_WORKERS),
)
CORS_ALLOW_ORIGIN = Setting(
    "CORS_ALLOW_ORIGIN",
    Parsed(_cors_origins, "`*`, or comma-separated origins"),
    "`*`, or comma-separated exact origins (`https://shop.example.com`); a listed origin is "
    "echoed with `Vary: Origin`; unset: no CORS header",
)

# Every setting the function reads, for its generated table (scripts/docs/env_tables.py).
SETTINGS: tuple[Setting[Any], ...] = (
    *RUNTIME,
    PERSONALIZE_CAMPAIGN_ARN,
    PERSONALIZE_FILTER_ARN,
    NUM_RESULTS,
    CORS_ALLOW_ORIGIN,
    PURCHASED_TRAIT,
    PROFILE_TIMEOUT_MS,
    EXCLUSION_HEADROOM,
    PROFILE_CACHE_TTL_S,
    PROFILE_WORKERS,
    *PROFILE_API,
    USER_STATE_TABLE,
    LOG_HASH_KEY_PARAMETER,
    *capabilities.SETTINGS,
)


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
    # The SecureString keying the user pseudonyms in the logs; None: no user id is logged.
    log_hash_key_parameter: str | None = None


def load(env: Mapping[str, str]) -> Settings:
    campaign_arn = PERSONALIZE_CAMPAIGN_ARN.value(env)
    v2 = capabilities.load(env)
    return Settings(
        campaign_arn=campaign_arn,
        related_items_arn=v2.related_items_arn,
        filter_arn=PERSONALIZE_FILTER_ARN.read(env),
        num_results=NUM_RESULTS.value(env),
        cors_origins=CORS_ALLOW_ORIGIN.read(env) or (),
        exclusion=_exclusion(env),
        capabilities=v2,
        log_hash_key_parameter=env_log_hash_key(env),
    )


def _exclusion(env: Mapping[str, str]) -> ExclusionSettings | None:
    # Read every exclusion setting even when exclusion is off: a malformed value is
    # reported now, not on the day someone turns exclusion on.
    trait = PURCHASED_TRAIT.value(env)
    timeout_ms = PROFILE_TIMEOUT_MS.value(env)
    headroom = EXCLUSION_HEADROOM.value(env)
    cache_ttl_s = PROFILE_CACHE_TTL_S.value(env)
    workers = PROFILE_WORKERS.value(env)
    profile = env_profile_api(env)
    table = USER_STATE_TABLE.read(env)
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
