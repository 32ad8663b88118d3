"""Amazon Personalize runtime (GetRecommendations, GetPersonalizedRanking), events
(PutEvents) and the batch-inference part of the control plane (CreateBatchInferenceJob,
DescribeBatchInferenceJob, ListBatchInferenceJobs, DescribeCampaign: see
:mod:`emulators.personalize_batch`) on one local HTTP server, in the shapes botocore sends
and parses.

Point boto3 at it with the SDK's own variables::

    AWS_ENDPOINT_URL_PERSONALIZE_RUNTIME=http://127.0.0.1:PORT
    AWS_ENDPOINT_URL_PERSONALIZE_EVENTS=http://127.0.0.1:PORT
    AWS_ENDPOINT_URL_PERSONALIZE=http://127.0.0.1:PORT        (control plane)

Errors carry the ``x-amzn-ErrorType`` header and a ``{"__type", "message"}`` body, which is
what botocore's RestJSONParser reads for Error.Code/Message.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from emulators import data
from emulators.cli import add_control_arguments, apply_control_arguments, serve_until_signal
from emulators.controls import Decision
from emulators.filters import Filter, FilterError, parse
from emulators.personalize_batch import BatchApiError, BatchJobs, deterministic_error
from emulators.ratelimit import Charge, RateLimit, Refusal
from emulators.recommender import Recommender
from emulators.server import INVALID_JSON, EmulatorServer, Request, Response, Routed

MAX_ID = 256
MAX_RESULTS = 500
DEFAULT_RESULTS = 25
MAX_EVENTS = 10
MAX_PROPERTIES = 1024
MAX_RECOMMENDATION_ID = 40
PURCHASE_EVENT = "Order Completed"
# personalize-runtime's botocore model and API reference.
MAX_RESULTS_WITH_METADATA = 50
MAX_METADATA_COLUMNS = 10
MAX_COLUMN_NAME = 150
MAX_IMPRESSION = 25
_CONTEXT_KEY = re.compile(r"[A-Za-z\d_]+")
_FILTER_KEY = re.compile(r"[A-Za-z0-9_]+")
_PROMOTION_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]*")

_OPERATIONS = {
    "/recommendations": "GetRecommendations",
    "/personalize-ranking": "GetPersonalizedRanking",
    "/events": "PutEvents",
}
# HTTP status per error code, as Personalize answers (throttling is a 400 there).
_ERROR_STATUS = {
    "InvalidInputException": 400,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 400,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "UnknownOperationException": 404,
    "SerializationException": 400,
    "ResourceAlreadyExistsException": 400,
    "LimitExceededException": 400,
    "ResourceInUseException": 400,
    "InvalidNextTokenException": 400,
}
# The control plane's JSON 1.1 protocol: POST / with X-Amz-Target AmazonPersonalize.<Op>.
_TARGET_PREFIX = "AmazonPersonalize."
_CONTROL_OPERATIONS = (
    "CreateBatchInferenceJob",
    "DescribeBatchInferenceJob",
    "ListBatchInferenceJobs",
    "DescribeCampaign",
)


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_response(code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    all_headers = {
        "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.personalize/",
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    all_headers.update(headers or {})
    return Response.json(
        _ERROR_STATUS.get(code, 400), {"__type": code, "message": message}, all_headers
    )


class PersonalizeEmulator(EmulatorServer):
    name = "personalize"
    RATE_LIMITS: ClassVar[dict[str, RateLimit]] = {
        # GetRecommendations + GetPersonalizedRanking: 500 TPS per campaign, 2,500 per account.
        "recommendations": RateLimit.per_second(500),
        "recommendations_account": RateLimit.per_second(2500),
        # PutEvents: 1,000 events/s per dataset group (one tracking id per dataset group).
        "put_events": RateLimit.per_second(1000),
    }

    def __init__(
        self,
        interactions: str | Path | Iterable[Sequence[Any]] | None = None,
        items: str | Path | Iterable[Any] | None = None,
        seed: int = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        account: str = "123456789012",
        rate_limits: Mapping[str, Any] | None = None,
        s3_endpoint_url: str | None = None,
    ) -> None:
        super().__init__(seed=seed, host=host, port=port, rate_limits=rate_limits)
        self.region = region
        self.account = account
        prefix = f"arn:aws:personalize:{region}:{account}"
        self.campaign_arn = f"{prefix}:campaign/sandbox-user-personalization"
        self.related_items_campaign_arn = f"{prefix}:campaign/sandbox-related-items"
        self.ranking_campaign_arn = f"{prefix}:campaign/sandbox-personalized-ranking"
        self.recommender_arn = f"{prefix}:recommender/sandbox-recommended-for-you"
        # A "More like X" recommender: related items that also take a userId.
        self.related_items_recommender_arn = f"{prefix}:recommender/sandbox-more-like-x"
        self.tracking_id = _seeded_uuid(f"tracking:{seed}")
        self._seed = seed
        self._rid_rng = random.Random(f"recommendation-id:{seed}")
        self._rid_lock = threading.Lock()
        self._filter_prefix = f"{prefix}:filter/"
        self._resources = {
            self.campaign_arn: "USER_PERSONALIZATION",
            self.related_items_campaign_arn: "RELATED_ITEMS",
            self.ranking_campaign_arn: "PERSONALIZED_RANKING",
            self.recommender_arn: "USER_PERSONALIZATION",
            self.related_items_recommender_arn: "RELATED_ITEMS",
        }
        catalogue_rows, self.item_attributes = _load_items(items, seed)
        rows = _load_interactions(interactions, seed, catalogue_rows)
        self.model = Recommender(seed=seed, catalogue=[str(i) for i in self.item_attributes])
        self.model.fit(rows)
        self.filters: dict[str, Filter] = {}
        self._filters_lock = threading.Lock()
        self.purchase_filter_arn = self.add_filter(
            "sandbox-exclude-purchased",
            f'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("{PURCHASE_EVENT}")',
        )
        # A filter with a value: the sandbox's `filter=category&filterValues.CATEGORIES=...`.
        self.category_filter_arn = self.add_filter(
            "sandbox-by-category", "INCLUDE ItemID WHERE Items.category IN ($CATEGORIES)"
        )
        self._event_ids: set[str] = set()
        self._events_lock = threading.Lock()
        self.events: list[dict[str, Any]] = []  # accepted PutEvents events, for assertions
        # Each campaign serves one solution version; batch inference runs on those.
        self.solution_version_arns = {
            arn: f"{prefix}:solution/{arn.rsplit('/', 1)[-1]}/{_seeded_uuid(arn)[:8]}"
            for arn in (
                self.campaign_arn,
                self.related_items_campaign_arn,
                self.ranking_campaign_arn,
            )
        }
        self.batch = BatchJobs(
            region=region,
            account=account,
            solution_versions={
                version: self._resources[campaign]
                for campaign, version in self.solution_version_arns.items()
            },
            campaigns=self.solution_version_arns,
            filter_exists=self._filter_exists,
            rank=self._batch_rank,
            is_error=self._batch_error,
            s3_endpoint_url=s3_endpoint_url,
            job_delay_s=lambda: self.controls.snapshot()["batch_job_delay_ms"] / 1000.0,
        )

    # -- public helpers ----------------------------------------------------------------------

    def add_filter(self, name: str, expression: str) -> str:
        """Create an ACTIVE filter from a supported expression; returns its ARN."""
        arn = self._filter_prefix + name
        flt = parse(arn, name, expression)
        with self._filters_lock:
            self.filters[arn] = flt
        return arn

    @property
    def catalogue_item_ids(self) -> list[str]:
        return self.model.item_ids

    def accepted_events(self) -> list[dict[str, Any]]:
        with self._events_lock:
            return list(self.events)

    def start(self) -> Self:
        super().start()
        self.batch.start()
        return self

    def stop(self) -> None:
        self.batch.stop()
        super().stop()

    # -- batch inference ---------------------------------------------------------------------

    def _filter_exists(self, arn: str) -> bool:
        with self._filters_lock:
            return arn in self.filters

    def _batch_rank(
        self,
        kind: str,
        subject: str,
        filter_values: Mapping[str, str] | None,
        num_results: int,
        filter_arn: str | None,
    ) -> list[tuple[str, float]]:
        if kind == "USER_PERSONALIZATION":
            user_id: str | None = subject
            ranked = self.model.for_user(subject)
        else:
            user_id = None
            ranked = [r for r in self.model.related(subject) if r[0] != subject]
        if filter_arn:
            try:
                ranked = self._apply_filter(filter_arn, ranked, user_id, filter_values)
            except ApiError as exc:
                raise BatchApiError(exc.code, exc.message) from exc
        return ranked[:num_results]

    def _batch_error(self, subject: str) -> bool:
        seed, rate, users = self.controls.batch_error_settings()
        return deterministic_error(seed, rate, users, subject)

    # -- request flow ------------------------------------------------------------------------

    def route(self, request: Request) -> Routed | Response:
        target = request.headers.get("X-Amz-Target") or ""
        if target.startswith(_TARGET_PREFIX):
            name = target.removeprefix(_TARGET_PREFIX)
            if name not in _CONTROL_OPERATIONS or request.method != "POST":
                return error_response(
                    "UnknownOperationException", f"the emulator does not implement {name}"
                )
            return Routed(operation=name, body=request.json)
        operation = _OPERATIONS.get(request.path.rstrip("/") or "/")
        if operation is None or request.method != "POST":
            return error_response(
                "UnknownOperationException", f"no operation at {request.method} {request.path}"
            )
        body = request.json
        user = body.get("userId") if isinstance(body, dict) else None
        users = (str(user),) if isinstance(user, str | int) else ()
        return Routed(operation=operation, user_ids=users, body=body)

    def fault_response(self, kind: str, decision: Decision) -> Response:
        if kind == "429":
            return error_response(
                "ThrottlingException",
                "Rate exceeded",
                {"Retry-After": str(decision.retry_after_s)},
            )
        if kind == "503":
            return error_response("ServiceUnavailable", "Service is unavailable, try again.")
        return error_response("InternalFailure", "An internal error occurred.")

    def charges(self, request: Request, routed: Routed) -> list[Charge]:
        body = routed.body if isinstance(routed.body, dict) else {}
        if routed.operation in _CONTROL_OPERATIONS:
            return []
        if routed.operation == "PutEvents":
            events = body.get("eventList")
            cost = len(events) if isinstance(events, list) and events else 1
            return [Charge("put_events", str(body.get("trackingId")), float(cost))]
        arn = body.get("campaignArn") or body.get("recommenderArn")
        return [Charge("recommendations", str(arn)), Charge("recommendations_account", "")]

    def throttled_response(self, refusal: Refusal) -> Response:
        return error_response("ThrottlingException", "Rate exceeded")

    def handle(self, request: Request, routed: Routed) -> Response:
        body = routed.body
        if body is INVALID_JSON:
            return error_response("SerializationException", "request body is not valid JSON")
        if body is None:
            body = {}
        if not isinstance(body, dict):
            return error_response("SerializationException", "request body must be a JSON object")
        if routed.operation in _CONTROL_OPERATIONS:
            return self._control_plane(routed.operation, body)
        try:
            if routed.operation == "GetRecommendations":
                payload = self._get_recommendations(body)
            elif routed.operation == "GetPersonalizedRanking":
                payload = self._get_personalized_ranking(body)
            else:
                self._put_events(body)
                return Response(200, b"", {"x-amzn-RequestId": str(uuid.uuid4())})
        except ApiError as exc:
            return error_response(exc.code, exc.message)
        return Response.json(200, payload, {"x-amzn-RequestId": str(uuid.uuid4())})

    def _control_plane(self, operation: str, body: dict[str, Any]) -> Response:
        try:
            if operation == "CreateBatchInferenceJob":
                payload = self.batch.create(body)
            elif operation == "DescribeBatchInferenceJob":
                payload = self.batch.describe(body)
            elif operation == "ListBatchInferenceJobs":
                payload = self.batch.list(body)
            else:
                payload = self.batch.describe_campaign(body)
        except BatchApiError as exc:
            return error_response(exc.code, exc.message)
        return Response(
            200,
            json.dumps(payload).encode(),
            {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": str(uuid.uuid4())},
        )

    # -- GetRecommendations ------------------------------------------------------------------

    def _get_recommendations(self, body: dict[str, Any]) -> dict[str, Any]:
        campaign = _optional_str(body, "campaignArn", MAX_ID)
        recommender = _optional_str(body, "recommenderArn", MAX_ID)
        if campaign and recommender:
            raise ApiError(
                "InvalidInputException",
                "Provide either a campaignArn or a recommenderArn, not both.",
            )
        arn = campaign or recommender
        if not arn:
            raise ApiError(
                "InvalidInputException", "Either campaignArn or recommenderArn is required."
            )
        kind = self._resource(arn)
        if kind == "PERSONALIZED_RANKING":
            raise ApiError(
                "InvalidInputException",
                "GetRecommendations is not supported for PERSONALIZED_RANKING campaigns; "
                "use GetPersonalizedRanking.",
            )
        user_id = _optional_str(body, "userId", MAX_ID)
        item_id = _optional_str(body, "itemId", MAX_ID)
        num_results = body.get("numResults", DEFAULT_RESULTS)
        if isinstance(num_results, bool) or not isinstance(num_results, int):
            raise ApiError("InvalidInputException", "numResults must be an integer.")
        if not 0 <= num_results <= MAX_RESULTS:
            raise ApiError(
                "InvalidInputException",
                f"numResults must be between 0 and {MAX_RESULTS}, got {num_results}.",
            )
        _check_map(body, "context", 150, _CONTEXT_KEY, 150, 1000)
        filter_values = _check_map(body, "filterValues", 25, _FILTER_KEY, 50, 1000)
        promotions = self._promotions(body.get("promotions"))
        columns = _metadata_columns(body.get("metadataColumns"))
        if columns is not None and num_results > MAX_RESULTS_WITH_METADATA:
            raise ApiError(
                "InvalidInputException",
                f"numResults must be at most {MAX_RESULTS_WITH_METADATA} with metadataColumns.",
            )
        if kind == "USER_PERSONALIZATION":
            if not user_id:
                raise ApiError("InvalidInputException", "userId is required for this campaign.")
            ranked = self.model.for_user(user_id)
        else:
            if not item_id:
                raise ApiError("InvalidInputException", "itemId is required for this campaign.")
            ranked = [r for r in self.model.related(item_id) if r[0] != item_id]
        filter_arn = _optional_str(body, "filterArn", MAX_ID)
        if filter_arn:
            ranked = self._apply_filter(filter_arn, ranked, user_id, filter_values)
        top = ranked[:num_results]
        promoted: dict[str, str] = {}
        for promotion, candidates in ((p, self._promoted(p, ranked, user_id)) for p in promotions):
            # The promotion's share of the list (of numResults): its filter's best items in
            # model order, the rest of the list from the others, the promoted ones at random
            # slots: "promoted items are positioned randomly relative to other recommended
            # items, but in sorted order relative to other promoted items"
            # (https://docs.aws.amazon.com/personalize/latest/dg/promoting-items.html).
            # The slots are drawn from the request, so the same request gets the same answer.
            share = num_results * int(promotion["percentPromotedItems"]) // 100
            picked = candidates[:share]  # GetRecommendations takes at most one promotion
            if picked:
                chosen = {item for item, _ in picked}
                rest = [entry for entry in ranked if entry[0] not in chosen]
                rest = rest[: num_results - len(picked)]
                draw = random.Random(
                    f"promotion:{self._seed}:{promotion['name']}:{user_id}:{item_id}:{num_results}"
                )
                slots = set(draw.sample(range(len(rest) + len(picked)), len(picked)))
                queue, others = iter(picked), iter(rest)
                top = [
                    next(queue) if slot in slots else next(others)
                    for slot in range(len(rest) + len(picked))
                ]
                promoted.update({item: str(promotion["name"]) for item, _ in picked})
        items: list[dict[str, Any]] = []
        for item, score in top:
            entry: dict[str, Any] = {"itemId": item, "score": score}
            if item in promoted:
                entry["promotionName"] = promoted[item]
            items.append(entry)
        if columns is not None:
            self._decorate(items, columns)
        return {"itemList": items, "recommendationId": self._recommendation_id()}

    def _promotions(self, value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        if not isinstance(value, list) or len(value) > 1:
            raise ApiError("InvalidInputException", "At most 1 promotion is supported.")
        for promotion in value:
            if not isinstance(promotion, dict):
                raise ApiError("InvalidInputException", "A promotion must be an object.")
            name = promotion.get("name")
            if name is not None and (
                not isinstance(name, str)
                or not 1 <= len(name) <= 63
                or not _PROMOTION_NAME.fullmatch(name)
            ):
                raise ApiError(
                    "InvalidInputException",
                    "1 validation error detected: Value at 'promotions.1.member.name' failed "
                    "to satisfy constraint: Member must satisfy regular expression pattern",
                )
            percent = promotion.get("percentPromotedItems")
            if percent is not None and (
                isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100
            ):
                raise ApiError(
                    "InvalidInputException",
                    "1 validation error detected: Value at "
                    "'promotions.1.member.percentPromotedItems' failed to satisfy constraint: "
                    "Member must have value between 1 and 100",
                )
            arn = _optional_str(promotion, "filterArn", MAX_ID)
            # The model marks no member required; a promotion without a filter has nothing
            # to promote, so the emulator refuses it rather than guess a meaning.
            if not arn or name is None or percent is None:
                raise ApiError(
                    "InvalidInputException",
                    "A promotion needs name, percentPromotedItems and filterArn.",
                )
            _check_map(promotion, "filterValues", 25, _FILTER_KEY, 50, 1000)
            with self._filters_lock:
                if arn not in self.filters:
                    raise ApiError("ResourceNotFoundException", f"Filter {arn} does not exist.")
        return value

    def _promoted(
        self, promotion: dict[str, Any], ranked: list[tuple[str, float]], user_id: str | None
    ) -> list[tuple[str, float]]:
        return self._apply_filter(
            str(promotion["filterArn"]), ranked, user_id, promotion.get("filterValues")
        )

    def _decorate(self, items: list[dict[str, Any]], columns: list[str]) -> None:
        """Metadata keys come back camelCased; categorical values keep their ``A|B`` form."""
        for entry in items:
            attrs = self.item_attributes.get(str(entry["itemId"]), {})
            entry["metadata"] = {
                _camel(c): _metadata_value(attrs[k])
                for c in columns
                for k in attrs
                if k.lower() == c.lower()
            }

    def _get_personalized_ranking(self, body: dict[str, Any]) -> dict[str, Any]:
        arn = _optional_str(body, "campaignArn", MAX_ID)
        if not arn:
            raise ApiError("InvalidInputException", "campaignArn is required.")
        kind = self._resource(arn)
        if kind != "PERSONALIZED_RANKING" and kind != "USER_PERSONALIZATION":
            raise ApiError("InvalidInputException", "This campaign does not support ranking.")
        user_id = _optional_str(body, "userId", MAX_ID)
        if not user_id:
            raise ApiError("InvalidInputException", "userId is required.")
        input_list = body.get("inputList")
        if not isinstance(input_list, list) or not input_list:
            raise ApiError("InvalidInputException", "inputList must hold 1 to 500 item ids.")
        if len(input_list) > MAX_RESULTS:
            raise ApiError("InvalidInputException", "inputList must hold at most 500 item ids.")
        for entry in input_list:
            if not isinstance(entry, str) or len(entry) > MAX_ID:
                raise ApiError("InvalidInputException", "inputList entries must be item ids.")
        filter_values = _check_map(body, "filterValues", 25, _FILTER_KEY, 50, 1000)
        _check_map(body, "context", 150, _CONTEXT_KEY, 150, 1000)
        columns = _metadata_columns(body.get("metadataColumns"))
        if columns is not None and len(input_list) > MAX_RESULTS_WITH_METADATA:
            raise ApiError(
                "InvalidInputException",
                f"inputList must hold at most {MAX_RESULTS_WITH_METADATA} items with "
                "metadataColumns.",
            )
        scores = dict(self.model.for_user(user_id))
        wanted = list(dict.fromkeys(input_list))
        known = [i for i in wanted if i in scores]
        unknown = [i for i in wanted if i not in scores]
        total = sum(scores[i] for i in known) or 1.0
        ranked = sorted(((i, round(scores[i] / total, 7)) for i in known), key=lambda r: -r[1])
        ranked += [(i, 0.0) for i in unknown]  # unknown items go last, as documented
        filter_arn = _optional_str(body, "filterArn", MAX_ID)
        if filter_arn:
            ranked = self._apply_filter(filter_arn, ranked, user_id, filter_values)
        listed: list[dict[str, Any]] = [{"itemId": i, "score": s} for i, s in ranked]
        if columns is not None:
            self._decorate(listed, columns)
        return {"personalizedRanking": listed, "recommendationId": self._recommendation_id()}

    def _resource(self, arn: str) -> str:
        kind = self._resources.get(arn)
        if kind is None:
            if not arn.startswith("arn:"):
                raise ApiError("InvalidInputException", f"Invalid ARN: {arn}")
            raise ApiError("ResourceNotFoundException", f"Resource {arn} does not exist.")
        return kind

    def _apply_filter(
        self,
        arn: str,
        ranked: list[tuple[str, float]],
        user_id: str | None,
        filter_values: Mapping[str, str] | None,
    ) -> list[tuple[str, float]]:
        with self._filters_lock:
            flt = self.filters.get(arn)
        if flt is None:
            raise ApiError("ResourceNotFoundException", f"Filter {arn} does not exist.")
        try:
            return flt.apply(ranked, user_id, self.model, self.item_attributes, filter_values)
        except FilterError as exc:
            raise ApiError("InvalidInputException", str(exc)) from exc

    def _recommendation_id(self) -> str:
        # The n-th answer of a run with a given seed always has the same id.
        with self._rid_lock:
            return f"RID-{uuid.UUID(int=self._rid_rng.getrandbits(128), version=4)}"

    def extra_control(self, request: Request) -> Response:
        if request.path == "/_emulator/resources" and request.method == "GET":
            with self._filters_lock:
                filters = {
                    f.name: {"arn": f.arn, "expression": f.expression}
                    for f in self.filters.values()
                }
            return Response.json(
                200,
                {
                    "campaign_arn": self.campaign_arn,
                    "related_items_campaign_arn": self.related_items_campaign_arn,
                    "ranking_campaign_arn": self.ranking_campaign_arn,
                    "recommender_arn": self.recommender_arn,
                    "related_items_recommender_arn": self.related_items_recommender_arn,
                    "purchase_filter_arn": self.purchase_filter_arn,
                    "category_filter_arn": self.category_filter_arn,
                    "tracking_id": self.tracking_id,
                    "solution_version_arns": self.solution_version_arns,
                    "filters": filters,
                    "items": len(self.catalogue_item_ids),
                },
            )
        if request.path == "/_emulator/batch-jobs" and request.method == "GET":
            return Response.json(200, self.batch.snapshot())
        return super().extra_control(request)

    def stats(self) -> dict[str, Any]:
        stats = super().stats()
        with self._events_lock:
            stats["events"] = len(self.events)
        return stats

    # -- PutEvents ---------------------------------------------------------------------------

    def _put_events(self, body: dict[str, Any]) -> None:
        tracking_id = body.get("trackingId")
        if not isinstance(tracking_id, str) or not tracking_id:
            raise ApiError("InvalidInputException", "trackingId is required.")
        if tracking_id != self.tracking_id:
            raise ApiError(
                "InvalidInputException", f"Could not find an event tracker for {tracking_id}."
            )
        session_id = body.get("sessionId")
        if not isinstance(session_id, str) or not 1 <= len(session_id) <= MAX_ID:
            raise ApiError("InvalidInputException", "sessionId must be 1 to 256 characters.")
        user_id = body.get("userId")
        if user_id is not None and (
            not isinstance(user_id, str) or not 1 <= len(user_id) <= MAX_ID
        ):
            raise ApiError("InvalidInputException", "userId must be 1 to 256 characters.")
        events = body.get("eventList")
        if not isinstance(events, list) or not 1 <= len(events) <= MAX_EVENTS:
            raise ApiError("InvalidInputException", "eventList must hold 1 to 10 events.")
        parsed = [_validate_event(event, index) for index, event in enumerate(events)]
        # Validate everything before applying anything: a 400 leaves the model untouched.
        with self._events_lock:
            for event, item_id in parsed:
                event_id = event.get("eventId") or str(uuid.uuid4())
                if event_id in self._event_ids:
                    self._count("PutEvents:duplicate_event_id")
                    continue
                self._event_ids.add(event_id)
                self.model.add_interaction(user_id, item_id, str(event["eventType"]))
                self.events.append(
                    {
                        "userId": user_id,
                        "sessionId": session_id,
                        "eventId": event_id,
                        "eventType": event["eventType"],
                        "itemId": item_id,
                        "sentAt": event["sentAt"],
                        "properties": event.get("properties"),
                        "recommendationId": event.get("recommendationId"),
                        "impression": event.get("impression"),
                    }
                )


def _seeded_uuid(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _validate_event(event: Any, index: int) -> tuple[dict[str, Any], str | None]:
    where = f"eventList[{index}]"
    if not isinstance(event, dict):
        raise ApiError("InvalidInputException", f"{where} must be an object.")
    event_type = event.get("eventType")
    if not isinstance(event_type, str) or not 1 <= len(event_type) <= MAX_ID:
        raise ApiError("InvalidInputException", f"{where}.eventType is required (1-256 chars).")
    sent_at = event.get("sentAt")
    if (
        isinstance(sent_at, bool)
        or not isinstance(sent_at, int | float)
        or not math.isfinite(sent_at)
    ):
        raise ApiError("InvalidInputException", f"{where}.sentAt is required (epoch seconds).")
    for name in ("eventId", "itemId"):
        value = event.get(name)
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= MAX_ID):
            raise ApiError("InvalidInputException", f"{where}.{name} must be 1 to 256 characters.")
    item_id = event.get("itemId")
    properties = event.get("properties")
    if properties is not None:
        if not isinstance(properties, str) or not 1 <= len(properties) <= MAX_PROPERTIES:
            raise ApiError(
                "InvalidInputException",
                f"{where}.properties must be a JSON string of 1 to {MAX_PROPERTIES} characters.",
            )
        try:
            decoded = json.loads(properties)
        except json.JSONDecodeError as exc:
            raise ApiError(
                "InvalidInputException", f"{where}.properties is not valid JSON."
            ) from exc
        if not isinstance(decoded, dict):
            raise ApiError("InvalidInputException", f"{where}.properties must be a JSON object.")
        # Older integrations (Segment's sample) put the item id inside properties.
        if item_id is None and isinstance(decoded.get("itemId"), str | int):
            item_id = str(decoded["itemId"])
    impression = event.get("impression")
    if impression is not None and (
        not isinstance(impression, list)
        or not 1 <= len(impression) <= MAX_IMPRESSION
        or not all(_is_id(entry) for entry in impression)
    ):
        raise ApiError("InvalidInputException", f"{where}.impression must hold 1 to 25 item ids.")
    recommendation_id = event.get("recommendationId")
    if recommendation_id is not None and (
        not isinstance(recommendation_id, str)
        or not 1 <= len(recommendation_id) <= MAX_RECOMMENDATION_ID
    ):
        raise ApiError(
            "InvalidInputException", f"{where}.recommendationId must be 1 to 40 characters."
        )
    return event, item_id


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_ID


def _optional_str(body: Mapping[str, Any], name: str, max_len: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError("InvalidInputException", f"{name} must be a string.")
    if len(value) > max_len:
        raise ApiError(
            "InvalidInputException",
            f"1 validation error detected: Value at '{name}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {max_len}",
        )
    return value or None


def _check_map(
    body: Mapping[str, Any],
    name: str,
    max_entries: int,
    key_pattern: re.Pattern[str],
    max_key: int,
    max_value: int,
) -> dict[str, str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > max_entries:
        raise ApiError("InvalidInputException", f"{name} must be a map of at most {max_entries}.")
    for key, entry in value.items():
        if not isinstance(key, str) or len(key) > max_key or not key_pattern.fullmatch(key):
            raise ApiError(
                "InvalidInputException",
                f"1 validation error detected: Value at '{name}' failed to satisfy constraint: "
                f"Map keys must satisfy constraint: [Member must have length less than or equal "
                f"to {max_key}, Member must satisfy regular expression pattern: "
                f"{key_pattern.pattern}]",
            )
        if not isinstance(entry, str) or len(entry) > max_value:
            raise ApiError("InvalidInputException", f"{name} has an entry that is too long.")
    return value


def _metadata_columns(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 1:
        raise ApiError("InvalidInputException", "metadataColumns takes one key, ITEMS.")
    columns = value.get("ITEMS")
    if set(value) != {"ITEMS"} or not isinstance(columns, list):
        raise ApiError("InvalidInputException", "metadataColumns takes one key, ITEMS.")
    if len(columns) > MAX_METADATA_COLUMNS:
        raise ApiError(
            "InvalidInputException",
            f"The maximum number of metadata columns is {MAX_METADATA_COLUMNS}.",
        )
    for column in columns:
        if not isinstance(column, str) or not 1 <= len(column) <= MAX_COLUMN_NAME:
            raise ApiError("InvalidInputException", "metadataColumns holds column names.")
    return columns


def _metadata_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "|".join(str(v) for v in value)
    return str(value)


def _camel(column: str) -> str:
    head, *rest = column.lower().split("_")
    return head + "".join(word.capitalize() for word in rest)


def _load_items(
    items: str | Path | Iterable[Any] | None, seed: int
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Catalogue as dicts (``sku``/``item_id``/``ITEM_ID`` key) or bare ids; JSON file path OK.
    Without one, the generated catalogue for ``seed`` is used."""
    if items is None:
        rows: list[Any] = list(data.catalogue(seed))
    elif isinstance(items, str | Path):
        rows = json.loads(Path(items).read_text(encoding="utf-8"))
    else:
        rows = list(items)
    attributes: dict[str, dict[str, Any]] = {}
    dicts: list[dict[str, Any]] = []
    for row in rows:
        if isinstance(row, dict):
            key = next((k for k in ("sku", "item_id", "ITEM_ID", "itemId", "id") if k in row), None)
            if key is None:
                raise ValueError(f"catalogue entry without an item id: {row!r}")
            attributes[str(row[key])] = dict(row)
            dicts.append(row)
        else:
            attributes[str(row)] = {}
    return dicts, attributes


