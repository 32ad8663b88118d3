"""The seeded synthetic data generator: deterministic, well-formed, and shaped like the
Personalize import format and Segment's e-commerce v2 spec."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from emulators import data


@pytest.fixture(scope="module")
def catalogue() -> list[dict[str, object]]:
    return data.catalogue(1)


@pytest.fixture(scope="module")
def users() -> list[str]:
    return data.users(1)


def test_same_seed_same_output(catalogue: list[dict[str, object]], users: list[str]) -> None:
    assert data.catalogue(1) == catalogue
    assert data.interactions(1, catalogue, users, n=500) == data.interactions(
        1, catalogue, users, n=500
    )
    assert list(data.segment_events(1, catalogue, users, n=200)) == list(
        data.segment_events(1, catalogue, users, n=200)
    )


def test_different_seeds_differ(catalogue: list[dict[str, object]], users: list[str]) -> None:
    assert data.catalogue(2) != catalogue
    assert data.interactions(2, catalogue, users, n=200) != data.interactions(
        1, catalogue, users, n=200
    )
    first = [m["messageId"] for m in data.segment_events(1, catalogue, users, n=20)]
    second = [m["messageId"] for m in data.segment_events(2, catalogue, users, n=20)]
    assert first != second


def test_catalogue(catalogue: list[dict[str, object]]) -> None:
    assert 50 <= len(catalogue) <= 200
    assert len({p["sku"] for p in catalogue}) == len(catalogue)
    assert len({p["product_id"] for p in catalogue}) == len(catalogue)
    assert len({p["name"] for p in catalogue}) == len(catalogue)
    assert len({p["category"] for p in catalogue}) >= 5
    for product in catalogue:
        assert set(product) == {"sku", "product_id", "name", "category", "price"}
        assert isinstance(product["price"], float) and product["price"] > 0
        assert product["sku"] != product["product_id"]
    assert len(data.catalogue(1, n_items=50)) == 50
    assert len(data.catalogue(1, n_items=200)) == 200


def test_users() -> None:
    people = data.users(0, n_users=30)
    assert len(people) == len(set(people)) == 30
    assert data.users(0) == data.users(9)  # ids are stable; the seed drives behaviour


def test_interactions(catalogue: list[dict[str, object]], users: list[str]) -> None:
    rows = data.interactions(1, catalogue, users, n=3000)
    assert len(rows) == 3000
    skus = {p["sku"] for p in catalogue}
    assert {row[0] for row in rows} <= set(users)
    assert {row[1] for row in rows} <= skus
    types = Counter(row[2] for row in rows)
    assert set(types) == set(data.EVENT_TYPES)
    # a funnel: views > clicks > adds > orders
    assert types["Product Viewed"] > types["Product Clicked"] > types["Product Added"]
    assert types["Product Added"] > types["Order Completed"] > 0
    timestamps = [row[3] for row in rows]
    assert timestamps == sorted(timestamps)
    assert all(isinstance(t, int) and 1_700_000_000 < t < 1_800_000_000 for t in timestamps)


def test_users_have_category_preferences(
    catalogue: list[dict[str, object]], users: list[str]
) -> None:
    """The signal the recommender learns: most of a user's events are in one or two categories."""
    category = {p["sku"]: p["category"] for p in catalogue}
    rows = data.interactions(1, catalogue, users, n=5000)
    per_user: dict[str, Counter[object]] = {}
    for user, item, _, _ in rows:
        per_user.setdefault(user, Counter())[category[item]] += 1
    shares = [
        sum(c for _, c in counts.most_common(2)) / sum(counts.values())
        for counts in per_user.values()
    ]
    assert sum(shares) / len(shares) > 0.7


def test_csv_round_trip(
    tmp_path: Path, catalogue: list[dict[str, object]], users: list[str]
) -> None:
    rows = data.interactions(1, catalogue, users, n=50)
    path = data.write_interactions_csv(tmp_path / "interactions.csv", rows)
    lines = path.read_text().splitlines()
    assert lines[0] == "USER_ID,ITEM_ID,EVENT_TYPE,TIMESTAMP"
    assert len(lines) == 51
    assert data.read_interactions_csv(path) == rows


def test_segment_events_shape(catalogue: list[dict[str, object]], users: list[str]) -> None:
    messages = list(data.segment_events(1, catalogue, users, n=600))
    assert len(messages) == 600
    assert len({m["messageId"] for m in messages}) == 600
    skus = {p["sku"] for p in catalogue}
    by_kind = Counter(m["type"] if m["type"] != "track" else m["event"] for m in messages)
    for kind in (
        "page",
        "identify",
        "Product Viewed",
        "Product Clicked",
        "Product Added",
        "Order Completed",
    ):
        assert by_kind[kind] > 0, kind
    for message in messages:
        assert message["version"] == 2
        assert message["anonymousId"]
        assert isinstance(message["context"], dict) and isinstance(message["integrations"], dict)
        for field in ("timestamp", "originalTimestamp", "sentAt", "receivedAt"):
            assert message[field].endswith("Z")
            datetime.fromisoformat(message[field])
        assert message["originalTimestamp"] <= message["sentAt"] <= message["receivedAt"]
        if message["type"] == "track" and message["event"] == "Order Completed":
            products = message["properties"]["products"]
            assert products
            for line in products:
                assert line["sku"] in skus
                assert {"sku", "product_id", "name", "price", "quantity", "category"} <= set(line)
        elif message["type"] == "track":
            assert message["properties"]["sku"] in skus
            assert message["properties"]["product_id"].startswith("prod_")


def test_anonymous_sessions_identify_later(
    catalogue: list[dict[str, object]], users: list[str]
) -> None:
    messages = list(data.segment_events(1, catalogue, users, n=600))
    by_anonymous: dict[str, list[dict[str, object]]] = {}
    for message in messages:
        by_anonymous.setdefault(str(message["anonymousId"]), []).append(message)
    stitched = 0
    for session in by_anonymous.values():
        if "userId" not in session[0]:
            identify = next((m for m in session if m["type"] == "identify"), None)
            if identify is not None and "userId" in identify:
                later = session[session.index(identify) :]
                assert all(m.get("userId") == identify["userId"] for m in later)
                stitched += 1
    assert stitched >= 5


def test_cli_writes_the_three_files(tmp_path: Path) -> None:
    assert (
        data.main(
            ["--seed", "3", "--out", str(tmp_path), "--interactions", "100", "--events", "40"]
        )
        == 0
    )
    catalogue = json.loads((tmp_path / "catalogue.json").read_text())
    assert len(catalogue) == 120
    assert len((tmp_path / "interactions.csv").read_text().splitlines()) == 101
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(events) == 40
    again = tmp_path / "again"
    data.main(["--seed", "3", "--out", str(again), "--interactions", "100", "--events", "40"])
    for name in ("catalogue.json", "interactions.csv", "events.jsonl"):
        assert (again / name).read_bytes() == (tmp_path / name).read_bytes()
