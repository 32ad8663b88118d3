"""Segment Profile API: read selected traits of one user.

GET {base}/spaces/{space}/collections/users/profiles/user_id:{id}/traits?include=a,b
Basic auth with the access token as user and an empty password. A user id is
percent-encoded completely (``+`` as ``%2B``, ``/`` as ``%2F``): Segment answers 500 or
the wrong profile otherwise.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from common.http import ServiceError
from common.ids import id_text
from common.ratelimit import TokenBucket

if TYPE_CHECKING:
    import requests


class ProfileError(ServiceError):
    """The Profile API could not answer. ``kind``: auth, throttled, budget (no turn of this
    container's rate share in time), timeout, rejected (400: no retry fixes it),
    unavailable, bad_response."""


@dataclass
class ProfileClient:
    """One traits read. Every request, a retry after 429 included, first takes a turn from
    ``limiter`` (this container's share of the space's rate budget), and none is sent that
    could not finish by ``deadline``: the session must not retry statuses itself (see
    :func:`common.http.session`; ``status_retries=0``), or retries would bypass the budget.
    A rejected token (401/403) is forgotten (``forget_token``) so that a rotated one is read
    on the next call."""

    session: requests.Session
    base_url: str
    space_id: str
    token: Callable[[], str]
    forget_token: Callable[[], None] = lambda: None
    timeout: tuple[float, float] = (1.0, 2.0)
    limiter: TokenBucket | None = None
    max_throttle_retries: int = 2
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def url(self, user_id: str) -> str:
        return (
            f"{self.base_url}/spaces/{quote(self.space_id, safe='')}/collections/users/"
            f"profiles/user_id:{quote(user_id, safe='')}/traits"
        )

    def traits(
        self,
        user_id: str,
        include: Iterable[str],
        timeout: tuple[float, float] | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """The user's traits among ``include``; an unknown profile has none (404 → {}).

        ``deadline`` (on :attr:`clock`) bounds the wait for a turn and for ``Retry-After``;
        kind ``budget`` when no turn comes in time, ``throttled`` when 429 persists.
        """
        try:
            return self._traits(
                user_id, include, timeout, math.inf if deadline is None else deadline
            )
        except ProfileError as exc:
            if exc.kind == "auth":
                self.forget_token()
            raise

    def _traits(
        self,
        user_id: str,
        include: Iterable[str],
        timeout: tuple[float, float] | None,
        end: float,
    ) -> dict[str, Any]:
        attempt = 0
        while True:
            if self.limiter is not None and self.limiter.acquire(end) is None:
                raise ProfileError("budget", "no Profile API turn before the deadline")
            response = self._get(user_id, include, timeout)
            if response.status_code != 429:
                return self._parse(response, include)
            wait = _retry_after(response.headers.get("Retry-After"), attempt)
            attempt += 1
            if attempt > self.max_throttle_retries or self.clock() + wait >= end:
                raise ProfileError("throttled", "HTTP 429")
            self.sleep(wait)

    def _get(
        self, user_id: str, include: Iterable[str], timeout: tuple[float, float] | None
    ) -> requests.Response:
        import requests

        names = list(dict.fromkeys(include))
        params = {"include": ",".join(names), "limit": str(max(10, len(names)))}
        try:
            return self.session.get(
                self.url(user_id),
                params=params,
                auth=(self.token(), ""),
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as exc:
            kind = "timeout" if _timed_out(exc) else "unavailable"
            raise ProfileError(kind, type(exc).__name__) from exc

    @staticmethod
    def _parse(response: requests.Response, include: Iterable[str]) -> dict[str, Any]:
        status = response.status_code
        if status == 404:
            return {}
        if status in (401, 403):
            raise ProfileError("auth", f"HTTP {status}")
        if status in (400, 422):
            raise ProfileError("rejected", f"HTTP {status}")  # no retry fixes this request
        if status != 200:
            raise ProfileError("unavailable", f"HTTP {status}")
        try:
            body = response.json()
        except ValueError:
            raise ProfileError("bad_response", "body is not JSON") from None
        traits = body.get("traits") if isinstance(body, dict) else None
        if not isinstance(traits, dict):
            raise ProfileError("bad_response", "no traits object")
        return {name: traits[name] for name in dict.fromkeys(include) if name in traits}


def _timed_out(exc: BaseException) -> bool:
    """A read or connect timeout, also when urllib3's retries wrapped it in MaxRetryError
    (requests then raises a plain ConnectionError)."""
    import requests
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, Urllib3Timeout)


def _retry_after(header: str | None, attempt: int) -> float:
    """Seconds to wait after a 429: its ``Retry-After`` (seconds or an HTTP date), else an
    exponential backoff from 0.5 s (Segment's own libraries' schedule)."""
    from urllib3.exceptions import InvalidHeader
    from urllib3.util.retry import Retry

    if header:
        with contextlib.suppress(InvalidHeader):  # unreadable: the backoff instead
            return max(0.0, float(Retry().parse_retry_after(header)))
    return 0.5 * 2.0**attempt


def item_ids(value: Any) -> tuple[set[str], bool]:
    """Normalise a list-valued trait to item id strings.

    Returns (ids, well_formed). A unique-list trait is a JSON array; numbers become their
    decimal strings; anything else (missing, a string, an object) yields no ids and, unless
    missing, ``well_formed=False`` so the caller can count it.
    """
    if value is None:
        return set(), True
    if not isinstance(value, list):
        return set(), False
    ids: set[str] = set()
    ok = True
    for entry in value:
        if isinstance(entry, bool) or not isinstance(entry, str | int | float):
            ok = False
            continue
        text = id_text(entry)
        if text:
            ids.add(text)
    return ids, ok
