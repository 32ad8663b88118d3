"""The Personalize emulator spoken to by real boto3 clients, configured only through the SDK's
own endpoint variables, with parameter validation on."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ParamValidationError
from botocore.exceptions import ReadTimeoutError as BotoReadTimeoutError

from devkit.fixtures import SampleData, use_fake_aws
from devkit.processes import emulator_process
from emulators.personalize import PersonalizeEmulator
from emulators.recommender import EVENT_WEIGHTS

REPO = Path(__file__).resolve().parents[2]
NO_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 1})


class Clients:
    def __init__(self, config: Config = NO_RETRY) -> None:
        session = boto3.Session()  # fresh: reads the endpoint variables now
        self.runtime = session.client("personalize-runtime", config=config)
        self.events = session.client("personalize-events", config=config)


@pytest.fixture
def clients(personalize_env: PersonalizeEmulator) -> Clients:
    return Clients()


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response: Any = exc.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def _ids(response: dict[str, Any]) -> list[str]:
    return [item["itemId"] for item in response["itemList"]]


def _put(
    clients: Clients, emu: PersonalizeEmulator, user: str, events: list[dict[str, Any]]
) -> None:
    clients.events.put_events(
        trackingId=emu.tracking_id, userId=user, sessionId=f"session-{user}", eventList=events
    )


def _event(item: str, event_type: str = "Order Completed", **extra: Any) -> dict[str, Any]:
    return {"eventType": event_type, "sentAt": time.time(), "itemId": item, **extra}


# -- wiring -------------------------------------------------------------------------------------


def test_sdk_endpoint_variables_reach_the_emulator(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    assert clients.runtime.meta.endpoint_url == personalize_env.url
    assert clients.events.meta.endpoint_url == personalize_env.url
    clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn, userId="user-0001"
    )
    _put(clients, personalize_env, "user-0001", [_event("SKU-0001", "Product Viewed")])
    operations = [r.operation for r in personalize_env.request_log()]
    assert operations == ["GetRecommendations", "PutEvents"]
    assert personalize_env.counters["GetRecommendations"] == 1
    assert personalize_env.request_log()[0].user_id == "user-0001"


# -- GetRecommendations -------------------------------------------------------------------------


def test_user_recommendations_shape_and_ranking(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    response = clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn, userId="user-0001"
    )
    items = response["itemList"]
    assert len(items) == 25  # Personalize's default numResults
    scores = [item["score"] for item in items]
    assert all(isinstance(s, float) for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > scores[-1] > 0
    assert len(set(_ids(response))) == 25
    assert set(_ids(response)) <= set(personalize_env.catalogue_item_ids)
    assert response["recommendationId"].startswith("RID-")


def test_recommender_arn_serves_users_like_the_campaign(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    via_campaign = clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn, userId="user-0002", numResults=10
    )
    via_recommender = clients.runtime.get_recommendations(
        recommenderArn=personalize_env.recommender_arn, userId="user-0002", numResults=10
    )
    assert _ids(via_campaign) == _ids(via_recommender)


def test_known_users_get_personal_lists_and_unknown_users_get_popularity(
    clients: Clients, personalize_env: PersonalizeEmulator, sample_data: SampleData
) -> None:
    popularity: dict[str, float] = defaultdict(float)
    for _, item, event_type, _ in sample_data.interactions:
        popularity[item] += EVENT_WEIGHTS[event_type]
    most_popular = max(popularity, key=lambda item: popularity[item])

    def top(user: str) -> list[str]:
        return _ids(
            clients.runtime.get_recommendations(
                campaignArn=personalize_env.campaign_arn, userId=user, numResults=10
            )
        )

    cold_a, cold_b = top("never-seen-1"), top("never-seen-2")
    assert cold_a == cold_b
    assert cold_a[0] == most_popular
    warm = [top(user) for user in sample_data.users[:5]]
    assert all(lst != cold_a for lst in warm)
    assert len({tuple(lst) for lst in warm}) == 5


def test_recommendations_follow_the_users_history(
    clients: Clients, personalize_env: PersonalizeEmulator, sample_data: SampleData
) -> None:
    """A user's list is dominated by the categories they interact with most."""
    category = {p["sku"]: p["category"] for p in sample_data.catalogue}
    user = sample_data.users[3]
    history: dict[str, float] = defaultdict(float)
    for who, item, event_type, _ in sample_data.interactions:
        if who == user:
            history[category[item]] += EVENT_WEIGHTS[event_type]
    favourite = max(history, key=lambda c: history[c])
    top = _ids(
        clients.runtime.get_recommendations(
            campaignArn=personalize_env.campaign_arn, userId=user, numResults=10
        )
    )
    assert sum(category[i] == favourite for i in top) >= 4


