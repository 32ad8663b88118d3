"""common.config: every reader validates and names the variable it rejects."""

from __future__ import annotations

import pytest

from common.config import (
    ConfigError,
    env_arn,
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_required,
    env_str,
    env_url,
)

CAMPAIGN = "arn:aws:personalize:eu-west-1:123456789012:campaign/shop"


def rejects(call: object, name: str) -> ConfigError:
    assert callable(call)
    with pytest.raises(ConfigError) as info:
        call()
    assert info.value.name == name
    assert name in str(info.value)
    return info.value


def test_str_strips_and_defaults() -> None:
    assert env_str({"A": "  x "}, "A") == "x"
    assert env_str({"A": "   "}, "A", "d") == "d"
    assert env_str({}, "A") is None


def test_required() -> None:
    assert env_required({"A": "v"}, "A") == "v"
    rejects(lambda: env_required({"A": " "}, "A"), "A")


def test_int_range_and_default() -> None:
    assert env_int({}, "N", 25, 1, 500) == 25
    assert env_int({"N": "500"}, "N", 25, 1, 500) == 500
    for bad in ("0", "501", "2.5", "x"):
        error = rejects(lambda bad=bad: env_int({"N": bad}, "N", 25, 1, 500), "N")
        assert error.reason == "must be an integer 1..500"
    assert type(env_int({"N": " 7 "}, "N", 25, 1, 500)) is int


def test_float_range() -> None:
    assert env_float({"F": "0.5"}, "F", 1.0, 0.0, 1.0) == 0.5
    rejects(lambda: env_float({"F": "2"}, "F", 1.0, 0.0, 1.0), "F")
    rejects(lambda: env_float({"F": "nan?"}, "F", 1.0, 0.0, 1.0), "F")
    for bad in ("nan", "-0.1"):
        error = rejects(lambda bad=bad: env_float({"F": bad}, "F", 1.0, 0.0, 1.0), "F")
        assert error.reason == "must be a number 0.0..1.0"
    assert env_float({}, "F", 1.0, 0.0, 1.0) == 1.0


def test_list_dedupes_and_strips() -> None:
    assert env_list({"L": " a, b ,,a "}, "L", "x") == ("a", "b")
    assert env_list({}, "L", "x,y") == ("x", "y")
    rejects(lambda: env_list({"L": " , "}, "L", ""), "L")


def test_choice_and_bool() -> None:
    assert env_choice({}, "C", "sku", ("sku", "product_id")) == "sku"
    rejects(lambda: env_choice({"C": "SKU"}, "C", "sku", ("sku", "product_id")), "C")
    assert env_bool({"B": "Yes"}, "B", False) is True
    assert env_bool({"B": "off"}, "B", True) is False
    rejects(lambda: env_bool({"B": "maybe"}, "B", True), "B")


def test_url() -> None:
    assert env_url({}, "U", "https://profiles.segment.com/v1/") == "https://profiles.segment.com/v1"
    assert env_url({"U": "http://127.0.0.1:8082/v1"}, "U", "x") == "http://127.0.0.1:8082/v1"
    rejects(lambda: env_url({"U": "ftp://x"}, "U", "https://d"), "U")
    rejects(lambda: env_url({"U": "https://a b"}, "U", "https://d"), "U")


def test_arn_kinds() -> None:
    assert env_arn({"A": CAMPAIGN}, "A", required=True, kinds=("campaign",)) == CAMPAIGN
    china = "arn:aws-cn:personalize:cn-north-1:123456789012:recommender/r"
    assert env_arn({"A": china}, "A", required=True, kinds=("recommender",)) == china
    assert env_arn({}, "A", required=False, kinds=("filter",)) is None
    rejects(lambda: env_arn({}, "A", required=True, kinds=("campaign",)), "A")
    rejects(lambda: env_arn({"A": CAMPAIGN}, "A", required=True, kinds=("filter",)), "A")
    too_long = CAMPAIGN + "x" * 256
    rejects(lambda: env_arn({"A": too_long}, "A", required=True, kinds=("campaign",)), "A")
    rejects(
        lambda: env_arn(
            {"A": "arn:aws:personalize:x:1:campaign/c"}, "A", required=True, kinds=("campaign",)
        ),
        "A",
    )
