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
        # A lone surrogate (JSON may carry one) has no UTF-8 form: no request could send it.
        ({"recommendation_id": "RID-\ud800"}, ("recommendation_id",)),
        ({"impression": ["ok", "x\udfff"]}, ("impression",)),
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


QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/traits-dead-letters"
MINIMAL = {
    "PERSONALIZE_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/shop",
    "SEGMENT_WRITE_KEY_PARAMETER": "/segment/write-key",
    "DEAD_LETTER_QUEUE_URL": QUEUE,
}


def test_property_settings() -> None:
    from common.config import ConfigError
    from traits_sync.settings import load

    defaults = load(MINIMAL)
    assert (defaults.recommendation_id_property, defaults.impression_property) == (
        "recommendation_id",
        "impression",
    )
    custom = load({**MINIMAL, "RECOMMENDATION_ID_PROPERTY": "rid", "IMPRESSION_PROPERTY": "shown"})
    assert (custom.recommendation_id_property, custom.impression_property) == ("rid", "shown")
    with pytest.raises(ConfigError) as exc:
        load({**MINIMAL, "IMPRESSION_PROPERTY": "two words"})
    assert exc.value.name == "IMPRESSION_PROPERTY"
