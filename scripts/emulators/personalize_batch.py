"""Amazon Personalize batch inference for the emulator: the control-plane operations
(``personalize`` service, JSON 1.1 protocol, ``X-Amz-Target: AmazonPersonalize.<Op>``)
CreateBatchInferenceJob, DescribeBatchInferenceJob, ListBatchInferenceJobs and
DescribeCampaign, and one bounded background worker that runs the jobs.

A job reads its input (JSON lines of ``{"userId": ...}``, or ``{"itemId": ...}`` for a
related-items solution) from S3 (moto's server in the sandbox and the tests), and writes
``<input name>.out`` under the output path in Personalize's format, one line per input line::

    {"input": {"userId": "u1"},
     "output": {"recommendedItems": [...], "scores": [...]}, "error": null}

An injected error (the ``batch_error_rate`` / ``batch_error_users`` controls) or an input line
that cannot be used gives an error line instead: ``"output": null, "error": "<reason>"``.
Status: CREATE PENDING -> CREATE IN_PROGRESS -> ACTIVE, or CREATE FAILED with failureReason.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

# Real quota: pending or in-progress batch inference jobs per account and region.
MAX_RUNNING_JOBS = 5
MAX_NUM_RESULTS = 500
DEFAULT_NUM_RESULTS = 25
MAX_LIST_RESULTS = 100
_JOB_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9\-_]*")
_ARN = re.compile(r"arn:([a-z\d-]+):personalize:.*:.*:.+")  # the API's ARN pattern
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
_S3_PATH = re.compile(r"s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.*)")
SPOOL_BYTES = 8 * 1024 * 1024  # output spills to a temporary file past this

PENDING = "CREATE PENDING"
IN_PROGRESS = "CREATE IN_PROGRESS"
ACTIVE = "ACTIVE"
FAILED = "CREATE FAILED"


class BatchApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# (user or item id, filter values or None, num results, filter ARN) -> ranked (item, score)
Rank = Callable[[str, str, Mapping[str, str] | None, int, str | None], list[tuple[str, float]]]


@dataclass
class Job:
    arn: str
    name: str
    solution_version_arn: str
    kind: str
    filter_arn: str | None
    num_results: int
    input_path: str
    output_path: str
    kms_key_arn: str | None
    role_arn: str
    created: float
    updated: float
    status: str = PENDING
    failure_reason: str | None = None
    # Emulator-only counts, for tests and the sandbox (GET /_emulator/batch-jobs).
    counts: dict[str, int] = field(
        default_factory=lambda: {"lines": 0, "results": 0, "error_lines": 0}
    )
    output_key: str | None = None

    def describe(self) -> dict[str, Any]:
        job: dict[str, Any] = {
            "jobName": self.name,
            "batchInferenceJobArn": self.arn,
            "solutionVersionArn": self.solution_version_arn,
            "numResults": self.num_results,
            "jobInput": {"s3DataSource": {"path": self.input_path}},
            "jobOutput": {"s3DataDestination": {"path": self.output_path}},
            "roleArn": self.role_arn,
            "batchInferenceJobMode": "BATCH_INFERENCE",
            "status": self.status,
            "creationDateTime": self.created,
            "lastUpdatedDateTime": self.updated,
        }
        if self.kms_key_arn:
            job["jobOutput"]["s3DataDestination"]["kmsKeyArn"] = self.kms_key_arn
        if self.filter_arn:
            job["filterArn"] = self.filter_arn
        if self.failure_reason:
            job["failureReason"] = self.failure_reason
        return job

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "batchInferenceJobArn": self.arn,
            "jobName": self.name,
            "status": self.status,
            "creationDateTime": self.created,
            "lastUpdatedDateTime": self.updated,
            "solutionVersionArn": self.solution_version_arn,
            "batchInferenceJobMode": "BATCH_INFERENCE",
        }
        if self.failure_reason:
            out["failureReason"] = self.failure_reason
        return out


class BatchJobs:
    """The jobs of one emulator and the single worker thread that runs them in order."""

    def __init__(
        self,
        *,
        region: str,
        account: str,
        solution_versions: Mapping[str, str],
        campaigns: Mapping[str, str],
        filter_exists: Callable[[str], bool],
        rank: Rank,
        is_error: Callable[[str], bool],
        s3_endpoint_url: str | None = None,
        job_delay_s: Callable[[], float] = lambda: 0.0,
        max_running: int = MAX_RUNNING_JOBS,
    ) -> None:
        self.region = region
        self.account = account
        self.solution_versions = dict(solution_versions)  # ARN -> recipe kind
        self.campaigns = dict(campaigns)  # campaign ARN -> solution version ARN
        self._filter_exists = filter_exists
        self._rank = rank
        self._is_error = is_error
        self._job_delay_s = job_delay_s
        self.s3_endpoint_url = s3_endpoint_url
        self.max_running = max_running
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._running = threading.Event()  # cleared by pause(): the worker holds jobs pending
        self._running.set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._s3: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._work, name="personalize-batch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        self._running.set()
        self._queue.put(None)
        thread.join(timeout=10)

    def pause(self) -> None:
        """Hold new jobs in CREATE PENDING (tests of the running-jobs quota)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    # -- operations --------------------------------------------------------------------------

    def describe_campaign(self, body: Mapping[str, Any]) -> dict[str, Any]:
        arn = _required_str(body, "campaignArn")
        if not _ARN.fullmatch(arn):
            raise BatchApiError(
                "InvalidInputException",
                "1 validation error detected: Value at 'campaignArn' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: "
                "arn:([a-z\\d-]+):personalize:.*:.*:.+",
            )
        # Any other ARN (a recommender's too) names no campaign.
        version = self.campaigns.get(arn)
        if version is None:
            raise BatchApiError("ResourceNotFoundException", f"Campaign {arn} does not exist.")
        now = time.time()
        return {
            "campaign": {
                "name": arn.rsplit("/", 1)[-1],
                "campaignArn": arn,
                "solutionVersionArn": version,
                "minProvisionedTPS": 1,
                "status": "ACTIVE",
                "creationDateTime": now,
                "lastUpdatedDateTime": now,
            }
        }

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        name = _required_str(body, "jobName")
        if not 1 <= len(name) <= 63 or not _JOB_NAME.fullmatch(name):
            raise BatchApiError(
                "InvalidInputException",
                "1 validation error detected: Value at 'jobName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9\\-_]*"
                " and length 1 to 63",
            )
        version = _required_str(body, "solutionVersionArn")
        kind = self.solution_versions.get(version)
        if kind is None:
            raise BatchApiError(
                "ResourceNotFoundException", f"Solution version {version} does not exist."
            )
        if kind not in ("USER_PERSONALIZATION", "RELATED_ITEMS"):
            raise BatchApiError(
                "InvalidInputException", f"Batch inference is not supported for {kind} recipes."
            )
        filter_arn = body.get("filterArn")
        if filter_arn is not None:
            if not isinstance(filter_arn, str) or not filter_arn:
                raise BatchApiError("InvalidInputException", "filterArn must be a string.")
            if not self._filter_exists(filter_arn):
                raise BatchApiError(
                    "ResourceNotFoundException", f"Filter {filter_arn} does not exist."
                )
        num_results = body.get("numResults", DEFAULT_NUM_RESULTS)
        if (
            isinstance(num_results, bool)
            or not isinstance(num_results, int)
            or not 1 <= num_results <= MAX_NUM_RESULTS
        ):
            raise BatchApiError(
                "InvalidInputException", f"numResults must be an integer 1 to {MAX_NUM_RESULTS}."
            )
        role = _required_str(body, "roleArn")
        if not _ROLE_ARN.fullmatch(role):
            raise BatchApiError("InvalidInputException", f"roleArn {role} is not an IAM role ARN.")
        input_path = _s3_config(body, "jobInput", "s3DataSource")[0]
        output_path, kms = _s3_config(body, "jobOutput", "s3DataDestination")
        arn = f"arn:aws:personalize:{self.region}:{self.account}:batch-inference-job/{name}"
        now = time.time()
        job = Job(
            arn=arn,
            name=name,
            solution_version_arn=version,
            kind=kind,
            filter_arn=filter_arn,
            num_results=num_results,
            input_path=input_path,
            output_path=output_path,
            kms_key_arn=kms,
            role_arn=role,
            created=now,
            updated=now,
        )
        with self._lock:
            if arn in self._jobs:
                raise BatchApiError(
                    "ResourceAlreadyExistsException", f"Batch inference job {name} already exists."
                )
            running = sum(1 for j in self._jobs.values() if j.status in (PENDING, IN_PROGRESS))
            if running >= self.max_running:
                raise BatchApiError(
                    "LimitExceededException",
                    f"You have reached the limit of {self.max_running} pending or in-progress "
                    "batch inference jobs.",
                )
            self._jobs[arn] = job
        self._queue.put(arn)
        return {"batchInferenceJobArn": arn}

    def describe(self, body: Mapping[str, Any]) -> dict[str, Any]:
        arn = _required_str(body, "batchInferenceJobArn")
        with self._lock:
            job = self._jobs.get(arn)
            if job is None:
                raise BatchApiError(
                    "ResourceNotFoundException", f"Batch inference job {arn} does not exist."
                )
            return {"batchInferenceJob": job.describe()}

    def list(self, body: Mapping[str, Any]) -> dict[str, Any]:
        version = body.get("solutionVersionArn")
        max_results = body.get("maxResults", MAX_LIST_RESULTS)
        if (
            isinstance(max_results, bool)
            or not isinstance(max_results, int)
            or not 1 <= max_results <= MAX_LIST_RESULTS
        ):
            raise BatchApiError("InvalidInputException", "maxResults must be 1 to 100.")
        token = body.get("nextToken")
        start = 0
        if token is not None:
            if not isinstance(token, str) or not token.isdigit():
                raise BatchApiError("InvalidNextTokenException", "The next token is invalid.")
            start = int(token)
        with self._lock:
            # Newest first, as the service lists them.
            jobs = sorted(self._jobs.values(), key=lambda j: (-j.created, j.name))
            if version is not None:
                jobs = [j for j in jobs if j.solution_version_arn == version]
            page = [j.summary() for j in jobs[start : start + max_results]]
        out: dict[str, Any] = {"batchInferenceJobs": page}
        if start + max_results < len(jobs):
            out["nextToken"] = str(start + max_results)
        return out

    def snapshot(self) -> dict[str, Any]:
        """Emulator-only view: each job's status, output key and line counts."""
        with self._lock:
            return {
                j.name: {
                    "arn": j.arn,
                    "status": j.status,
                    "failure_reason": j.failure_reason,
                    "output_key": j.output_key,
                    **j.counts,
                }
                for j in self._jobs.values()
            }

    # -- the worker --------------------------------------------------------------------------

    def _set(self, job: Job, status: str, reason: str | None = None) -> None:
        with self._lock:
            job.status = status
            job.failure_reason = reason
            job.updated = time.time()

    def _work(self) -> None:
        while not self._stop.is_set():
            arn = self._queue.get()
            if arn is None:
                return
            while not self._running.wait(0.2):
                if self._stop.is_set():
                    return
            with self._lock:
                job = self._jobs.get(arn)
            if job is None:
                continue
            self._set(job, IN_PROGRESS)
            if self._stop.wait(self._job_delay_s()):  # a job that takes its time (controls)
                self._set(job, FAILED, "the emulator stopped while the job ran")
                return
            try:
                self._run(job)
            except Exception as exc:  # the job fails visibly; the worker goes on
                self._set(job, FAILED, _reason(exc))
            else:
                self._set(job, ACTIVE)

    def _client(self) -> Any:
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            kwargs: dict[str, Any] = {
                "region_name": self.region,
                "config": Config(retries={"mode": "standard", "max_attempts": 3}),
            }
            if self.s3_endpoint_url:
                kwargs.update(
                    endpoint_url=self.s3_endpoint_url,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106 - moto accepts any
                )
            self._s3 = boto3.client("s3", **kwargs)
        return self._s3

    def _run(self, job: Job) -> None:
        s3 = self._client()
        in_bucket, in_key = _split(job.input_path)
        out_bucket, out_prefix = _split(job.output_path)
        if out_prefix and not out_prefix.endswith("/"):
            out_prefix += "/"
        out_key = f"{out_prefix}{in_key.rsplit('/', 1)[-1]}.out"
        body = s3.get_object(Bucket=in_bucket, Key=in_key)["Body"]
        field_name = "userId" if job.kind == "USER_PERSONALIZATION" else "itemId"
        counts = {"lines": 0, "results": 0, "error_lines": 0}
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as out:
            for raw in body.iter_lines():
                if not raw.strip():
                    continue
                counts["lines"] += 1
                line = self._line(job, raw, field_name)
                counts["error_lines" if line["error"] is not None else "results"] += 1
                out.write(json.dumps(line, separators=(",", ":")).encode() + b"\n")
                if self._stop.is_set():
                    raise RuntimeError("the emulator stopped while the job ran")
            out.seek(0)
            extra: dict[str, str] = {}
            if job.kms_key_arn:
                extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": job.kms_key_arn}
            s3.upload_fileobj(out, out_bucket, out_key, ExtraArgs=extra or None)
        with self._lock:
            job.counts = counts
            job.output_key = out_key

    def _line(self, job: Job, raw: bytes, field_name: str) -> dict[str, Any]:
        try:
            decoded = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            text = raw.decode("utf-8", "replace")
            return {"input": text, "output": None, "error": "Input line is not valid JSON."}
        subject = decoded.get(field_name) if isinstance(decoded, dict) else None
        if isinstance(subject, int) and not isinstance(subject, bool):
            subject = str(subject)
        if not isinstance(subject, str) or not 1 <= len(subject) <= 256:
            return {
                "input": decoded,
                "output": None,
                "error": f"Input line has no {field_name} of 1 to 256 characters.",
            }
        if self._is_error(subject):
            return {"input": decoded, "output": None, "error": "Internal error (injected)."}
        values = decoded.get("filterValues")
        filter_values = values if isinstance(values, dict) else None
        try:
            ranked = self._rank(job.kind, subject, filter_values, job.num_results, job.filter_arn)
        except BatchApiError as exc:
            return {"input": decoded, "output": None, "error": exc.message}
        return {
            "input": decoded,
            "output": {
                "recommendedItems": [item for item, _ in ranked],
                "scores": [score for _, score in ranked],
            },
            "error": None,
        }