def test_related_items_exclude_the_item_and_cold_items_get_popularity(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    related = clients.runtime.get_recommendations(
        campaignArn=personalize_env.related_items_campaign_arn, itemId="SKU-0001", numResults=15
    )
    assert "SKU-0001" not in _ids(related)
    assert len(related["itemList"]) == 15
    other = clients.runtime.get_recommendations(
        campaignArn=personalize_env.related_items_campaign_arn, itemId="SKU-0002", numResults=15
    )
    assert _ids(other) != _ids(related)
    cold = clients.runtime.get_recommendations(
        campaignArn=personalize_env.related_items_campaign_arn, itemId="no-such-item"
    )
    popular = clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn, userId="never-seen"
    )
    assert _ids(cold) == _ids(popular)


def test_num_results_bounds(clients: Clients, personalize_env: PersonalizeEmulator) -> None:
    arn = personalize_env.campaign_arn
    everything = clients.runtime.get_recommendations(campaignArn=arn, userId="u", numResults=500)
    assert len(everything["itemList"]) == len(personalize_env.catalogue_item_ids)
    with pytest.raises(ClientError) as exc:
        clients.runtime.get_recommendations(campaignArn=arn, userId="u", numResults=501)
    assert _code(exc) == ("InvalidInputException", 400)
    with pytest.raises(ParamValidationError):  # botocore's own validation is on
        clients.runtime.get_recommendations(campaignArn=arn, userId="u", numResults=-1)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"campaignArn": "{campaign}x", "userId": "u"}, ("ResourceNotFoundException", 404)),
        (
            {"recommenderArn": "arn:aws:personalize:us-east-1:123456789012:recommender/nope"},
            ("ResourceNotFoundException", 404),
        ),
        (
            {"campaignArn": "{campaign}", "recommenderArn": "{recommender}", "userId": "u"},
            ("InvalidInputException", 400),
        ),
        ({"campaignArn": "{campaign}"}, ("InvalidInputException", 400)),
        ({"campaignArn": "{related}", "userId": "u"}, ("InvalidInputException", 400)),
        ({"campaignArn": "{campaign}", "userId": "u" * 257}, ("InvalidInputException", 400)),
        ({"campaignArn": "{related}", "itemId": "i" * 257}, ("InvalidInputException", 400)),
        (
            {"campaignArn": "{campaign}", "userId": "u", "filterArn": "{campaign}-filter"},
            ("ResourceNotFoundException", 404),
        ),
    ],
    ids=[
        "unknown-campaign",
        "unknown-recommender",
        "both-arns",
        "no-user-id",
        "related-without-item",
        "user-id-too-long",
        "item-id-too-long",
        "unknown-filter",
    ],
)
def test_get_recommendations_errors(
    clients: Clients,
    personalize_env: PersonalizeEmulator,
    kwargs: dict[str, Any],
    expected: tuple[str, int],
) -> None:
    names = {
        "campaign": personalize_env.campaign_arn,
        "recommender": personalize_env.recommender_arn,
        "related": personalize_env.related_items_campaign_arn,
    }
    call = {k: v.format(**names) for k, v in kwargs.items()}
    with pytest.raises(ClientError) as exc:
        clients.runtime.get_recommendations(**call)
    assert _code(exc) == expected
    assert exc.value.response["Error"]["Message"]


