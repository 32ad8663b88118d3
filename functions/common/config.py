"""Typed, validated reading of environment settings.

Every reader raises :class:`ConfigError` naming the variable, so a handler can answer
with one clear log line instead of a stack trace.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_ARN = re.compile(
    r"^arn:aws[a-zA-Z-]*:personalize:[a-z0-9-]+:\d{12}:(campaign|recommender|filter)/.+$"
)
_URL = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")


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
    raw = env_str(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"must be an integer {lo}..{hi}") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be an integer {lo}..{hi}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env_str(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number {lo}..{hi}") from None
    if not lo <= value <= hi:
        raise ConfigError(name, f"must be a number {lo}..{hi}")
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
