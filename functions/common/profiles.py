"""Segment Profile API: read selected traits of one user.

GET {base}/spaces/{space}/collections/users/profiles/user_id:{id}/traits?include=a,b
Basic auth with the access token as user and an empty password. A user id is
percent-encoded completely (``+`` as ``%2B``, ``/`` as ``%2F``): Segment answers 500 or
the wrong profile otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    import requests


class ProfileError(Exception):
    """The Profile API could not answer. ``kind``: auth, throttled, rejected (400),
    unavailable, bad_response."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class ProfileClient:
    session: requests.Session
    base_url: str
    space_id: str
    token: Callable[[], str]
    timeout: tuple[float, float] = (1.0, 2.0)

    def url(self, user_id: str) -> str:
        return (
            f"{self.base_url}/spaces/{quote(self.space_id, safe='')}/collections/users/"
            f"profiles/user_id:{quote(user_id, safe='')}/traits"
        )

    def traits(
        self, user_id: str, include: Iterable[str], timeout: tuple[float, float] | None = None
    ) -> dict[str, Any]:
        """The user's traits among ``include``; an unknown profile has none (404 → {})."""
        import requests

        names = list(dict.fromkeys(include))
        params = {"include": ",".join(names), "limit": str(max(10, len(names)))}
        try:
            response = self.session.get(
                self.url(user_id),
                params=params,
                auth=(self.token(), ""),
                timeout=timeout or self.timeout,
            )
        except requests.RequestException as exc:
            raise ProfileError("unavailable", type(exc).__name__) from exc
        status = response.status_code
        if status == 404:
            return {}
        if status in (401, 403):
            raise ProfileError("auth", f"HTTP {status}")
        if status == 429:
            raise ProfileError("throttled", "HTTP 429")
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
        return {name: traits[name] for name in names if name in traits}


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
        text = entry if isinstance(entry, str) else _number_text(entry)
        if text:
            ids.add(text)
    return ids, ok


def _number_text(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
