"""From an API Gateway event to a proxy response: read the event once (:mod:`reco_api.edge`),
find its route in :data:`ROUTES` (methods, parser, action), parse, recommend, map errors, and
leave one structured log line and one EMF metrics blob per request (:mod:`reco_api.outcome`).

``app.lambda_handler`` calls :func:`handle_with` with the container's runtime; tests pass a
``Runtime`` holding fakes."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from common import settings as shared
from common.config import ConfigError
from common.personalize import (
    PersonalizeError,
    Recommendations,
    get_recommendations,
    promoted_share,
)
from common.recommend import Served, recommend
from reco_api import caching, capabilities, edge, rankings, responses, runtime
from reco_api.deadline import Deadline, OutOfTime
from reco_api.edge import Request
from reco_api.options import (
    GetRequest,
    NotConfigured,
    parse_recommendations,
    parse_related_items,
    related_arn,
)
from reco_api.outcome import Outcome, account
from reco_api.request import BadRequest, Query
from reco_api.runtime import Runtime

if TYPE_CHECKING:
    from mypy_boto3_personalize_runtime import PersonalizeRuntimeClient

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


def handle_with(rt: Runtime, event: Any, context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    request = edge.read(event, context)
    outcome = Outcome(api_request_id=request.api_request_id)
    rt.logger.bind(request_id=request.lambda_request_id)
    try:
        response = _respond(rt, request, outcome, Deadline(context))
    except Exception as exc:  # noqa: BLE001 - last resort: the caller never sees a stack trace
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        outcome.code = "internal_error"
        outcome.error_type = type(exc).__name__
        outcome.where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}" if frame else None
        response = responses.error(500, "internal_error", "internal error", _cors(rt, request))
    account(rt, response["statusCode"], outcome, time.perf_counter() - started)
    return response


P = TypeVar("P")


class Exchange:
    """What every route's action gets besides its parsed input. (Plain classes here and in
    :class:`Route`: a dataclass costs about 0.5 ms of cold start each.)"""

    __slots__ = ("cors", "deadline", "outcome", "request", "rt")

    def __init__(
        self,
        rt: Runtime,
        request: Request,
        outcome: Outcome,
        cors: dict[str, str],
        deadline: Deadline,
    ) -> None:
        self.rt = rt
        self.request = request
        self.outcome = outcome
        self.cors = cors
        self.deadline = deadline


class Route(Generic[P]):
    """One route: the methods it answers, the parser of its input (raising BadRequest or
    NotConfigured) and the action that serves the parsed input."""

    __slots__ = ("action", "methods", "parse")

    def __init__(
        self,
        methods: tuple[str, ...],
        parse: Callable[[Request, Settings], P],
        action: Callable[[Exchange, P], dict[str, Any]],
    ) -> None:
        self.methods = methods
        self.parse = parse
        self.action = action


def _respond(rt: Runtime, request: Request, outcome: Outcome, deadline: Deadline) -> dict[str, Any]:
    cors = _cors(rt, request)
    if rt.settings is None:
        return _misconfigured(rt.config_error, outcome, cors)
    if request.method == "OPTIONS" and rt.settings.cors_origins:
        return responses.preflight(rt.settings.cors_origins, request.headers.get("origin"))
    route: Route[Any] = ROUTES[request.route]
    if request.method not in route.methods:
        outcome.code = "method_not_allowed"
        return responses.error(
            405,
            "method_not_allowed",
            f"use {route.methods[0]}",
            {**cors, "Allow": ", ".join(route.methods)},
        )
    try:
        parsed = route.parse(request, rt.settings)
    except BadRequest as exc:
        outcome.code = exc.code
        return responses.error(400, exc.code, exc.message, cors)
    except NotConfigured as exc:
        return _not_configured(exc, outcome, cors)
    return route.action(Exchange(rt, request, outcome, cors, deadline), parsed)


def _get(exchange: Exchange, request: GetRequest) -> dict[str, Any]:
    """``GET /recommendations`` and ``GET /related-items``."""
    rt, outcome, cors = exchange.rt, exchange.outcome, exchange.cors
    query = request.query
    outcome.kind = "itemId" if request.related else "userId"  # as before v2
    outcome.num_results = query.num_results
    outcome.filter = request.filter_name
    outcome.metadata = request.include_metadata or None
    outcome.subject = query.user_id
    served = _serve(rt, lambda: _recommend(rt, query, exchange.deadline, request), outcome, cors)
    if not isinstance(served, Served):
        return served
    body = responses.payload(
        served.items, served.recommendation_id, request.echo, request.include_metadata
    )
    return _ok(rt, body, cors, if_none_match=exchange.request.headers.get("if-none-match"))


def _rank(exchange: Exchange, request: rankings.RankingRequest) -> dict[str, Any]:
    """``POST /rankings``."""
    rt, outcome, cors, deadline = exchange.rt, exchange.outcome, exchange.cors, exchange.deadline
    outcome.kind = "ranking"
    outcome.num_results = len(request.item_ids)
    outcome.subject = request.user_id
    served = _serve(
        rt, lambda: rankings.serve(rt, request, lambda: _client(rt, deadline)), outcome, cors
    )
    if not isinstance(served, Served):
        return served
    echo = {"userId": request.user_id}
    body = responses.payload(served.items, served.recommendation_id, echo, request.include_metadata)
    return _ok(rt, body, cors, if_none_match=None, conditional=False)


ROUTES: dict[str, Route[Any]] = {
    edge.RECOMMENDATIONS: Route(("GET", "HEAD"), parse_recommendations, _get),
    edge.RELATED_ITEMS: Route(("GET", "HEAD"), parse_related_items, _get),
    edge.RANKINGS: Route(("POST",), rankings.parse, _rank),
}


def _ok(
    rt: Runtime,
    body: dict[str, Any],
    cors: dict[str, str],
    *,
    if_none_match: str | None,
    conditional: bool = True,
) -> dict[str, Any]:
    """200 with an ETag over the content, or 304 when the caller already has it (GET)."""
    assert rt.settings is not None
    max_age = rt.settings.capabilities.cache_max_age_s if conditional else 0
    tag = caching.etag({k: v for k, v in body.items() if k != "recommendationId"})
    headers = {**cors, "ETag": tag, "Cache-Control": caching.cache_control(max_age)}
    if conditional and caching.matches(if_none_match, tag):
        return caching.not_modified(tag, headers)
    return responses.json_response(200, body, headers)


def _serve(
    rt: Runtime, work: Callable[[], Served], outcome: Outcome, cors: dict[str, str]
) -> Served | dict[str, Any]:
    """The request's Personalize work, or the error response its failure maps to."""
    try:
        served = work()
    except OutOfTime:
        return _out_of_time(outcome, cors)
    except NotConfigured as exc:
        return _not_configured(exc, outcome, cors)
    except ConfigError as exc:
        return _misconfigured(exc, outcome, cors)
    except PersonalizeError as exc:
        return _personalize_failed(rt, exc, outcome, cors)
    outcome.served(served)
    return served


