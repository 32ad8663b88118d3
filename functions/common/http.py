"""Pooled HTTP sessions with urllib3's Retry (backoff; Retry-After honoured up to a cap, a longer
one not retried)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

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
    # for a later retry than sleep through the time budget: a Retry-After longer than this
    # is not retried (the caller gets the 429).
    max_retry_after: float = 2.0
    pool_maxsize: int = 16

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout, self.read_timeout)


def session(policy: HttpPolicy) -> requests.Session:
    import requests  # first use, not import time
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import MaxRetryError, ResponseError
    from urllib3.util.retry import Retry

    cap = policy.max_retry_after

    class CappedRetry(Retry):
        """Retry-After honoured when it fits the cap; a longer one is not retried at all.

        Retrying after the cap instead of the server's time would only be refused again
        (and cost a request of the budget): the caller gets the 429 as it is, and its own
        deadline logic decides (report for a later retry, wait within its budget, ...).
        urllib3 returns the response when ``increment`` gives up (``raise_on_status=False``).
        """

        def increment(
            self,
            method: str | None = None,
            url: str | None = None,
            response: Any = None,
            error: Exception | None = None,
            _pool: Any = None,
            _stacktrace: Any = None,
        ) -> Self:
            if response is not None and self.respect_retry_after_header:
                wait = self.get_retry_after(response)
                if wait is not None and wait > cap:
                    reason = ResponseError(f"Retry-After {wait:g} s is longer than {cap:g} s")
                    raise MaxRetryError(_pool, url or "", reason)
            return super().increment(method, url, response, error, _pool, _stacktrace)

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
