"""Exclusion logic: ranking kept, purchases removed, refilled to N with at most one more call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.personalize import Item, PersonalizeError, Recommendations
from common.recommend import Purchases, recommend
from reco_api.exclusion import Pending


class FakePersonalize:
    """A campaign with a fixed ranking of ``size`` items; records the sizes asked for."""

    def __init__(self, size: int, fail_on_call: int | None = None) -> None:
        self.ranking = [Item(f"i{n}", round(1 - n / 1000, 3)) for n in range(size)]
        self.asked: list[int] = []
        self.fail_on_call = fail_on_call

    def __call__(self, n: int) -> Recommendations:
        self.asked.append(n)
        if self.fail_on_call == len(self.asked):
            raise PersonalizeError("throttled", "ThrottlingException")
        return Recommendations(self.ranking[:n], f"rid-{len(self.asked)}")


def ready(ids: set[str] | None, reason: str | None = None) -> Pending:
    purchases = Purchases(None if ids is None else frozenset(ids), reason)
    return Pending(None, 0.0, purchases)


def ids(items: list[Item]) -> list[str]:
    return [item.item_id for item in items]


def test_without_exclusion_asks_exactly_n() -> None:
    personalize = FakePersonalize(100)
    served = recommend(personalize, 10, None, headroom=25)
    assert personalize.asked == [10]
    assert ids(served.items) == [f"i{n}" for n in range(10)]
    assert served.exclusion == "off"
    assert served.recommendation_id == "rid-1"


def test_purchases_removed_order_kept_one_call() -> None:
    personalize = FakePersonalize(100)
    served = recommend(personalize, 5, ready({"i1", "i3", "i99"}), headroom=25)
    assert personalize.asked == [30]
    assert ids(served.items) == ["i0", "i2", "i4", "i5", "i6"]
    assert served.exclusion == "applied"
    assert served.purchased == 3
    assert served.excluded == 2  # i99 was never in the page
    assert served.calls == 1


def test_refill_to_n_when_purchases_exceed_the_headroom() -> None:
    personalize = FakePersonalize(200)
    purchased = {f"i{n}" for n in range(0, 40, 2)}  # 20 of the top 40
    served = recommend(personalize, 25, ready(purchased), headroom=5)
    assert personalize.asked == [30, 45]  # N + headroom, then N + len(purchased)
    assert len(served.items) == 25
    assert not set(ids(served.items)) & purchased
    assert ids(served.items) == [f"i{n}" for n in range(1, 40, 2)] + [
        f"i{n}" for n in range(40, 45)
    ]
    assert served.recommendation_id == "rid-2"  # the served list comes from the refill call
    assert served.calls == 2


def test_no_refill_when_personalize_has_no_more() -> None:
    personalize = FakePersonalize(12)
    served = recommend(personalize, 10, ready({"i0", "i1", "i2", "i3"}), headroom=5)
    assert personalize.asked == [15]
    assert ids(served.items) == [f"i{n}" for n in range(4, 12)]


def test_fetch_size_capped_at_500() -> None:
    personalize = FakePersonalize(1000)
    purchased = {f"i{n}" for n in range(600)}
    served = recommend(personalize, 480, ready(purchased), headroom=25)
    assert personalize.asked == [500]  # a second call could not ask for more
    assert served.items == []  # every item Personalize can give was bought


def test_refill_failure_serves_the_filtered_first_page() -> None:
    personalize = FakePersonalize(100, fail_on_call=2)
    served = recommend(personalize, 5, ready({"i0", "i1", "i2"}), headroom=2)
    assert personalize.asked == [7, 8]
    assert ids(served.items) == ["i3", "i4", "i5", "i6"]
    assert served.refill_failed == "throttled"
    assert served.recommendation_id == "rid-1"


def test_unavailable_purchases_serve_unfiltered_top_n() -> None:
    personalize = FakePersonalize(100)
    served = recommend(personalize, 5, ready(None, "timeout"), headroom=25)
    assert ids(served.items) == [f"i{n}" for n in range(5)]
    assert (served.exclusion, served.reason) == ("unavailable", "timeout")


def test_first_call_failure_propagates() -> None:
    personalize = FakePersonalize(100, fail_on_call=1)
    with pytest.raises(PersonalizeError):
        recommend(personalize, 5, ready(set()), headroom=0)


@given(
    size=st.integers(0, 120),
    limit=st.integers(1, 60),
    headroom=st.integers(0, 30),
    purchased=st.sets(st.integers(0, 150), max_size=80),
)
def test_exclusion_properties(size: int, limit: int, headroom: int, purchased: set[int]) -> None:
    personalize = FakePersonalize(size)
    bought = {f"i{n}" for n in purchased}
    served = recommend(personalize, limit, ready(bought), headroom)
    expected = [item for item in personalize.ranking if item.item_id not in bought][:limit]
    # Exactly the top of the ranking minus purchases, refilled to N where Personalize has more.
    assert served.items == expected
    assert len(personalize.asked) <= 2
    assert all(n <= 500 for n in personalize.asked)


class PromotingPersonalize(FakePersonalize):
    """Personalize with a promotion: ``percent`` of every page is promoted items, placed where
    Personalize places them, anywhere in the page (here: the last slots, the worst case for a
    caller that asked for more than it serves)."""

    def __init__(self, size: int, percent: int) -> None:
        super().__init__(size)
        self.percent = percent

    def __call__(self, n: int) -> Recommendations:
        self.asked.append(n)
        share = n * self.percent // 100
        page = self.ranking[: n - share] + [
            Item(f"p{k}", None, promotion_name="promo") for k in range(share)
        ]
        return Recommendations(page, f"rid-{len(self.asked)}")


def promoted(items: list[Item]) -> list[str]:
    return [item.item_id for item in items if item.promotion_name]


@pytest.mark.parametrize(
    ("pending", "rest"),
    [
        (ready({"i1"}), ["i0", "i2", "i3", "i4", "i5", "i6", "i7", "i8"]),
        (ready(None, "timeout"), [f"i{n}" for n in range(8)]),
    ],
)
def test_the_headroom_does_not_push_promoted_items_out_of_the_first_n(
    pending: Pending, rest: list[str]
) -> None:
    """Personalize applies percentPromotedItems to the numResults it was asked for: asked for
    N + headroom, its promoted items may all sit past N. The N served still hold the share
    a request for N would have had, in Personalize's order among themselves; the lowest
    ranked of the rest make room."""
    personalize = PromotingPersonalize(100, percent=20)
    served = recommend(personalize, 10, pending, headroom=25, promoted_share=2)
    assert personalize.asked == [35]  # 7 promoted, in slots 28..34
    assert ids(served.items) == [*rest, "p0", "p1"]


def test_promoted_items_already_in_the_first_n_are_kept_as_they_are() -> None:
    personalize = FakePersonalize(100)
    personalize.ranking[3] = Item("i3", 0.9, promotion_name="promo")
    personalize.ranking[7] = Item("i7", 0.9, promotion_name="promo")
    served = recommend(personalize, 10, ready(set()), headroom=25, promoted_share=2)
    assert ids(served.items) == [f"i{n}" for n in range(10)]
