"""One trait of one profile through Segment's Profile API (token from its SSM parameter)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests


class ProfileReader:
    def __init__(self, api_url: str, space_id: str, token: str) -> None:
        self._url = api_url.rstrip("/")
        self._space = space_id
        self._session = requests.Session()
        self._session.auth = (token, "")

    def trait(self, user_id: str, name: str) -> Any:
        """The trait's value, or None while the profile or the trait does not exist."""
        url = (
            f"{self._url}/spaces/{quote(self._space, safe='')}/collections/users/profiles/"
            f"user_id:{quote(user_id, safe='')}/traits"
        )
        response = self._session.get(url, params={"include": name}, timeout=(3, 10))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        traits = response.json().get("traits") or {}
        return traits.get(name)
