"""The subcommands. Each takes the resolved target and its arguments, prints what it did,
and returns the exit code (0 success, 1 the operation did not succeed)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any, TextIO

import requests

from bundle_cli import queues
from bundle_cli.profiles import ProfileReader
from bundle_cli.target import Target, with_function_settings

PLACEHOLDER = "set-out-of-band"  # what Terraform writes without a value
PUT_RECORDS_MAX = 500
# After the trait, how long smoke waits for the store's refresh record (update_traits writes
# it before it sends the identify: it is normally there already).
STORE_GRACE_S = 5.0


def say(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout, flush=True)


def progress(text: str) -> None:
    say(text, sys.stderr)


# -- call -----------------------------------------------------------------------------------


def call(target: Target, args: argparse.Namespace) -> int:
    if target.api_url is None:
        say("bundle call: the target has no api_url", sys.stderr)
        return 1
    params: dict[str, str] = {}
    if args.user:
        params["userId"] = args.user
    if args.item:
        params["itemId"] = args.item
    if args.num_results is not None:
        params["numResults"] = str(args.num_results)
    headers = {"x-api-key": target.api_key} if target.api_key else {}
    try:
        response = requests.get(
            f"{target.api_url.rstrip('/')}/recommendations",
            params=params,
            headers=headers,
            timeout=(3, 30),
        )
    except requests.RequestException as exc:
        say(f"bundle call: {type(exc).__name__}: {exc}", sys.stderr)
        return 1
    try:
        say(json.dumps(response.json(), indent=2))
    except ValueError:
        say(response.text)
    if response.status_code != 200:
        say(f"bundle call: HTTP {response.status_code}", sys.stderr)
        return 1
    return 0


# -- smoke ----------------------------------------------------------------------------------


def smoke(target: Target, args: argparse.Namespace) -> int:
    target = with_function_settings(target)
    if not (target.profile_api_url and target.space_id and target.profile_token_parameter):
        say(
            "bundle smoke: needs the Profile API (segment_space_id and its token) to see the "
            "trait; the deployment has none",
            sys.stderr,
        )
        return 1
    token = _secret(target, target.profile_token_parameter)
    if token is None:
        say(
            f"bundle smoke: {target.profile_token_parameter} holds no token (set-secrets)",
            sys.stderr,
        )
        return 1
    reader = ProfileReader(target.profile_api_url, target.space_id, token)
    user = args.user or f"bundle-smoke-{uuid.uuid4().hex[:12]}"
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message = {
        "type": "track",
        "event": args.event,
        "userId": user,
        "anonymousId": str(uuid.uuid4()),
        "messageId": f"bundle-smoke-{uuid.uuid4()}",
        "timestamp": now,
        "sentAt": now,
        "receivedAt": now,
        "properties": {"sku": args.item, "product_id": args.item},
        "context": {"library": {"name": "bundle-smoke", "version": "1"}},
        "integrations": {},
        "version": 2,
    }
    before = reader.trait(user, target.trait)
    if before is not None:
        progress(f"{user} already has {target.trait}: waiting for it to change")
    probe = _probe(target)
    put = target.client("kinesis").put_record(
        StreamName=target.stream_name, Data=json.dumps(message).encode(), PartitionKey=user
    )
    shard, sequence = put["ShardId"], put["SequenceNumber"]
    progress(f"put 1 {args.event!r} event for {user} on {target.stream_name} ({shard}, {sequence})")
    started = time.monotonic()
    last_note = started
    while time.monotonic() - started < args.timeout:
        value = reader.trait(user, target.trait)
        if value is not None and value != before:
            elapsed = time.monotonic() - started
            until = time.monotonic() + STORE_GRACE_S
            stored, store_line = _store_check(target, user, until, args.poll)
            say(
                json.dumps(
                    {
                        "userId": user,
                        target.trait: value,
                        "seconds": round(elapsed, 1),
                        "store": stored,
                    }
                )
            )
            if store_line.startswith("smoke failed"):
                say(store_line)
                return 1
            say(f"smoke ok: {target.trait} written for {user} in {elapsed:.1f} s; {store_line}")
            return 0
        if time.monotonic() - last_note >= 5:
            last_note = time.monotonic()
            progress(f"  {last_note - started:4.0f} s: no {target.trait} on {user} yet")
        time.sleep(args.poll)
    say(f"smoke failed after {args.timeout:g} s: {_stalled_stage(target, probe, shard, sequence)}")
    return 1


def _store_check(
    target: Target, user: str, until: float, poll: float
) -> tuple[dict[str, Any] | None, str]:
    """After the trait: the smoke user's item in the user-state store, with the refresh
    update_traits records (``refreshed_at``) before it sends. Not checked (and not failed)
    when the deployment reports no USER_STATE_TABLE."""
    table = target.user_state_table
    if table is None:
        return None, "store not checked (the deployment reports no USER_STATE_TABLE)"
    from common.userstate import StoreError, UserStateStore

    store = UserStateStore(target.client("dynamodb"), table)
    while True:
        try:
            state = store.get(user, consistent=True)
        except StoreError as exc:
            return None, f"smoke failed: the trait was written but {table} answered {exc.detail}"
        if state.refreshed_at is not None:
            found = {
                "table": table,
                "refreshed_at": state.refreshed_at,
                "seeded": state.seeded_at is not None,
            }
            return found, f"store ok: {user}'s refresh is recorded in {table}"
        if time.monotonic() >= until:
            break
        time.sleep(poll)
    what = "an item without a refresh (refreshed_at)" if state.exists else "no item"
    return None, (
        f"smoke failed: the trait was written but {table} holds {what} for {user}: does the "
        "deployed update_traits use the store (USER_STATE_TABLE)?"
    )


def _stalled_stage(target: Target, probe: Any, shard: str, sequence: str) -> str:
    sqs = target.client("sqs")
    with queues.held(sqs, target.dead_letter_queue_url) as parked:
        for m in parked:
            if str(m.body.get("sequenceNumber")) == sequence:
                return f"the record was dead-lettered: {m.reason} (bundle dlq show {m.message_id})"
    with queues.held(sqs, target.on_failure_queue_url) as parked:
        for m in parked:
            info = m.body.get("KinesisBatchInfo") or {}
            if info.get("shardId") == shard and _in_range(sequence, info):
                return "failed records: the batch ran out of retries (bundle replay-failed)"
    counts = probe.counts()
    if counts is None:
        return "no invocation seen and no failure recorded (check the event source mapping)"
    if counts.get("Invocations", 0) == 0 and counts.get("Records", 0) == 0:
        return "no invocation: the event source mapping is not delivering (disabled or stalled?)"
    if counts.get("FailedRecords", 0) > 0:
        return (
            f"failed records: {counts['FailedRecords']:g} reported for retry "
            "(the function's 'batch processed' log line names the failureReasons)"
        )
    if counts.get("Unchanged", 0) > 0 and counts.get("IdentifiesSent", 0) == 0:
        return "the trait was already up to date (Unchanged): nothing new to write"
    return (
        "identify not visible: the function ran without failures, but the trait is not on the "
        "profile (write key for the right source? Profile API lag?)"
    )


def _in_range(sequence: str, info: dict[str, Any]) -> bool:
    try:
        return int(info["startSequenceNumber"]) <= int(sequence) <= int(info["endSequenceNumber"])
    except (KeyError, ValueError):
        return False


class _LogProbe:
    """The sandbox: update_traits' EMF lines in handlers.log since the probe started."""

    def __init__(self, path: Any) -> None:
        self._path = path
        self._offset = path.stat().st_size if path and path.exists() else 0

    def counts(self) -> dict[str, float] | None:
        if not self._path or not self._path.exists():
            return None
        totals: dict[str, float] = {"Invocations": 0}
        with self._path.open("rb") as log:
            log.seek(self._offset)
            for line in log:
                try:
                    blob = json.loads(line)
                except ValueError:
                    continue
                if (
                    isinstance(blob, dict)
                    and "_aws" in blob
                    and blob.get("service") == "update_traits"
                ):
                    totals["Invocations"] += 1
                    for name in ("Records", "FailedRecords", "IdentifiesSent", "Unchanged"):
                        totals[name] = totals.get(name, 0) + float(blob.get(name, 0))
        return totals


