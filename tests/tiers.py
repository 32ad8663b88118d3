"""Test tiers (pytest plugin, loaded by tests/conftest.py).

``tests/unit`` runs in-process: no subprocess, no socket (loopback included). A unit test that
needs either belongs in ``tests/integration`` or ``tests/e2e``; this guard makes such a test
fail with that message instead of quietly slowing the tier down.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

UNIT = Path(__file__).resolve().parent / "unit"
ADVICE = "the unit tier runs in-process; move this test to tests/integration or tests/e2e"


def _refuse(what: str) -> Any:
    def refuse(*_args: object, **_kwargs: object) -> NoReturn:
        raise AssertionError(f"{what}: {ADVICE}")

    return refuse


@pytest.fixture(autouse=True)
def _unit_tier_in_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if not request.node.path.is_relative_to(UNIT):
        return
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("subprocess"))
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse(f"socket.{name}"))


# -- per-file progress ---------------------------------------------------------------------
# `make test` runs files on two workers (pytest-xdist), whose own output is only dots. With
# --file-progress, each file gets one line when its last test is reported: its outcome counts,
# the seconds its tests took, and how many files are done.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--file-progress",
        action="store_true",
        help="print one line per test file when it finishes (counts, seconds, files done)",
    )


class FileProgress:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.expected: dict[str, int] = {}
        self.outcomes: dict[str, dict[str, int]] = {}
        self.seconds: dict[str, float] = {}
        self.done = 0
        self.reported: set[str] = set()

    def expect(self, nodeids: list[str]) -> None:
        if self.expected:
            return  # every xdist worker collects the same ids: the first one counts
        for nodeid in nodeids:
            path = nodeid.split("::", 1)[0]
            self.expected[path] = self.expected.get(path, 0) + 1

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.expect([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: object, ids: list[str]) -> None:
        self.expect(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = report.nodeid.split("::", 1)[0]
        outcomes = self.outcomes.setdefault(path, {})
        self.seconds[path] = self.seconds.get(path, 0.0) + report.duration
        if report.when == "call" or (report.when == "setup" and not report.passed):
            key = "xfailed" if hasattr(report, "wasxfail") else report.outcome
            outcomes[key] = outcomes.get(key, 0) + 1
        elif report.when == "teardown" and report.failed:
            outcomes["error"] = outcomes.get("error", 0) + 1
        if report.when != "teardown":
            return
        finished = outcomes.setdefault("_tests", 0) + 1
        outcomes["_tests"] = finished
        if finished != self.expected.get(path):
            return
        self._report(path)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # A file whose tests share node ids (generated cases) may report fewer teardowns
        # than it collected: its line comes here, at the end.
        for path in self.expected:
            if path in self.outcomes and path not in self.reported:
                self._report(path)

    def _report(self, path: str) -> None:
        self.reported.add(path)
        self.done += 1
        outcomes = self.outcomes[path]
        counts = ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()) if k != "_tests")
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            if reporter._tw.width_of_current_line:  # after a run of progress dots
                reporter.write_line("")
            reporter.write_line(
                f"[{self.done:>3}/{len(self.expected)} files] {path}: {counts} "
                f"({self.seconds[path]:.1f} s)"
            )


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("file_progress", False) and not hasattr(config, "workerinput"):
        config.pluginmanager.register(FileProgress(config), "file-progress")
