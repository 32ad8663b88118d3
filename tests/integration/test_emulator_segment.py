"""The Segment emulator over real HTTP with requests: Tracking API auth and limits, profiles,
the computed purchased trait, the Profile API, controls and process mode."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests

from devkit.processes import emulator_process
from emulators.segment import SegmentEmulator

REPO = Path(__file__).resolve().parents[2]
WRITE = ("sandbox-write-key", "")
TOKEN = ("sandbox-profile-token", "")


def _post(seg: SegmentEmulator, path: str, body: Any, auth: Any = WRITE) -> requests.Response:
    return requests.post(f"{seg.url}/v1/{path}", json=body, auth=auth, timeout=5)


def _profile_url(seg: SegmentEmulator, user_id: str, id_type: str = "user_id") -> str:
    encoded = quote(user_id, safe="")
    return (
        f"{seg.url}/v1/spaces/{seg.space_id}/collections/users/profiles/{id_type}:{encoded}/traits"
    )


def _get_profile(seg: SegmentEmulator, user_id: str, **params: Any) -> requests.Response:
    return requests.get(_profile_url(seg, user_id), params=params, auth=TOKEN, timeout=5)


def _order(user: str, skus: list[Any], message_id: str, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": message_id,
        "properties": {
            "products": [{"sku": s, "product_id": f"p-{s}"} for s in skus],
            **properties,
        },
    }


# -- Tracking API -------------------------------------------------------------------------------


def test_identify_merges_traits_per_user(segment_emulator: SegmentEmulator) -> None:
    first = _post(segment_emulator, "identify", {"userId": "u1", "traits": {"a": 1, "b": 1}})
    assert first.status_code == 200 and first.json() == {"success": True}
    _post(segment_emulator, "identify", {"userId": "u1", "traits": {"b": 2, "c": [3]}})
    assert segment_emulator.traits("u1") == {"a": 1, "b": 2, "c": [3]}
    stored = segment_emulator.messages(type="identify", user_id="u1")
    assert len(stored) == 2
    assert all(m["messageId"] and m["receivedAt"].endswith("Z") for m in stored)
    assert segment_emulator.counters["identify"] == 2
    assert segment_emulator.request_log()[0].auth == "sandbox-write-key"


def test_write_key_in_body_is_accepted(segment_emulator: SegmentEmulator) -> None:
    body = {"userId": "u1", "event": "Product Viewed", "writeKey": "sandbox-write-key"}
    assert _post(segment_emulator, "track", body, auth=None).status_code == 200
    assert len(segment_emulator.messages(type="track")) == 1


@pytest.mark.parametrize("auth", [("wrong-key", ""), None], ids=["wrong-key", "no-key"])
def test_bad_write_key_gets_200_and_is_not_stored(
    segment_emulator: SegmentEmulator, auth: Any
) -> None:
    batch = {"batch": [{"type": "identify", "userId": "u1", "traits": {"x": 1}}] * 3}
    response = _post(segment_emulator, "batch", batch, auth=auth)
    assert response.status_code == 200 and response.json() == {"success": True}
    assert segment_emulator.rejected == 3
    assert segment_emulator.messages() == []
    assert segment_emulator.traits("u1") is None


def test_batch_stores_each_message(segment_emulator: SegmentEmulator) -> None:
    batch = {
        "batch": [
            {"type": "identify", "userId": "u1", "traits": {"plan": "plus"}},
            {"type": "track", "userId": "u1", "event": "Product Viewed"},
            {"type": "page", "anonymousId": "anon-1", "name": "Home"},
        ],
        "context": {"library": {"name": "test"}},
    }
    assert _post(segment_emulator, "batch", batch).status_code == 200
    stored = segment_emulator.messages()
    assert [m["type"] for m in stored] == ["identify", "track", "page"]
    assert all(m["context"] == {"library": {"name": "test"}} for m in stored)


def test_silent_drops_are_counted(segment_emulator: SegmentEmulator) -> None:
    batch = {
        "batch": [
            {"type": "track", "event": "Product Viewed"},  # no userId / anonymousId
            {"type": "track", "userId": "u1"},  # no event name
            {"type": "track", "userId": "u1", "event": "E", "messageId": "m" * 101},
            {"type": "bogus", "userId": "u1"},
        ]
    }
    assert _post(segment_emulator, "batch", batch).status_code == 200
    assert segment_emulator.messages() == []
    assert segment_emulator.dropped == {
        "no_user_anon_id": 1,
        "no_event": 1,
        "message_id_too_long": 1,
        "invalid_type": 1,
    }


def test_duplicate_message_ids_are_dropped(segment_emulator: SegmentEmulator) -> None:
    message = {"userId": "u1", "traits": {"v": 1}, "messageId": "same"}
    _post(segment_emulator, "identify", message)
    _post(segment_emulator, "identify", {**message, "traits": {"v": 2}})
    _post(
        segment_emulator, "batch", {"batch": [{**message, "type": "identify", "traits": {"v": 3}}]}
    )
    assert segment_emulator.traits("u1") == {"v": 1}
    assert segment_emulator.dropped["duplicate_message_id"] == 2


def test_size_limits(segment_emulator: SegmentEmulator) -> None:
    big = {"userId": "u1", "event": "E", "properties": {"blob": "x" * (32 * 1024)}}
    assert _post(segment_emulator, "track", big).status_code == 400
    near = {"type": "track", "userId": "u1", "event": "E", "properties": {"blob": "x" * 30_000}}
    assert _post(segment_emulator, "batch", {"batch": [big | {"type": "track"}]}).status_code == 400
    over_batch = {"batch": [dict(near, messageId=f"m{i}") for i in range(17)]}  # ≈ 510 KB
    assert _post(segment_emulator, "batch", over_batch).status_code == 400
    under_batch = {"batch": [dict(near, messageId=f"m{i}") for i in range(15)]}  # ≈ 450 KB
    assert _post(segment_emulator, "batch", under_batch).status_code == 200
    assert len(segment_emulator.messages()) == 15


def test_more_than_2500_events_are_dropped_with_200(segment_emulator: SegmentEmulator) -> None:
    events = [{"type": "track", "userId": "u", "event": "E"} for _ in range(2501)]
    response = _post(segment_emulator, "batch", {"batch": events})
    assert response.status_code == 200
    assert segment_emulator.messages() == []
    assert segment_emulator.dropped["too_many_events"] == 2501
    assert _post(segment_emulator, "batch", {"batch": events[:2500]}).status_code == 200
    assert len(segment_emulator.messages()) == 2500


def test_invalid_json_is_400(segment_emulator: SegmentEmulator) -> None:
    for path in ("track", "batch"):
        response = requests.post(
            f"{segment_emulator.url}/v1/{path}",
            data=b'{"userId": "u1", ',
            headers={"Content-Type": "application/json"},
            auth=WRITE,
            timeout=5,
        )
        assert response.status_code == 400
    assert segment_emulator.messages() == []


def test_concurrent_writers(segment_emulator: SegmentEmulator) -> None:
    errors: list[BaseException] = []

    def writer(worker: int) -> None:
        try:
            with requests.Session() as session:
                for n in range(20):
                    session.post(
                        f"{segment_emulator.url}/v1/identify",
                        json={"userId": f"w{worker}", "traits": {f"t{n}": n}},
                        auth=WRITE,
                        timeout=5,
                    ).raise_for_status()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(segment_emulator.messages()) == 120
    assert all(len(segment_emulator.traits(f"w{w}") or {}) == 20 for w in range(6))


# -- computed purchased trait -------------------------------------------------------------------


def test_purchased_trait_is_a_sorted_unique_list(segment_emulator: SegmentEmulator) -> None:
    _post(segment_emulator, "track", _order("u1", ["SKU-B", "SKU-A", 42], "o1"))
    _post(segment_emulator, "track", _order("u1", ["SKU-A"], "o2", sku="SKU-FLAT"))
    _post(
        segment_emulator,
        "track",
        {"userId": "u1", "event": "Product Added", "properties": {"sku": "SKU-CART"}},
    )
    assert segment_emulator.traits("u1") == {
        "purchased_products": ["42", "SKU-A", "SKU-B", "SKU-FLAT"]
    }


def test_purchased_trait_follows_configuration() -> None:
    with SegmentEmulator(
        purchase_events=("Checkout Done",), purchased_trait="bought", item_id_property="product_id"
    ) as seg:
        _post(seg, "track", _order("u1", ["S1"], "o1") | {"event": "Checkout Done"})
        _post(seg, "track", _order("u1", ["S2"], "o2"))  # not a purchase event here
        assert seg.traits("u1") == {"bought": ["p-S1"]}


def test_anonymous_activity_joins_the_user_on_identify(segment_emulator: SegmentEmulator) -> None:
    anonymous = _order("ignored", ["SKU-1"], "o1")
    del anonymous["userId"]
    anonymous["anonymousId"] = "anon-1"
    _post(segment_emulator, "track", anonymous)
    _post(segment_emulator, "identify", {"anonymousId": "anon-1", "traits": {"seen": True}})
    _post(segment_emulator, "identify", {"userId": "u1", "anonymousId": "anon-1"})
    assert segment_emulator.traits("u1") == {"purchased_products": ["SKU-1"], "seen": True}
    by_anonymous = requests.get(
        _profile_url(segment_emulator, "anon-1", "anonymous_id"), auth=TOKEN, timeout=5
    )
    assert by_anonymous.json()["traits"]["seen"] is True


def test_profiles_persist_in_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "segment.sqlite"
    with SegmentEmulator(db_path=db) as first:
        _post(first, "identify", {"userId": "u1", "traits": {"kept": "yes"}, "messageId": "m1"})
    with SegmentEmulator(db_path=db) as second:
        assert second.traits("u1") == {"kept": "yes"}
        _post(second, "identify", {"userId": "u1", "traits": {"kept": "no"}, "messageId": "m1"})
        assert second.dropped["duplicate_message_id"] == 1


# -- Profile API --------------------------------------------------------------------------------


def test_profile_api_returns_traits_and_cursor(segment_emulator: SegmentEmulator) -> None:
    segment_emulator.set_traits("u1", {"plan": "plus", "purchased_products": ["SKU-2", "SKU-1"]})
    response = _get_profile(segment_emulator, "u1")
    assert response.status_code == 200
    body = response.json()
    assert body["traits"] == {"plan": "plus", "purchased_products": ["SKU-1", "SKU-2"]}
    assert body["cursor"] == {
        "url": _profile_url(segment_emulator, "u1").removeprefix(segment_emulator.url),
        "has_more": False,
        "next": "",
        "limit": 10,
    }
    only = _get_profile(segment_emulator, "u1", include="purchased_products,missing").json()
    assert only["traits"] == {"purchased_products": ["SKU-1", "SKU-2"]}
    assert segment_emulator.counters["profile"] == 2


def test_profile_api_pages_ten_traits_by_default(segment_emulator: SegmentEmulator) -> None:
    segment_emulator.set_traits("u1", {f"t{n:02d}": n for n in range(15)})
    first = _get_profile(segment_emulator, "u1").json()
    assert list(first["traits"]) == [f"t{n:02d}" for n in range(10)]
    assert first["cursor"]["has_more"] is True
    rest = _get_profile(segment_emulator, "u1", next=first["cursor"]["next"]).json()
    assert list(rest["traits"]) == [f"t{n:02d}" for n in range(10, 15)]
    assert rest["cursor"]["has_more"] is False
    assert len(_get_profile(segment_emulator, "u1", limit=200).json()["traits"]) == 15
    assert _get_profile(segment_emulator, "u1", limit=0).status_code == 400
    assert _get_profile(segment_emulator, "u1", limit="ten").status_code == 400


@pytest.mark.parametrize("user_id", ["a+b@example.com", "dir/sub", "ünï cødé", "100%", "x:y"])
def test_profile_ids_round_trip_percent_encoding(
    segment_emulator: SegmentEmulator, user_id: str
) -> None:
    _post(segment_emulator, "identify", {"userId": user_id, "traits": {"name": user_id}})
    response = _get_profile(segment_emulator, user_id)
    assert response.status_code == 200
    assert response.json()["traits"] == {"name": user_id}
    assert segment_emulator.request_log()[-1].user_id == user_id


def test_profile_api_errors(segment_emulator: SegmentEmulator) -> None:
    segment_emulator.set_traits("u1", {"plan": "plus"})
    wrong_token = requests.get(_profile_url(segment_emulator, "u1"), auth=("nope", ""), timeout=5)
    assert wrong_token.status_code == 401
    no_token = requests.get(_profile_url(segment_emulator, "u1"), timeout=5)
    assert no_token.status_code == 401
    not_found = {"error": {"code": "not_found", "message": "Profile was not found."}}
    unknown = _get_profile(segment_emulator, "someone-else")
    assert (unknown.status_code, unknown.json()) == (404, not_found)
    bare = requests.get(
        _profile_url(segment_emulator, "u1").replace("user_id:", ""), auth=TOKEN, timeout=5
    )
    assert (bare.status_code, bare.json()) == (404, not_found)
    other_space = _profile_url(segment_emulator, "u1").replace("spa_sandbox", "spa_other")
    assert requests.get(other_space, auth=TOKEN, timeout=5).status_code == 404


def test_email_lookup(segment_emulator: SegmentEmulator) -> None:
    _post(segment_emulator, "identify", {"userId": "u1", "traits": {"email": "Ann@Example.com"}})
    response = requests.get(
        _profile_url(segment_emulator, "ann@example.com", "email"), auth=TOKEN, timeout=5
    )
    assert response.status_code == 200


# -- controls -----------------------------------------------------------------------------------


def test_faults_only_for_chosen_users(segment_emulator: SegmentEmulator) -> None:
    segment_emulator.set_traits("bad", {"x": 1})
    segment_emulator.set_traits("good", {"x": 1})
    segment_emulator.controls.set(fault_rate={"429": 1.0}, only_users={"bad"}, retry_after_s=2)
    throttled = _get_profile(segment_emulator, "bad")
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert _get_profile(segment_emulator, "good").status_code == 200
    assert _post(segment_emulator, "identify", {"userId": "bad", "traits": {}}).status_code == 429
    assert _post(segment_emulator, "identify", {"userId": "good", "traits": {}}).status_code == 200
    assert segment_emulator.counters["fault:429"] == 2


def test_faults_only_for_chosen_operations(segment_emulator: SegmentEmulator) -> None:
    segment_emulator.set_traits("u1", {"x": 1})
    segment_emulator.controls.set(fault_rate={"503": 1.0}, operations={"profile"})
    assert _get_profile(segment_emulator, "u1").status_code == 503
    assert _post(segment_emulator, "batch", {"batch": [{"type": "identify", "userId": "u1"}]}).ok
    segment_emulator.controls.set(fault_rate={"503": 0.0, "500": 1.0}, operations={"batch"})
    assert _post(segment_emulator, "batch", {"batch": []}).status_code == 500
    assert _get_profile(segment_emulator, "u1").status_code == 200


def test_connection_reset_and_seeded_fault_sequence(segment_emulator: SegmentEmulator) -> None:
    segment_emulator.controls.set(fault_rate={"reset": 1.0})
    with pytest.raises(requests.ConnectionError):
        _post(segment_emulator, "identify", {"userId": "u1"})
    assert segment_emulator.messages() == []

    def statuses() -> list[int]:
        segment_emulator.controls.set(fault_rate={"reset": 0.0, "500": 0.3}, seed=5)
        return [
            _post(segment_emulator, "identify", {"userId": "u1"}).status_code for _ in range(12)
        ]

    first = statuses()
    assert 500 in first and 200 in first
    assert statuses() == first


def test_control_endpoints(segment_emulator: SegmentEmulator) -> None:
    url = segment_emulator.url
    _post(segment_emulator, "identify", {"userId": "u1", "traits": {"x": 1}}, auth=("bad", ""))
    _post(segment_emulator, "identify", {"userId": "u1", "traits": {"x": 1}})
    stats = requests.get(f"{url}/_emulator/stats", timeout=5).json()
    assert stats["rejected"] == 1 and stats["stored"] == 1
    assert requests.get(f"{url}/_emulator/profiles/u1", timeout=5).json() == {"x": 1}
    assert requests.get(f"{url}/_emulator/profiles/nobody", timeout=5).status_code == 404
    requests.post(f"{url}/_emulator/controls", json={"latency_ms": 5}, timeout=5)
    assert segment_emulator.controls.latency_ms == 5
    requests.post(f"{url}/_emulator/reset", timeout=5)
    assert segment_emulator.rejected == 0 and segment_emulator.controls.latency_ms == 0


# -- process mode -------------------------------------------------------------------------------


@pytest.fixture
def segment_process() -> Iterator[tuple[subprocess.Popen[str], queue.Queue[str], str]]:
    with emulator_process("emulators.segment", "--port", "0", "--write-key", "wk") as started:
        yield started


def test_process_mode_serves_and_stops_on_sigterm(
    segment_process: tuple[subprocess.Popen[str], queue.Queue[str], str],
) -> None:
    process, lines, url = segment_process
    assert json.loads(lines.get(timeout=10))["tracking_api_url"] == f"{url}/v1"
    sent = requests.post(
        f"{url}/v1/identify", json={"userId": "u1", "traits": {"a": 1}}, auth=("wk", ""), timeout=5
    )
    assert sent.status_code == 200
    assert requests.get(f"{url}/_emulator/profiles/u1", timeout=5).json() == {"a": 1}
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
