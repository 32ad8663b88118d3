"""Scratch (not committed): a batch of new users whose seeds get no Profile API turn."""

from __future__ import annotations

import time
from typing import Any

from common.profiles import ProfileError
from tests_store import World, track  # noqa: F401 - replaced below