def test_error_wire_format(personalize_env: PersonalizeEmulator) -> None:
    """The header and body botocore's RestJSONParser reads for Code and Message."""
    response = requests.post(
        f"{personalize_env.url}/recommendations",
        json={"campaignArn": personalize_env.campaign_arn + "-missing", "userId": "u"},
        timeout=5,
    )
    assert response.status_code == 404
    assert response.headers["x-amzn-ErrorType"].split(":")[0] == "ResourceNotFoundException"
    body = response.json()
    assert body["__type"] == "ResourceNotFoundException"
    assert body["message"]


def test_personalized_ranking_puts_unknown_items_last(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    ranking_arn = personalize_env.ranking_campaign_arn
    user_top = _ids(
        clients.runtime.get_recommendations(
            campaignArn=personalize_env.campaign_arn, userId="user-0005", numResults=50
        )
    )
    candidates = [user_top[40], "unknown-item", user_top[2], user_top[20]]
    response = clients.runtime.get_personalized_ranking(
        campaignArn=ranking_arn, userId="user-0005", inputList=candidates
    )
    ranked = [item["itemId"] for item in response["personalizedRanking"]]
    assert ranked == [user_top[2], user_top[20], user_top[40], "unknown-item"]
    with pytest.raises(ClientError) as exc:
        clients.runtime.get_recommendations(campaignArn=ranking_arn, userId="user-0005")
    assert _code(exc) == ("InvalidInputException", 400)


# -- filters ------------------------------------------------------------------------------------


def test_purchase_filter_removes_history_purchases_and_refills(
    clients: Clients, personalize_env: PersonalizeEmulator, sample_data: SampleData
) -> None:
    purchases: dict[str, set[str]] = defaultdict(set)
    for user, item, event_type, _ in sample_data.interactions:
        if event_type == "Order Completed":
            purchases[user].add(item)
    user = max(purchases, key=lambda u: len(purchases[u]))
    unfiltered = _ids(
        clients.runtime.get_recommendations(
            campaignArn=personalize_env.campaign_arn, userId=user, numResults=40
        )
    )
    assert purchases[user] & set(unfiltered), "the emulator does not exclude by default"
    filtered = _ids(
        clients.runtime.get_recommendations(
            campaignArn=personalize_env.campaign_arn,
            userId=user,
            numResults=40,
            filterArn=personalize_env.purchase_filter_arn,
        )
    )
    assert len(filtered) == 40
    assert not purchases[user] & set(filtered)
    kept = [i for i in unfiltered if i not in purchases[user]]
    assert filtered[: len(kept)] == kept  # ranking kept, list refilled after


def test_purchase_filter_sees_real_time_events(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    user = "user-0010"

    def top(**extra: Any) -> list[str]:
        return _ids(
            clients.runtime.get_recommendations(
                campaignArn=personalize_env.campaign_arn, userId=user, numResults=10, **extra
            )
        )

    bought = top(filterArn=personalize_env.purchase_filter_arn)[0]
    _put(clients, personalize_env, user, [_event(bought, eventId="order-1")])
    assert bought not in top(filterArn=personalize_env.purchase_filter_arn)
    assert bought in top()  # without the filter a purchased item may still come back


def test_added_filter_with_item_metadata_and_parameters(
    clients: Clients, personalize_env: PersonalizeEmulator, sample_data: SampleData
) -> None:
    category = {p["sku"]: p["category"] for p in sample_data.catalogue}
    arn = personalize_env.add_filter(
        "not-category", "EXCLUDE ItemID WHERE Items.CATEGORY IN ($CATEGORIES)"
    )
    response = clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn,
        userId="user-0001",
        numResults=30,
        filterArn=arn,
        filterValues={"CATEGORIES": '"Books","Toys"'},
    )
    assert len(response["itemList"]) == 30
    assert not {category[i] for i in _ids(response)} & {"Books", "Toys"}
    # An EXCLUDE parameter left out: that clause is ignored (documented behaviour).
    unfiltered = clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn, userId="user-0001", numResults=30, filterArn=arn
    )
    plain = clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn, userId="user-0001", numResults=30
    )
    assert _ids(unfiltered) == _ids(plain)


# -- PutEvents ----------------------------------------------------------------------------------


def test_new_interactions_change_a_users_recommendations(
    clients: Clients, personalize_env: PersonalizeEmulator, sample_data: SampleData
) -> None:
    category = {p["sku"]: p["category"] for p in sample_data.catalogue}
    user = "user-0020"

    def top() -> list[str]:
        return _ids(
            clients.runtime.get_recommendations(
                campaignArn=personalize_env.campaign_arn, userId=user, numResults=10
            )
        )

    before = top()
    seen = {item for who, item, _, _ in sample_data.interactions if who == user}
    seen_categories = {category[i] for i in seen}
    target = next(c for c in sorted(set(category.values())) if c not in seen_categories)
    new_items = [s for s in sorted(category) if category[s] == target][:4]
    events = [_event(item, "Order Completed", eventId=f"rt-{item}") for item in new_items]
    _put(clients, personalize_env, user, events)
    after = top()
    assert after != before
    in_target = sum(category[i] == target for i in after)
    assert in_target > sum(category[i] == target for i in before)
    assert in_target >= 3


def test_events_give_an_unknown_user_personal_recommendations(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    def top(user: str) -> list[str]:
        return _ids(
            clients.runtime.get_recommendations(
                campaignArn=personalize_env.campaign_arn, userId=user, numResults=10
            )
        )

    popular = top("brand-new-user")
    _put(clients, personalize_env, "brand-new-user", [_event("SKU-0007", "Product Added")])
    assert top("brand-new-user") != popular
    assert top("another-new-user") == popular


def test_repeated_event_id_is_ignored(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    user = "user-0030"

    def top() -> list[str]:
        return _ids(
            clients.runtime.get_recommendations(
                campaignArn=personalize_env.campaign_arn, userId=user, numResults=20
            )
        )

    _put(clients, personalize_env, user, [_event("SKU-0050", eventId="same-id")])
    once = top()
    for _ in range(3):
        _put(clients, personalize_env, user, [_event("SKU-0050", eventId="same-id")])
    assert top() == once
    assert [e["eventId"] for e in personalize_env.accepted_events()] == ["same-id"]


def test_item_id_inside_properties_is_understood(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    _put(
        clients,
        personalize_env,
        "user-0040",
        [
            {
                "eventType": "Order Completed",
                "sentAt": time.time(),
                "properties": '{"itemId": "SKU-0009"}',
            }
        ],
    )
    assert personalize_env.accepted_events()[0]["itemId"] == "SKU-0009"
    filtered = clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn,
        userId="user-0040",
        numResults=120,
        filterArn=personalize_env.purchase_filter_arn,
    )
    assert "SKU-0009" not in _ids(filtered)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"trackingId": "not-the-tracker"}, "unknown tracking id"),
        ({"sessionId": "s" * 257}, "session id too long"),
        ({"userId": "u" * 257}, "user id too long"),
        ({"eventList": [_event("SKU-0001", eventId=f"e{i}") for i in range(11)]}, "11 events"),
        ({"eventList": [_event("SKU-0001", properties="{not json")]}, "properties not JSON"),
        ({"eventList": [_event("SKU-0001", properties='["a list"]')]}, "properties not object"),
        (
            {"eventList": [_event("SKU-0001", properties=json.dumps({"k": "v" * 1100}))]},
            "properties over 1024",
        ),
        ({"eventList": [_event("i" * 257)]}, "item id too long"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_put_events_validation(
    clients: Clients, personalize_env: PersonalizeEmulator, change: dict[str, Any], why: str
) -> None:
    request = {
        "trackingId": personalize_env.tracking_id,
        "userId": "user-0001",
        "sessionId": "session-1",
        "eventList": [_event("SKU-0001")],
        **change,
    }
    with pytest.raises(ClientError) as exc:
        clients.events.put_events(**request)
    assert _code(exc) == ("InvalidInputException", 400), why
    assert personalize_env.accepted_events() == []  # nothing half-applied


@pytest.mark.parametrize(
    "body",
    [
        {"eventList": []},
        {"eventList": [{"eventType": "Product Viewed", "itemId": "SKU-0001"}]},
        {"eventList": [{"sentAt": 1700000000, "itemId": "SKU-0001"}]},
        {"sessionId": ""},
    ],
    ids=["empty-event-list", "no-sent-at", "no-event-type", "empty-session-id"],
)
def test_put_events_validation_server_side(
    personalize_env: PersonalizeEmulator, body: dict[str, Any]
) -> None:
    """What botocore would already refuse client-side is refused by the server too."""
    request = {
        "trackingId": personalize_env.tracking_id,
        "sessionId": "session-1",
        "eventList": [_event("SKU-0001")],
        **body,
    }
    response = requests.post(f"{personalize_env.url}/events", json=request, timeout=5)
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"].startswith("InvalidInputException")


# -- controls -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "status"),
    [
        ("429", "ThrottlingException", 400),
        ("500", "InternalFailure", 500),
        ("503", "ServiceUnavailable", 503),
    ],
)
def test_faults_surface_as_aws_errors(
    clients: Clients, personalize_env: PersonalizeEmulator, kind: str, code: str, status: int
) -> None:
    personalize_env.controls.set(fault_rate={kind: 1.0}, retry_after_s=3)
    with pytest.raises(ClientError) as exc:
        clients.runtime.get_recommendations(campaignArn=personalize_env.campaign_arn, userId="u")
    assert _code(exc) == (code, status)
    if kind == "429":
        assert exc.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "3"
    assert personalize_env.counters[f"fault:{kind}"] == 1


def test_faults_only_for_chosen_users_and_operations(
    clients: Clients, personalize_env: PersonalizeEmulator
) -> None:
    personalize_env.controls.set(
        fault_rate={"503": 1.0}, only_users={"user-bad"}, operations={"GetRecommendations"}
    )
    arn = personalize_env.campaign_arn
    with pytest.raises(ClientError) as exc:
        clients.runtime.get_recommendations(campaignArn=arn, userId="user-bad")
    assert _code(exc) == ("ServiceUnavailable", 503)
    assert clients.runtime.get_recommendations(campaignArn=arn, userId="user-good")["itemList"]
    _put(clients, personalize_env, "user-bad", [_event("SKU-0001")])  # other operation: fine
    faults = [(r.user_id, r.operation) for r in personalize_env.request_log() if r.fault]
    assert faults == [("user-bad", "GetRecommendations")]


def test_botocore_retries_through_a_throttle(personalize_env: PersonalizeEmulator) -> None:
    """ThrottlingException (HTTP 400) is one botocore retries: seed 1 throttles the first
    attempt only, and the SDK's standard retry gets the call through."""
    personalize_env.controls.set(fault_rate={"429": 0.5}, seed=1)
    clients = Clients(Config(retries={"mode": "standard", "total_max_attempts": 3}))
    answer = clients.runtime.get_recommendations(
        campaignArn=personalize_env.campaign_arn, userId="user-0001"
    )
    assert len(answer["itemList"]) == 25
    assert [r.fault for r in personalize_env.request_log()] == ["429", None]


def test_connection_reset(clients: Clients, personalize_env: PersonalizeEmulator) -> None:
    personalize_env.controls.set(fault_rate={"reset": 1.0})
    with pytest.raises(ConnectionClosedError):
        clients.runtime.get_recommendations(campaignArn=personalize_env.campaign_arn, userId="u")
    personalize_env.controls.reset()
    assert clients.runtime.get_recommendations(campaignArn=personalize_env.campaign_arn, userId="u")


