"""Shared test helpers: repository paths and loading a function's handler module."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["emulators.pytest_fixtures", "tiers"]

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
FUNCTIONS = ROOT / "functions"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_handler(function: str) -> ModuleType:
    """Import ``functions/<function>/app.py`` under a unique module name.

    Both functions have an ``app`` module (Lambda's handler path is ``app.lambda_handler``),
    so tests never ``import app``; each is loaded from its file instead.
    """
    name = f"{function}_app"
    path = FUNCTIONS / function / "app.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT
