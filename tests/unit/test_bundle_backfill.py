"""`bundle backfill start|status|report` against a fake backend (no I/O): the contract §8
--json shape, exit codes, the users-file checks, progress and the summary."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from bundle_cli import backfill, main
from bundle_cli.target import BatchTarget, Target

BUCKET = "shop-batch-traits"


class FakeBackend:
    bucket = BUCKET
    users_key = "input/users.json"

    def __init__(self) -> None:
        self.objects: dict[str, Any] = {}
        self.uploads: dict[str, bytes] = {}
        self.started: list[tuple[str | None, str | None]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.dlq: dict[str, int] = {}
        self.on_describe: list[Any] = []  # callables run on each describe (a job advancing)

    def object_exists(self, key: str) -> bool:
        return key in self.objects or key in self.uploads

    def upload(self, key: str, path: Path) -> None:
        self.uploads[key] = path.read_bytes()

    def start(self, users_key: str | None, job_name: str | None) -> dict[str, Any]:
        self.started.append((users_key, job_name))
        name = job_name or "shop-20260101T000000"
        self.jobs[name] = {"jobName": name, "status": "CREATE PENDING"}
        return {
            "jobName": name,
            "jobArn": f"arn:aws:personalize:eu-west-1:1:batch-inference-job/{name}",
        }

    def describe(self, job_name: str) -> dict[str, Any] | None:
        if self.on_describe:
            self.on_describe.pop(0)()
        return self.jobs.get(job_name)

    def latest_job(self) -> str | None:
        return next(reversed(self.jobs), None)

    def read_json(self, key: str) -> dict[str, Any] | None:
        value = self.objects.get(key)
        return dict(value) if isinstance(value, dict) else None

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def dead_lettered(self, job_name: str) -> int:
        return self.dlq.get(job_name, 0)


TARGET = Target(
    kind="stack",
    region="eu-west-1",
    stream_name="s",
    dead_letter_queue_url="d",
    on_failure_queue_url="f",
    api_url=None,
    api_key=None,
    write_key_parameter=None,
    profile_token_parameter=None,
    batch=BatchTarget(BUCKET, "input/users.json", "shop-batch-traits", "q", "dlq"),
)


def _run(argv: list[str], fake: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(main, "resolve", lambda args: TARGET)
    monkeypatch.setattr(backfill, "make_backend", lambda target: fake)
    monkeypatch.setattr(backfill.time, "sleep", lambda s: None)
    return main.main(argv)


def _file(name: str, output: str = "users.json.out") -> str:
    """The file id of output/<name>/<output> (functions/batch_traits/backfill/chunks.py)."""
    return hashlib.sha1(f"output/{name}/{output}".encode(), usedforsecurity=False).hexdigest()[:12]


def _job(
    fake: FakeBackend,
    name: str,
    status: str,
    chunks: int | None = None,
    output: str = "users.json.out",
    etag: str = '"e1"',
) -> None:
    fake.jobs[name] = {"jobName": name, "status": status}
    if chunks is not None:
        fake.objects[f"state/{name}/{_file(name, output)}/plan.json"] = {
            "job": name,
            "key": f"output/{name}/{output}",
            "etag": etag,
            "chunks": chunks,
        }


def _chunk(
    fake: FakeBackend,
    name: str,
    index: int,
    status: str = "done",
    output: str = "users.json.out",
    etag: str = '"e1"',
    **counts: int,
) -> None:
    """A chunk state object as functions/batch_traits writes it (its object's version is its
    ETag in a bucket without versioning)."""
    version = hashlib.sha1(etag.encode(), usedforsecurity=False).hexdigest()[:12]
    fake.objects[f"state/{name}/{_file(name, output)}/{version}/chunks/{index}.json"] = {
        "v": 1,
        "job": name,
        "key": f"output/{name}/{output}",
        "etag": etag,
        "version": etag,
        "index": index,
        "status": status,
        "counts": {"lines": sum(counts.values()), **counts},
    }


def _report(
    fake: FakeBackend,
    name: str,
    chunks: int,
    failed_ranges: list[dict[str, Any]] | None = None,
    **by_reason: int,
) -> dict[str, Any]:
    """A job report as functions/batch_traits writes it (chunks.report)."""
    reasons = {
        "written": 0,
        "skipped_no_items": 0,
        "failed_error_line": 0,
        "undecodable": 0,
        "blank": 0,
        "segment_failed": 0,
        "profile_failed": 0,
        **by_reason,
    }
    failed = failed_ranges or []
    report = {
        "v": 1, "job": name, "status": "partial" if failed else "complete",
        "chunks_total": chunks, "chunks_done": chunks - len(failed), "chunks_failed": len(failed),
        "failed_ranges": failed, "lines": sum(reasons.values()),
        "users_written": reasons["written"], "users_skipped": reasons["skipped_no_items"],
        "users_failed": reasons["failed_error_line"] + reasons["undecodable"]
        + reasons["segment_failed"] + reasons["profile_failed"],
        "blank_lines": reasons["blank"], "by_reason": reasons,
    }  # fmt: skip
    fake.objects[f"reports/{name}.json"] = report
    return report


def test_start_uploads_a_checked_users_file_and_starts_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "users.json"
    users.write_text('{"userId": "u1"}\n\n{"userId": "u2"}\n')
    fake = FakeBackend()
    args = ["backfill", "start", "--users-file", str(users), "--job-name", "shop-j1"]
    code = _run(args, fake, monkeypatch)
    assert code == 0
    assert fake.uploads == {"input/shop-j1/users.json": users.read_bytes()}
    assert fake.started == [("input/shop-j1/users.json", "shop-j1")]
    out, err = capsys.readouterr()
    assert "started batch inference job shop-j1" in out
    assert f"uploaded 2 users to s3://{BUCKET}/input/shop-j1/users.json" in err


def test_start_without_a_name_names_the_upload_after_the_deployment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = tmp_path / "users.json"
    users.write_text('{"userId": "u1"}\n')
    fake = FakeBackend()
    assert _run(["backfill", "start", "--users-file", str(users)], fake, monkeypatch) == 0
    ((key, name),) = fake.started
    assert (
        name is not None and name.startswith("shop-") and len(name) == len("shop-20260101T000000")
    )
    assert key == f"input/{name}/users.json"


@pytest.mark.parametrize(
    ("content", "line"),
    [('{"userId": "u1"}\nnot json\n', "line 2: not JSON"), ('{"userId": 3}\n', "line 1: expected")],
)
def test_a_bad_users_file_is_one_clear_line_and_nothing_starts(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: str,
    line: str,
) -> None:
    users = tmp_path / "users.json"
    users.write_text(content)
    fake = FakeBackend()
    assert _run(["backfill", "start", "--users-file", str(users)], fake, monkeypatch) == 1
    err = capsys.readouterr().err
    assert line in err and len(err.strip().splitlines()) == 1
    assert fake.uploads == {} and fake.started == []


def test_start_on_the_documented_key_needs_it_to_exist(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    assert _run(["backfill", "start"], fake, monkeypatch) == 1
    assert f"no users file at s3://{BUCKET}/input/users.json" in capsys.readouterr().err
    fake.objects["input/users.json"] = b"..."
    assert _run(["backfill", "start"], fake, monkeypatch) == 0
    assert fake.started == [(None, None)]


def test_status_json_is_the_contract_shape_while_running(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "ACTIVE", chunks=4)
    _chunk(fake, "j1", 0, written=50, skipped_no_items=1)
    _chunk(fake, "j1", 2, written=48, failed_error_line=2)
    _chunk(fake, "j1", 3, status="failed", written=10, segment_failed=40)  # not done
    assert _run(["backfill", "status", "j1", "--json"], fake, monkeypatch) == 0
    assert json.loads(capsys.readouterr().out) == {
        "state": "running",
        "chunks_done": 2,
        "chunks_total": 4,
        "users_written": 98,
        "job": "j1",
        "job_status": "ACTIVE",
    }


def test_status_counts_every_output_file_of_the_job_and_only_current_chunks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Personalize may write several .out files for one job; each has its plan and chunks.
    fake = FakeBackend()
    _job(fake, "j1", "ACTIVE", chunks=2, output="a.out")
    _job(fake, "j1", "ACTIVE", chunks=3, output="b.out", etag='"e2"')
    _chunk(fake, "j1", 0, output="a.out", written=5)
    _chunk(fake, "j1", 1, output="a.out", written=6)
    _chunk(fake, "j1", 0, output="b.out", etag='"e2"', written=7)
    _chunk(fake, "j1", 1, output="b.out", etag='"old"', written=100)  # an earlier upload's
    assert _run(["backfill", "status", "j1", "--json"], fake, monkeypatch) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["chunks_done"], shown["chunks_total"]) == ("running", 3, 5)
    assert shown["users_written"] == 18


def test_status_before_the_output_exists_is_running_with_no_chunks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "CREATE IN_PROGRESS")
    assert _run(["backfill", "status", "--json"], fake, monkeypatch) == 0  # latest job
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["chunks_total"], shown["job"]) == ("running", 0, "j1")


def test_status_wait_follows_the_job_and_prints_the_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "CREATE IN_PROGRESS")

    def output_appears() -> None:
        _job(fake, "j1", "ACTIVE", chunks=2)

    def first_chunk() -> None:
        _chunk(fake, "j1", 0, written=90)

    def finished() -> None:
        _chunk(fake, "j1", 1, written=100, failed_error_line=10)
        _report(fake, "j1", 2, written=190, failed_error_line=10)

    fake.on_describe = [lambda: None, output_appears, first_chunk, finished]
    assert _run(["backfill", "status", "j1", "--wait", "--poll", "0"], fake, monkeypatch) == 0
    out, err = capsys.readouterr()
    # Not a terminal: one line per change of progress on stderr, then the result on stdout.
    assert err.splitlines() == [
        "job j1: CREATE IN_PROGRESS (Personalize batch inference running)",
        "job j1: ACTIVE, chunks 0/2, users written 0",
        "job j1: ACTIVE, chunks 1/2, users written 90",
    ]
    assert "job j1: ACTIVE, chunks 2/2, users written 190" in out
    assert (
        "users written   190" in out and "failed_error_line" in out and "failed          10" in out
    )


def test_status_wait_json_prints_only_the_final_object(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "ACTIVE", chunks=1)

    def finished() -> None:
        _report(fake, "j1", 1, written=7)

    fake.on_describe = [lambda: None, finished]
    assert _run(["backfill", "status", "j1", "--wait", "--json"], fake, monkeypatch) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "state": "done",
        "chunks_done": 1,
        "chunks_total": 1,
        "users_written": 7,
        "job": "j1",
        "job_status": "ACTIVE",
    }
    assert err == ""


def test_a_failed_job_is_state_failed_and_exit_1_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "CREATE FAILED")
    fake.jobs["j1"]["failureReason"] = "S3 NoSuchKey: input/users.json"
    assert _run(["backfill", "status", "j1", "--json", "--wait"], fake, monkeypatch) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["state"] == "failed"
    assert err.strip() == (
        "bundle backfill: job j1: the batch inference job failed: S3 NoSuchKey: input/users.json"
    )


def test_a_dead_lettered_chunk_fails_the_job_instead_of_waiting_forever(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "ACTIVE", chunks=3)
    _chunk(fake, "j1", 0, written=5)
    fake.dlq["j1"] = 1
    assert _run(["backfill", "status", "j1", "--json", "--wait"], fake, monkeypatch) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["state"] == "failed"
    assert "1 chunk(s) of this job are in the dead-letter queue" in err


def test_a_partial_report_is_failed_and_names_the_range(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "ACTIVE", chunks=2)
    failed = [{"index": 1, "start": 4096, "end": 8192, "reason": "segment 503"}]
    _report(fake, "j1", 2, failed, written=50, segment_failed=50)
    assert _run(["backfill", "status", "j1", "--json"], fake, monkeypatch) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "state": "failed", "chunks_done": 1, "chunks_total": 2, "users_written": 50,
        "job": "j1", "job_status": "ACTIVE",
    }  # fmt: skip
    assert "1 chunk(s) failed for good (first: index 1, bytes 4096-8192: segment 503)" in err


def test_wait_is_bounded(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "ACTIVE", chunks=3)
    ticks = iter(range(1000))
    args = argparse.Namespace(job="j1", json=True, wait=True, timeout=5.0, poll=1.0)
    with pytest.raises(backfill.BackfillError, match="still running after 5 s"):
        backfill.status(TARGET, args, fake, clock=lambda: float(next(ticks)), sleep=lambda s: None)
    assert json.loads(capsys.readouterr().out)["state"] == "running"


def test_unknown_job_and_no_jobs_are_clear(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    assert _run(["backfill", "status"], fake, monkeypatch) == 1
    assert f"no batch inference job writes to s3://{BUCKET}/output/ yet" in capsys.readouterr().err
    assert _run(["backfill", "status", "nope"], fake, monkeypatch) == 1
    assert "no batch inference job named nope" in capsys.readouterr().err


def test_report_prints_counts_by_reason_or_says_it_is_not_ready(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    _job(fake, "j1", "ACTIVE", chunks=2)
    _chunk(fake, "j1", 0, written=3)
    assert _run(["backfill", "report", "j1"], fake, monkeypatch) == 1
    assert (
        "no report yet for job j1 (ACTIVE, chunks 1/2, users written 3)" in capsys.readouterr().err
    )
    report = _report(fake, "j1", 2, written=5, skipped_no_items=1, undecodable=2, profile_failed=1)
    assert _run(["backfill", "report", "j1", "--json"], fake, monkeypatch) == 0
    assert json.loads(capsys.readouterr().out) == report
    assert _run(["backfill", "report"], fake, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "users written   5" in out and "skipped         1" in out
    assert "failed          3" in out and "undecodable" in out
    assert "profile_failed       1" in out  # one user's Profile API refusal


def test_a_target_without_the_module_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    with pytest.raises(backfill.BackfillError, match="enable_batch_traits = true"):
        backfill.make_backend(replace(TARGET, batch=None))


def test_job_names_are_checked_before_anything_happens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeBackend()
    assert _run(["backfill", "start", "--job-name=-bad"], fake, monkeypatch) == 1
    assert "--job-name '-bad'" in capsys.readouterr().err and fake.started == []
    # Another deployment's name: the function's role may start only shop-... jobs.
    assert _run(["backfill", "start", "--job-name=other-1"], fake, monkeypatch) == 1
    assert "must start with 'shop-'" in capsys.readouterr().err and fake.started == []


@pytest.mark.parametrize("action", ["start", "status", "report"])
def test_each_backfill_command_has_help_with_the_target_options(
    action: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main.main(["backfill", action, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "--sandbox" in out and "--terraform-dir" in out
    assert ("--users-file" in out) == (action == "start")
    assert ("--wait" in out) == (action == "status")


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    stream = _Tty()
    bar = backfill.Bar(stream, quiet=True)  # --json: still a bar on a terminal
    shown = backfill.Progress(job="j1", job_status="ACTIVE", planned=True, chunks_total=4)
    shown.chunks_done = 1
    bar.show(shown)
    shown.chunks_done = 4
    bar.show(shown)
    bar.close()
    bar.close()  # once only
    frames = stream.getvalue().split("\r\x1b[2K")[1:]
    assert frames[0].startswith("[" + "#" * 8 + "." * 22 + "] job j1: ACTIVE, chunks 1/4")
    assert frames[1] == "[" + "#" * 30 + "] job j1: ACTIVE, chunks 4/4, users written 0\n"
