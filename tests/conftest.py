"""Shared test settings: the dev kit's fixtures (scripts/devkit), hypothesis profiles, paths.

Loading a handler, events and contexts: ``devkit.loader``, ``devkit.events``,
``devkit.context``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["devkit.fixtures", "tiers"]

# Deeper property runs: `pytest --hypothesis-profile=long` (hypothesis' pytest plugin loads
# the profile named there; profiles must be registered here, before it does).
LONG_PROFILE = "long"
LONG_EXAMPLES = 2_000
settings.register_profile(
    LONG_PROFILE,
    max_examples=LONG_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# pytest-timeout's 300 s (pyproject) is for `make test`; a long run gets an hour per test.
LONG_TIMEOUT_S = 3_600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.get_current_profile_name() != LONG_PROFILE:
        return
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.timeout(LONG_TIMEOUT_S))


def property_examples(default: int) -> int:
    """Examples per property test: ``default`` within `make test`, the long profile's count
    under ``--hypothesis-profile=long``. (A test's own ``max_examples`` would otherwise win
    over any profile.)"""
    if settings.get_current_profile_name() == LONG_PROFILE:
        return LONG_EXAMPLES
    return default


ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
