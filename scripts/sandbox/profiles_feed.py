"""Delivers replayed messages to the Segment emulator's tracking API, as the Segment source
itself would: the profile (and its computed ``purchased_products``) follows the same events
that the Kinesis destination receives."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import requests

MAX_BATCH_BYTES = 400 * 1024  # under Segment's 500 KB per batch request


class ProfilesFeed:
    def __init__(self, tracking_url: str, write_key: str, timeout_s: float = 5.0) -> None:
        self._url = tracking_url.rstrip("/") + "/batch"
        self._session = requests.Session()
        self._session.auth = (write_key, "")
        self._timeout = timeout_s

    def __call__(self, messages: Sequence[dict[str, Any]]) -> None:
        chunk: list[dict[str, Any]] = []
        size = 0
        for message in messages:
            length = len(json.dumps(message, separators=(",", ":")))
            if chunk and size + length > MAX_BATCH_BYTES:
                self._send(chunk)
                chunk, size = [], 0
            chunk.append(message)
            size += length
        if chunk:
            self._send(chunk)

    def _send(self, batch: list[dict[str, Any]]) -> None:
        response = self._session.post(self._url, json={"batch": batch}, timeout=self._timeout)
        response.raise_for_status()

    def close(self) -> None:
        self._session.close()
