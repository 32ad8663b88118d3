"""Settings as records: each environment variable is declared once, as a :class:`Setting`
(name, type with its bounds or choices, default, meaning), and every reader and every
generated settings table (``scripts/docs/env_tables.py``) comes from that record.

The records several functions read live here, so they accept and refuse the same values in
every function; a function's own records live in its settings module, whose ``SETTINGS``
tuple lists every record the function reads (the generated table walks it). Reading goes
through :mod:`common.config`'s readers: each problem is a :class:`ConfigError` naming the
variable. Standard library only, nothing read at import (cold start).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from common.config import (
    MAX_RATE,
    ConfigError,
    ProfileApiSettings,
    env_arn,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_parameter_name,
    env_rate,
    env_str,
    env_url,
)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


class Type(Protocol[T_co]):
    """How a setting's text becomes a value; ``accepted`` describes it for the table."""

    @property
    def accepted(self) -> str: ...

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> T_co | None: ...


def _figure(value: float) -> str:
    if float(value).is_integer():
        value = int(value)
        return f"{value:,}" if abs(value) >= 100_000 else str(value)
    return f"{value:g}"


@dataclass(frozen=True)
class Text:
    """Free text, or text matching ``pattern`` (refused as ``must be <what>``)."""

    pattern: str | None = None
    what: str = ""

    @property
    def accepted(self) -> str:
        return self.what if self.pattern else "text"

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> str | None:
        value = env_str(env, name, default)
        if value is not None and self.pattern and not re.fullmatch(self.pattern, value):
            raise ConfigError(name, f"must be {self.what}")
        return value


@dataclass(frozen=True)
class Integer:
    lo: int
    hi: int

    @property
    def accepted(self) -> str:
        return f"integer {_figure(self.lo)}..{_figure(self.hi)}"

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> int | None:
        if default is None and env_str(env, name) is None:
            return None
        return env_int(env, name, int(default or 0), self.lo, self.hi)


@dataclass(frozen=True)
class Number:
    lo: float
    hi: float

    @property
    def accepted(self) -> str:
        return f"number {_figure(self.lo)}..{_figure(self.hi)}"

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> float | None:
        if default is None and env_str(env, name) is None:
            return None
        return env_float(env, name, float(default or 0), self.lo, self.hi)


@dataclass(frozen=True)
class Rate:
    """A positive decimal rate per second; unset: no limit."""

    @property
    def accepted(self) -> str:
        return f"requests/s 0.001..{_figure(MAX_RATE)}"

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> float | None:
        return env_rate(env, name)


@dataclass(frozen=True)
class Names:
    """Comma-separated names (spaces around them and empty entries ignored), at least one."""

    @property
    def accepted(self) -> str:
        return "comma-separated list"

    def read(
        self, env: Mapping[str, str], name: str, default: str | None
    ) -> tuple[str, ...] | None:
        if default is None and env_str(env, name) is None:
            return None
        return env_list(env, name, default or "")


@dataclass(frozen=True)
class Choice:
    choices: tuple[str, ...]

    @property
    def accepted(self) -> str:
        return "one of " + ", ".join(f"`{choice}`" for choice in self.choices)

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> str | None:
        if default is None and env_str(env, name) is None:
            return None
        return env_choice(env, name, default or "", self.choices)


@dataclass(frozen=True)
class Boolean:
    @property
    def accepted(self) -> str:
        return "`true` or `false`"

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> bool | None:
        if default is None and env_str(env, name) is None:
            return None
        return env_bool(env, name, default == "true")


@dataclass(frozen=True)
class Url:
    @property
    def accepted(self) -> str:
        return "http(s) URL"

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> str | None:
        if default is None and env_str(env, name) is None:
            return None
        return env_url(env, name, default or "")


@dataclass(frozen=True)
class Arn:
    """A Personalize ARN of one of ``kinds`` (campaign, recommender, filter)."""

    kinds: tuple[str, ...]

    @property
    def accepted(self) -> str:
        return "Personalize " + " or ".join(self.kinds) + " ARN"

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> str | None:
        return env_arn(env, name, required=False, kinds=self.kinds)


@dataclass(frozen=True)
class Parameter:
    """The name (or ARN) of an SSM parameter: only the name, never the secret, is in env."""

    @property
    def accepted(self) -> str:
        return "SSM parameter name or ARN"

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> str | None:
        if env_str(env, name) is None:
            return None
        return env_parameter_name(env, name)


