"""Typed, validated reading of environment settings: the readers the records of
:mod:`common.settings` use (declare a setting there, or in a function's settings module).

Every reader raises :class:`ConfigError` naming the variable, so a handler can answer
with one clear log line instead of a stack trace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:personalize:[a-z0-9-]+:\d{12}:(campaign|recommender|filter)/.+$"
)
_URL = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")
# SSM parameter names: letters, digits and _.-/; GetParameter takes the ARN too.
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,2048}$")
MAX_RATE = 100_000.0
_N = TypeVar("_N", int, float)


class ConfigError(Exception):
    """A setting is missing or malformed."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def env_str(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name, "").strip()
    return value or default


def env_required(env: Mapping[str, str], name: str) -> str:
    value = env_str(env, name)
    if value is None:
        raise ConfigError(name, "is required but not set")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return _env_number(env, name, default, lo, hi, int, f"must be an integer {lo}..{hi}")


def env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _env_number(env, name, default, lo, hi, float, f"must be a number {lo}..{hi}")


def _env_number(
    env: Mapping[str, str],
    name: str,
    default: _N,
    lo: _N,
    hi: _N,
    parse: Callable[[str], _N],
    reason: str,
) -> _N:
    """The setting parsed, ``default`` when unset; ConfigError(name, reason) when it does not
    parse or is outside lo..hi (NaN included)."""
    raw = env_str(env, name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(name, reason) from None
    if not lo <= value <= hi:
        raise ConfigError(name, reason)
    return value


def env_list(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    """Comma-separated names, surrounding spaces ignored, empty entries dropped."""
    raw = env_str(env, name, default) or ""
    items = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    if not items:
        raise ConfigError(name, "must name at least one value")
    return items


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(env, name, default) or default
    if value not in choices:
        raise ConfigError(name, f"must be one of {', '.join(choices)}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env_str(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, "must be true or false")


def env_url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env_str(env, name, default) or default).rstrip("/")
    if not _URL.match(value):
        raise ConfigError(name, "must be an http(s) URL")
    return value


def env_arn(
    env: Mapping[str, str], name: str, *, required: bool, kinds: tuple[str, ...]
) -> str | None:
    value = env_required(env, name) if required else env_str(env, name)
    if value is None:
        return None
    match = _ARN.match(value)
    if not match or match.group(1) not in kinds or len(value) > 256:
        raise ConfigError(name, f"must be a Personalize {' or '.join(kinds)} ARN")
    return value


def environ() -> Mapping[str, str]:
    return os.environ


def env_parameter_name(env: Mapping[str, str], name: str) -> str:
    """A required SSM parameter name (or ARN): only the name, never the secret, is in env."""
    value = env_required(env, name)
    if not _PARAMETER_NAME.match(value):
        raise ConfigError(name, "must be an SSM parameter name or ARN")
    return value


@dataclass(frozen=True)
class ProfileApiSettings:
    """Segment Profile API access: present only when both the space and the token are set."""

    space_id: str
    token_parameter: str
    api_url: str
    # This container's share of the space's 100 requests/s; None = unlimited (tests).
    requests_per_second: float | None = None


def env_rate(env: Mapping[str, str], name: str) -> float | None:
    """A positive decimal rate (per second), or None when unset (no limit)."""
    if env_str(env, name) is None:
        return None
    reason = f"must be a number of requests per second, 0.001..{MAX_RATE:g}"
    return _env_number(env, name, 0.0, 0.001, MAX_RATE, float, reason)