class _CloudWatchProbe:
    """A deployed stack: Lambda's Invocations and the function's EMF since the probe started
    (CloudWatch metrics arrive a minute or two late)."""

    def __init__(self, target: Target) -> None:
        self._target = target
        self._start = datetime.now(UTC)

    def counts(self) -> dict[str, float] | None:
        t = self._target
        if t.function_name is None:
            return None
        cloudwatch = t.client("cloudwatch")
        end = datetime.now(UTC)
        start = self._start.replace(second=0, microsecond=0)

        def total(namespace: str, name: str, dimensions: dict[str, str]) -> float:
            response = cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=name,
                Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
                StartTime=start,
                EndTime=end,
                Period=60,
                Statistics=["Sum"],
            )
            return float(sum(p["Sum"] for p in response.get("Datapoints", [])))

        counts = {
            "Invocations": total("AWS/Lambda", "Invocations", {"FunctionName": t.function_name})
        }
        if t.deployment:
            dims = {"deployment": t.deployment, "service": "update_traits"}
            for name in ("Records", "FailedRecords", "IdentifiesSent", "Unchanged"):
                counts[name] = total(t.metrics_namespace, name, dims)
        return counts


def _probe(target: Target) -> Any:
    return _LogProbe(target.handlers_log) if target.kind == "sandbox" else _CloudWatchProbe(target)


