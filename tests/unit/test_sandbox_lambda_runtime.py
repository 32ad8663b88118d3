"""The sandbox's Lambda stand-in: the context it passes, one invocation at a time."""

from __future__ import annotations

import threading
import time
from typing import Any

from sandbox.lambda_runtime import Function


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
