"""The sandbox's replay of Segment events through segment-analytics-python's client (a fake
client, fake clocks; no I/O)."""

from __future__ import annotations

import queue
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.replay import Replayer, SegmentLibrary, endless, restamp


class FakeClient:
    """segment-analytics-python's Client surface: records each call."""

    def __init__(self, write_key: str, **options: Any) -> None:
        self.write_key = write_key
        self.options = options
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.queue = queue.Queue(maxsize=10)
        self.joined = False

    def __getattr__(self, name: str) -> Any:
        if name not in ("track", "identify", "page", "screen", "group", "alias"):
            raise AttributeError(name)

        def call(*args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any]]:
            self.calls.append((name, args, kwargs))
            return True, {}

        return call

    def join(self) -> None:
        self.joined = True


def _message(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": f"m{i}",
        "anonymousId": f"anon-{i}",
        "timestamp": "2024-04-01T00:00:10.000Z",
        "originalTimestamp": "2024-04-01T00:00:09.000Z",
        "sentAt": "2024-04-01T00:00:09.500Z",
        "receivedAt": "2024-04-01T00:00:11.000Z",
        **extra,
    }


def test_restamp_moves_every_time_field_and_keeps_offsets() -> None:
    now = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)
    out = restamp(_message(1), now)
    assert out["timestamp"] == "2026-05-06T07:08:09.000Z"
    assert out["originalTimestamp"] == "2026-05-06T07:08:08.000Z"
    assert out["sentAt"] == "2026-05-06T07:08:08.500Z"
    assert out["receivedAt"] == "2026-05-06T07:08:10.000Z"
    assert out["messageId"] == "m1"


def _replayer(messages: list[dict[str, Any]], rate: float) -> Any:
    clock = {"now": 0.0}
    sent: list[dict[str, Any]] = []
    replayer = Replayer(
        messages=iter(messages),
        rate=rate,
        send=sent.append,
        clock=lambda: clock["now"],
        wall_clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )
    return replayer, clock, sent


def test_rate_paces_the_messages_and_restamps_them() -> None:
    messages = [_message(i, userId=f"u{i}") for i in range(20)]
    replayer, clock, sent = _replayer(messages, rate=5.0)
    replayer.step()
    assert replayer.stats.sent == 1
    clock["now"] = 1.0
    replayer.step()
    assert replayer.stats.sent == 6  # 5 per second
    clock["now"] = 10.0
    replayer.step()
    replayer.step()
    assert replayer.stats.sent == 20
    assert replayer.finished
    assert [m["messageId"] for m in sent] == [f"m{i}" for i in range(20)]
    assert sent[0]["timestamp"] == "2026-01-01T00:00:00.000Z"


def test_messages_the_library_refuses_are_counted() -> None:
    def send(message: dict[str, Any]) -> None:
        if message["messageId"] == "m1":
            raise AssertionError("user_id or anonymous_id must be str")  # the library's check

    replayer = Replayer(messages=iter([_message(i) for i in range(3)]), rate=0, send=send)
    replayer.step()
    assert (replayer.stats.sent, replayer.stats.refused) == (2, 1)


def test_each_message_becomes_the_library_call_an_app_would_make() -> None:
    library = SegmentLibrary("http://127.0.0.1:1", "wk", client_factory=FakeClient)
    client = library.client
    assert client.write_key == "wk"
    assert client.options["host"] == "http://127.0.0.1:1" and client.options["gzip"] is True
    context = {"ip": "203.0.113.1", "library": {"name": "analytics-python", "version": "2.3.2"}}
    base = {"messageId": "m1", "timestamp": "2026-01-01T00:00:00.000Z", "context": context}
    library({**base, "type": "track", "userId": "u1", "event": "Order Completed",
             "properties": {"products": [{"sku": "S1"}]}, "anonymousId": "a1"})  # fmt: skip
    library({**base, "type": "identify", "userId": "u1", "traits": {"plan": "plus"}})
    library({**base, "type": "page", "anonymousId": "a1", "name": "Home", "properties": {}})
    library({**base, "type": "alias", "previousId": "a1", "userId": "u1"})
    names = [name for name, _, _ in client.calls]
    assert names == ["track", "identify", "page", "alias"]
    _, args, kwargs = client.calls[0]
    assert args == ("u1", "Order Completed", {"products": [{"sku": "S1"}]})
    assert kwargs["anonymous_id"] == "a1" and kwargs["message_id"] == "m1"
    assert kwargs["timestamp"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert kwargs["context"] == {"ip": "203.0.113.1"}  # the library adds its own library
    assert client.calls[2][1] == (None, None, "Home", {})
    assert client.calls[3][1] == ("a1", "u1")
    with pytest.raises(ValueError, match="not a Segment call type"):
        library({**base, "type": "bogus"})
    assert library.close(timeout_s=0) == 0 and client.joined


def test_upload_failures_are_counted() -> None:
    library = SegmentLibrary("http://127.0.0.1:1", "wk", client_factory=FakeClient)
    library.client.options["on_error"](RuntimeError("[Segment] 500"), [{}, {}])
    assert (library.failed_batches, library.failed_messages) == (1, 2)


def test_endless_draws_new_rounds_and_honours_the_limit() -> None:
    rounds: list[int] = []

    def make(n: int) -> Any:
        rounds.append(n)
        return iter([{"round": n, "i": i} for i in range(3)])

    out = list(endless(make, 7))
    assert len(out) == 7
    assert rounds == [0, 1, 2]
    assert [m["round"] for m in out] == [0, 0, 0, 1, 1, 1, 2]
