"""From an API Gateway event to a proxy response: parse, recommend, map errors, and leave one
structured log line and one EMF metrics blob per request."""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping
from typing import Any

from common.config import ConfigError
from common.log import hash_id
from common.personalize import PersonalizeError, Recommendations, get_recommendations
from common.recommend import Served, recommend
from reco_api import responses, runtime
from reco_api.deadline import Deadline, OutOfTime
from reco_api.request import BadRequest, Query, method, parse
from reco_api.runtime import Runtime
from reco_api.settings import Settings

# Personalize sends no Retry-After; one second matches its scaling reaction time.
RETRY_AFTER_S = "1"
# The longest a GetRecommendations call can take, with and without its retry.
FULL_CALL_S = runtime.worst_case_s(runtime.PERSONALIZE_POLICY)
SINGLE_ATTEMPT_S = runtime.worst_case_s(runtime.PERSONALIZE_SINGLE_ATTEMPT_POLICY)

_PERSONALIZE_ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_input": (400, "invalid_request", "Personalize rejected the request"),
    "throttled": (429, "throttled", "too many requests, retry later"),
    "bad_response": (502, "bad_gateway", "unexpected answer from Personalize"),
    "unavailable": (503, "unavailable", "Personalize is unavailable, retry later"),
}


def handle(event: Any, context: Any) -> dict[str, Any]:
    return handle_with(runtime.get(), event, context)


