"""common.chunks.bounded: in order, within the count and the byte limit, nothing lost."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from common.chunks import bounded


def test_packs_greedily_with_overhead_and_separators() -> None:
    # 2 + 3 + 1 + 3 = 9 <= 10; adding another 1 + 3 would pass it.
    words = ["abc", "def", "ghi"]
    chunks = bounded(words, len, max_count=10, max_bytes=10, overhead=2, separator=1)
    assert chunks == [["abc", "def"], ["ghi"]]


def test_the_count_limit_alone() -> None:
    assert bounded(list(range(5)), lambda _: 0, max_count=2) == [[0, 1], [2, 3], [4]]
    assert bounded([], len, max_count=2) == []


def test_an_item_too_large_alone_gets_its_own_chunk() -> None:
    assert bounded(["x" * 20, "y"], len, max_count=5, max_bytes=10) == [["x" * 20], ["y"]]


@given(
    st.lists(st.integers(0, 50), max_size=60),
    st.integers(1, 12),
    st.integers(50, 200),
    st.integers(0, 10),
    st.integers(0, 3),
)
def test_every_chunk_fits_and_order_is_kept(
    sizes: list[int], count: int, limit: int, overhead: int, separator: int
) -> None:
    chunks = bounded(
        sizes,
        lambda n: n,
        max_count=count,
        max_bytes=limit,
        overhead=overhead,
        separator=separator,
    )
    assert [n for chunk in chunks for n in chunk] == sizes
    for chunk in chunks:
        assert 1 <= len(chunk) <= count
        used = overhead + sum(chunk) + separator * (len(chunk) - 1)
        assert used <= limit or len(chunk) == 1
