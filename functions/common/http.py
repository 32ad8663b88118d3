"""Pooled HTTP sessions with urllib3's Retry (backoff, Retry-After honoured and capped)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

RETRY_STATUSES = (408, 429, 500, 502, 503, 504)


class ServiceError(Exception):
    """An HTTP API could not answer: ``kind`` for the caller's decision (each subclass
    names its kinds), ``detail`` for the log (never a body that may quote data)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class HttpPolicy:
    connect_timeout: float = 1.0
    read_timeout: float = 3.0
    retries: int = 2
    # Retries of answered requests (timeouts after sending, retryable statuses); None =
    # ``retries``. 0 for a rate-budgeted API: every request it sends must take a turn.
    status_retries: int | None = None
    backoff_factor: float = 0.1
    # Segment may ask for long waits; inside a Lambda we would rather report the records
    # for a later retry than sleep through the time budget.
    max_retry_after: float = 2.0
    pool_maxsize: int = 16

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


def session(policy: HttpPolicy) -> requests.Session:
    import requests  # first use, not import time
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    cap = policy.max_retry_after

    class CappedRetry(Retry):
        def get_retry_after(self, response: Any) -> float | None:
            value = super().get_retry_after(response)
            return None if value is None else min(value, cap)

    answered = policy.retries if policy.status_retries is None else policy.status_retries
    retry = CappedRetry(
        total=policy.retries,
        connect=policy.retries,
        read=answered,
        status=answered,
        backoff_factor=policy.backoff_factor,
        backoff_jitter=policy.backoff_factor / 2,
        status_forcelist=RETRY_STATUSES,
        # POST /batch is safe to repeat: every message carries a deterministic messageId.
        allowed_methods=frozenset({"GET", "POST"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    s = requests.Session()
    adapter = HTTPAdapter(
        max_retries=retry, pool_connections=4, pool_maxsize=policy.pool_maxsize, pool_block=False
    )
    s.mount("https://", adapter)
    s.mount("http://", adapter)
    s.headers["User-Agent"] = "segment-personalize-activation/0.1"
    return s
