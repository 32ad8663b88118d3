"""`bundle backfill start|status|report`: start a Personalize batch inference job over a
users file, follow the write-back (chunks done / total from the bucket's state/ prefix), and
print the job's report. The AWS side sits behind :class:`Backend`, so the commands' logic is
tested with a fake one (tests/unit/test_bundle_backfill.py)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

from bundle_cli.seed import SeedError, users_in
from bundle_cli.target import BatchTarget, Target

JOB_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]{0,62}")
MAX_ID = 256
LIST_PAGES = 10  # ListBatchInferenceJobs pages searched for a job name (100 jobs each)
LATEST_SCAN = 25  # newest jobs described when looking for this bucket's latest
DLQ_ROUNDS = 5
# The function's counts (functions/batch_traits/backfill/chunks.py).
WRITTEN = "written"
SKIPPED = "skipped_no_items"
NOT_FAILED = (WRITTEN, SKIPPED, "blank")
# Under state/<job>/: <file id>/plan.json and <file id>/<version id>/chunks/<index>.json
# (chunks.py), or <file id>/chunks/<index>.json from before states were kept per version.
_STATE_KEY = re.compile(
    r"^(?P<file>[0-9a-f]{12})/(?:plan\.json|(?:[0-9a-f]{12}/)?chunks/(?P<index>\d+)\.json)$"
)


class BackfillError(Exception):
    """The one line the operator sees (exit 1)."""


class Backend(Protocol):
    bucket: str
    users_key: str

    def object_exists(self, key: str) -> bool: ...
    def upload(self, key: str, path: Path) -> None: ...
    def start(self, users_key: str | None, job_name: str | None) -> dict[str, Any]: ...
    def describe(self, job_name: str) -> dict[str, Any] | None: ...
    def latest_job(self) -> str | None: ...
    def read_json(self, key: str) -> dict[str, Any] | None: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def dead_lettered(self, job_name: str) -> int: ...


@dataclass
class Progress:
    job: str
    job_status: str | None
    failure_reason: str | None = None
    chunks_done: int = 0
    chunks_total: int = 0
    planned: bool = False
    users_written: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    report: dict[str, Any] | None = None

    @property
    def partial(self) -> bool:
        return self.report is not None and self.report.get("status") != "complete"

    @property
    def state(self) -> str:
        if self.job_status == "CREATE FAILED" or self.dead_lettered or self.partial:
            return "failed"
        if self.report is not None:
            return "done"
        return "running"

    @property
    def why_failed(self) -> str:
        if self.job_status == "CREATE FAILED":
            return f"the batch inference job failed: {self.failure_reason or 'no reason given'}"
        if self.partial and self.report is not None:
            ranges = self.report.get("failed_ranges") or []
            first = ranges[0] if ranges and isinstance(ranges[0], dict) else {}
            return (
                f"{self.report.get('chunks_failed', len(ranges))} chunk(s) failed for good "
                f"(first: index {first.get('index')}, bytes {first.get('start')}-"
                f"{first.get('end')}: {first.get('reason')}); see `backfill report`"
            )
        return (
            f"{self.dead_lettered} chunk(s) of this job are in the dead-letter queue "
            "(see why in the function's logs; redrive them to finish the job)"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "chunks_done": self.chunks_done,
            "chunks_total": self.chunks_total,
            "users_written": self.users_written,
            "job": self.job,
            "job_status": self.job_status,
        }

    def line(self) -> str:
        if not self.planned:
            where = "waiting for its output" if self.job_status == "ACTIVE" else "running"
            return f"job {self.job}: {self.job_status} (Personalize batch inference {where})"
        return (
            f"job {self.job}: {self.job_status}, chunks {self.chunks_done}/{self.chunks_total}, "
            f"users written {self.users_written}"
        )


# -- the AWS side --------------------------------------------------------------------------


class AwsBackend:
    """S3, SQS, Lambda and the Personalize control plane, for the sandbox or a deployed stack."""

    def __init__(self, target: Target, batch: BatchTarget) -> None:
        self.target = target
        self.batch = batch
        self.bucket = batch.bucket
        self.users_key = batch.users_key
        self._clients: dict[str, Any] = {}

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            endpoint = {
                "personalize": self.batch.personalize_endpoint_url,
                "lambda": self.batch.lambda_endpoint_url,
            }.get(service)
            if self.target.kind == "sandbox" and endpoint is not None:
                import boto3
                from botocore.config import Config

                make: Any = boto3.client
                self._clients[service] = make(
                    service,
                    region_name=self.target.region,
                    endpoint_url=endpoint,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106 - local emulators
                    config=Config(
                        connect_timeout=3,
                        read_timeout=60,
                        retries={"mode": "standard", "max_attempts": 3},
                    ),
                )
            else:
                self._clients[service] = self.target.client(service)
        return self._clients[service]

    def object_exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client("s3").head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def upload(self, key: str, path: Path) -> None:
        self._client("s3").upload_file(str(path), self.bucket, key)

    def start(self, users_key: str | None, job_name: str | None) -> dict[str, Any]:
        event: dict[str, Any] = {"action": "start"}
        if users_key:
            event["users_key"] = users_key
        if job_name:
            event["job_name"] = job_name
        response = self._client("lambda").invoke(
            FunctionName=self.batch.function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        raw = response["Payload"].read()
        try:
            payload = json.loads(raw or b"null")
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        if response.get("FunctionError"):
            message = payload.get("errorMessage") if isinstance(payload, dict) else payload
            raise BackfillError(f"{self.batch.function_name} failed: {message}")
        if isinstance(payload, dict) and payload.get("error"):
            raise BackfillError(f"{self.batch.function_name}: {payload['error']}")
        if not isinstance(payload, dict) or not payload.get("jobName"):
            raise BackfillError(f"{self.batch.function_name} answered {str(payload)[:200]!r}")
        return payload

    def _summaries(self) -> Iterator[dict[str, Any]]:
        client = self._client("personalize")
        token: str | None = None
        for _ in range(LIST_PAGES):
            args: dict[str, Any] = {"maxResults": 100}
            if token:
                args["nextToken"] = token
            page = client.list_batch_inference_jobs(**args)
            yield from page.get("batchInferenceJobs", [])
            token = page.get("nextToken")
            if not token:
                return

    def describe(self, job_name: str) -> dict[str, Any] | None:
        for summary in self._summaries():
            if summary.get("jobName") == job_name:
                arn = summary["batchInferenceJobArn"]
                described = self._client("personalize").describe_batch_inference_job(
                    batchInferenceJobArn=arn
                )
                return dict(described["batchInferenceJob"])
        return None

    def latest_job(self) -> str | None:
        """The newest job whose output goes to this bucket's output/ prefix."""
        ours = f"s3://{self.bucket}/output/"
        client = self._client("personalize")
        summaries = sorted(
            self._summaries(), key=lambda s: _epoch(s.get("creationDateTime")), reverse=True
        )
        for summary in summaries[:LATEST_SCAN]:
            job = client.describe_batch_inference_job(
                batchInferenceJobArn=summary["batchInferenceJobArn"]
            )["batchInferenceJob"]
            path = job.get("jobOutput", {}).get("s3DataDestination", {}).get("path", "")
            if str(path).startswith(ours):
                return str(job["jobName"])
        return None

    def read_json(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            body = self._client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        try:
            value = json.loads(body)
        except ValueError:
            raise BackfillError(f"s3://{self.bucket}/{key} is not JSON") from None
        return value if isinstance(value, dict) else None

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self._client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(str(o["Key"]) for o in page.get("Contents", []))
        return keys

    def dead_lettered(self, job_name: str) -> int:
        """Chunk messages of this job in the dead-letter queue, peeked at (visibility 0, so
        they stay where they are for `bundle dlq` and a redrive)."""
        url = self.batch.dead_letter_queue_url
        if not url:
            return 0
        sqs = self._client("sqs")
        depth = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        if int(depth.get("ApproximateNumberOfMessages", 0)) == 0:
            return 0
        seen: dict[str, bool] = {}
        for _ in range(DLQ_ROUNDS):
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in messages:
                try:
                    body = json.loads(message.get("Body") or "{}")
                except ValueError:
                    body = {}
                seen[message["MessageId"]] = isinstance(body, dict) and body.get("job") == job_name
        return sum(seen.values())


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return 0.0


def make_backend(target: Target) -> Backend:
    if target.batch is None:
        where = "the sandbox" if target.kind == "sandbox" else "the deployed stack"
        hint = (
            "restart `make sandbox` from this branch"
            if target.kind == "sandbox"
            else "set enable_batch_traits = true and apply"
        )
        raise BackfillError(f"{where} has no batch_traits module ({hint})")
    return AwsBackend(target, target.batch)


# -- the logic -----------------------------------------------------------------------------


def check_users_file(path: Path) -> int:
    """Validates a users file (JSON lines of {"userId": "..."}); returns the user count."""
    try:
        users = sum(1 for _ in users_in(path))
    except SeedError as exc:  # the one reader of the format, bundle_cli.seed's
        raise BackfillError(str(exc)) from None
    if users == 0:
        raise BackfillError(f"{path} holds no users")
    return users


def default_job_name(function_name: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    prefix = function_name.removesuffix("-batch-traits")[: 63 - len(stamp) - 1]
    return f"{prefix}-{stamp}"


def progress(backend: Backend, job: str) -> Progress:
    described = backend.describe(job)
    if described is None:
        raise BackfillError(f"no batch inference job named {job}")
    result = Progress(
        job=job,
        job_status=described.get("status"),
        failure_reason=described.get("failureReason"),
    )
    report = backend.read_json(f"reports/{job}.json")
    # One plan per output file of the job, its chunk states beside it (state/<job>/<file>/).
    files = _job_files(backend, job)
    etags: dict[str, tuple[Any, Any]] = {}  # file id -> the plan's (ETag, version)
    for fid, (plan_key, _) in files.items():
        plan = backend.read_json(plan_key) if plan_key is not None else None
        if plan is not None:
            result.planned = True
            result.chunks_total += _int(plan.get("chunks"))
            etags[fid] = (plan.get("etag"), plan.get("version") or plan.get("etag"))
    if report is not None:
        result.report = report
        result.planned = True
        result.counts = report_counts(report)
        result.users_written = _int(report.get("users_written"))
        result.chunks_total = _int(report.get("chunks_total")) or result.chunks_total
        result.chunks_done = _int(report.get("chunks_done"))
        return result
    done = 0
    counts: dict[str, int] = {}
    for fid, (_, chunk_keys) in files.items():
        for key in chunk_keys:
            chunk = backend.read_json(key) or {}
            if chunk.get("status") != "done":
                continue
            if (
                fid in etags
                and (chunk.get("etag"), chunk.get("version") or chunk.get("etag")) != etags[fid]
            ):
                continue  # a chunk of an older object under the same key
            done += 1
            for reason, value in report_counts(chunk).items():
                counts[reason] = counts.get(reason, 0) + value
    result.chunks_done = done
    result.counts = counts
    result.users_written = counts.get(WRITTEN, 0)
    result.dead_lettered = backend.dead_lettered(job)
    return result


def _job_files(backend: Backend, job: str) -> dict[str, tuple[str | None, list[str]]]:
    """Each output file's plan key (None before it is written) and chunk state keys."""
    prefix = f"state/{job}/"
    files: dict[str, tuple[str | None, list[str]]] = {}
    for key in backend.list_keys(prefix):
        match = _STATE_KEY.match(key[len(prefix) :])
        if match is None:
            continue
        plan, chunk_keys = files.get(match["file"], (None, []))
        if match["index"] is None:
            plan = key
        else:
            chunk_keys = [*chunk_keys, key]
        files[match["file"]] = (plan, chunk_keys)
    return files


def report_counts(document: dict[str, Any]) -> dict[str, int]:
    """Counts by reason: a chunk state's ``counts`` or a report's ``by_reason``."""
    source = document.get("counts")
    if not isinstance(source, dict):
        source = document.get("by_reason")
    if not isinstance(source, dict):
        return {}
    return {
        str(k): v
        for k, v in source.items()
        if isinstance(v, int) and not isinstance(v, bool) and str(k) != "lines"
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- the commands --------------------------------------------------------------------------


def _out(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stdout, flush=True)


def start(target: Target, args: argparse.Namespace, backend: Backend | None = None) -> int:
    backend = backend or make_backend(target)
    job_name: str | None = args.job_name
    if job_name is not None and not JOB_NAME.fullmatch(job_name):
        raise BackfillError(
            f"--job-name {job_name!r}: 1 to 63 of A-Z a-z 0-9 - _, starting with a letter or digit"
        )
    if job_name is not None and target.batch is not None:
        # The function may start only jobs named after its deployment (<name_prefix>-...).
        prefix = target.batch.function_name.removesuffix("-batch-traits") + "-"
        if not job_name.startswith(prefix):
            raise BackfillError(f"--job-name {job_name!r}: must start with {prefix!r}")
    users_key: str | None = None
    if args.users_file is not None:
        users = check_users_file(args.users_file)
        if job_name is None and target.batch is not None:
            job_name = default_job_name(target.batch.function_name)
        job_name = job_name or default_job_name("bundle")
        users_key = f"input/{job_name}/users.json"
        backend.upload(users_key, args.users_file)
        _out(f"uploaded {users} users to s3://{backend.bucket}/{users_key}", sys.stderr)
    elif not backend.object_exists(backend.users_key):
        raise BackfillError(
            f"no users file at s3://{backend.bucket}/{backend.users_key}: upload one there "
            "or pass --users-file"
        )
    started = backend.start(users_key, job_name)
    if getattr(args, "json", False):
        _out(json.dumps(started, sort_keys=True))
    else:
        _out(f"started batch inference job {started['jobName']}: {started.get('jobArn', '')}")
        _out(f"follow it with: scripts/bundle backfill status {started['jobName']} --wait")
    return 0


def _job(backend: Backend, args: argparse.Namespace) -> str:
    if args.job:
        return str(args.job)
    latest = backend.latest_job()
    if latest is None:
        raise BackfillError(f"no batch inference job writes to s3://{backend.bucket}/output/ yet")
    return latest


class Bar:
    """One redrawn line on a terminal; elsewhere a line whenever the progress changes."""

    WIDTH = 30

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.quiet = quiet
        self._last = ""

    def show(self, p: Progress) -> None:
        text = p.line()
        if self.tty:
            if p.planned and p.chunks_total:
                filled = round(self.WIDTH * p.chunks_done / p.chunks_total)
                text = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] " + text
            self.stream.write("\r\x1b[2K" + text)
            self.stream.flush()
        elif not self.quiet and text != self._last:
            self.stream.write(text + "\n")
            self.stream.flush()
        self._last = text

    def close(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()
        self._last = ""


def status(
    target: Target,
    args: argparse.Namespace,
    backend: Backend | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    backend = backend or make_backend(target)
    job = _job(backend, args)
    bar = Bar(sys.stderr, quiet=bool(args.json))
    deadline = clock() + float(args.timeout)
    try:
        while True:
            current = progress(backend, job)
            if not args.wait or current.state != "running":
                break
            bar.show(current)
            if clock() >= deadline:
                bar.close()
                if args.json:
                    _out(json.dumps(current.as_json(), sort_keys=True))
                raise BackfillError(f"job {job} still running after {args.timeout:g} s")
            sleep(float(args.poll))
    finally:
        bar.close()
    if args.json:
        _out(json.dumps(current.as_json(), sort_keys=True))
    else:
        _out(current.line())
        if current.report is not None:
            for text in summary_lines(current.report):
                _out(text)
    if current.state == "failed":
        raise BackfillError(f"job {job}: {current.why_failed}")
    return 0


def report(target: Target, args: argparse.Namespace, backend: Backend | None = None) -> int:
    backend = backend or make_backend(target)
    job = _job(backend, args)
    document = backend.read_json(f"reports/{job}.json")
    if document is None:
        current = progress(backend, job)
        raise BackfillError(f"no report yet for job {job} ({current.line().split(': ', 1)[1]})")
    if args.json:
        _out(json.dumps(document, sort_keys=True))
    else:
        _out(f"job {job}")
        for text in summary_lines(document):
            _out(text)
    return 0


def summary_lines(document: dict[str, Any]) -> list[str]:
    counts = report_counts(document)
    failed = {k: v for k, v in counts.items() if k not in NOT_FAILED}
    lines = [
        f"  lines           {_int(document.get('lines'))}",
        f"  users written   {counts.get(WRITTEN, 0)}",
        f"  skipped         {counts.get(SKIPPED, 0)} (no items)",
        f"  failed          {sum(failed.values())}",
    ]
    lines += [f"    {reason:<20} {value}" for reason, value in sorted(failed.items())]
    ranges = document.get("failed_ranges")
    if isinstance(ranges, list) and ranges:
        lines.append(f"  failed chunks   {len(ranges)} (byte ranges in the report: --json)")
    return lines
