"""The Segment Profile API budget end to end, against the rate-limited Segment emulator:
two handler processes (two containers) sharing one budget never pass it in any sliding
second, and a storm of 429s loses no record."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from conftest import ROOT
from test_traits_sync import (  # noqa: F401 - fixtures used by name
    Context,
    Deployment,
    app,
    deployment,
    personalize,
    segment,
    shop_events,
)

from devkit.events import kinesis_event
from emulators.personalize import PersonalizeEmulator
from emulators.ratelimit import peak_in_window
from emulators.segment import SegmentEmulator

LIMIT = 20.0  # the space's limit in requests/s, as Segment's 100 but quicker to test
BUDGET = LIMIT * 0.9  # what Terraform hands out by default: 10% for jitter


def run_container(tmp: Path, name: str, event: dict[str, Any], env: dict[str, str]) -> Any:
    """One update_traits container: a process of its own, as Lambda runs it."""
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(event))
    return subprocess.Popen(
        [sys.executable, "-m", "devkit.loader", "update_traits", str(path)],
        env={**os.environ, **env, "LOG_LEVEL": "ERROR", "PYTHONPATH": str(ROOT / "scripts")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_containers_sharing_one_budget_never_pass_it(
    tmp_path: Path,
    deployment: Deployment,  # noqa: F811
    personalize: PersonalizeEmulator,  # noqa: F811
    segment: SegmentEmulator,  # noqa: F811
) -> None:
    segment.rate_limits.configure({"profile": LIMIT})
    skus = personalize.catalogue_item_ids
    users = 24  # per container: 24 reads at 9/s take ~2.6 s
    first = shop_events(users * 2, users, skus)
    second = [
        dict(m, userId=f"other-{m['userId']}", messageId=f"b-{m['messageId']}") for m in first
    ]
    share = {"SEGMENT_PROFILE_API_RPS": f"{BUDGET / 2:g}"}
    processes = [
        run_container(tmp_path, name, kinesis_event(batch), share)
        for name, batch in (("a", first), ("b", second))
    ]
    for process in processes:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == {"batchItemFailures": []}

    reads = [r.time for r in segment.request_log() if r.operation == "profile"]
    assert len(reads) == 2 * users
    # What the two containers send keeps to their shares (18/s) as it leaves; arriving, it
    # stays within the space's limit in every sliding second.
    assert peak_in_window(reads) <= LIMIT
    assert segment.counters["throttled:profile"] == 0
    assert len({m["userId"] for m in segment.messages(type="identify")}) == 2 * users


def test_a_429_storm_loses_no_record(
    app: ModuleType,  # noqa: F811 - fixtures from test_traits_sync
    deployment: Deployment,  # noqa: F811
    personalize: PersonalizeEmulator,  # noqa: F811
    segment: SegmentEmulator,  # noqa: F811
) -> None:
    """No share configured and a limit far below what 8 threads ask: most reads get 429.
    Every record is processed or reported for retry; retrying the reported ones (the storm
    over) writes every user's trait."""
    segment.rate_limits.configure({"profile": {"rate": 2, "burst": 2}})
    segment.controls.set(fault_rate={"429": 0.3}, operations={"profile"}, retry_after_s=30)
    messages = shop_events(60, 30, personalize.catalogue_item_ids)
    event = kinesis_event(messages)
    by_sequence = {r["kinesis"]["sequenceNumber"]: r for r in event["Records"]}
    result = app.lambda_handler(event, Context())
    reported = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert reported, "the storm should have failed some users"
    written = {m["userId"] for m in segment.messages(type="identify")}
    for sequence, record in by_sequence.items():
        user = json.loads(base64.b64decode(record["kinesis"]["data"]))["userId"]
        # A user's records are either all reported (nothing written) or done (written).
        assert (sequence in reported) != (user in written), user

    segment.controls.reset()
    segment.rate_limits.disable()
    # The storm is over: Kinesis redelivers what was reported. On a loaded machine a read may
    # still time out (reported again, as it should be), so up to three redeliveries, each one
    # making progress.
    for _ in range(3):
        retry = {"Records": [by_sequence[s] for s in sorted(reported)]}
        again = {
            f["itemIdentifier"] for f in app.lambda_handler(retry, Context())["batchItemFailures"]
        }
        assert again < reported or not again
        reported = again
        if not reported:
            break
    assert not reported
    assert {m["userId"] for m in segment.messages(type="identify")} == {
        m["userId"] for m in messages
    }
