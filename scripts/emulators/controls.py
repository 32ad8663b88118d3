"""Latency and fault injection shared by every emulator, plus the request-log record."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("429", "500", "503", "slow", "reset")


class _Unset:
    """Marks a keyword left out (``None`` is a meaningful value for the scope arguments)."""


_UNSET = _Unset()


@dataclass
class RequestRecord:
    """One request as the emulator saw it; tests assert on these."""

    time: float
    operation: str
    method: str
    path: str
    query: dict[str, str]
    user_id: str | None
    body: Any
    status: int
    fault: str | None
    auth: str | None
    user_ids: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Decision:
    """What to do to one request: wait ``delay_s``, then apply ``fault`` (or answer normally)."""

    delay_s: float
    fault: str | None
    retry_after_s: int


class Controls:
    """Latency (fixed + jitter) and seeded fault injection, changeable while the server runs."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._initial_seed = seed
        self.reset()

    def reset(self) -> None:
        """Back to no latency, no faults, the construction seed."""
        with self._lock:
            self.latency_ms = 0.0
            self.jitter_ms = 0.0
            self.fault_rate: dict[str, float] = dict.fromkeys(FAULT_KINDS, 0.0)
            self.slow_ms = 2000.0
            self.retry_after_s = 1
            self.only_users: set[str] | None = None
            self.operations: set[str] | None = None
            # Personalize batch inference: the share of input lines (or these ids) that get
            # an error line instead of recommendations.
            self.batch_error_rate = 0.0
            self.batch_error_users: set[str] | None = None
            self.batch_job_delay_ms = 0.0  # each job stays IN_PROGRESS this long at least
            self.seed = self._initial_seed
            self._reseed()

    def _reseed(self) -> None:
        # Two generators so that changing the latency does not shift the fault sequence.
        self._fault_rng = random.Random(self.seed)
        self._latency_rng = random.Random(self.seed + 1)

    def set(
        self,
        latency_ms: float | None = None,
        jitter_ms: float | None = None,
        fault_rate: Mapping[str, float] | None = None,
        slow_ms: float | None = None,
        retry_after_s: int | None = None,
        only_users: Iterable[str] | _Unset | None = _UNSET,
        operations: Iterable[str] | _Unset | None = _UNSET,
        seed: int | None = None,
        batch_error_rate: float | None = None,
        batch_error_users: Iterable[str] | _Unset | None = _UNSET,
        batch_job_delay_ms: float | None = None,
    ) -> None:
        """Change some controls; arguments left out keep their value.

        ``fault_rate`` replaces the probabilities of the kinds it names (others keep theirs).
        ``only_users``/``operations``: a set limits faults to requests about those users /
        those operations; an explicit ``None`` lifts the limit; leaving them out keeps it.
        """
        with self._lock:
            if latency_ms is not None:
                self.latency_ms = _non_negative("latency_ms", latency_ms)
            if jitter_ms is not None:
                self.jitter_ms = _non_negative("jitter_ms", jitter_ms)
            if fault_rate is not None:
                for kind, probability in fault_rate.items():
                    if str(kind) not in FAULT_KINDS:
                        raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
                    p = float(probability)
                    if not 0.0 <= p <= 1.0:
                        raise ValueError(f"fault_rate[{kind!r}] must be within 0..1")
                    self.fault_rate[str(kind)] = p
                if sum(self.fault_rate.values()) > 1.0 + 1e-9:
                    raise ValueError("fault probabilities add up to more than 1")
            if slow_ms is not None:
                self.slow_ms = _non_negative("slow_ms", slow_ms)
            if retry_after_s is not None:
                self.retry_after_s = int(retry_after_s)
            if not isinstance(only_users, _Unset):
                self.only_users = _as_set(only_users)
            if not isinstance(operations, _Unset):
                self.operations = _as_set(operations)
            if batch_error_rate is not None:
                rate = float(batch_error_rate)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("batch_error_rate must be within 0..1")
                self.batch_error_rate = rate
            if not isinstance(batch_error_users, _Unset):
                self.batch_error_users = _as_set(batch_error_users)
            if batch_job_delay_ms is not None:
                self.batch_job_delay_ms = _non_negative("batch_job_delay_ms", batch_job_delay_ms)
            if seed is not None:
                self.seed = int(seed)
                self._reseed()

    def batch_error_settings(self) -> tuple[int, float, frozenset[str] | None]:
        """(seed, rate, ids) for the batch error lines, read once per input line."""
        with self._lock:
            users = self.batch_error_users
            return self.seed, self.batch_error_rate, None if users is None else frozenset(users)

    def clear_scope(self) -> None:
        """Faults apply to every user and operation again."""
        with self._lock:
            self.only_users = None
            self.operations = None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "latency_ms": self.latency_ms,
                "jitter_ms": self.jitter_ms,
                "fault_rate": dict(self.fault_rate),
                "slow_ms": self.slow_ms,
                "retry_after_s": self.retry_after_s,
                "only_users": sorted(self.only_users) if self.only_users is not None else None,
                "operations": sorted(self.operations) if self.operations is not None else None,
                "seed": self.seed,
                "batch_error_rate": self.batch_error_rate,
                "batch_error_users": (
                    sorted(self.batch_error_users) if self.batch_error_users is not None else None
                ),
                "batch_job_delay_ms": self.batch_job_delay_ms,
            }

    def decide(self, operation: str, user_ids: Iterable[str | None]) -> Decision:
        """Draw the latency and the fault (if any) for one request."""
        users = {u for u in user_ids if u is not None}
        with self._lock:
            delay_ms = self.latency_ms
            if self.jitter_ms:
                delay_ms += self._latency_rng.uniform(0.0, self.jitter_ms)
            fault: str | None = None
            in_scope = (self.operations is None or operation in self.operations) and (
                self.only_users is None or bool(users & self.only_users)
            )
            if in_scope and any(self.fault_rate.values()):
                draw = self._fault_rng.random()
                cumulative = 0.0
                for kind in FAULT_KINDS:
                    cumulative += self.fault_rate[kind]
                    if draw < cumulative:
                        fault = kind
                        break
            if fault == "slow":
                delay_ms += self.slow_ms
            return Decision(
                delay_s=delay_ms / 1000.0, fault=fault, retry_after_s=self.retry_after_s
            )


def _as_set(values: Iterable[str] | None) -> set[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return {str(v) for v in values}


def _non_negative(name: str, value: float) -> float:
    number = float(value)
    if number < 0:
        raise ValueError(f"{name} must be >= 0")
    return number
