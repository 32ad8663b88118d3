"""Segment's HTTP Tracking API: ``POST {SEGMENT_API_URL}/batch`` with the source write key.

Basic auth with the write key as user and an empty password. Retries (429 with Retry-After,
5xx, connection errors) happen inside the pooled session (:mod:`common.http`); what still
fails is reported to the caller, which retries the affected records through Kinesis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.http import ServiceError

if TYPE_CHECKING:
    import requests


class TrackingError(ServiceError):
    """kind: unavailable (network, 5xx, 429 after retries) or rejected (another 4xx: the
    request can never succeed as it is)."""


@dataclass
class TrackingClient:
    session: requests.Session
    base_url: str
    write_key: Callable[[], str]
    timeout: tuple[float, float] = (1.0, 5.0)

    def send_batch(self, body: bytes) -> None:
        """Send one ready ``{"batch": [...]}`` body. Segment answers 200 even for a wrong
        write key (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#errors):
        a 200 is all that can be checked."""
        import requests

        try:
            response = self.session.post(
                f"{self.base_url}/batch",
                data=body,
                headers={"Content-Type": "application/json"},
                auth=(self.write_key(), ""),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TrackingError("unavailable", type(exc).__name__) from exc
        status = response.status_code
        if status == 200:
            return
        kind = "rejected" if 400 <= status < 500 and status not in (408, 429) else "unavailable"
        raise TrackingError(kind, f"HTTP {status}" + _message(response))


def _message(response: requests.Response) -> str:
    """Segment's own words for a refusal (``{"success": false, "message": ...}``), if any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message[:300]}" if isinstance(message, str) and message else ""
