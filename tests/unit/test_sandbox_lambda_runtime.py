"""Loading an unmodified handler by path and the fake Lambda context (temporary files only)."""

from __future__ import annotations

import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.lambda_runtime import Function, load_handler


def _write_function(root: Path, name: str, body: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "app.py").write_text(textwrap.dedent(body))


def test_two_app_modules_load_side_by_side_with_their_own_folder_on_the_path(
    tmp_path: Path,
) -> None:
    functions = tmp_path / "functions"
    _write_function(functions, "one", "def lambda_handler(e, c):\n    return ('one', e)\n")
    _write_function(
        functions,
        "two",
        "from helper_two import VALUE\n\ndef lambda_handler(e, c):\n    return (VALUE, e)\n",
    )
    (functions / "two" / "helper_two.py").write_text("VALUE = 'two'\n")
    try:
        one = load_handler(functions, "one")
        two = load_handler(functions, "two")
        assert one({"a": 1}, None) == ("one", {"a": 1})
        assert two({"b": 2}, None) == ("two", {"b": 2})
        assert "app" not in sys.modules or not str(
            getattr(sys.modules["app"], "__file__", "")
        ).startswith(str(functions))
    finally:
        for entry in (functions, functions / "one", functions / "two"):
            while str(entry) in sys.path:
                sys.path.remove(str(entry))
        sys.modules.pop("helper_two", None)


def test_context_counts_down_from_the_timeout_and_carries_the_request_id() -> None:
    seen: dict[str, Any] = {}

    def handler(event: Any, context: Any) -> None:
        seen["remaining"] = context.get_remaining_time_in_millis()
        seen["id"] = context.aws_request_id
        seen["arn"] = context.invoked_function_arn
        seen["name"] = context.function_name
        seen["memory"] = context.memory_limit_in_mb

    function = Function("fn", handler, timeout_s=3.0, memory_mb=128)
    function.invoke({}, request_id="req-1")
    assert 2000 < seen["remaining"] <= 3000
    assert seen["id"] == "req-1"
    assert seen["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert (seen["name"], seen["memory"]) == ("fn", 128)


def test_invocations_run_one_at_a_time_like_one_execution_environment() -> None:
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def handler(event: Any, context: Any) -> None:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.01)
        with lock:
            active["now"] -= 1

    function = Function("fn", handler)
    threads = [threading.Thread(target=function.invoke, args=({},)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert active["max"] == 1
