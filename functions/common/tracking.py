"""Segment's HTTP Tracking API: ``POST {SEGMENT_API_URL}/batch`` with the source write key.

Basic auth with the write key as user and an empty password. The pooled session
(:mod:`common.http`) retries what the caller's policy says: connection errors, plus 429
(Retry-After) and 5xx for the traits sync; the batch write-back lets 429 through and waits it
out itself within its budget. What still fails is reported to the caller: the traits sync
retries the records through Kinesis, the batch write-back the chunk through SQS.
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

    def __init__(
        self, kind: str, detail: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(kind, detail)
        self.status = status
        # Seconds Segment asked to wait (a 429's Retry-After), when it said.
        self.retry_after = retry_after


@dataclass
class TrackingClient:
    session: requests.Session
    base_url: str
    write_key: Callable[[], str]
    timeout: tuple[float, float] = (1.0, 5.0)

    def send_batch(self, body: bytes) -> None:
        """Send one ready ``{"batch": [...]}`` body. Segment answers 200 even for a wrong
        write key
        (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/#errors):
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
        retry_after = _retry_after(response.headers.get("Retry-After")) if status == 429 else None
        raise TrackingError(kind, f"HTTP {status}" + _message(response), status, retry_after)


def _retry_after(header: str | None) -> float | None:
    """A ``Retry-After`` in seconds (delta or HTTP date), None when absent or unreadable."""
    from urllib3.exceptions import InvalidHeader
    from urllib3.util.retry import Retry

    if not header:
        return None
    try:
        return max(0.0, float(Retry().parse_retry_after(header)))
    except InvalidHeader:
        return None


def _message(response: requests.Response) -> str:
    """Segment's own words for a refusal (``{"success": false, "message": ...}``), if any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    message = body.get("message") if isinstance(body, dict) else None
    return f": {message[:300]}" if isinstance(message, str) and message else ""
