"""Personalize batch inference output (JSON lines) read by byte range, in bounded memory.

Line ownership: a line belongs to the chunk ``[start, end)`` that holds its FIRST byte. A
chunk with ``start > 0`` reads from ``start - 1``: the piece up to the first newline there
began before ``start`` (or is the previous line's own newline) and is the previous chunk's;
the chunk's last line is read past ``end`` up to its newline (or the end of the file). So
for any file and any cut into ranges, every line is read by exactly one chunk.

A line is classified, never raised on: ``written`` candidates (a user and its items),
``skipped`` (no items), ``error`` (Personalize's own error line), ``undecodable`` (not UTF-8
JSON, not an object, no ``input.userId`` string, an ``output`` without a list of item id
strings, or longer than MAX_LINE_BYTES). A truncated last line fails to decode: it is
counted, not lost.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Far above a real line (500 items of 256 characters with scores is ~150 KB); a longer line
# is counted undecodable and skipped without holding it in memory.
MAX_LINE_BYTES = 1_048_576
MAX_ID_LENGTH = 256  # Personalize userId / itemId limit

# Reasons a line is not written (report keys).
SKIPPED = "skipped_no_items"
ERROR_LINE = "failed_error_line"
UNDECODABLE = "undecodable"
BLANK = "blank"


def read_offset(start: int) -> int:
    """Where a chunk starting at ``start`` must begin reading (one byte earlier, to see
    whether ``start`` begins a line)."""
    return max(0, start - 1)


@dataclass(frozen=True)
class Line:
    offset: int  # of its first byte in the file
    data: bytes  # without the newline; only a prefix when too long
    too_long: bool
    length: int  # bytes in the file, newline excluded

    @property
    def next_offset(self) -> int:
        """The offset just after this line and its newline (where the next one starts)."""
        return self.offset + self.length + 1


def lines(blocks: Iterable[bytes], first: int) -> Iterator[Line]:
    """Split a byte stream that starts at file offset ``first`` into lines; an empty
    piece after the last newline (the end of the file) is not a line. Memory: one block
    plus at most MAX_LINE_BYTES of an unfinished line."""
    carry = b""  # the unfinished line's first bytes (at most MAX_LINE_BYTES + 1)
    dropped = 0  # bytes of the unfinished line beyond ``carry``, not kept
    offset = first  # of the unfinished line
    for block in blocks:
        data = carry + block if carry else block
        pos = 0
        while (cut := data.find(b"\n", pos)) >= 0:
            length = cut - pos + dropped
            yield Line(offset, data[pos:cut], too_long=length > MAX_LINE_BYTES, length=length)
            offset += length + 1
            dropped = 0
            pos = cut + 1
        rest = data[pos:]
        if len(rest) > MAX_LINE_BYTES + 1:
            dropped += len(rest) - (MAX_LINE_BYTES + 1)
            rest = rest[: MAX_LINE_BYTES + 1]
        carry = rest
    if carry or dropped:
        length = len(carry) + dropped
        yield Line(offset, carry, too_long=length > MAX_LINE_BYTES, length=length)


def owned(blocks: Iterable[bytes], start: int, end: int) -> Iterator[Line]:
    """The lines whose first byte lies in ``[start, end)``, from a stream that begins at
    :func:`read_offset` (start) and runs at least to the end of the last such line."""
    for line in lines(blocks, read_offset(start)):
        if line.offset >= end:
            return
        if line.offset >= start:
            yield line


@dataclass(frozen=True)
class Recommendation:
    user_id: str
    items: list[str]


@dataclass(frozen=True)
class NotWritten:
    reason: str


def classify(line: Line) -> Recommendation | NotWritten:
    """What one output line says; never raises."""
    if line.too_long:
        return NotWritten(UNDECODABLE)
    if not line.data.strip():
        return NotWritten(BLANK)
    try:
        record = json.loads(line.data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return NotWritten(UNDECODABLE)
    if not isinstance(record, dict):
        return NotWritten(UNDECODABLE)
    user_id = _user_id(record.get("input"))
    if user_id is None:
        return NotWritten(UNDECODABLE)
    if record.get("error") is not None:
        return NotWritten(ERROR_LINE)
    items = _items(record.get("output"))
    if items is None:
        return NotWritten(UNDECODABLE)
    if not items:
        return NotWritten(SKIPPED)
    return Recommendation(user_id, items)


def _user_id(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    user_id = value.get("userId")
    if not isinstance(user_id, str) or not user_id or len(user_id) > MAX_ID_LENGTH:
        return None
    if not _encodable(user_id):
        return None
    return user_id


def _items(value: Any) -> list[str] | None:
    """The recommended item ids in ranking order, unique; None if malformed."""
    if not isinstance(value, dict):
        return None
    items = value.get("recommendedItems")
    if not isinstance(items, list):
        return None
    if not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LENGTH for i in items):
        return None
    if not all(_encodable(i) for i in items):
        return None
    return list(dict.fromkeys(items))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
