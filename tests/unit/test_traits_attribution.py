"""Attribution properties of a tracked event, validated to PutEvents' limits."""

from __future__ import annotations

import pytest

from traits_sync.attribution import Attribution, read


def test_valid_attribution_is_kept() -> None:
    got = read({"recommendation_id": "RID-1", "impression": ["a", 7, "a", "b"]})
    assert got == Attribution("RID-1", ("a", "7", "b"), ())


def test_custom_property_names() -> None:
    got = read({"rid": "R", "shown": ["x"], "recommendation_id": "ignored"}, "rid", "shown")
    assert got == Attribution("R", ("x",), ())


@pytest.mark.parametrize(
    ("properties", "dropped"),
    [
        ({"recommendation_id": "R" * 41}, ("recommendation_id",)),
        ({"recommendation_id": 12}, ("recommendation_id",)),
        ({"impression": ["i"] * 26}, ("impression",)),
        ({"impression": "a,b"}, ("impression",)),
        ({"impression": ["ok", "x" * 257]}, ("impression",)),
        ({"impression": ["ok", None]}, ("impression",)),
        ({"impression": [True]}, ("impression",)),
    ],
)
def test_values_outside_putevents_limits_are_left_out_and_named(
    properties: dict[str, object], dropped: tuple[str, ...]
) -> None:
    got = read(properties)
    assert got.dropped == dropped
    assert got.recommendation_id is None and got.impression == ()


def test_absent_or_empty_is_nothing() -> None:
    assert read({}) == Attribution()
    assert read({"recommendation_id": "", "impression": []}) == Attribution()
    assert read("not a dict") == Attribution()
