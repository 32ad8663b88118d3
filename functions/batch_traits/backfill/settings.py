"""The function's settings, read from the environment and validated (ConfigError names the
variable)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.config import ConfigError, ProfileApiSettings
from common.settings import (
    DEPLOYMENT_NAME,
    NUM_RESULTS,
    PERSONALIZE_CAMPAIGN_ARN,
    PERSONALIZE_FILTER_ARN,
    PROFILE_API,
    PURCHASED_TRAIT,
    RECOMMENDED_TRAIT,
    RUNTIME,
    SEGMENT_API_URL,
    SEGMENT_PROFILE_TOKEN_PARAMETER,
    SEGMENT_SPACE_ID,
    SEGMENT_WRITE_KEY_PARAMETER,
    Integer,
    Number,
    Parsed,
    Setting,
    Text,
    env_profile_api,
)

DEFAULT_SEGMENT_API_URL = SEGMENT_API_URL.value({})
DEFAULT_USERS_KEY = "input/users.json"
DEFAULT_CHUNK_BYTES = 4_194_304  # 4 MiB
MIN_CHUNK_BYTES = 1024  # small enough for tests; Terraform's validation asks for >= 1 MiB
MAX_CHUNK_BYTES = 268_435_456  # 256 MiB
DEFAULT_EVENTS_PER_S = 100.0  # Terraform passes the budget split over max concurrency
# Holds what may still run after a chunk's deadline (backfill.runtime.worst_after_deadline_s:
# 39 s with the clients' timeouts and retries), with the Lambda timeout's 60 s minimum
# leaving 20 s of work.
DEFAULT_TIME_MARGIN_MS = 40_000
_KEY = re.compile(r"^input/[A-Za-z0-9_./-]{1,900}$")


def _true_or_false(raw: str) -> bool:
    if raw.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return raw.lower() == "true"


BATCH_BUCKET = Setting(
    "BATCH_BUCKET",
    Text(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name"),
    "the bucket of users files, job output, chunk state and reports",
    required=True,
)
USERS_KEY_RULE = "must be a key under input/ (letters, digits, _ . / -)"


def _users_key(value: str) -> str:
    """A users file key under input/ (never elsewhere in the bucket, never ``..``)."""
    if not _KEY.match(value) or ".." in value.split("/"):
        raise ValueError(USERS_KEY_RULE)
    return value


BATCH_USERS_KEY = Setting(
    "BATCH_USERS_KEY",
    Parsed(_users_key, "a key under input/ (letters, digits, _ . / -; no `..`)"),
    'the users file (JSON lines of `{"userId": ...}`) a start without `users_key` uses',
    default=DEFAULT_USERS_KEY,
)
BATCH_ROLE_ARN = Setting(
    "BATCH_ROLE_ARN",
    Text(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", "an IAM role ARN"),
    "the role Personalize assumes to read the input and write the output",
    required=True,
)
BATCH_KMS_KEY_ARN = Setting(
    "BATCH_KMS_KEY_ARN",
    Text(r"arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]{1,256}", "a KMS key ARN"),
    "KMS key the job's output is encrypted with; unset: the bucket's default encryption",
)
CHUNK_QUEUE_URL = Setting(
    "CHUNK_QUEUE_URL",
    Text(r"https?://[^\s/]+/\d{12}/[A-Za-z0-9_-]{1,80}", "an SQS queue URL"),
    "SQS queue of chunk messages (the function's own event source)",
    required=True,
)
CHUNK_BYTES = Setting(
    "CHUNK_BYTES",
    Integer(MIN_CHUNK_BYTES, MAX_CHUNK_BYTES),
    "bytes of output per chunk message",
    default=str(DEFAULT_CHUNK_BYTES),
)
SEGMENT_EVENTS_PER_S = Setting(
    "SEGMENT_EVENTS_PER_S",
    Number(0.1, 100_000.0),
    "this container's share of the identifies/s budget (Terraform splits "
    "`batch_traits.segment_events_per_s` over `batch_traits.max_concurrency`)",
    default=f"{DEFAULT_EVENTS_PER_S:g}",
)
PROFILE_EXCLUSION = Setting(
    "PROFILE_EXCLUSION",
    Parsed(_true_or_false, "`true` or `false` (any case)"),
    "`true`: also drop the purchased trait's items, read through the Profile API within "
    "`SEGMENT_PROFILE_API_RPS`",
    default="false",
)
MAX_RECEIVE_COUNT = Setting(
    "MAX_RECEIVE_COUNT",
    Integer(1, 1000),
    "the chunk queue's maxReceiveCount: on that receive a failing chunk is recorded as failed "
    "in the report before it moves to the dead-letter queue",
    default="5",
)
TIME_MARGIN_MS = Setting(
    "TIME_MARGIN_MS",
    Integer(0, 600_000),
    "a chunk stops this long before the Lambda timeout and queues the rest of its range as a "
    "continuation; it must hold what may still run after that deadline (one S3, SQS or "
    "Segment call in flight, then the hand-over: 39 s with the built-in timeouts)",
    default=str(DEFAULT_TIME_MARGIN_MS),
)

# Every setting the function reads, for its generated table (scripts/docs/env_tables.py).
SETTINGS: tuple[Setting[Any], ...] = (
    *RUNTIME,
    PERSONALIZE_CAMPAIGN_ARN,
    BATCH_KMS_KEY_ARN,
    PROFILE_EXCLUSION,
    *PROFILE_API,
    RECOMMENDED_TRAIT,
    PURCHASED_TRAIT,
    PERSONALIZE_FILTER_ARN,
    NUM_RESULTS,
    BATCH_BUCKET,
    BATCH_USERS_KEY,
    BATCH_ROLE_ARN,
    CHUNK_QUEUE_URL,
    CHUNK_BYTES,
    SEGMENT_WRITE_KEY_PARAMETER,
    SEGMENT_API_URL,
    SEGMENT_EVENTS_PER_S,
    MAX_RECEIVE_COUNT,
    TIME_MARGIN_MS,
)


@dataclass(frozen=True)
class Settings:
    campaign_arn: str
    filter_arn: str | None
    num_results: int
    bucket: str
    users_key: str
    role_arn: str
    kms_key_arn: str | None
    chunk_queue_url: str
    chunk_bytes: int
    write_key_parameter: str
    segment_api_url: str
    events_per_s: float
    recommended_trait: str
    purchased_trait: str
    profile: ProfileApiSettings | None  # set only with PROFILE_EXCLUSION=true
    max_receive_count: int
    time_margin_ms: int
    deployment: str


def users_key(value: str, name: str = BATCH_USERS_KEY.name) -> str:
    """A users file key under input/ (a start's ``users_key``: ConfigError names ``name``)."""
    try:
        return _users_key(value)
    except ValueError as exc:
        raise ConfigError(name, str(exc)) from None


def load(env: Mapping[str, str]) -> Settings:
    campaign = PERSONALIZE_CAMPAIGN_ARN.value(env)
    kms = BATCH_KMS_KEY_ARN.read(env)
    exclusion = PROFILE_EXCLUSION.value(env)
    profile = env_profile_api(env)
    if exclusion and profile is None:
        raise PROFILE_EXCLUSION.error(
            f"needs {SEGMENT_SPACE_ID.name} and {SEGMENT_PROFILE_TOKEN_PARAMETER.name}"
        )
    recommended_trait = RECOMMENDED_TRAIT.value(env)
    purchased_trait = PURCHASED_TRAIT.value(env)
    deployment = DEPLOYMENT_NAME.value(env)
    return Settings(
        campaign_arn=campaign,
        filter_arn=PERSONALIZE_FILTER_ARN.read(env),
        num_results=NUM_RESULTS.value(env),
        bucket=BATCH_BUCKET.value(env),
        users_key=BATCH_USERS_KEY.value(env),
        role_arn=BATCH_ROLE_ARN.value(env),
        kms_key_arn=kms,
        chunk_queue_url=CHUNK_QUEUE_URL.value(env),
        chunk_bytes=CHUNK_BYTES.value(env),
        write_key_parameter=SEGMENT_WRITE_KEY_PARAMETER.value(env),
        segment_api_url=SEGMENT_API_URL.value(env),
        events_per_s=SEGMENT_EVENTS_PER_S.value(env),
        recommended_trait=recommended_trait,
        purchased_trait=purchased_trait,
        profile=profile if exclusion else None,
        max_receive_count=MAX_RECEIVE_COUNT.value(env),
        time_margin_ms=TIME_MARGIN_MS.value(env),
        deployment=deployment,
    )
