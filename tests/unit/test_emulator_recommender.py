"""The emulator's recommender and filter expressions, without any server."""

from __future__ import annotations

import pytest

from emulators.filters import FilterError, parse
from emulators.recommender import Recommender

# Two clusters: shoes (s1..s3) and books (b1..b3), plus a popular item that everyone views.
ROWS = [
    ("alice", "s1", "Order Completed", 1),
    ("alice", "s2", "Product Added", 2),
    ("alice", "pop", "Product Viewed", 3),
    ("bob", "s1", "Product Clicked", 4),
    ("bob", "s3", "Order Completed", 5),
    ("bob", "pop", "Product Viewed", 6),
    ("carol", "b1", "Order Completed", 7),
    ("carol", "b2", "Product Added", 8),
    ("carol", "pop", "Product Viewed", 9),
    ("dave", "b1", "Product Viewed", 10),
    ("dave", "b3", "Order Completed", 11),
    ("dave", "pop", "Product Viewed", 12),
    ("erin", "pop", "Product Viewed", 13),
    *[(f"viewer{n}", "pop", "Product Viewed", 20 + n) for n in range(5)],
]


def _model(seed: int = 0) -> Recommender:
    model = Recommender(seed=seed)
    model.fit(ROWS)
    return model


def _ids(ranked: list[tuple[str, float]]) -> list[str]:
    return [item for item, _ in ranked]


def test_scores_are_descending_floats_summing_to_one() -> None:
    ranked = _model().for_user("alice")
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(s, float) for s in scores)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)
    assert set(_ids(ranked)) == {"s1", "s2", "s3", "b1", "b2", "b3", "pop"}


def test_co_occurrence_drives_user_and_related_items() -> None:
    model = _model()
    alice = _ids(model.for_user("alice"))
    assert alice.index("s3") < min(alice.index(b) for b in ("b1", "b2", "b3"))
    carol = _ids(model.for_user("carol"))
    assert carol.index("b3") < min(carol.index(s) for s in ("s1", "s2", "s3"))
    related = _ids(model.related("s1"))
    assert "s1" not in related
    assert related[0] == "s2"
    assert related.index("s3") < min(related.index(b) for b in ("b1", "b2", "b3"))


def test_cold_start_is_popularity() -> None:
    model = _model()
    assert _ids(model.for_user("stranger"))[0] == "pop"
    assert model.for_user("stranger") == model.related("unknown-item")


def test_real_time_interactions_move_the_ranking() -> None:
    model = _model()
    before = _ids(model.for_user("erin"))
    model.add_interaction("erin", "b1", "Order Completed")
    after = _ids(model.for_user("erin"))
    assert after != before
    assert after.index("b3") < min(after.index(s) for s in ("s1", "s2", "s3"))
    assert model.recent_items("erin", ["Order Completed"]) == {"b1"}


def test_deterministic_for_a_seed() -> None:
    assert _model(1).for_user("alice") == _model(1).for_user("alice")


def test_filters_exclude_and_include_by_event_type() -> None:
    model = _model()
    ranked = model.for_user("alice")
    exclude = parse(
        "arn:f", "f", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Order Completed")'
    )
    assert "s1" not in _ids(exclude.apply(ranked, "alice", model, {}, None))
    include = parse("arn:g", "g", "INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ($TYPES)")
    kept = include.apply(ranked, "alice", model, {}, {"TYPES": '"Product Added","Order Completed"'})
    assert set(_ids(kept)) == {"s1", "s2"}
    with pytest.raises(FilterError):  # INCLUDE needs its parameter
        include.apply(ranked, "alice", model, {}, None)
    everything = parse("arn:h", "h", 'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("*")')
    assert set(_ids(everything.apply(ranked, "alice", model, {}, None))) == {"s3", "b1", "b2", "b3"}


def test_item_filters_and_chains() -> None:
    model = _model()
    ranked = model.for_user("alice")
    attributes = {
        "s1": {"category": "Shoes"},
        "s2": {"category": "Shoes|Sale"},
        "b1": {"category": "Books"},
    }
    chain = parse(
        "arn:c",
        "c",
        'EXCLUDE ItemID WHERE Items.CATEGORY IN ("Sale") | '
        'EXCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("Product Viewed")',
    )
    assert _ids(chain.apply(ranked, "alice", model, attributes, None)) == [
        i for i in _ids(ranked) if i not in {"s2", "pop"}
    ]
    only_shoes = parse("arn:d", "d", 'INCLUDE ItemID WHERE Items.CATEGORY IN ("Shoes")')
    assert set(_ids(only_shoes.apply(ranked, None, model, attributes, None))) == {"s1", "s2"}


@pytest.mark.parametrize(
    "expression",
    [
        "EXCLUDE ItemID WHERE Items.PRICE > 10",
        'EXCLUDE ItemID WHERE Interactions.ITEM_ID IN ("x")',
        'INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("a") IF CurrentUser.AGE > 3',
        "",
    ],
)
def test_unsupported_expressions_are_refused(expression: str) -> None:
    with pytest.raises(FilterError):
        parse("arn:x", "x", expression)
