"""common.secrets: one SSM read per TTL, errors classified, only SecureStrings accepted."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.secrets import MIN_LOG_HASH_KEY, LogHashKey, SecretCache, SecretError


class FakeSsm:
    def __init__(self, parameter: dict[str, Any] | None = None, error: str | None = None) -> None:
        self.parameter = parameter or {"Value": "token-1", "Type": "SecureString"}
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def get_parameter(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": ""}}, "GetParameter")
        return {"Parameter": dict(self.parameter)}


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_value_cached_for_the_ttl_then_read_again() -> None:
    ssm, clock = FakeSsm(), Clock()
    cache = SecretCache(lambda: ssm, ttl_seconds=300, clock=clock)
    assert cache.get("/p") == "token-1"
    clock.now += 299
    assert cache.get("/p") == "token-1"
    assert len(ssm.calls) == 1
    assert ssm.calls[0] == {"Name": "/p", "WithDecryption": True}
    ssm.parameter["Value"] = "token-2"
    clock.now += 2
    assert cache.get("/p") == "token-2"
    assert len(ssm.calls) == 2


def test_invalidate_forces_a_fresh_read() -> None:
    ssm = FakeSsm()
    cache = SecretCache(lambda: ssm, clock=Clock())
    cache.get("/p")
    cache.invalidate("/p")
    cache.get("/p")
    assert len(ssm.calls) == 2


@pytest.mark.parametrize(
    ("error", "permanent"),
    [("ParameterNotFound", True), ("AccessDeniedException", True), ("ThrottlingException", False)],
)
def test_errors_are_classified_and_not_cached(error: str, permanent: bool) -> None:
    ssm = FakeSsm(error=error)
    cache = SecretCache(lambda: ssm, clock=Clock())
    for _ in range(2):
        with pytest.raises(SecretError) as info:
            cache.get("/p")
        assert (info.value.permanent, info.value.reason) == (permanent, error)
    assert len(ssm.calls) == 2


@pytest.mark.parametrize(
    "parameter",
    [
        {"Value": "x", "Type": "String"},
        {"Value": "", "Type": "SecureString"},
        {"Value": " \t\n", "Type": "SecureString"},
        {"Value": "set-out-of-band", "Type": "SecureString"},
        {"Value": " set-out-of-band\n", "Type": "SecureString"},
        {},
    ],
)
def test_unusable_parameters_are_permanent_errors(parameter: dict[str, Any]) -> None:
    cache = SecretCache(lambda: FakeSsm(parameter=parameter or {"Type": "SecureString"}))
    with pytest.raises(SecretError) as info:
        cache.get("/p")
    assert info.value.permanent


def test_surrounding_whitespace_is_stripped() -> None:
    """A value pasted with a newline or spaces (``set-secrets`` from a file, the console)
    would otherwise be sent as part of the key: Segment answers 200 to a wrong write key."""
    cache = SecretCache(lambda: FakeSsm({"Value": " \ttoken-1\n", "Type": "SecureString"}))
    assert cache.get("/p") == "token-1"


# -- the log pseudonyms' key -------------------------------------------------------------------

KEY = "k" * MIN_LOG_HASH_KEY


class Inline:
    """Runs the background read when asked, so a test sees exactly what the caller sees."""

    def __init__(self) -> None:
        self.pending: list[Any] = []

    def __call__(self, work: Any) -> None:
        self.pending.append(work)

    def run(self) -> None:
        while self.pending:
            self.pending.pop(0)()


def log_key(ssm: FakeSsm, clock: Clock, inline: Inline) -> tuple[LogHashKey, list[SecretError]]:
    problems: list[SecretError] = []
    key = LogHashKey(
        SecretCache(lambda: ssm, ttl_seconds=0, clock=clock),
        "/p/log-hash-key",
        on_problem=problems.append,
        start=inline,
        clock=clock,
        refresh_s=300,
        retry_s=60,
    )
    return key, problems


def test_the_log_key_is_read_in_the_background_and_never_waited_for() -> None:
    ssm, clock, inline = FakeSsm({"Value": f" {KEY}\n", "Type": "SecureString"}), Clock(), Inline()
    key, problems = log_key(ssm, clock, inline)
    assert key.current() is None  # the read has only been started
    assert key.current() is None and len(inline.pending) == 1  # one read at a time
    inline.run()
    assert key.current() == KEY.encode()  # stripped, like every secret
    assert key.wait(0) and problems == [] and len(ssm.calls) == 1
    clock.now += 301  # due for a refresh: the known key stays in use meanwhile
    assert key.current() == KEY.encode() and len(inline.pending) == 1


@pytest.mark.parametrize(
    ("parameter", "error"),
    [
        ({"Value": "k" * (MIN_LOG_HASH_KEY - 1), "Type": "SecureString"}, None),
        ({"Value": KEY, "Type": "String"}, None),
        (None, "ParameterNotFound"),
        (None, "ThrottlingException"),
    ],
)
def test_an_unusable_log_key_means_no_pseudonym_and_is_reported(
    parameter: dict[str, Any] | None, error: str | None
) -> None:
    ssm, clock, inline = FakeSsm(parameter, error), Clock(), Inline()
    key, problems = log_key(ssm, clock, inline)
    key.current()
    inline.run()
    assert key.current() is None
    assert [p.name for p in problems] == ["/p/log-hash-key"]
    clock.now += 59
    key.current()
    assert inline.pending == []  # not asked again before the retry time
    clock.now += 2
    key.current()
    assert len(inline.pending) == 1


def test_a_failed_refresh_keeps_the_key_already_read() -> None:
    ssm, clock, inline = FakeSsm({"Value": KEY, "Type": "SecureString"}), Clock(), Inline()
    key, problems = log_key(ssm, clock, inline)
    key.current()
    inline.run()
    ssm.error = "ThrottlingException"
    clock.now += 301
    key.current()
    inline.run()
    assert key.current() == KEY.encode() and len(problems) == 1