def _personalize_failed(
    rt: Runtime, exc: PersonalizeError, outcome: Outcome, cors: dict[str, str]
) -> dict[str, Any]:
    if exc.kind == "misconfigured":
        return _misconfigured(_misconfiguration(rt, exc), outcome, cors)
    status, code, message = _PERSONALIZE_ERRORS.get(exc.kind, _PERSONALIZE_ERRORS["unavailable"])
    outcome.code = code
    outcome.personalize_error = exc.code
    headers = {**cors, "Retry-After": RETRY_AFTER_S} if status == 429 else cors
    return responses.error(status, code, message, headers)


def _out_of_time(outcome: Outcome, cors: dict[str, str]) -> dict[str, Any]:
    # Answered by us, in time, as JSON: a timed-out function is a bare 502 from the gateway.
    outcome.code = "unavailable"
    outcome.reason = "time_budget"
    return responses.error(
        503, "unavailable", "not enough time left to ask Personalize, retry later", cors
    )


def _client(rt: Runtime, deadline: Deadline) -> PersonalizeRuntimeClient:
    """The Personalize client for the next call: with its retry if its worst case fits the
    time left, else one attempt, else none (OutOfTime)."""
    if deadline.allows(FULL_CALL_S):
        return rt.personalize()
    if deadline.allows(SINGLE_ATTEMPT_S):
        return rt.personalize(single_attempt=True)
    raise OutOfTime()


