"""A sandbox (``python -m sandbox``) run as a test's subprocess: started in a session of its
own (so whatever it leaves can be killed as a group), waited for, stopped; the bounded
wait both need; and ``scripts/bundle --sandbox`` run against it as an operator runs it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[2]
BUNDLE = ROOT / "scripts" / "bundle"
T = TypeVar("T")


def poll(what: str, check: Callable[[], T | None], timeout_s: float, every_s: float = 0.2) -> T:
    """``check()``'s first value that is not None; an AssertionError naming ``what`` once
    ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)  # the polling interval of a bounded wait


def start_sandbox(args: Sequence[str], state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """``python -m sandbox --state-dir STATE_DIR ARGS``, its console written to ``log``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "scripts"), PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sandbox", "--state-dir", str(state_dir), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # the test can always kill what is left
        )


def wait_running(
    proc: subprocess.Popen[bytes], state_dir: Path, log: Path, timeout_s: float
) -> dict[str, Any]:
    """The sandbox's ``state.json`` once it says ``running``; fails with the console if the
    sandbox exits first."""

    def ready() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise AssertionError(f"sandbox exited early:\n{log.read_text()}")
        path = state_dir / "state.json"
        if not path.exists():
            return None
        state: dict[str, Any] = json.loads(path.read_text())
        return state if state.get("running") else None

    return poll("the sandbox to be ready", ready, timeout_s)


def stop(proc: subprocess.Popen[bytes], first: signal.Signals = signal.SIGKILL) -> None:
    """Stop the sandbox's process group if it still runs: ``first``, then SIGKILL if it has
    not ended within 15 s."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, first)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


@contextlib.contextmanager
def running_sandbox(
    args: Sequence[str],
    state_dir: Path,
    log: Path,
    timeout_s: float,
    first: signal.Signals = signal.SIGKILL,
) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, Any]]]:
    """A started and ready sandbox: (its process, its state); stopped on exit if a test has
    not stopped it itself."""
    proc = start_sandbox(args, state_dir, log)
    try:
        yield proc, wait_running(proc, state_dir, log, timeout_s)
    finally:
        stop(proc, first)


@contextlib.contextmanager
def sandbox_in(
    base: Path, args: Sequence[str], timeout_s: float = 60, first: signal.Signals = signal.SIGTERM
) -> Iterator[dict[str, Any]]:
    """:func:`running_sandbox` with its state in ``base/state`` and its console in
    ``base/console.log``: ``{"state": ..., "state_dir": ..., "log": ...}`` (a module
    fixture's value); stopped with ``first`` (SIGTERM: it shuts down as on Ctrl-C)."""
    state_dir, log = base / "state", base / "console.log"
    with running_sandbox(args, state_dir, log, timeout_s, first=first) as (_, state):
        yield {"state": state, "state_dir": state_dir, "log": log}


def run_bundle(
    state_dir: Path, *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``scripts/bundle ARGS --sandbox --state-dir STATE_DIR`` as a subprocess, its output
    captured as text. The environment carries no AWS settings: the target comes from the
    sandbox's ``state.json`` alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, str(BUNDLE), *args, "--sandbox", "--state-dir", str(state_dir)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
