"""common.profiles: the URL encodes ids completely; trait values normalise to id strings."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from common.profiles import ProfileClient, item_ids


def client() -> ProfileClient:
    return ProfileClient(
        session=requests.Session(),
        base_url="https://profiles.segment.com/v1",
        space_id="spa_1",
        token=lambda: "t",
    )


@pytest.mark.parametrize(
    ("user_id", "encoded"),
    [
        ("a+b", "a%2Bb"),
        ("dir/sub", "dir%2Fsub"),
        ("x y", "x%20y"),
        ("100%", "100%25"),
        ("Zoë", "Zo%C3%AB"),
        ("q?#&=", "q%3F%23%26%3D"),
    ],
)
def test_url_encodes_everything(user_id: str, encoded: str) -> None:
    assert client().url(user_id) == (
        "https://profiles.segment.com/v1/spaces/spa_1/collections/users/profiles/"
        f"user_id:{encoded}/traits"
    )


@pytest.mark.parametrize(
    ("value", "ids", "well_formed"),
    [
        (None, set(), True),
        (["a", "b", "a"], {"a", "b"}, True),
        ([1, 2.0, 2.5], {"1", "2", "2.5"}, True),
        (["a", None, {"x": 1}, True], {"a"}, False),
        ("a,b", set(), False),
        ({"a": 1}, set(), False),
        ([""], set(), True),
    ],
)
def test_item_ids(value: Any, ids: set[str], well_formed: bool) -> None:
    assert item_ids(value) == (ids, well_formed)
