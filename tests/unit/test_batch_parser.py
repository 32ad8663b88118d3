"""The batch output parser: line ownership across byte-range chunks, and what each line is."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import pytest
from backfill import chunks, parser
from conftest import property_examples
from hypothesis import given, settings
from hypothesis import strategies as st


def good(user: str, items: list[str]) -> bytes:
    record = {
        "input": {"userId": user},
        "output": {"recommendedItems": items, "scores": [0.1] * len(items)},
        "error": None,
    }
    return json.dumps(record).encode()


def read_chunk(data: bytes, start: int, end: int, block: int = 7) -> list[parser.Line]:
    """What a chunk worker reads: from read_offset(start) to the end of the file, in blocks."""
    first = parser.read_offset(start)
    stream = data[first:]
    blocks = [stream[i : i + block] for i in range(0, len(stream), block)]
    return list(parser.owned(blocks, start, end))


def file_lines(data: bytes) -> list[tuple[int, bytes]]:
    """The reference split: every line with its offset (no empty piece after a final newline)."""
    out, offset = [], 0
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()
    for piece in pieces:
        out.append((offset, piece))
        offset += len(piece) + 1
    return out


def test_a_line_split_across_a_chunk_boundary_belongs_to_the_chunk_of_its_first_byte() -> None:
    a, b, c = good("u1", ["i1"]), good("u2", ["i2", "i3"]), good("u3", ["i4"])
    data = a + b"\n" + b + b"\n" + c + b"\n"
    cut = len(a) + 1 + len(b) // 2  # inside b
    first = read_chunk(data, 0, cut)
    second = read_chunk(data, cut, len(data))
    assert [line.data for line in first] == [a, b]  # b read past the end of the range
    assert [line.data for line in second] == [c]  # b's tail is not read again


def test_a_boundary_right_at_a_line_start_gives_that_line_to_the_later_chunk() -> None:
    a, b = good("u1", ["i1"]), good("u2", ["i2"])
    data = a + b"\n" + b + b"\n"
    cut = len(a) + 1  # b's first byte
    assert [line.data for line in read_chunk(data, 0, cut)] == [a]
    assert [line.data for line in read_chunk(data, cut, len(data))] == [b]
    cut = len(a)  # a's newline: a is still the first chunk's, b the second's
    assert [line.data for line in read_chunk(data, 0, cut)] == [a]
    assert [line.data for line in read_chunk(data, cut, len(data))] == [b]


def test_a_truncated_last_line_is_counted_undecodable_not_lost() -> None:
    a = good("u1", ["i1"])
    data = a + b"\n" + good("u2", ["i2"])[:-5]  # no newline, cut short
    lines = read_chunk(data, 0, len(data))
    assert len(lines) == 2
    assert isinstance(parser.classify(lines[0]), parser.Recommendation)
    assert parser.classify(lines[1]) == parser.NotWritten(parser.UNDECODABLE)


def test_a_complete_last_line_without_a_newline_is_written() -> None:
    data = good("u1", ["i1"]) + b"\n" + good("u2", ["i2"])
    lines = read_chunk(data, 0, len(data))
    assert parser.classify(lines[1]) == parser.Recommendation("u2", ["i2"])


def test_error_lines_and_undecodable_lines_are_classified_by_reason() -> None:
    ok_output = {"recommendedItems": ["a"], "scores": [0.5]}

    def line(record: object) -> bytes:
        return json.dumps(record).encode()

    cases = {
        line(
            {"input": {"userId": "u1"}, "output": {}, "error": "User not found"}
        ): parser.ERROR_LINE,
        line({"input": {"userId": "u1"}, "output": {"recommendedItems": []}, "error": None}): (
            parser.SKIPPED
        ),
        b"not json": parser.UNDECODABLE,
        b"[1, 2]": parser.UNDECODABLE,
        line({"input": {"userId": 7}, "output": ok_output, "error": None}): parser.UNDECODABLE,
        line({"input": {}, "output": ok_output, "error": None}): parser.UNDECODABLE,
        line({"input": {"userId": "u1"}, "output": {"recommendedItems": [1]}}): parser.UNDECODABLE,
        line({"input": {"userId": "u1"}, "error": None}): parser.UNDECODABLE,
        line({"input": {"userId": "\ud800"}, "output": ok_output}): parser.UNDECODABLE,
        b"\xff\xfe{}": parser.UNDECODABLE,
        b"   ": parser.BLANK,
    }
    for data, reason in cases.items():
        parsed = parser.Line(0, data, too_long=False, length=len(data))
        assert parser.classify(parsed) == parser.NotWritten(reason), data


def test_items_keep_the_ranking_and_lose_duplicates() -> None:
    line = good("u1", ["b", "a", "b", "c"])
    outcome = parser.classify(parser.Line(0, line, too_long=False, length=len(line)))
    assert outcome == parser.Recommendation("u1", ["b", "a", "c"])


def test_an_overlong_line_is_undecodable_and_not_held_in_memory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parser, "MAX_LINE_BYTES", 120)
    long = b"x" * 1000
    data = good("u1", ["a"]) + b"\n" + long + b"\n" + good("u2", ["b"]) + b"\n"
    lines = read_chunk(data, 0, len(data), block=10)
    assert [line.length for line in lines] == [len(good("u1", ["a"])), 1000, len(good("u2", ["b"]))]
    assert lines[1].too_long and len(lines[1].data) <= 121 + 10
    assert parser.classify(lines[1]) == parser.NotWritten(parser.UNDECODABLE)
    assert parser.classify(lines[2]) == parser.Recommendation("u2", ["b"])
    assert lines[2].offset == len(good("u1", ["a"])) + 1 + 1000 + 1


line_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


@settings(max_examples=property_examples(300), deadline=None)
@given(
    pieces=st.lists(line_bytes, max_size=30),
    final_newline=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
    block=st.integers(min_value=1, max_value=64),
)
def test_every_line_is_owned_by_exactly_one_chunk(
    pieces: list[bytes], final_newline: bool, cuts: list[int], block: int
) -> None:
    data = b"\n".join(pieces) + (b"\n" if final_newline and pieces else b"")
    size = len(data)
    bounds = sorted({0, size, *(c % (size + 1) for c in cuts)})
    seen: list[tuple[int, bytes]] = []
    for start, end in itertools.pairwise(bounds):
        for line in read_chunk(data, start, end, block):
            assert start <= line.offset < end
            seen.append((line.offset, line.data))
    assert seen == file_lines(data)


@settings(max_examples=property_examples(200), deadline=None)
@given(
    size=st.integers(min_value=0, max_value=10_000), chunk=st.integers(min_value=1, max_value=3_000)
)
def test_ranges_cover_the_file_without_overlap(size: int, chunk: int) -> None:
    ranges = chunks.ranges(size, chunk)
    assert sum(end - start for start, end in ranges) == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(0 < end - start <= chunk for start, end in ranges)
    assert (ranges[0][0] if ranges else 0) == 0


def ranged_chunk(data: bytes, start: int, end: int, block: int) -> tuple[list[parser.Line], int]:
    """What a chunk worker reads from S3: only its GetObject range (read_range), in blocks;
    the lines it owns, and how many bytes it pulled from the stream."""
    first, last = parser.read_range(start, end).removeprefix("bytes=").split("-")
    stream = data[int(first) : int(last) + 1]  # S3 ends a range past the object at its end
    pulled = 0

    def blocks() -> Iterator[bytes]:
        nonlocal pulled
        for at in range(0, len(stream), block):
            pulled += len(stream[at : at + block])
            yield stream[at : at + block]

    return list(parser.owned(blocks(), start, end)), pulled


@settings(max_examples=property_examples(300), deadline=None)
@given(
    pieces=st.lists(line_bytes, max_size=30),
    final_newline=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
    block=st.integers(min_value=1, max_value=64),
    max_line=st.integers(min_value=1, max_value=24),
)
def test_a_chunk_reads_only_about_its_range_and_still_owns_the_same_lines(
    pieces: list[bytes],
    final_newline: bool,
    cuts: list[int],
    block: int,
    max_line: int,
) -> None:
    # Short MAX_LINE_BYTES: lines too long, and tails without a newline, are common here.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parser, "MAX_LINE_BYTES", max_line)
        data = b"\n".join(pieces) + (b"\n" if final_newline and pieces else b"")
        size = len(data)
        bounds = sorted({0, size, *(c % (size + 1) for c in cuts)})
        seen = []
        for start, end in itertools.pairwise(bounds):
            owned, pulled = ranged_chunk(data, start, end, block)
            # Its range, the byte before it, one line's worth past it, one block's rounding.
            assert pulled <= (end - start) + 1 + max_line + 1 + block
            for line in owned:
                assert start <= line.offset < end
                seen.append((line.offset, line.too_long, b"" if line.too_long else line.data))
        expected = [
            (offset, len(text) > max_line, b"" if len(text) > max_line else text)
            for offset, text in file_lines(data)
        ]
        assert seen == expected


def test_an_unterminated_tail_is_not_read_to_the_end_by_every_later_chunk() -> None:
    # 64 chunks over a file whose tail never ends a line: each chunk pulls about its own
    # range, not the rest of the object (before: 64 + 63 + ... + 1 = 2,080 MiB).
    mib = 1 << 20
    head = b"".join(good(f"u{n}", ["i"]) + b"\n" for n in range(50))
    data = head + b"x" * (64 * mib - len(head))
    total = 0
    for start, end in chunks.ranges(len(data), mib):
        owned, pulled = ranged_chunk(data, start, end, mib)
        total += pulled
        if start == 0:
            assert len(owned) == 51 and owned[-1].too_long
        else:
            assert owned == []
    assert total <= len(data) + 64 * parser.MAX_LINE_BYTES
    # Tighter: a later chunk stops once no line of its own can start (one block here),
    # where its range alone would let it pull a second one.
    assert total <= len(data) + 2 * mib