def _load_interactions(
    interactions: str | Path | Iterable[Sequence[Any]] | None,
    seed: int,
    catalogue: list[dict[str, Any]],
) -> list[Sequence[Any]]:
    if interactions is None:
        products = catalogue or data.catalogue(seed)
        return list(data.interactions(seed, products, data.users(seed)))
    if isinstance(interactions, str | Path):
        return list(data.read_interactions_csv(interactions))
    return list(interactions)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.personalize",
        description=(
            "Local Amazon Personalize runtime + events emulator (GetRecommendations, "
            "GetPersonalizedRanking, PutEvents; batch inference jobs and DescribeCampaign). "
            "Prints 'ready <url>' when listening; stops "
            "on SIGTERM/SIGINT. Control at runtime: POST /_emulator/controls, "
            "GET /_emulator/stats, POST /_emulator/reset, GET /_emulator/resources."
        ),
    )
    parser.add_argument(
        "--interactions",
        type=Path,
        help="interactions CSV (USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP); default: generated",
    )
    parser.add_argument("--items", type=Path, help="catalogue JSON (list of {sku, ...})")
    parser.add_argument("--region", default="us-east-1", help="region in the ARNs")
    parser.add_argument("--account", default="123456789012", help="account id in the ARNs")
    parser.add_argument(
        "--s3-endpoint-url",
        default=None,
        help="S3 endpoint batch inference jobs read and write (e.g. moto's server); default: "
        "the SDK's AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL",
    )
    parser.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="NAME=EXPRESSION",
        help="extra filter (repeatable), e.g. "
        "'no-views=EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN (\"Product Viewed\")'",
    )
    add_control_arguments(parser, PersonalizeEmulator.RATE_LIMITS)
    args = parser.parse_args(argv)
    emulator = PersonalizeEmulator(
        interactions=args.interactions,
        items=args.items,
        seed=args.seed,
        host=args.host,
        port=args.port,
        region=args.region,
        account=args.account,
        s3_endpoint_url=args.s3_endpoint_url,
    )
    for spec in args.filter:
        name, _, expression = spec.partition("=")
        emulator.add_filter(name.strip(), expression.strip())
    apply_control_arguments(emulator, args)

    def details() -> dict[str, Any]:
        return {
            "campaign_arn": emulator.campaign_arn,
            "related_items_campaign_arn": emulator.related_items_campaign_arn,
            "recommender_arn": emulator.recommender_arn,
            "related_items_recommender_arn": emulator.related_items_recommender_arn,
            "ranking_campaign_arn": emulator.ranking_campaign_arn,
            "purchase_filter_arn": emulator.purchase_filter_arn,
            "tracking_id": emulator.tracking_id,
        }

    return serve_until_signal(emulator, details)


if __name__ == "__main__":
    raise SystemExit(main())
