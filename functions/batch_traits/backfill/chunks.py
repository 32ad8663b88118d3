"""The chunk message (SQS), the per-chunk state object and the job report (S3): their
schemas, validation and keys. A chunk message names a byte range ``[start, end)`` of one
output file; a continuation carries the counts of the part already done."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backfill import parser

VERSION = 1
# Personalize job names: ^[a-zA-Z0-9][a-zA-Z0-9\-_]*, at most 63 characters.
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_OUTPUT_KEY = re.compile(r"^output/(?P<job>[A-Za-z0-9][A-Za-z0-9_-]{0,62})/[^/]+\.out$")

WRITTEN = "written"
SEGMENT_FAILED = "segment_failed"
# One user's Profile API read was refused for good (400, an unreadable answer): not written.
PROFILE_FAILED = "profile_failed"
# Every count a chunk keeps; "lines" is all the lines it owned.
COUNT_KEYS = (
    "lines",
    WRITTEN,
    parser.SKIPPED,
    parser.ERROR_LINE,
    parser.UNDECODABLE,
    parser.BLANK,
    SEGMENT_FAILED,
    PROFILE_FAILED,
)
FAILED_REASONS = (parser.ERROR_LINE, parser.UNDECODABLE, SEGMENT_FAILED, PROFILE_FAILED)


class BadMessage(ValueError):
    """A message that can never be processed (its reason is logged; SQS dead-letters it)."""


def job_of_output_key(key: str) -> str | None:
    """The job name of ``output/<job>/<name>.out``; None for any other key."""
    match = _OUTPUT_KEY.match(key)
    return match.group("job") if match else None


def file_id(key: str) -> str:
    """A short, stable name for one output file of a job (a job may have several)."""
    return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:12]


def version_id(version: str) -> str:
    """A short, stable name for one version of an output file (its S3 VersionId, or its
    ETag in a bucket without versioning)."""
    return hashlib.sha1(version.encode(), usedforsecurity=False).hexdigest()[:12]


def object_version(head: Mapping[str, Any]) -> str:
    """The version of the object a HeadObject (or GetObject) answer describes: its
    VersionId in a bucket that keeps versions, else its ETag (S3 answers no VersionId, or
    "null" for an object written while versioning was suspended)."""
    version = head.get("VersionId")
    if isinstance(version, str) and version and version != "null":
        return version
    return str(head["ETag"])


def plan_version(plan: Mapping[str, Any]) -> str:
    """The version a plan was split from (a plan from before versions were kept: its ETag)."""
    return str(plan.get("version") or plan.get("etag"))


def job_prefix(job: str) -> str:
    """Everything the write-back keeps for a job: ``state/<job>/<file id>/...``."""
    return f"state/{job}/"


def file_prefix(job: str, key: str) -> str:
    return f"{job_prefix(job)}{file_id(key)}/"


def plan_key(job: str, key: str) -> str:
    return f"{file_prefix(job, key)}plan.json"


def chunks_prefix(job: str, key: str, version: str) -> str:
    """The chunk states of ONE version of the file: a chunk of a replaced object writes
    under its own version and cannot touch the states of the object that replaced it."""
    return f"{file_prefix(job, key)}{version_id(version)}/chunks/"


def chunk_key(job: str, key: str, index: int, *, version: str) -> str:
    return f"{chunks_prefix(job, key, version)}{index}.json"


def report_key(job: str) -> str:
    return f"reports/{job}.json"


def ranges(size: int, chunk_bytes: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of at most ``chunk_bytes`` covering ``size`` bytes."""
    return [(start, min(start + chunk_bytes, size)) for start in range(0, size, chunk_bytes)]


@dataclass
class Counts:
    values: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))

    @classmethod
    def parse(cls, raw: Any) -> Counts:
        counts = cls()
        if raw is None:
            return counts
        if not isinstance(raw, dict) or set(raw) - set(COUNT_KEYS):
            raise BadMessage("counts must be an object of known counts")
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise BadMessage(f"count {name} must be a non-negative integer")
            counts.values[name] = value
        return counts

    def add(self, name: str, n: int = 1) -> None:
        self.values[name] += n

    def merge(self, other: Counts) -> None:
        for name, value in other.values.items():
            self.values[name] += value

    def copy(self) -> Counts:
        return Counts(dict(self.values))

    def minus(self, other: Counts | None) -> Counts:
        """These counts without ``other`` (a continuation's own part: without its carried)."""
        if other is None:
            return self.copy()
        return Counts({k: v - other.values.get(k, 0) for k, v in self.values.items()})

    def as_dict(self) -> dict[str, int]:
        return dict(self.values)