def _secret(target: Target, name: str) -> str | None:
    response = target.client("ssm").get_parameter(Name=name, WithDecryption=True)
    value = str(response["Parameter"].get("Value") or "").strip()
    return None if not value or value == PLACEHOLDER else value


# -- dlq ------------------------------------------------------------------------------------


def dlq_list(target: Target, args: argparse.Namespace) -> int:
    with queues.held(target.client("sqs"), target.dead_letter_queue_url, args.limit) as found:
        if args.json:
            say(json.dumps([{"messageId": m.message_id, **m.body} for m in found], indent=2))
            return 0
        say(f"{len(found)} dead-lettered record(s) in {target.dead_letter_queue_url}")
        for m in found:
            sent = _when(m.sent_at)
            shard = (
                "refresh-queue"
                if m.is_refresh
                else m.body.get("shardId") or m.body.get("eventID") or "?"
            )
            say(
                f"  {m.message_id}  {sent}  {shard}  seq {m.body.get('sequenceNumber')}  {m.reason}"
            )
    return 0


def dlq_show(target: Target, args: argparse.Namespace) -> int:
    with queues.held(target.client("sqs"), target.dead_letter_queue_url) as found:
        for m in found:
            if m.message_id == args.message_id:
                shown = dict(m.body)
                data = queues.record_data(m)
                if data is None:
                    shown["decoded"] = "(data is not base64)"
                else:
                    try:
                        shown["decoded"] = json.loads(data)
                    except ValueError:
                        shown["decoded"] = data.decode("utf-8", "replace")
                say(json.dumps({"messageId": m.message_id, **shown}, indent=2, default=str))
                return 0
    say(f"bundle dlq show: no message {args.message_id} in the dead-letter queue", sys.stderr)
    return 1


def dlq_redrive(target: Target, args: argparse.Namespace) -> int:
    if not args.all and not args.message_ids:
        say("bundle dlq redrive: name message ids, or --all", sys.stderr)
        return 2
    sqs, kinesis = target.client("sqs"), target.client("kinesis")
    redriven = kept = 0
    with queues.held(sqs, target.dead_letter_queue_url) as found:
        chosen = [m for m in found if args.all or m.message_id in set(args.message_ids)]
        missing = set(args.message_ids or []) - {m.message_id for m in chosen}
        for message_id in sorted(missing):
            say(f"  {message_id}: not in the queue")
            kept += 1
        for m in chosen:
            if m.is_refresh:
                if target.refresh_queue_url is None:
                    say(f"  {m.message_id}: kept, a refresh message and no refresh queue known")
                    kept += 1
                    continue
                sqs.send_message(QueueUrl=target.refresh_queue_url, MessageBody=m.raw)
                queues.delete(sqs, target.dead_letter_queue_url, m)
                redriven += 1
                say(f"  {m.message_id}: back on the refresh queue")
                continue
            data = queues.record_data(m)
            if data is None:
                say(f"  {m.message_id}: kept, its data is not base64 ({m.reason})")
                kept += 1
                continue
            put = kinesis.put_record(
                StreamName=target.stream_name, Data=data, PartitionKey=_partition_key(m, data)
            )
            queues.delete(sqs, target.dead_letter_queue_url, m)
            redriven += 1
            say(f"  {m.message_id}: back on {target.stream_name} as {put['SequenceNumber']}")
    say(f"redriven {redriven}, kept {kept}")
    return 0 if kept == 0 else 1


def _partition_key(message: queues.Message, data: bytes) -> str:
    """Segment's destination partitions by userId (else anonymousId): keep per-user order."""
    try:
        event = json.loads(data)
    except ValueError:
        event = None
    if isinstance(event, dict):
        for key in ("userId", "anonymousId"):
            if event.get(key) not in (None, ""):
                return str(event[key])[:256]
    return str(message.body.get("sequenceNumber") or message.message_id)[:256]


def dlq_purge(target: Target, args: argparse.Namespace) -> int:
    sqs = target.client("sqs")
    with queues.held(sqs, target.dead_letter_queue_url) as found:
        if not args.yes:
            say(
                f"bundle dlq purge: would delete {len(found)} message(s) for good; add --yes",
                sys.stderr,
            )
            return 2
        for m in found:
            queues.delete(sqs, target.dead_letter_queue_url, m)
    say(f"purged {len(found)} message(s) from {target.dead_letter_queue_url}")
    return 0


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "?"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- replay-failed --------------------------------------------------------------------------


