"""Pytest fixtures for the emulators, registered with ``pytest_plugins`` in tests/conftest.py
(or imported explicitly by a test module).

- ``personalize_emulator``: a started :class:`PersonalizeEmulator` on a free port, trained on
  the generated sample data (seed 0); stopped after the test.
- ``personalize_env``: the same emulator, with boto3 pointed at it through the SDK's own
  ``AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME`` / ``..._EVENTS`` variables and dummy credentials.
- ``segment_emulator``: a started :class:`SegmentEmulator` (in-memory SQLite).

Both with their rate limits off (functional tests outrun any real limit); a test of the
limits turns them on with ``emulator.rate_limits.configure({...})``.
- ``sample_data``: the generated catalogue, users and interactions (session-wide, read-only).
- ``moto_url``: moto's server (SSM, SQS, Kinesis...) on a free loopback port, per module.

And two helpers for tests that run an emulator as a process (``python -m emulators.x``):
``stdout_lines`` and ``wait_ready``.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

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
    # Functional tests run faster than any real limit allows; the limits have their own.
    emulator.rate_limits.disable()
    with emulator:
        yield emulator


@pytest.fixture
def personalize_env(
    personalize_emulator: PersonalizeEmulator, monkeypatch: pytest.MonkeyPatch
) -> PersonalizeEmulator:
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME", personalize_emulator.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_PERSONALIZE_EVENTS", personalize_emulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", personalize_emulator.region)
    monkeypatch.setenv("AWS_REGION", personalize_emulator.region)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # No developer config may leak in (a profile's endpoint_url or credentials).
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    return personalize_emulator


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server on a free loopback port, one per test module (resources are named
    uniquely by the tests, so they never meet)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    _, port = server.get_host_and_port()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def segment_emulator() -> Iterator[SegmentEmulator]:
    with SegmentEmulator(seed=SAMPLE_SEED) as emulator:
        emulator.rate_limits.disable()
        yield emulator


def stdout_lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's stdout lines, read by a thread so that waits can have a deadline."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def wait_ready(lines: queue.Queue[str]) -> str:
    """The URL from the "ready <url>" line; fails with the output if it never comes."""
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if line.startswith("ready http://127.0.0.1:"):
            return line.split()[1]
        seen.append(line)
        if line == "":
            break
    raise AssertionError("emulator did not get ready:\n" + "".join(seen))
