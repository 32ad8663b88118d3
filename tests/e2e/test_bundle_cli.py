"""scripts/bundle against one running sandbox: every subcommand as an operator runs it
(a subprocess with --sandbox), checked by what it changed in the sandbox."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from bundle_cli.main import build_parser

from devkit.aws import local_client
from devkit.sandbox import poll, run_bundle, sandbox_in
from sandbox.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "e2e-bundle-key-0123456789"
TRAIT = "recommended_products"
T = TypeVar("T")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    args = [
        "--port", str(free_port()), "--api-key", API_KEY, "--rate", "0",
        "--batching-window", "0.2", "--poll-interval", "0.1",
        "--max-retries", "1", "--retry-delay", "0.1", "--no-filter",
    ]  # fmt: skip
    with sandbox_in(tmp_path_factory.mktemp("bundle-sandbox"), args, timeout_s=60) as running:
        yield running


def bundle(
    sandbox: dict[str, Any], *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return run_bundle(sandbox["state_dir"], *args, stdin=stdin, timeout=timeout)


def aws(sandbox: dict[str, Any], service: Any) -> Any:
    return local_client(service, sandbox["state"]["moto_url"])


def trait(sandbox: dict[str, Any], user: str) -> list[str] | None:
    url = f"{sandbox['state']['segment_url']}/_emulator/profiles/{user}"
    response = requests.get(url, timeout=5)
    value = (response.json() if response.status_code == 200 else {}).get(TRAIT)
    return value if isinstance(value, list) and value else None


def track(user: str) -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return {
        "type": "track", "event": "Product Viewed", "userId": user,
        "anonymousId": str(uuid.uuid4()), "messageId": f"e2e-{uuid.uuid4()}",
        "timestamp": now, "properties": {"sku": "item-0001"},
    }  # fmt: skip


def segment_faults(sandbox: dict[str, Any], **controls: Any) -> None:
    url = f"{sandbox['state']['segment_url']}/_emulator/controls"
    requests.post(url, json=controls, timeout=5).raise_for_status()


# -- help -----------------------------------------------------------------------------------

SUBCOMMANDS = [
    ["smoke"], ["call"], ["dlq"], ["dlq", "list"], ["dlq", "show"], ["dlq", "redrive"],
    ["dlq", "purge"], ["replay-failed"], ["set-secrets"], ["seed"],
]  # fmt: skip


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help_with_the_target_options(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*words, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: bundle {' '.join(words)}")
    if words != ["dlq"]:
        assert "--sandbox" in text and "--terraform-dir" in text


def test_no_secret_can_come_from_arguments() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    set_secrets = sub.choices["set-secrets"]  # type: ignore[attr-defined]
    takes_values = [a.dest for a in set_secrets._actions if a.nargs != 0 and a.option_strings]
    assert takes_values == ["state_dir", "terraform_dir"]


def test_without_a_sandbox_it_says_so_in_one_line(tmp_path: Path) -> None:
    result = run_bundle(tmp_path, "dlq", "list", timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"bundle: no sandbox state at {tmp_path}/state.json: start it with `make sandbox`"
    )


# -- against the sandbox --------------------------------------------------------------------


def test_call_prints_the_recommendations(sandbox: dict[str, Any]) -> None:
    result = bundle(sandbox, "call", "--user", "user-0001", "--num-results", "5")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["userId"] == "user-0001"
    assert len(answer["items"]) == 5
    # A bad request is shown and fails the command.
    result = bundle(sandbox, "call", "--user", "user-0001", "--num-results", "0")
    assert result.returncode == 1
    assert json.loads(result.stdout)["error"]["code"]
    assert "HTTP 400" in result.stderr


def test_smoke_waits_for_the_trait_with_progress(sandbox: dict[str, Any]) -> None:
    result = bundle(sandbox, "smoke", "--timeout", "40")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "put 1 'Product Viewed' event for bundle-smoke-" in result.stderr
    summary = json.loads(result.stdout.splitlines()[0])
    assert summary[TRAIT] == trait(sandbox, summary["userId"])
    # The user-state store: checked when the sandbox runs it (update_traits records the
    # refresh there), said to be left unchecked otherwise.
    table = sandbox["state"].get("user_state_table")
    if table:
        assert summary["store"]["table"] == table and summary["store"]["refreshed_at"]
        assert f"store ok: {summary['userId']}'s refresh is recorded in {table}" in result.stdout
    else:
        assert summary["store"] is None
        assert "store not checked (the deployment reports no USER_STATE_TABLE)" in result.stdout


def test_smoke_names_the_stalled_stage_and_replay_failed_writes_the_trait(
    sandbox: dict[str, Any],
) -> None:
    user = f"stalled-{uuid.uuid4().hex[:8]}"
    # Segment refuses this user's identify calls: the batch runs out of retries.
    segment_faults(sandbox, fault_rate={"500": 1.0}, only_users=[user], operations=["batch"])
    try:
        result = bundle(sandbox, "smoke", "--user", user, "--timeout", "6")
    finally:
        segment_faults(sandbox, fault_rate={"500": 0.0}, only_users=None, operations=None)
    assert result.returncode == 1
    assert "smoke failed after 6 s: failed records: the batch ran out of retries" in result.stdout
    assert trait(sandbox, user) is None

    result = bundle(sandbox, "replay-failed", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 record(s) would be replayed" in result.stdout
    result = bundle(sandbox, "replay-failed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "replayed 1 range(s), 0 expired" in result.stdout
    assert poll(f"{user}'s trait after the replay", lambda: trait(sandbox, user), 30)
    assert "no failed batches" in bundle(sandbox, "replay-failed").stdout


def test_replay_failed_says_which_ranges_expired(sandbox: dict[str, Any]) -> None:
    state = sandbox["state"]
    # A range on a shard the stream no longer has (resharded, then past retention).
    gone = {
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "KinesisBatchInfo": {
            "shardId": "shardId-000000000099",
            "startSequenceNumber": "1",
            "endSequenceNumber": "2",
            "batchSize": 2,
            "streamArn": state["stream_arn"],
        },
    }
    sqs = aws(sandbox, "sqs")
    sqs.send_message(QueueUrl=state["on_failure_queue_url"], MessageBody=json.dumps(gone))
    result = bundle(sandbox, "replay-failed")
    assert result.returncode == 1
    assert "shardId-000000000099 1...2 (2 records): expired" in result.stdout
    assert "replayed 0 range(s), 1 expired" in result.stdout
    # Kept for the record; removed here so that other tests see an empty queue.
    (message,) = sqs.receive_message(QueueUrl=state["on_failure_queue_url"])["Messages"]
    sqs.delete_message(
        QueueUrl=state["on_failure_queue_url"], ReceiptHandle=message["ReceiptHandle"]
    )


def test_dlq_list_show_redrive_and_purge(sandbox: dict[str, Any]) -> None:
    state = sandbox["state"]
    sqs, kinesis = aws(sandbox, "sqs"), aws(sandbox, "kinesis")
    # A record the handler dead-letters itself: not JSON.
    kinesis.put_record(StreamName=state["stream_name"], Data=b"{not json", PartitionKey="x")
    # A record dead-lettered earlier whose cause has been fixed since (e.g. by a new release).
    user = f"redrive-{uuid.uuid4().hex[:8]}"
    fixed = base64.b64encode(json.dumps(track(user)).encode()).decode()
    sqs.send_message(
        QueueUrl=state["dead_letter_queue_url"],
        MessageBody=json.dumps({
            "reason": "no usable timestamp", "eventSourceARN": state["stream_arn"],
            "shardId": "shardId-000000000000", "sequenceNumber": "123", "data": fixed,
        }),
    )  # fmt: skip

    def listed() -> list[dict[str, Any]] | None:
        result = bundle(sandbox, "dlq", "list", "--json")
        assert result.returncode == 0, result.stderr
        bodies: list[dict[str, Any]] = json.loads(result.stdout)
        return bodies if len(bodies) == 2 else None

    bodies = poll("two dead-lettered records", listed, timeout_s=20, every_s=0.5)
    by_seq = {b["sequenceNumber"]: b for b in bodies}
    redrive_id = by_seq["123"]["messageId"]
    (bad,) = [b for b in bodies if b["sequenceNumber"] != "123"]
    assert bad["reason"] and base64.b64decode(bad["data"]) == b"{not json"

    table = bundle(sandbox, "dlq", "list")
    assert table.stdout.startswith("2 dead-lettered record(s)")
    assert redrive_id in table.stdout and "no usable timestamp" in table.stdout
    shown = bundle(sandbox, "dlq", "show", redrive_id)
    assert shown.returncode == 0
    assert json.loads(shown.stdout)["decoded"]["userId"] == user
    assert bundle(sandbox, "dlq", "show", "no-such-id").returncode == 1

    result = bundle(sandbox, "dlq", "redrive", redrive_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "redriven 1, kept 0" in result.stdout
    assert poll(f"{user}'s trait after the redrive", lambda: trait(sandbox, user), 30)

    refused = bundle(sandbox, "dlq", "purge")
    assert refused.returncode == 2
    assert "would delete 1 message(s)" in refused.stderr
    purged = bundle(sandbox, "dlq", "purge", "--yes")
    assert purged.returncode == 0 and "purged 1 message(s)" in purged.stdout
    assert json.loads(bundle(sandbox, "dlq", "list", "--json").stdout) == []


def test_a_dead_lettered_trailing_refresh_is_listed_and_redriven_to_the_refresh_queue(
    sandbox: dict[str, Any],
) -> None:
    """The refresh queue's redrive policy moves a trailing refresh that failed on every
    receive to the dead-letter queue, in the refresh message's own shape: the CLI names it
    and puts it back on the refresh queue, where the function refreshes the user."""
    state = sandbox["state"]
    sqs = aws(sandbox, "sqs")
    user = f"refresh-{uuid.uuid4().hex[:8]}"
    body = {"v": 1, "userId": user, "after": time.time(), "watermark": None}
    sqs.send_message(QueueUrl=state["dead_letter_queue_url"], MessageBody=json.dumps(body))

    def listed() -> list[dict[str, Any]] | None:
        result = bundle(sandbox, "dlq", "list", "--json")
        bodies: list[dict[str, Any]] = json.loads(result.stdout)
        return bodies if any(b.get("userId") == user for b in bodies) else None

    (found,) = [b for b in poll("the refresh message", listed, 20, 0.5) if b.get("userId") == user]
    table = bundle(sandbox, "dlq", "list").stdout
    assert f"{found['messageId']}" in table and "refresh-queue" in table
    assert "trailing refresh failed on every receive" in table
    result = bundle(sandbox, "dlq", "redrive", found["messageId"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "back on the refresh queue" in result.stdout and "redriven 1, kept 0" in result.stdout
    assert poll(f"{user}'s trait from the redriven refresh", lambda: trait(sandbox, user), 30)


def test_set_secrets_reads_stdin_and_never_stores_the_placeholder(
    sandbox: dict[str, Any],
) -> None:
    ssm = aws(sandbox, "ssm")
    names = ("/sandbox/segment/write-key", "/sandbox/segment/profile-token")

    def stored() -> list[tuple[str, int]]:
        found = []
        for name in names:
            p = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
            assert p["Type"] == "SecureString"
            found.append((p["Value"], p["Version"]))
        return found

    (key, key_version), (token, token_version) = stored()
    # The sandbox's own values again, so its handlers keep working.
    result = bundle(sandbox, "set-secrets", "--stdin", stdin=f"{key}\n{token}\n")
    assert result.returncode == 0, result.stderr
    assert key not in result.stdout + result.stderr and token not in result.stdout + result.stderr
    assert stored() == [(key, key_version + 1), (token, token_version + 1)]

    refused = bundle(sandbox, "set-secrets", "--write-key", "--stdin", stdin="set-out-of-band\n")
    assert refused.returncode == 1
    assert "no Segment write key given" in refused.stderr
    blank = bundle(sandbox, "set-secrets", "--profile-token", "--stdin", stdin="   \n")
    assert blank.returncode == 1
    assert stored() == [(key, key_version + 1), (token, token_version + 1)]
