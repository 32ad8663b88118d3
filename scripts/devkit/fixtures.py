"""Pytest fixtures of the dev kit, registered with ``pytest_plugins`` in tests/conftest.py.

- ``sample_data``: the generated catalogue, users and interactions (session-wide, read-only).
- ``personalize_emulator``: a started :class:`PersonalizeEmulator` on a free port, trained on
  ``sample_data`` (seed 0); stopped after the test.
- ``personalize_env``: the same emulator, with boto3 pointed at it through the SDK's own
  ``AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME`` / ``..._EVENTS`` variables and dummy credentials.
- ``segment_emulator``: a started :class:`SegmentEmulator` (in-memory SQLite).
- ``moto_url``: moto's server (SSM, SQS, Kinesis...) on a free loopback port, per module.
- ``pool``: a two-worker thread pool for the code under test.

The emulators run with their rate limits off (functional tests outrun any real limit); a test
of the limits turns them on with ``emulator.rate_limits.configure({...})``. A module that
wants one emulator for all its tests uses the plain functions (``trained_personalize``,
``started_segment``) in a fixture of its own scope.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devkit.aws import REGION, UNSET, fake_aws_env, moto_server
from emulators import data
from emulators.personalize import PersonalizeEmulator
from emulators.segment import SegmentEmulator

SAMPLE_SEED = 0


@dataclass(frozen=True)
class SampleData:
    catalogue: list[dict[str, Any]]
    users: list[str]
    interactions: list[tuple[str, str, str, int]]
    interactions_csv: Path


def use_fake_aws(
    monkeypatch: pytest.MonkeyPatch,
    region: str = REGION,
    endpoints: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """:func:`devkit.aws.fake_aws_env` set for one test (undone after it); returns it."""
    env = fake_aws_env(region, endpoints)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    return env


def clear_env(monkeypatch: pytest.MonkeyPatch, *prefixes: str) -> None:
    """Remove, for one test, every environment variable whose name starts with one of
    ``prefixes`` (a whole name is a prefix too): a test starts from no configuration."""
    for name in list(os.environ):
        if name.startswith(prefixes):
            monkeypatch.delenv(name)


@contextlib.contextmanager
def trained_personalize(seed: int = SAMPLE_SEED, **options: Any) -> Iterator[PersonalizeEmulator]:
    """A started Personalize emulator trained on the generated data of ``seed``, its rate
    limits off."""
    catalogue = data.catalogue(seed)
    rows = data.interactions(seed, catalogue, data.users(seed))
    emulator = PersonalizeEmulator(interactions=rows, items=catalogue, seed=seed, **options)
    # Functional tests run faster than any real limit allows; the limits have their own.
    emulator.rate_limits.disable()
    with emulator:
        yield emulator


@contextlib.contextmanager
def started_segment(seed: int = SAMPLE_SEED, **options: Any) -> Iterator[SegmentEmulator]:
    """A started Segment emulator (in-memory SQLite unless ``db_path``), rate limits off; its
    store is closed on exit."""
    emulator = SegmentEmulator(seed=seed, **options)
    emulator.rate_limits.disable()
    try:
        with emulator:
            yield emulator
    finally:
        emulator.store.close()


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> SampleData:
    catalogue = data.catalogue(SAMPLE_SEED)
    users = data.users(SAMPLE_SEED)
    rows = data.interactions(SAMPLE_SEED, catalogue, users)
    csv_path = data.write_interactions_csv(
        tmp_path_factory.mktemp("emulator-data") / "interactions.csv", rows
    )
    return SampleData(catalogue, users, rows, csv_path)


@pytest.fixture
def personalize_emulator(sample_data: SampleData) -> Iterator[PersonalizeEmulator]:
    emulator = PersonalizeEmulator(
        interactions=sample_data.interactions, items=sample_data.catalogue, seed=SAMPLE_SEED
    )
    emulator.rate_limits.disable()
    with emulator:
        yield emulator


@pytest.fixture
def personalize_env(
    personalize_emulator: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> PersonalizeEmulator:
    use_fake_aws(
        monkeypatch,
        personalize_emulator.region,
        {
            "personalize-runtime": personalize_emulator.url,
            "personalize-events": personalize_emulator.url,
        },
    )
    return personalize_emulator


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server on a free loopback port, one per test module (resources are named
    uniquely by the tests, so they never meet)."""
    with moto_server() as url:
        yield url


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """A small thread pool for the code under test (two workers), shut down after the test
    with its queued work cancelled."""
    executor = ThreadPoolExecutor(2)
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def segment_emulator() -> Iterator[SegmentEmulator]:
    with started_segment() as emulator:
        yield emulator