def test_latency_and_slow_responses(personalize_env: PersonalizeEmulator) -> None:
    arn = personalize_env.campaign_arn
    personalize_env.controls.set(latency_ms=150, jitter_ms=50)
    started = time.monotonic()
    Clients().runtime.get_recommendations(campaignArn=arn, userId="u")
    assert time.monotonic() - started >= 0.15
    personalize_env.controls.set(latency_ms=0, jitter_ms=0, fault_rate={"slow": 1.0}, slow_ms=3000)
    impatient = Clients(Config(read_timeout=0.3, retries={"total_max_attempts": 1}))
    with pytest.raises(BotoReadTimeoutError):
        impatient.runtime.get_recommendations(campaignArn=arn, userId="u")
    started = time.monotonic()
    personalize_env.stop()  # a handler is still stalled: stop must not wait for it
    assert time.monotonic() - started < 2


def test_control_endpoints(personalize_emulator: PersonalizeEmulator) -> None:
    url = personalize_emulator.url
    answer = requests.post(
        f"{url}/_emulator/controls", json={"fault_rate": {"500": 1.0}}, timeout=5
    )
    assert answer.status_code == 200 and answer.json()["fault_rate"]["500"] == 1.0
    failed = requests.post(
        f"{url}/recommendations",
        json={"campaignArn": personalize_emulator.campaign_arn, "userId": "u"},
        timeout=5,
    )
    assert failed.status_code == 500
    stats = requests.get(f"{url}/_emulator/stats", timeout=5).json()
    assert stats["counters"] == {"GetRecommendations": 1, "fault:500": 1}
    resources = requests.get(f"{url}/_emulator/resources", timeout=5).json()
    assert resources["tracking_id"] == personalize_emulator.tracking_id
    assert requests.post(f"{url}/_emulator/reset", timeout=5).status_code == 200
    assert personalize_emulator.controls.fault_rate["500"] == 0.0
    assert personalize_emulator.counters == {}
    bad = requests.post(f"{url}/_emulator/controls", json={"fault_rate": {"418": 1}}, timeout=5)
    assert bad.status_code == 400


def test_same_seed_same_answers(sample_data: SampleData) -> None:
    def run() -> list[Any]:
        with PersonalizeEmulator(
            interactions=sample_data.interactions_csv, items=sample_data.catalogue, seed=3
        ) as emu:
            body = {"campaignArn": emu.campaign_arn, "userId": "user-0001", "numResults": 50}
            answer = requests.post(f"{emu.url}/recommendations", json=body, timeout=5).json()
            return [answer, emu.tracking_id]

    assert run() == run()


# -- process mode -------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def personalize_process(
    sample_data: SampleData,
) -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str], str]]:
    with emulator_process(
        "emulators.personalize", "--port", "0", "--interactions",
        str(sample_data.interactions_csv), "--seed", "0",
    ) as started:  # fmt: skip
        yield started


def test_process_mode_serves_and_stops_on_sigterm(
    personalize_process: tuple[subprocess.Popen[str], queue.Queue[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process, lines, url = personalize_process
    details = json.loads(lines.get(timeout=10))
    use_fake_aws(monkeypatch, endpoints={"personalize-runtime": url})
    runtime = boto3.Session().client("personalize-runtime", config=NO_RETRY)
    answer = runtime.get_recommendations(campaignArn=details["campaign_arn"], userId="user-0001")
    assert len(answer["itemList"]) == 25
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_process_help_documents_every_control() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "emulators.personalize", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
        check=True,
    )
    for flag in ("--port", "--interactions", "--seed", "--latency-ms", "--jitter-ms",
                 "--fault-429", "--fault-500", "--fault-503", "--fault-slow", "--fault-reset",
                 "--slow-ms", "--retry-after-s", "--only-users", "--operations"):  # fmt: skip
        assert flag in result.stdout