def handle_with(rt: Runtime, event: Any, context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    fields: dict[str, Any] = {"api_request_id": _api_request_id(event)}
    rt.logger.bind(request_id=getattr(context, "aws_request_id", None))
    try:
        response = _respond(rt, event, fields, Deadline(context))
    except Exception as exc:  # noqa: BLE001 - last resort: the caller never sees a stack trace
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        fields.update(
            code="internal_error",
            error_type=type(exc).__name__,
            where=f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else None,
        )
        response = responses.error(500, "internal_error", "internal error", _cors(rt, event))
    _account(rt, response["statusCode"], fields, time.perf_counter() - started)
    return response


def _respond(rt: Runtime, event: Any, fields: dict[str, Any], deadline: Deadline) -> dict[str, Any]:
    cors = _cors(rt, event)
    if rt.settings is None:
        return _misconfigured(rt.config_error, fields, cors)
    verb = method(event) if isinstance(event, Mapping) else "GET"
    if verb == "OPTIONS" and rt.settings.cors_origins:
        return responses.preflight(rt.settings.cors_origins, responses.request_origin(event))
    if verb not in ("GET", "HEAD"):
        fields["code"] = "method_not_allowed"
        return responses.error(405, "method_not_allowed", "use GET", {**cors, "Allow": "GET, HEAD"})
    try:
        query = parse(event, rt.settings.num_results)
    except BadRequest as exc:
        fields["code"] = exc.code
        return responses.error(400, exc.code, exc.message, cors)
    fields.update(kind=query.subject[0], num_results=query.num_results)
    if query.user_id is not None:
        fields["user"] = hash_id(query.user_id)
    try:
        served = _recommend(rt, query, deadline)
    except OutOfTime:
        # Answered by us, in time, as JSON: a timed-out function is a bare 502 from the gateway.
        fields.update(code="unavailable", reason="time_budget")
        return responses.error(
            503, "unavailable", "not enough time left to ask Personalize, retry later", cors
        )
    except ConfigError as exc:
        return _misconfigured(exc, fields, cors)
    except PersonalizeError as exc:
        if exc.kind == "misconfigured":
            return _misconfigured(_misconfiguration(rt, exc), fields, cors)
        status, code, message = _PERSONALIZE_ERRORS.get(
            exc.kind, _PERSONALIZE_ERRORS["unavailable"]
        )
        fields.update(code=code, personalize_error=exc.code)
        headers = {**cors, "Retry-After": RETRY_AFTER_S} if status == 429 else cors
        return responses.error(status, code, message, headers)
    fields.update(
        returned=len(served.items),
        exclusion=served.exclusion,
        exclusion_reason=served.reason,
        purchased=served.purchased,
        excluded=served.excluded,
        personalize_calls=served.calls,
        refill_failed=served.refill_failed,
        malformed_trait=served.malformed_trait or None,
    )
    return responses.recommendations(served.items, served.recommendation_id, query.subject, cors)


def _recommend(rt: Runtime, query: Query, deadline: Deadline) -> Served:
    assert rt.settings is not None
    settings = rt.settings
    if not deadline.allows(SINGLE_ATTEMPT_S):
        raise OutOfTime()
    # The Profile API read starts first so that it runs while Personalize answers (and,
    # on a cold start, while the Personalize client is created). It adds at most its
    # budget after Personalize has answered, and is not waited for without the time.
    reader = rt.purchases() if query.user_id is not None else None
    pending = reader.start(query.user_id) if reader is not None and query.user_id else None
    arn = _resource_arn(settings, query)
    profile_wait_s = settings.exclusion.budget_s if settings.exclusion else 0.0

    def fetch(size: int) -> Recommendations:
        # Checked before each call: with a retry if its worst case fits, else one attempt,
        # else none (OutOfTime).
        if deadline.allows(FULL_CALL_S):
            client = rt.personalize()
        elif deadline.allows(SINGLE_ATTEMPT_S):
            client = rt.personalize(single_attempt=True)
        else:
            raise OutOfTime()
        return get_recommendations(
            client,
            arn,
            user_id=query.user_id,
            item_id=query.item_id,
            num_results=size,
            filter_arn=settings.filter_arn,
        )

    headroom = settings.exclusion.headroom if settings.exclusion else 0
    return recommend(fetch, query.num_results, pending, headroom, deadline, profile_wait_s)


def _resource_arn(settings: Settings, query: Query) -> str:
    """Related items come from PERSONALIZE_RELATED_ITEMS_ARN when it is set (CONTRACT §3),
    otherwise from the campaign, as before that setting existed."""
    if query.item_id is not None and settings.related_items_arn is not None:
        return settings.related_items_arn
    return settings.campaign_arn


def _misconfiguration(rt: Runtime, exc: PersonalizeError) -> ConfigError:
    """Name what Personalize refused: its messages quote the ARN they could not use."""
    assert rt.settings is not None
    if exc.code == "UnrecognizedClientException":
        return ConfigError("AWS credentials", "Personalize does not recognise them")
    response = getattr(exc.__cause__, "response", None)
    message = ""
    if isinstance(response, dict):
        message = str(response.get("Error", {}).get("Message", ""))
    filter_arn = rt.settings.filter_arn
    if filter_arn and filter_arn in message:
        return ConfigError("PERSONALIZE_FILTER_ARN", f"Personalize answered {exc.code}")
    related = rt.settings.related_items_arn
    if related and related in message:
        return ConfigError("PERSONALIZE_RELATED_ITEMS_ARN", f"Personalize answered {exc.code}")
    return ConfigError("PERSONALIZE_CAMPAIGN_ARN", f"Personalize answered {exc.code}")


def _misconfigured(
    exc: ConfigError | None, fields: dict[str, Any], cors: dict[str, str]
) -> dict[str, Any]:
    fields.update(
        code="configuration_error",
        setting=exc.name if exc else None,
        reason=exc.reason if exc else None,
    )
    return responses.error(
        500, "configuration_error", "the service is misconfigured; see its logs", cors
    )


def _cors(rt: Runtime, event: Any) -> dict[str, str]:
    if rt.settings is None:
        return {}
    return responses.cors_headers(rt.settings.cors_origins, responses.request_origin(event))


def _api_request_id(event: Any) -> str | None:
    context = event.get("requestContext") if isinstance(event, Mapping) else None
    value = context.get("requestId") if isinstance(context, Mapping) else None
    return value if isinstance(value, str) else None


def _account(rt: Runtime, status: int, fields: dict[str, Any], elapsed_s: float) -> None:
    """One log line and one metrics blob per request: decisions and counts, no ids."""
    latency_ms = round(elapsed_s * 1000, 2)
    code = fields.get("code")
    metrics = rt.metrics
    metrics.add("Requests", 1)
    metrics.add("Latency", latency_ms, "Milliseconds")
    if rt.cold:
        metrics.add("ColdStart", 1)
    if code is not None:
        metrics.add("Errors", 1)
        metrics.add(f"Error_{code}", 1)
    exclusion = fields.get("exclusion")
    if exclusion == "applied":
        metrics.add("ExclusionApplied", 1)
        metrics.add("PurchasedItemsExcluded", fields.get("excluded", 0))
        if fields.get("personalize_calls", 1) > 1:
            metrics.add("Refills", 1)
        if fields.get("refill_failed"):
            metrics.add("RefillFailed", 1)
        if fields.get("malformed_trait"):
            metrics.add("PurchasedTraitMalformed", 1)
    elif exclusion == "unavailable":
        metrics.add("ExclusionUnavailable", 1)
    properties = {"status": status, "exclusion_reason": fields.get("exclusion_reason")}
    properties["request_id"] = rt.logger.context.get("request_id")
    metrics.flush(**{k: v for k, v in properties.items() if v is not None})

    line = {k: v for k, v in fields.items() if v is not None}
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
