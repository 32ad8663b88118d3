"""One unit of work, run on a worker thread: a user's PutEvents, Profile API read and
recommendation, ending in the identify to send (or None when the trait is unchanged);
or an anonymous session's PutEvents alone.

Every call is preceded by a budget checkpoint, so work that started too late stops instead
of writing after its records were already reported for retry.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.ids import id_text
from common.personalize import Recommendations, classify, get_recommendations
from common.profiles import item_ids
from common.recommend import Known, Pending, Purchases, recommend
from traits_sync import identify
from traits_sync.budget import Budget, OutOfTime
from traits_sync.plan import PersonalizeEvent, SessionGroup, UserWork
from traits_sync.ports import Ports
from traits_sync.settings import Settings
from traits_sync.stats import Stats


class StepFailed(Exception):
    """A call failed after its own retries: the unit's records are reported for retry."""

    def __init__(self, step: str, kind: str) -> None:
        super().__init__(f"{step}:{kind}")
        self.step = step
        self.kind = kind

    @property
    def reason(self) -> str:
        return f"{self.step}:{self.kind}"


# Kinds of StepFailed that no retry can fix for this record (the service refused its
# content), and kinds that say the deployment itself is wrong.
PERMANENT_KINDS = frozenset({"invalid_input", "rejected"})
CONFIGURATION_KINDS = frozenset({"misconfigured", "auth"})
# Stats counters (not published): evidence that a service accepts this deployment's calls.
PUT_EVENTS_ACCEPTED = "accepted:PutEvents"
_MAX_REASON = 500


def put_events(
    group: SessionGroup, settings: Settings, ports: Ports, budget: Budget, stats: Stats
) -> None:
    """Send a session's events, ≤10 per call, oldest first.

    A call Personalize refuses as invalid (InvalidInputException: the whole call fails for
    one bad event) is sent again one event per call, so that only the events it refuses are
    set aside, in ``group.rejected`` with its reason; the rest go through.
    """
    if settings.tracking_id is None or ports.personalize_events is None:
        return
    for call in group.calls():
        _send_events(call, group, settings, ports, budget, stats)


def _send_events(
    call: list[PersonalizeEvent],
    group: SessionGroup,
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
) -> None:
    budget.check()
    events = ports.personalize_events
    assert settings.tracking_id is not None and events is not None
    params: dict[str, Any] = {
        "trackingId": settings.tracking_id,
        "sessionId": group.session_id,
        "eventList": [_event(event) for event in call],
    }
    if group.user_id is not None:
        params["userId"] = group.user_id
    stats.add("PutEventsCalls")
    try:
        events.put_events(**params)
    except Exception as exc:  # classified: refused for good, or reported for retry
        kind = classify(exc).kind
        if kind != "invalid_input":
            raise StepFailed("PutEvents", kind) from exc
        if len(call) > 1:
            for event in call:
                _send_events([event], group, settings, ports, budget, stats)
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


def _event(event: PersonalizeEvent) -> dict[str, Any]:
    out: dict[str, Any] = {
        "eventId": event.event_id,
        "eventType": event.event_type,
        "itemId": event.item_id,
        "sentAt": event.sent_at,  # aware UTC datetime; botocore sends epoch
    }
    if event.recommendation_id is not None:
        out["recommendationId"] = event.recommendation_id
    if event.impression:
        out["impression"] = list(event.impression)
    return out


@dataclass
class ProfileRead:
    """The user's profile traits, read while the unit sends its events and asks Personalize;
    :meth:`wait` gives the purchases to exclude (the trait's and this batch's) or raises
    :class:`StepFailed`, so nothing unfiltered is ever written."""

    future: Future[dict[str, Any]]
    batch_purchases: frozenset[str]
    settings: Settings
    budget: Budget
    stats: Stats
    current: Any = None  # the profile's recommended trait, once read

    def wait(self) -> Purchases:
        try:
            traits = self.future.result(timeout=self.budget.remaining())
        except FutureTimeout:
            self.future.cancel()
            raise OutOfTime() from None
        except OutOfTime:
            raise
        except Exception as exc:  # ProfileError, SecretError, ...: retried later
            raise StepFailed("ProfileAPI", getattr(exc, "kind", type(exc).__name__)) from exc
        purchased, well_formed = item_ids(traits.get(self.settings.purchased_trait))
        if not well_formed:
            self.stats.add("MalformedPurchasedTrait")
        self.current = traits.get(self.settings.recommended_trait)
        return Purchases(self.batch_purchases | purchased, malformed=not well_formed)


