"""common.secrets: one SSM read per TTL, errors classified, only SecureStrings accepted."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from common.secrets import SecretCache, SecretError


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