@dataclass(frozen=True)
class ChunkMessage:
    job: str
    bucket: str
    key: str
    etag: str
    index: int
    total: int
    start: int
    end: int
    carried: Counts | None = None  # a continuation: the counts of [original start, start)
    # The object's S3 VersionId (set by the splitter when the bucket keeps versions); None
    # for a message split without one, whose version is then its ETag.
    version_tag: str | None = None

    @property
    def version(self) -> str:
        """Which upload of the key this chunk is of: its messageIds and its state key."""
        return self.version_tag or self.etag

    def state_key(self) -> str:
        return chunk_key(self.job, self.key, self.index, version=self.version)

    def body(self) -> str:
        message: dict[str, Any] = {
            "v": VERSION,
            "job": self.job,
            "bucket": self.bucket,
            "key": self.key,
            "etag": self.etag,
            "index": self.index,
            "total": self.total,
            "start": self.start,
            "end": self.end,
        }
        if self.version_tag is not None:
            message["version"] = self.version_tag
        if self.carried is not None:
            message["carried"] = self.carried.as_dict()
        return json.dumps(message, separators=(",", ":"))

    def continuation(self, start: int, counts: Counts) -> ChunkMessage:
        return ChunkMessage(
            self.job, self.bucket, self.key, self.etag, self.index, self.total, start, self.end,
            counts, self.version_tag,
        )  # fmt: skip


def is_chunk_message(body: Any) -> bool:
    return isinstance(body, dict) and "v" in body and "index" in body


def parse_chunk(body: Mapping[str, Any]) -> ChunkMessage:
    if body.get("v") != VERSION:
        raise BadMessage(f"unsupported chunk message version {body.get('v')!r}")
    strings = {name: body.get(name) for name in ("job", "bucket", "key", "etag")}
    for name, value in strings.items():
        if not isinstance(value, str) or not value or len(value) > 1024:
            raise BadMessage(f"{name} must be a non-empty string")
    ints = {name: body.get(name) for name in ("index", "total", "start", "end")}
    for name, value in ints.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadMessage(f"{name} must be a non-negative integer")
    job = str(strings["job"])
    if not JOB_NAME.match(job):
        raise BadMessage("job is not a batch inference job name")
    if job_of_output_key(str(strings["key"])) != job:
        raise BadMessage("key is not this job's output file")
    index, total, start, end = (int(str(ints[n])) for n in ("index", "total", "start", "end"))
    if not index < total or not start <= end:
        raise BadMessage("need index < total and start <= end")
    version = body.get("version")
    if version is not None and (not isinstance(version, str) or not 0 < len(version) <= 1024):
        raise BadMessage("version must be a non-empty string")
    return ChunkMessage(
        job, str(strings["bucket"]), str(strings["key"]), str(strings["etag"]),
        index, total, start, end, Counts.parse(body.get("carried")) if "carried" in body else None,
        version,
    )  # fmt: skip


def chunk_state(
    message: ChunkMessage, status: str, counts: Counts, reason: str | None = None
) -> dict[str, Any]:
    """A finished chunk: ``done``, or ``failed`` (its last attempt; the range still to do is
    ``[start, end)`` of the message that failed, a continuation's start if it was one)."""
    state: dict[str, Any] = {
        "v": VERSION,
        "job": message.job,
        "key": message.key,
        "etag": message.etag,
        "version": message.version,
        "index": message.index,
        "total": message.total,
        "start": message.start,
        "end": message.end,
        "status": status,
        "counts": counts.as_dict(),
    }
    if reason is not None:
        state["reason"] = reason
    return state


def report(
    job: str, plans: Iterable[Mapping[str, Any]], states: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The job report from every output file's plan and every chunk's state object, all the
    files of the job together (deterministic: the same plans and states give the same
    report, so concurrent writers agree). ``source`` names the output file when the job has
    exactly one; ``sources`` lists them all."""
    total = Counts()
    failed: list[dict[str, Any]] = []
    done = 0
    ordered = sorted(states, key=lambda s: (str(s.get("key", "")), int(s.get("index", 0))))
    for state in ordered:
        total.merge(Counts.parse(state.get("counts")))
        if state.get("status") == "done":
            done += 1
        else:
            failed.append(
                {
                    "key": state.get("key"),
                    "index": state.get("index"),
                    "start": state.get("start"),
                    "end": state.get("end"),
                    "reason": state.get("reason"),
                }
            )
    sources = sorted(
        ({k: plan.get(k) for k in ("bucket", "key", "etag", "version", "size")} for plan in plans),
        key=lambda source: str(source.get("key")),
    )
    values = total.values
    return {
        "v": VERSION,
        "job": job,
        "status": "complete" if not failed else "partial",
        "source": sources[0] if len(sources) == 1 else None,
        "sources": sources,
        "chunks_total": len(ordered),
        "chunks_done": done,
        "chunks_failed": len(failed),
        "failed_ranges": failed,
        "lines": values["lines"],
        "users_written": values[WRITTEN],
        "users_skipped": values[parser.SKIPPED],
        "users_failed": sum(values[r] for r in FAILED_REASONS),
        "blank_lines": values[parser.BLANK],
        "by_reason": {k: values[k] for k in COUNT_KEYS if k != "lines"},
    }
