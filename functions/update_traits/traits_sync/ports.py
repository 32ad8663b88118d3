"""What the traits logic talks to, passed in as one value: the runtime builds the real
clients (:mod:`traits_sync.runtime`), tests pass fakes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from traits_sync.messages import Bad

if TYPE_CHECKING:
    from mypy_boto3_personalize_events import PersonalizeEventsClient
    from mypy_boto3_personalize_runtime import PersonalizeRuntimeClient

    from common.userstate import UserStateStore
    from traits_sync.refreshqueue import Deferred


class ProfileReader(Protocol):
    def traits(
        self, user_id: str, include: Iterable[str], *, deadline: float | None = None
    ) -> dict[str, Any]: ...


class DeadLetters(Protocol):
    def send(self, records: Sequence[Bad]) -> tuple[list[Bad], list[tuple[Bad, str]]]: ...


class BatchSender(Protocol):
    def send_batch(self, body: bytes) -> None: ...


class RefreshSender(Protocol):
    def send(self, deferred: Sequence[Deferred]) -> list[tuple[Deferred, str]]: ...


def _no_secrets() -> None:
    return None


@dataclass(frozen=True)
class Ports:
    personalize_events: PersonalizeEventsClient | None  # None without a tracking id
    personalize_runtime: PersonalizeRuntimeClient
    profiles: ProfileReader | None  # None when the Profile API is not configured
    # Runs the Profile reads beside the units (never the units' own pool: a unit waits for
    # its read, and a read waiting behind units on the same pool would deadlock it); None
    # only without the Profile API.
    profile_reads: Executor | None
    tracking: BatchSender
    dead_letters: DeadLetters
    executor: Executor  # the units' pool
    # Reads the secrets before any write, so a missing one fails early and by name
    # (SecretError); called only when the batch has a user's event to write.
    prefetch_secrets: Callable[[], None] = _no_secrets
    # The user-state store (USER_STATE_TABLE), its batch read's pool (never the units' own:
    # every unit waits for that read), and the refresh queue; None without the store.
    store: UserStateStore | None = None
    store_reads: Executor | None = None
    refresh_queue: RefreshSender | None = None
    # Wall-clock epoch seconds: refresh times are compared across containers.
    wall: Callable[[], float] = time.time
