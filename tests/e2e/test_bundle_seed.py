"""`scripts/bundle seed --sandbox` against a sandbox with the user-state store on: the Segment
emulator's profiles are the seed source, the store (moto's DynamoDB) the destination, and the
API then excludes what was seeded without reading the Profile API at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from devkit.aws import local_client
from devkit.sandbox import run_bundle, sandbox_in
from sandbox.processes import free_port

API_KEY = "e2e-seed-key-0123456789ab"
PURCHASED = "purchased_products"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    args = [
        "--port", str(free_port()), "--api-key", API_KEY, "--rate", "0", "--no-batch",
        "--no-filter", "--user-state", "on", "--quiet-requests", "--totals-interval", "0",
    ]  # fmt: skip
    with sandbox_in(tmp_path_factory.mktemp("seed-sandbox"), args, timeout_s=60) as running:
        yield running


def segment(sandbox: dict[str, Any], path: str, body: Any = None) -> Any:
    url = f"{sandbox['state']['segment_url']}{path}"
    if body is None:
        response = requests.get(url, timeout=5)
    else:
        response = requests.post(url, json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def counters(sandbox: dict[str, Any]) -> dict[str, int]:
    return dict(segment(sandbox, "/_emulator/stats")["counters"])


def purchased(sandbox: dict[str, Any], user: str) -> set[str]:
    response = requests.get(
        f"{sandbox['state']['segment_url']}/_emulator/profiles/{user}", timeout=5
    )
    traits = response.json() if response.status_code == 200 else {}
    return {str(i) for i in traits.get(PURCHASED) or []}


def stored(sandbox: dict[str, Any], user: str) -> dict[str, Any] | None:
    dynamodb = local_client("dynamodb", sandbox["state"]["moto_url"])
    item: dict[str, Any] | None = dynamodb.get_item(
        TableName=sandbox["state"]["user_state_table"],
        Key={"user_id": {"S": user}},
        ConsistentRead=True,
    ).get("Item")
    return item


def users_file(tmp_path: Path, users: list[str]) -> Path:
    path = tmp_path / "users.jsonl"
    path.write_text("".join(json.dumps({"userId": u}) + "\n" for u in users), encoding="utf-8")
    return path


def seed(sandbox: dict[str, Any], *args: str) -> tuple[int, dict[str, Any], str]:
    result = run_bundle(sandbox["state_dir"], "seed", *args, "--json", timeout=120)
    summary = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, summary, result.stderr


def test_the_state_names_the_store(sandbox: dict[str, Any]) -> None:
    state = sandbox["state"]
    assert state["user_state_table"] == "sandbox-user-state"
    assert state["refresh_queue_url"].endswith("/sandbox-update-traits-refresh")
    assert state["segment"]["profile_api_rps"] == 90


def test_seed_merges_each_profile_once_at_the_rate_and_resumes(
    sandbox: dict[str, Any], tmp_path: Path
) -> None:
    users = [f"user-{n:04d}" for n in range(1, 41)] + ["nobody-in-segment"]
    path = users_file(tmp_path, users)
    before = counters(sandbox)
    code, summary, err = seed(sandbox, "--users-file", str(path), "--rps", "20")
    assert code == 0, err
    assert (summary["users"], summary["seeded"], summary["failed"]) == (41, 41, 0)
    assert summary["profile_reads"] == 41 and summary["throttled"] == 0
    assert summary["seconds"] >= 40 / 20 * 0.95  # 41 reads at 20/s: 40 intervals of 50 ms
    assert counters(sandbox)["profile"] - before.get("profile", 0) == 41
    assert "seeding 41 users" in err and "at most 20 requests/s" in err
    for user in users:
        item = stored(sandbox, user)
        assert item is not None and "seeded_at" in item, user
        assert set(item.get("purchased", {}).get("SS", [])) == purchased(sandbox, user), user
    assert summary["with_purchases"] == sum(1 for u in users if purchased(sandbox, u))

    # Again: every user is already seeded, nothing is read.
    at = counters(sandbox)["profile"]
    code, summary, err = seed(sandbox, "--users-file", str(path))
    assert code == 0, err
    assert (summary["seeded"], summary["skipped"], summary["profile_reads"]) == (0, 41, 0)
    assert counters(sandbox)["profile"] == at
    assert "at most 90 requests/s" in err  # the default: the sandbox's budget


def test_429s_are_waited_out_not_retried_into(sandbox: dict[str, Any], tmp_path: Path) -> None:
    users = [f"user-{n:04d}" for n in range(41, 101)]
    path = users_file(tmp_path, users)
    segment(sandbox, "/_emulator/controls", {"rate_limits": {"profile": {"rate": 10, "burst": 10}}})
    try:
        before = counters(sandbox)
        code, summary, err = seed(sandbox, "--users-file", str(path), "--rps", "20")
    finally:
        segment(sandbox, "/_emulator/controls", {"rate_limits": {"profile": 100}})
    assert code == 0, err
    assert (summary["seeded"], summary["failed"]) == (60, 0)
    refused = counters(sandbox).get("throttled:profile", 0) - before.get("throttled:profile", 0)
    assert refused == summary["throttled"] >= 1  # the limit was hit, and seen
    # Each 429 paused every worker for its Retry-After (1 s): about one per 10 admitted.
    # Retrying into the limit would have drawn hundreds.
    assert refused <= 60 // 10 + 2
    assert summary["throttle_wait_seconds"] >= refused * 0.9


def test_the_api_excludes_the_seeded_purchases_without_a_profile_read(
    sandbox: dict[str, Any],
) -> None:
    state = sandbox["state"]
    personalize = local_client("personalize-runtime", state["personalize_url"])
    user, bought = next(
        (u, purchased(sandbox, u))
        for u in (f"user-{n:04d}" for n in range(1, 41))
        if purchased(sandbox, u)
        & {
            i["itemId"]
            for i in personalize.get_recommendations(
                campaignArn=state["campaign_arn"], userId=u, numResults=50
            )["itemList"]
        }
    )
    at = counters(sandbox)["profile"]
    answer = requests.get(
        f"{state['api_url']}/recommendations",
        params={"userId": user, "numResults": 25},
        headers={"x-api-key": API_KEY},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    items = {i["itemId"] for i in answer.json()["items"]}
    assert len(items) == 25 and not items & bought
    assert counters(sandbox)["profile"] == at  # the store answered, not the Profile API


def test_a_bad_rate_or_file_is_one_line(sandbox: dict[str, Any], tmp_path: Path) -> None:
    path = users_file(tmp_path, ["user-0001"])
    result = run_bundle(sandbox["state_dir"], "seed", "--users-file", str(path), "--rps", "101")
    assert result.returncode == 1
    assert result.stderr.startswith("bundle seed: --rps 101: must be above 0 and at most 100")
    path.write_text('{"userId": "a"}\nnot json\n', encoding="utf-8")
    result = run_bundle(sandbox["state_dir"], "seed", "--users-file", str(path))
    assert result.returncode == 1
    assert result.stderr.strip() == f"bundle seed: {path} line 2: not JSON"
