"""The function's settings, read from the environment and validated (ConfigError names the
variable)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from common.config import (
    ConfigError,
    ProfileApiSettings,
    env_arn,
    env_float,
    env_int,
    env_parameter_name,
    env_profile_api,
    env_required,
    env_str,
    env_url,
)

DEFAULT_SEGMENT_API_URL = "https://api.segment.io/v1"
DEFAULT_USERS_KEY = "input/users.json"
DEFAULT_CHUNK_BYTES = 4_194_304  # 4 MiB
MIN_CHUNK_BYTES = 1024  # small enough for tests; Terraform's validation asks for >= 1 MiB
MAX_CHUNK_BYTES = 268_435_456  # 256 MiB
DEFAULT_EVENTS_PER_S = 100.0  # Terraform passes the budget split over max concurrency
# Holds what may still run after a chunk's deadline (backfill.runtime.worst_after_deadline_s:
# 39 s with the clients' timeouts and retries), with the Lambda timeout's 60 s minimum
# leaving 20 s of work.
DEFAULT_TIME_MARGIN_MS = 40_000
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_KEY = re.compile(r"^input/[A-Za-z0-9_./-]{1,900}$")
_IAM_ROLE = re.compile(r"^arn:aws[a-zA-Z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_KMS_KEY = re.compile(r"^arn:aws[a-zA-Z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]{1,256}$")
_QUEUE_URL = re.compile(r"^https?://[^\s/]+/\d{12}/[A-Za-z0-9_-]{1,80}$")
_TRAIT = re.compile(r"^[^\s.$][^.$]{0,254}$")
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


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


def users_key(value: str, name: str = "BATCH_USERS_KEY") -> str:
    """A users file key under input/ (never elsewhere in the bucket, never ``..``)."""
    if not _KEY.match(value) or ".." in value.split("/"):
        raise ConfigError(name, "must be a key under input/ (letters, digits, _ . / -)")
    return value


def _matching(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = env_required(env, name)
    if not pattern.match(value):
        raise ConfigError(name, f"must be {what}")
    return value


def load(env: Mapping[str, str]) -> Settings:
    campaign = env_arn(
        env, "PERSONALIZE_CAMPAIGN_ARN", required=True, kinds=("campaign", "recommender")
    )
    assert campaign is not None
    kms = env_str(env, "BATCH_KMS_KEY_ARN")
    if kms is not None and not _KMS_KEY.match(kms):
        raise ConfigError("BATCH_KMS_KEY_ARN", "must be a KMS key ARN")
    exclusion = (env_str(env, "PROFILE_EXCLUSION", "false") or "false").lower()
    if exclusion not in ("true", "false"):
        raise ConfigError("PROFILE_EXCLUSION", "must be true or false")
    profile = env_profile_api(env)
    if exclusion == "true" and profile is None:
        raise ConfigError(
            "PROFILE_EXCLUSION", "needs SEGMENT_SPACE_ID and SEGMENT_PROFILE_TOKEN_PARAMETER"
        )
    traits = {}
    for name, default in (
        ("RECOMMENDED_TRAIT", "recommended_products"),
        ("PURCHASED_TRAIT", "purchased_products"),
    ):
        value = env_str(env, name, default) or default
        if not _TRAIT.match(value):
            raise ConfigError(name, "must be a trait name (no dots or $)")
        traits[name] = value
    deployment = env_str(env, "DEPLOYMENT_NAME", "bundle") or "bundle"
    if not _DEPLOYMENT.match(deployment):
        raise ConfigError("DEPLOYMENT_NAME", "must be 1..40 letters, digits, _ or -")
    return Settings(
        campaign_arn=campaign,
        filter_arn=env_arn(env, "PERSONALIZE_FILTER_ARN", required=False, kinds=("filter",)),
        num_results=env_int(env, "NUM_RESULTS", 25, 1, 500),
        bucket=_matching(env, "BATCH_BUCKET", _BUCKET, "an S3 bucket name"),
        users_key=users_key(
            env_str(env, "BATCH_USERS_KEY", DEFAULT_USERS_KEY) or DEFAULT_USERS_KEY
        ),
        role_arn=_matching(env, "BATCH_ROLE_ARN", _IAM_ROLE, "an IAM role ARN"),
        kms_key_arn=kms,
        chunk_queue_url=_matching(env, "CHUNK_QUEUE_URL", _QUEUE_URL, "an SQS queue URL"),
        chunk_bytes=env_int(
            env, "CHUNK_BYTES", DEFAULT_CHUNK_BYTES, MIN_CHUNK_BYTES, MAX_CHUNK_BYTES
        ),
        write_key_parameter=env_parameter_name(env, "SEGMENT_WRITE_KEY_PARAMETER"),
        segment_api_url=env_url(env, "SEGMENT_API_URL", DEFAULT_SEGMENT_API_URL),
        events_per_s=env_float(env, "SEGMENT_EVENTS_PER_S", DEFAULT_EVENTS_PER_S, 0.1, 100_000.0),
        recommended_trait=traits["RECOMMENDED_TRAIT"],
        purchased_trait=traits["PURCHASED_TRAIT"],
        profile=profile if exclusion == "true" else None,
        max_receive_count=env_int(env, "MAX_RECEIVE_COUNT", 5, 1, 1000),
        time_margin_ms=env_int(env, "TIME_MARGIN_MS", DEFAULT_TIME_MARGIN_MS, 0, 600_000),
        deployment=deployment,
    )


# Meanings of the variables read above (the generated table in functions/batch_traits/README.md;
# `make fmt` writes it, `make lint` checks it).
ENV_DOCS = {
    "PERSONALIZE_CAMPAIGN_ARN": "campaign whose current solution version runs the batch "
    "inference job (a recommender ARN is refused: batch inference needs a solution version)",
    "PERSONALIZE_FILTER_ARN": "filter the job applies (e.g. the purchased-items filter); unset: "
    "none",
    "NUM_RESULTS": "items per user in the job's output, and in the trait",
    "BATCH_BUCKET": "the bucket of users files, job output, chunk state and reports",
    "BATCH_USERS_KEY": 'the users file (JSON lines of `{"userId": ...}`) a start without '
    "`users_key` uses",
    "BATCH_ROLE_ARN": "the role Personalize assumes to read the input and write the output",
    "BATCH_KMS_KEY_ARN": "KMS key the job's output is encrypted with; unset: the bucket's "
    "default encryption",
    "CHUNK_QUEUE_URL": "SQS queue of chunk messages (the function's own event source)",
    "CHUNK_BYTES": "bytes of output per chunk message",
    "SEGMENT_WRITE_KEY_PARAMETER": "name (or ARN) of the SSM SecureString holding the source "
    "write key",
    "SEGMENT_API_URL": "Tracking API base URL; EU: `https://events.eu1.segmentapis.com/v1`",
    "SEGMENT_EVENTS_PER_S": "this container's share of the identifies/s budget (Terraform "
    "splits `batch_traits.segment_events_per_s` over `batch_traits.max_concurrency`)",
    "RECOMMENDED_TRAIT": "the trait the recommendations are written to",
    "PURCHASED_TRAIT": "the list trait read for `PROFILE_EXCLUSION`",
    "PROFILE_EXCLUSION": "`true`: also drop the purchased trait's items, read through the "
    "Profile API within `SEGMENT_PROFILE_API_RPS`",
    "DEPLOYMENT_NAME": "prefix of generated job names (1-40 letters, digits, `_` or `-`)",
    "MAX_RECEIVE_COUNT": "the chunk queue's maxReceiveCount: on that receive a failing chunk "
    "is recorded as failed in the report before it moves to the dead-letter queue",
    "TIME_MARGIN_MS": "a chunk stops this long before the Lambda timeout and queues the rest "
    "of its range as a continuation; it must hold what may still run after that deadline "
    "(one S3, SQS or Segment call in flight, then the hand-over: 39 s with the built-in "
    "timeouts)",
}