def replay_failed(target: Target, args: argparse.Namespace) -> int:
    sqs, kinesis = target.client("sqs"), target.client("kinesis")
    replayed = expired = 0
    with queues.held(sqs, target.on_failure_queue_url, args.limit) as found:
        if not found:
            say("no failed batches in the on-failure queue")
            return 0
        for m in found:
            info = m.body.get("KinesisBatchInfo")
            if not isinstance(info, dict):
                say(f"  {m.message_id}: kept, not a Kinesis on-failure record")
                expired += 1
                continue
            label = (
                f"{info.get('shardId')} {info.get('startSequenceNumber')}..."
                f"{info.get('endSequenceNumber')} ({info.get('batchSize')} records)"
            )
            stream = str(info.get("streamArn") or "").rsplit("/", 1)[-1] or target.stream_name
            records, complete = _read_range(kinesis, stream, info)
            if not complete:
                expired += 1
                what = "partly " if records else ""
                say(f"  {label}: {what}expired, no longer in {stream} (kept in the queue)")
                if not args.include_partial or not records:
                    continue
            if args.dry_run:
                say(f"  {label}: {len(records)} record(s) would be replayed")
                continue
            _put_all(kinesis, target.stream_name, records)
            if complete:
                queues.delete(sqs, target.on_failure_queue_url, m)
            replayed += 1
            say(f"  {label}: {len(records)} record(s) replayed onto {target.stream_name}")
    say(f"replayed {replayed} range(s), {expired} expired or unreadable")
    return 0 if expired == 0 else 1


def _read_range(
    kinesis: Any, stream: str, info: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """The records of one on-failure range still in the stream, and whether all are."""
    start, end = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
    size = int(info.get("batchSize") or 0)
    try:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream,
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=str(start),
        )["ShardIterator"]
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        progress(f"    cannot read {info['shardId']} at {start}: {code}")
        return [], False
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while iterator and time.monotonic() < deadline:
        response = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        for record in response.get("Records", []):
            sequence = int(record["SequenceNumber"])
            if sequence > end:
                return records, _complete(records, start, size)
            if sequence >= start:
                records.append(record)
        if not response.get("Records"):
            if response.get("MillisBehindLatest", 0) == 0:
                break
            time.sleep(0.2)  # GetRecords allows 5 calls/s per shard; not synchronisation
        iterator = response.get("NextShardIterator")
    return records, _complete(records, start, size)


def _complete(records: list[dict[str, Any]], start: int, size: int) -> bool:
    if not records or int(records[0]["SequenceNumber"]) != start:
        return False
    return size == 0 or len(records) >= size


def _put_all(kinesis: Any, stream: str, records: list[dict[str, Any]]) -> None:
    entries = [{"Data": r["Data"], "PartitionKey": r["PartitionKey"]} for r in records]
    for offset in range(0, len(entries), PUT_RECORDS_MAX):
        chunk = entries[offset : offset + PUT_RECORDS_MAX]
        for _ in range(5):  # PutRecords is partial: retry only the rejected entries
            response = kinesis.put_records(StreamName=stream, Records=chunk)
            if not response.get("FailedRecordCount"):
                break
            chunk = [
                e for e, r in zip(chunk, response["Records"], strict=True) if r.get("ErrorCode")
            ]
            time.sleep(0.5)  # backoff after a throttled PutRecords, not synchronisation
        else:
            raise RuntimeError(f"{len(chunk)} record(s) not accepted by {stream} after retries")


# -- set-secrets ----------------------------------------------------------------------------


def set_secrets(target: Target, args: argparse.Namespace) -> int:
    wanted = []
    if args.write_key or not args.profile_token:
        wanted.append(("Segment write key", target.write_key_parameter))
    if args.profile_token or not args.write_key:
        if target.profile_token_parameter is not None:
            wanted.append(("Profile API token", target.profile_token_parameter))
        elif args.profile_token:
            say("bundle set-secrets: the deployment has no profile token parameter", sys.stderr)
            return 1
    ssm = target.client("ssm")
    lines = iter(sys.stdin.readline, "") if args.stdin else None
    for label, name in wanted:
        if name is None:
            say(
                f"bundle set-secrets: the deployment names no parameter for the {label}", sys.stderr
            )
            return 1
        if lines is not None:
            value = next(lines, "").strip()
        else:
            value = getpass.getpass(f"{label} for {name} (input hidden): ").strip()
        if not value or value == PLACEHOLDER:
            say(f"bundle set-secrets: no {label} given; {name} left unchanged", sys.stderr)
            return 1
        # Overwriting without KeyId would move a customer-key parameter to aws/ssm.
        described = ssm.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
        ).get("Parameters", [])
        key_id = described[0].get("KeyId") if described else None
        if key_id and key_id != "alias/aws/ssm":
            put = ssm.put_parameter(
                Name=name, Value=value, Type="SecureString", Overwrite=True, KeyId=key_id
            )
        else:
            put = ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
        say(f"stored the {label} in {name} (version {put.get('Version')})")
    say("the functions pick new values up within 5 minutes (their secret cache)")
    return 0