def deterministic_error(
    seed: int, rate: float, users: AbstractSet[str] | None, subject: str
) -> bool:
    """Whether ``subject`` gets an injected error line: listed, or drawn at ``rate`` from a
    hash of (seed, id), so a test can predict it and a re-run gives the same lines."""
    if users and subject in users:
        return True
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{seed}\0{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def _required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise BatchApiError(
            "InvalidInputException",
            f"1 validation error detected: Value null at '{name}' failed to satisfy "
            "constraint: Member must not be null",
        )
    if len(value) > 256:
        raise BatchApiError("InvalidInputException", f"{name} must be at most 256 characters.")
    return value


def _s3_config(body: Mapping[str, Any], name: str, member: str) -> tuple[str, str | None]:
    config = body.get(name)
    source = config.get(member) if isinstance(config, dict) else None
    path = source.get("path") if isinstance(source, dict) else None
    if not isinstance(path, str) or not _S3_PATH.fullmatch(path):
        raise BatchApiError(
            "InvalidInputException", f"{name}.{member}.path must be an s3://bucket/key path."
        )
    kms = source.get("kmsKeyArn") if isinstance(source, dict) else None
    if kms is not None and not isinstance(kms, str):
        raise BatchApiError("InvalidInputException", f"{name}.{member}.kmsKeyArn is a string.")
    return path, kms or None


def _split(path: str) -> tuple[str, str]:
    match = _S3_PATH.fullmatch(path)
    assert match is not None  # validated on create
    return match.group(1), match.group(2)


def _reason(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {}) if hasattr(exc, "response") else {}
    if error:
        return f"S3 {error.get('Code')}: {error.get('Message') or exc}"
    return f"{type(exc).__name__}: {exc}"
