"""common.profiles: the URL encodes ids completely; trait values normalise to id strings."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from common.profiles import ProfileClient, ProfileError, item_ids


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


@pytest.mark.parametrize(("status", "forgotten"), [(401, 1), (403, 1), (500, 0), (404, 0)])
def test_a_rejected_token_is_forgotten_so_a_rotated_one_is_read(
    status: int, forgotten: int
) -> None:
    class Answer:
        status_code = status

    class Session:
        def get(self, *_: Any, **__: Any) -> Answer:
            return Answer()

    forgets: list[None] = []
    reader = ProfileClient(
        session=Session(),  # type: ignore[arg-type]
        base_url="https://profiles.segment.com/v1",
        space_id="spa_1",
        token=lambda: "t",
        forget_token=lambda: forgets.append(None),
    )
    try:
        reader.traits("u", ["purchased_products"])
    except ProfileError as exc:
        assert exc.kind == ("auth" if forgotten else "unavailable")
    assert len(forgets) == forgotten
