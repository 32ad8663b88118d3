"""What one request decided, and its one log line and one EMF metrics blob: decisions and
counts, never ids (a user appears only as its keyed pseudonym, :func:`common.log.hash_id`,
or not at all)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from common.config import ConfigError
from common.recommend import Served

if TYPE_CHECKING:
    from reco_api.runtime import Runtime


@dataclass
class Outcome:
    """Filled in as the request goes; a field left None is not logged."""

    api_request_id: str | None = None
    code: str | None = None  # the error code answered; None = ok
    error_type: str | None = None  # an unexpected exception's type
    where: str | None = None  # and the file:line it came from
    kind: str | None = None  # "userId", "itemId" or "ranking"
    num_results: int | None = None
    filter: str | None = None
    metadata: bool | None = None
    # The user id, for its pseudonym in the line (made when the line is written, so that a
    # key read in the background since the request began is used); never logged itself.
    subject: str | None = field(default=None, repr=False)
    returned: int | None = None
    exclusion: str | None = None  # "off", "applied", "unavailable"
    exclusion_reason: str | None = None
    purchased: int | None = None
    excluded: int | None = None
    personalize_calls: int | None = None
    refill_failed: str | None = None
    malformed_trait: bool | None = None
    personalize_error: str | None = None
    reason: str | None = None
    setting: str | None = None

    def served(self, served: Served) -> None:
        self.returned = len(served.items)
        self.exclusion = served.exclusion
        self.exclusion_reason = served.reason
        self.purchased = served.purchased
        self.excluded = served.excluded
        self.personalize_calls = served.calls
        self.refill_failed = served.refill_failed
        self.malformed_trait = served.malformed_trait or None

    def misconfigured(self, exc: ConfigError | None) -> None:
        self.code = "configuration_error"
        self.setting = exc.name if exc else None
        self.reason = exc.reason if exc else None

    def logged(self) -> dict[str, Any]:
        found = ((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "subject")
        return {name: value for name, value in found if value is not None}


def account(rt: Runtime, status: int, outcome: Outcome, elapsed_s: float) -> None:
    """One log line and one metrics blob per request."""
    latency_ms = round(elapsed_s * 1000, 2)
    code = outcome.code
    metrics = rt.metrics
    metrics.add("Requests", 1)
    metrics.add("Latency", latency_ms, "Milliseconds")
    if rt.cold:
        metrics.add("ColdStart", 1)
    if code is not None:
        metrics.add("Errors", 1)
        metrics.add(f"Error_{code}", 1)
    exclusion = outcome.exclusion
    if exclusion == "applied":
        metrics.add("ExclusionApplied", 1)
        metrics.add("PurchasedItemsExcluded", outcome.excluded or 0)
        if (outcome.personalize_calls or 1) > 1:
            metrics.add("Refills", 1)
        if outcome.refill_failed:
            metrics.add("RefillFailed", 1)
        if outcome.malformed_trait:
            metrics.add("PurchasedTraitMalformed", 1)
    elif exclusion == "unavailable":
        metrics.add("ExclusionUnavailable", 1)
    properties = {
        "status": status,
        "exclusion_reason": outcome.exclusion_reason,
        "request_id": rt.logger.context.get("request_id"),
    }
    metrics.flush(**{k: v for k, v in properties.items() if v is not None})

    line = outcome.logged()
    user = rt.logger.pseudonym(outcome.subject) if outcome.subject is not None else None
    if user is not None:
        line["user"] = user
    line.update(status=status, outcome=code or "ok", latency_ms=latency_ms, cold_start=rt.cold)
    rt.cold = False
    if code == "configuration_error":
        rt.logger.error("configuration error", **line)
    elif status >= 500:
        rt.logger.error("request", **line)
    elif status == 429 or exclusion == "unavailable":
        rt.logger.warning("request", **line)
    else:
        rt.logger.info("request", **line)