@dataclass(frozen=True)
class Parsed(Generic[T_co]):
    """Any other form: ``parse`` turns the (stripped, non-empty) text into the value or raises
    ``ValueError(reason)``, reported as ``ConfigError(name, reason)``."""

    parse: Callable[[str], T_co]
    describe: str

    @property
    def accepted(self) -> str:
        return self.describe

    def read(self, env: Mapping[str, str], name: str, default: str | None) -> T_co | None:
        raw = env_str(env, name, default)
        if raw is None:
            return None
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise ConfigError(name, str(exc)) from None


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable: its name, type (bounds or choices included), default (the
    text, as it would be set), whether it is required, and what it means."""

    name: str
    type: Type[T]
    meaning: str
    default: str | None = None
    required: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"{self.name!r}: a setting's name is UPPER_SNAKE_CASE")
        if not " ".join(self.meaning.split()):
            raise ValueError(f"{self.name}: a setting needs a meaning (for its table)")
        if self.required and self.default is not None:
            raise ValueError(f"{self.name}: a required setting has no default")
        if self.default is not None:
            # The default passes the setting's own validation (ConfigError otherwise).
            self.type.read({self.name: self.default}, self.name, None)

    def is_set(self, env: Mapping[str, str]) -> bool:
        return env_str(env, self.name) is not None

    def read(self, env: Mapping[str, str]) -> T | None:
        """The value, the default when unset, None when unset without a default."""
        if self.required and not self.is_set(env):
            raise ConfigError(self.name, "is required but not set")
        return self.type.read(env, self.name, self.default)

    def value(self, env: Mapping[str, str]) -> T:
        """The value of a required or defaulted setting."""
        found = self.read(env)
        if found is None:
            raise ConfigError(self.name, "is required but not set")
        return found

    def error(self, reason: str) -> ConfigError:
        return ConfigError(self.name, reason)


# Segment trait names. The Profile API takes them in a comma-separated include= list
# (https://segment.com/docs/unify/profile-api/): no comma; the trait key is the name in
# snake_case (https://segment.com/docs/unify/traits/computed-traits/): no whitespace; the
# audience builder reads `.` as a path and `$` as the array operator
# (https://segment.com/docs/engage/audiences/): neither, so the one trait is addressed.
TRAIT_NAME = Text(r"[^\s,.$]{1,255}", "one trait name: 1-255 characters, no spaces, commas, . or $")
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
TABLE_NAME = Text(r"[A-Za-z0-9_.-]{3,255}", "a DynamoDB table name (3-255 of A-Z a-z 0-9 _ - .)")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in LEVELS:
        raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
    return level


# --- read by every function (common.runtime, common.log, common.metrics) ---
LOG_LEVEL = Setting(
    "LOG_LEVEL",
    Parsed(_log_level, "one of `DEBUG`, `INFO`, `WARNING`, `ERROR` (any case)"),
    "the lowest level logged; another value logs at `INFO`",
    default="INFO",
)
METRICS_NAMESPACE = Setting(
    "METRICS_NAMESPACE",
    Text(),
    "CloudWatch namespace of the EMF metrics",
    default="SegmentPersonalize",
)
# Job names are at most 63 characters with a 16-character -yyyymmddTHHMMSS stamp;
# CloudWatch dimension values take 1-1024; Terraform's name_prefix fits (3-32 of a-z 0-9 -).
DEPLOYMENT_NAME = Setting(
    "DEPLOYMENT_NAME",
    Text(r"[A-Za-z0-9_-]{1,40}", "1-40 letters, digits, _ or -"),
    "the deployment's name: the metrics' `deployment` dimension (so two deployments in one "
    "account never mix) and the prefix of batch_traits' generated job names; Terraform sets "
    "it to `name_prefix`",
    default="default",
)
LOG_HASH_KEY_PARAMETER = Setting(
    "LOG_HASH_KEY_PARAMETER",
    Parameter(),
    "name (or ARN) of an SSM **SecureString** (at least 32 characters) keying the user ids' "
    "pseudonyms in the logs (HMAC-SHA256); Terraform generates it. Unset, or until it is "
    "read: no user id in the logs",
)
RUNTIME: tuple[Setting[Any], ...] = (LOG_LEVEL, METRICS_NAMESPACE, DEPLOYMENT_NAME)

# --- Personalize ---
PERSONALIZE_CAMPAIGN_ARN = Setting(
    "PERSONALIZE_CAMPAIGN_ARN",
    Arn(("campaign", "recommender")),
    "campaign ARN (sent as `campaignArn`), or recommender ARN (`:recommender/`, sent as "
    "`recommenderArn`); batch_traits refuses a recommender at start (batch inference runs "
    "the campaign's solution version)",
    required=True,
)
PERSONALIZE_FILTER_ARN = Setting(
    "PERSONALIZE_FILTER_ARN",
    Arn(("filter",)),
    "filter passed as `filterArn` (GetRecommendations, the batch job), e.g. `EXCLUDE ItemID "
    'WHERE Interactions.EVENT_TYPE IN ("Order Completed")`; unset: no filter',
)
NUM_RESULTS = Setting(
    "NUM_RESULTS",
    Integer(1, 500),
    "number of items: the API's default `numResults`, and the items per user in the trait",
    default="25",
)
EXCLUSION_HEADROOM = Setting(
    "EXCLUSION_HEADROOM",
    Integer(0, 500),
    "extra items asked of Personalize while the user's purchases are still being read",
    default="25",
)

# --- Segment ---
RECOMMENDED_TRAIT = Setting(
    "RECOMMENDED_TRAIT",
    TRAIT_NAME,
    "the trait the recommendations are written to",
    default="recommended_products",
)
PURCHASED_TRAIT = Setting(
    "PURCHASED_TRAIT",
    TRAIT_NAME,
    "the list trait holding the user's purchased item ids (read with the Profile API)",
    default="purchased_products",
)
SEGMENT_WRITE_KEY_PARAMETER = Setting(
    "SEGMENT_WRITE_KEY_PARAMETER",
    Parameter(),
    "name (or ARN) of the SSM SecureString holding the source write key",
    required=True,
)
SEGMENT_API_URL = Setting(
    "SEGMENT_API_URL",
    Url(),
    "Tracking API base URL; EU: `https://events.eu1.segmentapis.com/v1`",
    default="https://api.segment.io/v1",
)
SEGMENT_SPACE_ID = Setting(
    "SEGMENT_SPACE_ID",
    Text(r"[A-Za-z0-9_-]{1,128}", "a Segment space id (letters, digits, _ or -)"),
    "Segment Unify space id; with `SEGMENT_PROFILE_TOKEN_PARAMETER`, turns purchased-item "
    "exclusion on (one without the other is a configuration error)",
)
SEGMENT_PROFILE_TOKEN_PARAMETER = Setting(
    "SEGMENT_PROFILE_TOKEN_PARAMETER",
    Parameter(),
    "name (or ARN) of an SSM **SecureString** holding the Profile API access token (set with "
    "`SEGMENT_SPACE_ID`)",
)
SEGMENT_PROFILE_API_URL = Setting(
    "SEGMENT_PROFILE_API_URL",
    Url(),
    "Profile API base URL; EU: `https://profiles.euw1.segment.com/v1`",
    default="https://profiles.segment.com/v1",
)
SEGMENT_PROFILE_API_RPS = Setting(
    "SEGMENT_PROFILE_API_RPS",
    Rate(),
    "this container's share of the space's Profile API budget; unset: no limit. Terraform "
    "sets it (terraform/README.md, the Profile API budget)",
)
PROFILE_API: tuple[Setting[Any], ...] = (
    SEGMENT_SPACE_ID,
    SEGMENT_PROFILE_TOKEN_PARAMETER,
    SEGMENT_PROFILE_API_URL,
    SEGMENT_PROFILE_API_RPS,
)

# --- the user-state store ---
USER_STATE_TABLE = Setting(
    "USER_STATE_TABLE",
    TABLE_NAME,
    "DynamoDB table of the user-state store (purchases, seeds, last refresh): update_traits "
    "keeps it; with it, recommendations' purchased-item exclusion reads the purchases there "
    "(GetItem), and the Profile API, when configured, only for a user whose stored purchases "
    "reached the store's cap. Unset: no store, the Profile API as before. Terraform sets it",
)


def env_log_hash_key(env: Mapping[str, str]) -> str | None:
    """``LOG_HASH_KEY_PARAMETER``: the SSM SecureString holding the key of the user ids'
    pseudonyms in the logs (:func:`common.log.hash_id`), or None: no id is logged."""
    return LOG_HASH_KEY_PARAMETER.read(env)


def env_profile_api(env: Mapping[str, str]) -> ProfileApiSettings | None:
    """``SEGMENT_SPACE_ID`` + ``SEGMENT_PROFILE_TOKEN_PARAMETER`` (+ the API URL), or None.

    One without the other is a half-done deployment that would silently stop excluding
    purchases: it is a configuration error naming the missing variable.
    """
    api_url = SEGMENT_PROFILE_API_URL.value(env)
    space, token = SEGMENT_SPACE_ID, SEGMENT_PROFILE_TOKEN_PARAMETER
    if not space.is_set(env) and not token.is_set(env):
        return None
    if not space.is_set(env):
        raise space.error(f"is required when {token.name} is set")
    if not token.is_set(env):
        raise token.error(f"is required when {space.name} is set")
    return ProfileApiSettings(
        space_id=space.value(env),
        token_parameter=token.value(env),
        api_url=api_url,
        requests_per_second=SEGMENT_PROFILE_API_RPS.read(env),
    )