def read_profile(
    work: UserWork, settings: Settings, ports: Ports, budget: Budget, stats: Stats
) -> ProfileRead | None:
    """Start the user's Profile API read (None when the Profile API is not configured)."""
    profiles = ports.profiles
    if profiles is None:
        return None
    include = [settings.purchased_trait, settings.recommended_trait]

    def read() -> dict[str, Any]:
        budget.check()
        stats.add("ProfileReads")
        return profiles.traits(work.user_id, include, deadline=budget.deadline)

    assert ports.profile_reads is not None, "the Profile API needs its read pool"
    future = ports.profile_reads.submit(read)
    return ProfileRead(future, frozenset(work.purchased), settings, budget, stats)


def user_identify(
    work: UserWork, settings: Settings, ports: Ports, budget: Budget, stats: Stats
) -> identify.Identify | None:
    """The identify for one user, or None when the profile already holds the same list.

    The Profile read overlaps the user's PutEvents and the first GetRecommendations, which
    asks for headroom beyond N; a second call refills only when more purchases than that
    sat in the page. PutEvents still comes before GetRecommendations, so real-time
    recommendations see this batch's events.
    """
    profile = read_profile(work, settings, ports, budget, stats)
    try:
        for group in work.groups.values():
            put_events(group, settings, ports, budget, stats)
    except BaseException:
        if profile is not None:
            profile.future.cancel()
        raise

    def fetch(count: int) -> Recommendations:
        return fetch_recommendations(work.user_id, count, settings, ports, budget, stats)

    pending: Pending
    if profile is None:
        pending, headroom = Known(Purchases(frozenset(work.purchased))), len(work.purchased)
    else:
        pending, headroom = profile, settings.exclusion_headroom + len(work.purchased)
    try:
        served = recommend(fetch, settings.num_results, pending, headroom)
    except BaseException:
        if profile is not None:
            profile.future.cancel()
        raise
    items = [item.item_id for item in served.items]

    assert work.latest is not None  # a unit has at least one event
    message = trait_identify(work.user_id, work.message_ids, items, work.latest, settings, stats)
    if profile is not None and same_list(profile.current, message.items):
        stats.add("Unchanged")
        return None
    return message


def fetch_recommendations(
    user_id: str, count: int, settings: Settings, ports: Ports, budget: Budget, stats: Stats
) -> Recommendations:
    """One GetRecommendations for the trait, after a budget checkpoint."""
    budget.check()
    stats.add("RecommendationCalls")
    try:
        return get_recommendations(
            ports.personalize_runtime,
            settings.campaign_arn,
            user_id=user_id,
            num_results=count,
            filter_arn=settings.filter_arn,
        )
    except Exception as exc:  # PersonalizeError already classified
        raise StepFailed("GetRecommendations", getattr(exc, "kind", "unavailable")) from exc


def trait_identify(
    user_id: str,
    message_ids: Iterable[str],
    items: list[str],
    timestamp: datetime,
    settings: Settings,
    stats: Stats,
) -> identify.Identify:
    """The identify carrying the list (cut, never dropped, past Segment's 32 KB)."""
    message = identify.build(
        user_id,
        items,
        trait=settings.recommended_trait,
        message_id=identify.message_id(user_id, message_ids, settings.recommended_trait, items),
        timestamp=timestamp,
        integrations=settings.integrations,
    )
    if len(message.items) < len(items):
        stats.add("TraitCut")
    return message


def same_list(current: Any, items: list[str]) -> bool:
    """Whether the profile's trait already holds exactly this ranked list."""
    return isinstance(current, list) and [id_text(v) for v in current] == items