def _recommend(
    rt: Runtime, query: Query, deadline: Deadline, request: GetRequest | None = None
) -> Served:
    assert rt.settings is not None
    settings = rt.settings
    if not deadline.allows(SINGLE_ATTEMPT_S):
        raise OutOfTime()
    related = request.related if request is not None else query.user_id is None
    # Resolved before any call: an unconfigured capability never starts a Profile API read.
    arn = related_arn(settings.capabilities) if related else settings.campaign_arn
    extras = request.extras if request is not None else None
    # A named filter replaces PERSONALIZE_FILTER_ARN for the request (Personalize takes one).
    filter_arn = None if extras is not None and extras.filter_arn else settings.filter_arn
    # The Profile API read starts first so that it runs while Personalize answers (and,
    # on a cold start, while the Personalize client is created). It adds at most its
    # budget after Personalize has answered, and is not waited for without the time.
    reader = rt.purchases() if query.user_id is not None else None
    pending = reader.start(query.user_id) if reader is not None and query.user_id else None
    profile_wait_s = settings.exclusion.budget_s if settings.exclusion else 0.0

    def fetch(size: int) -> Recommendations:
        return get_recommendations(
            _client(rt, deadline),
            arn,
            user_id=query.user_id,
            item_id=query.item_id,
            num_results=size,
            filter_arn=filter_arn,
            extras=extras,
        )

    headroom = settings.exclusion.headroom if settings.exclusion else 0
    # The promotion's share of what is served, not of the longer list asked for.
    share = sum(
        promoted_share(query.num_results, int(p["percentPromotedItems"]))
        for p in (extras.promotions if extras is not None else ())
    )
    return recommend(
        fetch, query.num_results, pending, headroom, deadline, profile_wait_s, promoted_share=share
    )


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
        return ConfigError(shared.PERSONALIZE_FILTER_ARN.name, f"Personalize answered {exc.code}")
    related = rt.settings.related_items_arn
    if related and related in message:
        return ConfigError("PERSONALIZE_RELATED_ITEMS_ARN", f"Personalize answered {exc.code}")
    caps = rt.settings.capabilities
    if caps.ranking_arn and caps.ranking_arn in message:
        return ConfigError(capabilities.RANKING, f"Personalize answered {exc.code}")
    named = [f.arn for f in (caps.filters or {}).values()]
    named += [str(p.get("filterArn")) for p in caps.promotions]
    if any(arn in message for arn in named):
        return ConfigError("PERSONALIZE_FILTERS", f"Personalize answered {exc.code}")
    return ConfigError(shared.PERSONALIZE_CAMPAIGN_ARN.name, f"Personalize answered {exc.code}")


def _misconfigured(
    exc: ConfigError | None, outcome: Outcome, cors: dict[str, str]
) -> dict[str, Any]:
    outcome.misconfigured(exc)
    return responses.error(
        500, "configuration_error", "the service is misconfigured; see its logs", cors
    )


def _not_configured(exc: NotConfigured, outcome: Outcome, cors: dict[str, str]) -> dict[str, Any]:
    """404, not 5xx: the deployment has no such capability (Terraform does not deploy its
    route); the caller learns which setting would enable it, and no 5xx alarm fires."""
    outcome.code = "not_configured"
    outcome.setting = exc.setting
    return responses.error(
        404,
        "not_configured",
        f"{exc.what} is not configured in this deployment ({exc.setting})",
        cors,
    )


def _cors(rt: Runtime, request: Request) -> dict[str, str]:
    if rt.settings is None:
        return {}
    return responses.cors_headers(rt.settings.cors_origins, request.headers.get("origin"))
