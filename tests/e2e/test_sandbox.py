"""`make sandbox` end to end: the sandbox runs as a subprocess (one for the module), events
sent with segment-analytics-python go through the Segment emulator's Kinesis destination and
the unmodified update_traits handler to a Segment profile, the API answers through the
unmodified recommendations handler, a second sandbox is refused without touching the first
one's files, and SIGINT prints a summary and leaves no process and no port behind."""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from segment.analytics import Client

from devkit.aws import local_client
from devkit.sandbox import poll, start_sandbox, stop, wait_running
from sandbox.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-sandbox-key-0123456789"
NUM_RESULTS = 10
T = TypeVar("T")

pytestmark = pytest.mark.timeout(90)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_in_group(pgid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One sandbox for the whole module; the last test stops it with SIGINT."""
    tmp_path = tmp_path_factory.mktemp("sandbox")
    port = free_port()
    state_dir = tmp_path / "state"
    log = tmp_path / "console.log"
    proc = start_sandbox(
        [
            "--port", str(port),
            "--api-key", API_KEY,
            "--rate", "20",
            "--events", "150",
            "--batching-window", "0.2",
            "--poll-interval", "0.1",
            "--num-results", str(NUM_RESULTS),
            "--no-filter",  # purchased items must be removed by the handler, not Personalize
            "--max-retries", "1",
            "--retry-delay", "0.1",
            "--totals-interval", "1",
        ],
        state_dir,
        log,
    )  # fmt: skip

    try:
        state = wait_running(proc, state_dir, log, timeout_s=45)
        # What the tests did, for the summary the last one checks.
        yield {
            "state": state,
            "proc": proc,
            "log": log,
            "port": port,
            "state_dir": state_dir,
            "events_sent": 0,
            "dead_letters": 0,
            "on_failure": False,
            "api_statuses": set(),
        }
    finally:
        stop(proc)


def _profile(state: dict[str, Any], user: str) -> dict[str, Any] | None:
    response = requests.get(f"{state['segment_url']}/_emulator/profiles/{user}", timeout=5)
    return response.json() if response.status_code == 200 else None  # type: ignore[no-any-return]


def _aws(service: Any, endpoint: str) -> Any:
    return local_client(service, endpoint)


def _console(sandbox: dict[str, Any]) -> str:
    return sandbox["log"].read_text()  # type: ignore[no-any-return]


def test_banner_and_state_say_where_to_point_a_segment_library(sandbox: dict[str, Any]) -> None:
    state = sandbox["state"]
    segment, personalize = state["segment"], state["personalize"]
    tracking = segment["tracking_url"]
    assert tracking == state["segment_url"] and tracking.startswith("http://127.0.0.1:")
    assert segment["write_key"] == "sandbox-write-key"
    assert segment["controls_url"] == f"{tracking}/_emulator/controls"
    assert personalize["controls_url"] == f"{state['personalize_url']}/_emulator/controls"
    for url in (segment["controls_url"], personalize["controls_url"]):
        assert requests.get(url, timeout=5).status_code == 200
    console = _console(sandbox)
    assert f"tracking URL {tracking} (API under /v1), write key sandbox-write-key" in console
    assert f"analytics.host = '{tracking}'" in console
    host = tracking.removeprefix("http://")
    assert f"apiHost: '{host}/v1', protocol: 'http'" in console
    assert f"Segment {segment['controls_url']}, Personalize {personalize['controls_url']}" in (
        console
    )
    assert "API key    " + API_KEY in console
    assert f"curl -s -H 'x-api-key: {API_KEY}'" in console
    assert "?itemId=" in console


def test_events_sent_with_segment_analytics_python_update_the_trait(
    sandbox: dict[str, Any],
) -> None:
    """The issue's closing check: Product Viewed and Order Completed (products[]) sent with
    Segment's own Python library; the user's recommended_products leaves out what was bought."""
    state = sandbox["state"]
    tracking, write_key = state["segment"]["tracking_url"], state["segment"]["write_key"]
    personalize = _aws("personalize-runtime", state["personalize_url"])

    def ranked(user: str) -> list[str]:
        answer = personalize.get_recommendations(
            campaignArn=state["campaign_arn"], userId=user, numResults=NUM_RESULTS
        )
        return [item["itemId"] for item in answer["itemList"]]

    # A user with past purchases that Personalize, unfiltered, still recommends: only the
    # handler's exclusion keeps them out of the trait.
    def candidate() -> tuple[str, list[str], list[str]] | None:
        for n in range(1, 201):
            user = f"user-{n:04d}"
            traits = _profile(state, user) or {}
            purchased = traits.get("purchased_products") or []
            if not purchased or "recommended_products" in traits:
                continue
            ranking = ranked(user)
            if set(ranking) & set(purchased):
                return user, purchased, ranking
        return None

    found = candidate()
    assert found is not None, "no user for whom Personalize recommends a purchased item"
    user, purchased, ranking = found
    # What the user orders now: Personalize's first pick among what they have not bought.
    bought = [next(item for item in ranking if item not in purchased)]
    viewed = next(item for item in ranking if item not in purchased + bought)

    errors: list[Any] = []
    client = Client(
        write_key,
        host=tracking,
        gzip=True,
        on_error=lambda exc, batch: errors.append(exc),
        upload_interval=0.1,
    )
    client.track(user, "Product Viewed", {"sku": viewed, "product_id": viewed})
    client.track(
        user,
        "Order Completed",
        {
            "order_id": f"o-{uuid.uuid4().hex[:8]}",
            "currency": "USD",
            "products": [{"sku": sku, "product_id": sku, "quantity": 1} for sku in bought],
        },
    )
    client.flush()
    client.join()
    assert errors == []
    sandbox["events_sent"] += 2

    def after_the_order() -> list[str] | None:
        # The replay may have written this user's trait just before our events; the one that
        # counts leaves out the item just ordered and the past purchases (a broken exclusion
        # never gets there). The past ones are only in Segment's trait: the first refresh
        # does not wait for the store's seed, and the seed, finding one of them in the list
        # just written, refreshes the user again through the refresh queue.
        value = (_profile(state, user) or {}).get("recommended_products")
        if isinstance(value, list) and not set(value) & set(bought + purchased):
            return value
        return None

    trait = poll(f"{user}'s recommended_products without any purchase", after_the_order, 30)
    assert len(trait) == NUM_RESULTS  # refilled after removing the purchases
    assert not set(trait) & set(purchased), "a purchased item was recommended"
    # The computed trait followed the same events.
    assert set(bought) <= set(_profile(state, user)["purchased_products"])  # type: ignore[index]
    # Not vacuous: Personalize itself still ranks what the user bought.
    assert set(ranked(user)) & set(purchased + bought)

    # The API, through the local gateway and the unmodified recommendations handler.
    url = f"{state['api_url']}/recommendations"
    headers = {"x-api-key": API_KEY}
    ok = requests.get(url, params={"userId": user, "numResults": 5}, headers=headers, timeout=10)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["userId"] == user and 1 <= len(body["items"]) <= 5
    assert not {item["itemId"] for item in body["items"]} & set(bought)
    # Personalize's order: the ranking, with the sandbox's promotion (a fifth of the list,
    # Books) at random slots, in order among themselves (as Personalize places them).
    for promoted in (False, True):
        scores = [i["score"] for i in body["items"] if ("promotionName" in i) == promoted]
        assert scores == sorted(scores, reverse=True)
    # At least the promotion's share of the 5 served (20 %: 1), though 30 were asked for.
    promotions = [i["promotionName"] for i in body["items"] if "promotionName" in i]
    assert promotions and set(promotions) == {"books"}
    related = requests.get(
        url, params={"itemId": viewed, "numResults": 5}, headers=headers, timeout=10
    )
    assert related.status_code == 200, related.text
    assert related.json()["itemId"] == viewed and related.json()["items"]
    assert viewed not in {item["itemId"] for item in related.json()["items"]}
    # The v2 routes the sandbox configures (every capability), as the curl lines in
    # functions/recommendations/README.md.
    api = state["api_url"]
    related_for_user = requests.get(
        f"{api}/related-items",
        params={"itemId": viewed, "userId": user, "numResults": 5},
        headers=headers,
        timeout=10,
    )
    assert related_for_user.status_code == 200, related_for_user.text
    assert not {i["itemId"] for i in related_for_user.json()["items"]} & set(bought)
    candidates = [viewed, *bought, "SKU-0001"]
    ranked_ids = requests.post(
        f"{api}/rankings", json={"userId": user, "itemIds": candidates}, headers=headers, timeout=10
    )
    assert ranked_ids.status_code == 200, ranked_ids.text
    assert sorted(i["itemId"] for i in ranked_ids.json()["items"]) == sorted(candidates)
    options = requests.get(
        url,
        params={
            "userId": user,
            "numResults": 5,
            "filter": "category",
            "filterValues.CATEGORIES": "Books,Toys",
            "includeMetadata": "true",
        },
        headers=headers,
        timeout=10,
    )
    assert options.status_code == 200, options.text
    assert {i["metadata"]["category"] for i in options.json()["items"]} <= {"Books", "Toys"}
    forbidden = requests.get(url, params={"userId": user}, timeout=10)
    assert forbidden.status_code == 403
    assert forbidden.json() == {"error": {"code": "INVALID_API_KEY", "message": "Forbidden"}}
    missing = {"code": "MISSING_AUTHENTICATION_TOKEN", "message": "Missing Authentication Token"}
    unrouted = requests.get(f"{state['api_url']}/nope", headers=headers, timeout=10)
    assert unrouted.status_code == 403
    assert unrouted.json() == {"error": missing}
    # A method the route does not deploy: the gateway's 403, as API Gateway answers it.
    wrong = requests.delete(url, params={"userId": user}, headers=headers, timeout=10)
    assert (wrong.status_code, wrong.json()) == (403, {"error": missing})
    sandbox["api_statuses"] |= {200, 403}


def test_dead_letters_and_totals_show_on_the_console(sandbox: dict[str, Any]) -> None:
    state = sandbox["state"]
    kinesis = _aws("kinesis", state["moto_url"])
    # Segment only ever delivers JSON; a broken producer is simulated on the stream itself.
    put = kinesis.put_record(
        StreamName=state["stream_name"], Data=b"{not json", PartitionKey="broken"
    )
    seq = put["SequenceNumber"]

    def dead_letter_line() -> str | None:
        return next(
            (
                line
                for line in _console(sandbox).splitlines()
                if " dead-letter " in line and f"sequence number {seq}:" in line
            ),
            None,
        )

    line = poll("the dead-letter line", dead_letter_line, timeout_s=20)
    sandbox["dead_letters"] += 1
    assert put["ShardId"] in line and "sandbox-update-traits-dead-letter" in line
    sqs = _aws("sqs", state["moto_url"])
    attributes = sqs.get_queue_attributes(
        QueueUrl=state["dead_letter_queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) >= 1

    def totals_with_dead_letter() -> str | None:
        lines = [line for line in _console(sandbox).splitlines() if " totals in " in line]
        return next((line for line in reversed(lines) if "dead-letters 0 " not in line), None)

    totals = poll("a totals line counting the dead letter", totals_with_dead_letter, timeout_s=10)
    for part in ("/s out ", "lag ", " records (iterator age ", "identifies ", "failures ",
                 "dead-letters ", "profile-api ", " req/s"):  # fmt: skip
        assert part in totals


def test_a_batch_that_keeps_failing_ends_in_the_on_failure_queue(
    sandbox: dict[str, Any],
) -> None:
    state = sandbox["state"]
    tracking = state["segment"]["tracking_url"]
    controls = state["segment"]["controls_url"]
    failing_user = f"e2e-failing-{uuid.uuid4().hex[:8]}"
    # Segment refuses only the traits sync's identify batches for this user.
    requests.post(
        controls,
        json={"fault_rate": {"500": 1.0}, "only_users": [failing_user], "operations": ["batch"]},
        timeout=5,
    ).raise_for_status()
    try:
        # The HTTP Tracking API's single-call route (operation "track": not faulted).
        sent = requests.post(
            f"{tracking}/v1/track",
            json={
                "userId": failing_user,
                "event": "Product Viewed",
                "properties": {"sku": "SKU-0001"},
            },
            auth=(state["segment"]["write_key"], ""),
            timeout=5,
        )
        assert sent.status_code == 200
        sandbox["events_sent"] += 1
        sqs = _aws("sqs", state["moto_url"])

        def on_failure_record() -> dict[str, Any] | None:
            got = sqs.receive_message(
                QueueUrl=state["on_failure_queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            for raw in got.get("Messages", []):
                record: dict[str, Any] = json.loads(raw["Body"])
                return record
            return None

        record = poll("an on-failure record", on_failure_record, timeout_s=20)
        sandbox["on_failure"] = True
    finally:
        requests.post(controls, json={"fault_rate": {"500": 0.0}}, timeout=5).raise_for_status()
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2  # 1 try + 1 retry
    assert record["KinesisBatchInfo"]["streamArn"] == state["stream_arn"]


def _snapshot(state_dir: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()[:4096])
        for p in sorted(state_dir.iterdir())
    }


def _second(args: list[str], state_dir: Path, log: Path) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = start_sandbox(args, state_dir, log)
    try:
        code = proc.wait(timeout=30)
    finally:
        stop(proc)
    return code, log.read_text(), time.monotonic() - started


def test_a_second_sandbox_never_touches_the_first_ones_files(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    state_dir = sandbox["state_dir"]
    before = _snapshot(state_dir)
    assert {"state.json", "handlers.log", "moto.log", "sandbox.lock"} <= set(before)

    # Same port: refused at the port check, before the state folder is even looked at.
    code, out, elapsed = _second(["--port", str(sandbox["port"])], state_dir, tmp_path / "a.log")
    assert code == 2, out
    assert f"port {sandbox['port']} on 127.0.0.1 is already in use" in out
    assert elapsed < 20
    # Another port, same folder: refused, naming the sandbox that owns it.
    code, out, _ = _second(["--port", str(free_port())], state_dir, tmp_path / "b.log")
    assert code == 2, out
    owner = sandbox["proc"].pid
    assert f"{state_dir}/ is in use by the sandbox with pid {owner}" in out
    assert sandbox["state"]["api_url"] in out and "--state-dir" in out
    assert "moto server" not in out  # nothing was started

    after = _snapshot(state_dir)
    for name in ("state.json", "sandbox.lock"):
        assert after[name] == before[name], f"{name} was touched"
    # The logs keep growing with the first sandbox's own lines, and only those: the logs'
    # beginnings are unchanged and no second moto server wrote to them.
    for name in ("moto.log", "handlers.log"):
        assert after[name][2][: before[name][0]] == before[name][2][: before[name][0]]
    moto_port = sandbox["state"]["ports"]["moto"]
    assert (state_dir / "moto.log").read_text().count(" * Running on http://") == 1
    assert f" * Running on http://127.0.0.1:{moto_port}" in (state_dir / "moto.log").read_text()
    assert json.loads((state_dir / "state.json").read_text())["running"] is True
    assert sandbox["proc"].poll() is None


def test_sigint_prints_a_summary_and_leaves_nothing_behind(sandbox: dict[str, Any]) -> None:
    """Last in the module: it stops the shared sandbox."""
    state, proc = sandbox["state"], sandbox["proc"]
    # The replay's 150 events (sent with segment-analytics-python), and those of the tests
    # above, have been put on the stream.
    want = 150 + sandbox["events_sent"]
    destination = f"{state['segment']['tracking_url']}/_emulator/destination"
    poll(
        "the replay's events on the stream",
        lambda: requests.get(destination, timeout=5).json()["delivered"] >= want or None,
        timeout_s=30,
    )
    children = state["children"]
    assert children and all(_alive(c["pid"]) for c in children)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    for child in children:
        assert not _alive(child["pid"]), f"{child['name']} survived"
        assert _processes_in_group(child["pgid"]) == []
    assert _processes_in_group(proc.pid) == []
    for name, port in state["ports"].items():
        assert _port_free(port), f"port {port} ({name}) still bound"

    console = _console(sandbox)
    summary = console[console.index("sandbox: summary after ") :]
    lines = summary.splitlines()
    assert lines[1].startswith("  Segment   ") and "events sent with analytics-python" in lines[1]
    sent = int(lines[1].split()[1])
    assert sent == 150  # --events 150 (the tests' own events went through their own client)
    assert lines[2].startswith("  Kinesis   ") and "records put by the Amazon Kinesis" in lines[2]
    assert int(lines[2].split()[1]) >= want
    assert lines[3].startswith("  traits    ")
    assert f" {sandbox['dead_letters']} dead-lettered" in lines[3]
    if sandbox["on_failure"]:
        assert "on-failure records" in lines[3] and " 0 on-failure records" not in lines[3]
    assert lines[4].startswith("  API       ")
    for status in sandbox["api_statuses"]:
        assert f"{status}: " in lines[4]
    assert lines[5].startswith("  Profile   ")
    assert lines[6] == "sandbox: stopped"
    # The handlers' JSON logs go to a file, not to the console.
    assert not any(line.startswith('{"level"') for line in console.splitlines())
    assert '"service"' in (sandbox["state_dir"] / "handlers.log").read_text()
    assert json.loads((sandbox["state_dir"] / "state.json").read_text())["running"] is False


def test_a_taken_port_fails_at_once(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        log = tmp_path / "console.log"
        started = time.monotonic()
        proc = start_sandbox(["--port", str(port)], tmp_path / "state", log)
        try:
            code = proc.wait(timeout=20)
        finally:
            stop(proc)
        elapsed = time.monotonic() - started
    assert code != 0
    assert f"port {port}" in log.read_text()
    assert "already in use" in log.read_text()
    assert elapsed < 15
    # Nothing was started: no moto log, no child.
    assert not (tmp_path / "state" / "moto.log").exists()
