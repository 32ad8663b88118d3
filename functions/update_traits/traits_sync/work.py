"""One unit of work, run on a worker thread: a user's PutEvents, Profile API read and
recommendation, ending in the identify to send (or None when the trait is unchanged);
or an anonymous session's PutEvents alone.

Every call is preceded by a budget checkpoint, so work that started too late stops instead
of writing after its records were already reported for retry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from common.personalize import classify, exclude, fetch_size, get_recommendations
from common.profiles import item_ids
from traits_sync import identify
from traits_sync.budget import Budget
from traits_sync.messages import id_text
from traits_sync.plan import PersonalizeEvent, SessionGroup, UserWork
from traits_sync.settings import Settings
from traits_sync.stats import Stats


class ProfileReader(Protocol):
    def traits(self, user_id: str, include: Iterable[str]) -> dict[str, Any]: ...


class StepFailed(Exception):
    """A call failed after its own retries: the unit's records are reported for retry."""

    def __init__(self, step: str, kind: str) -> None:
        super().__init__(f"{step}:{kind}")
        self.step = step
        self.kind = kind

    @property
    def reason(self) -> str:
        return f"{self.step}:{self.kind}"


@dataclass(frozen=True)
class Services:
    """What a unit of work talks to; tests pass fakes."""

    personalize_events: Any  # boto3 personalize-events client, or None without a tracking id
    personalize_runtime: Any  # boto3 personalize-runtime client
    profiles: ProfileReader | None  # None when the Profile API is not configured


# Kinds of StepFailed that no retry can fix for this record (the service refused its
# content), and kinds that say the deployment itself is wrong.
PERMANENT_KINDS = frozenset({"invalid_input", "rejected"})
CONFIGURATION_KINDS = frozenset({"misconfigured", "auth"})
# Stats counters (not published): evidence that a service accepts this deployment's calls.
PUT_EVENTS_ACCEPTED = "accepted:PutEvents"
_MAX_REASON = 500


def put_events(
    group: SessionGroup, settings: Settings, services: Services, budget: Budget, stats: Stats
) -> None:
    """Send a session's events, ≤10 per call, oldest first.

    A call Personalize refuses as invalid (InvalidInputException: the whole call fails for
    one bad event) is sent again one event per call, so that only the events it refuses are
    set aside, in ``group.rejected`` with its reason; the rest go through.
    """
    if settings.tracking_id is None or services.personalize_events is None:
        return
    for call in group.calls():
        _send_events(call, group, settings, services, budget, stats)


def _send_events(
    call: list[PersonalizeEvent],
    group: SessionGroup,
    settings: Settings,
    services: Services,
    budget: Budget,
    stats: Stats,
) -> None:
    budget.check()
    assert settings.tracking_id is not None
    params: dict[str, Any] = {
        "trackingId": settings.tracking_id,
        "sessionId": group.session_id,
        "eventList": [
            {
                "eventId": event.event_id,
                "eventType": event.event_type,
                "itemId": event.item_id,
                "sentAt": event.sent_at,  # aware UTC datetime; botocore sends epoch
            }
            for event in call
        ],
    }
    if group.user_id is not None:
        params["userId"] = group.user_id
    stats.add("PutEventsCalls")
    try:
        services.personalize_events.put_events(**params)
    except Exception as exc:  # classified: refused for good, or reported for retry
        kind = classify(exc).kind
        if kind != "invalid_input":
            raise StepFailed("PutEvents", kind) from exc
        if len(call) > 1:
            for event in call:
                _send_events([event], group, settings, services, budget, stats)
            return
        if call[0].record is not None:
            reason = f"PutEvents rejected the event: {service_reason(exc)}"
            group.rejected.append((call[0].record, reason))
        return
    stats.add(PUT_EVENTS_ACCEPTED)


def service_reason(exc: BaseException) -> str:
    """What the service said: an AWS error's code and message, or an HTTP client's detail
    (found along the exception's causes); at most 500 characters."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and isinstance(response.get("Error"), dict):
            error = response["Error"]
            text = f"{error.get('Code') or 'Error'}: {error.get('Message') or ''}".rstrip(": ")
            return text[:_MAX_REASON]
        detail = getattr(seen, "detail", None)
        if isinstance(detail, str):
            return detail[:_MAX_REASON]
        seen = seen.__cause__
    return type(exc).__name__


def user_identify(
    work: UserWork, settings: Settings, services: Services, budget: Budget, stats: Stats
) -> identify.Identify | None:
    """The identify for one user, or None when the profile already holds the same list."""
    for group in work.groups.values():
        put_events(group, settings, services, budget, stats)

    excluded = set(work.purchased)
    current: Any = None
    if services.profiles is not None:
        budget.check()
        stats.add("ProfileReads")
        try:
            traits = services.profiles.traits(
                work.user_id, [settings.purchased_trait, settings.recommended_trait]
            )
        except Exception as exc:  # ProfileError, SecretError, ...: retried later
            raise StepFailed("ProfileAPI", getattr(exc, "kind", type(exc).__name__)) from exc
        purchased, well_formed = item_ids(traits.get(settings.purchased_trait))
        if not well_formed:
            stats.add("MalformedPurchasedTrait")
        excluded |= purchased
        current = traits.get(settings.recommended_trait)

    budget.check()
    stats.add("RecommendationCalls")
    try:
        recommendations = get_recommendations(
            services.personalize_runtime,
            settings.campaign_arn,
            user_id=work.user_id,
            num_results=fetch_size(settings.num_results, len(excluded)),
            filter_arn=settings.filter_arn,
        )
    except Exception as exc:  # PersonalizeError already classified
        raise StepFailed("GetRecommendations", getattr(exc, "kind", "unavailable")) from exc
    items = [i.item_id for i in exclude(recommendations.items, excluded, settings.num_results)]

    assert work.latest is not None  # a unit has at least one event
    message = identify.build(
        work.user_id,
        items,
        trait=settings.recommended_trait,
        message_id=identify.message_id(work.user_id, work.message_ids, settings.recommended_trait),
        timestamp=work.latest,
        integrations=settings.integrations,
    )
    if len(message.items) < len(items):
        stats.add("TraitCut")
    if services.profiles is not None and same_list(current, message.items):
        stats.add("Unchanged")
        return None
    return message


def same_list(current: Any, items: list[str]) -> bool:
    """Whether the profile's trait already holds exactly this ranked list."""
    return isinstance(current, list) and [id_text(v) for v in current] == items
