"""Personalize batch inference output (JSON lines) read by byte range, in bounded memory.

Line ownership: a line belongs to the chunk ``[start, end)`` that holds its FIRST byte. A
chunk with ``start > 0`` reads from ``start - 1``: the piece up to the first newline there
began before ``start`` (or is the previous line's own newline) and is the previous chunk's;
the chunk's last line is read past ``end`` up to its newline (or the end of the file). So
for any file and any cut into ranges, every line is read by exactly one chunk.

A chunk reads about its own range, never the rest of the file: reading stops as soon as no
line it owns can still start (a line starting at or past ``end``, or a piece with no
newline before ``end``), and its last line is read past ``end`` only until it ends or is
known to be too long. The GetObject range itself ends MAX_LINE_BYTES past ``end``
(:func:`read_range`), so a file whose tail has no newline costs each chunk at most its range
plus one line, not the rest of the object.

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


def read_range(start: int, end: int) -> str:
    """The GetObject ``Range`` of the chunk ``[start, end)``: from :func:`read_offset` to
    enough past ``end`` for a last line that starts at ``end - 1`` to end there or be known
    as too long (MAX_LINE_BYTES + 1 bytes without a newline). S3 cuts a last byte past the
    object's end to the object's end (RFC 9110 byte ranges)."""
    return f"bytes={read_offset(start)}-{end + MAX_LINE_BYTES - 1}"


@dataclass(frozen=True)
class Line:
    offset: int  # of its first byte in the file
    data: bytes  # without the newline; only a prefix when too long
    too_long: bool
    length: int  # bytes in the file, newline excluded (a too-long last line: those read)

    @property
    def next_offset(self) -> int:
        """The offset just after this line and its newline (where the next one starts)."""
        return self.offset + self.length + 1


def lines(
    blocks: Iterable[bytes], first: int, *, owned_range: tuple[int, int] | None = None
) -> Iterator[Line]:
    """Split a byte stream that starts at file offset ``first`` into lines; an empty
    piece after the last newline (the end of the file) is not a line. Memory: one block
    plus at most MAX_LINE_BYTES of an unfinished line.

    With ``owned_range = (start, end)`` no further block is read once no line that starts
    in it can follow (see the module's docstring); a too-long last line of the range is
    then yielded as soon as it is known to be too long."""
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
        if owned_range is not None:
            start, end = owned_range
            if offset >= end:
                return  # the unfinished line starts at or past end: not this chunk's
            # Its newline is at or after here, so the next line starts after it.
            if offset + len(carry) + dropped >= end - 1:
                if offset < start:
                    return  # the previous chunk's piece, and no line of ours after it
                if dropped:
                    # The range's last line, too long: its end is of no use to anyone.
                    yield Line(offset, carry, too_long=True, length=len(carry) + dropped)
                    return
    if carry or dropped:
        length = len(carry) + dropped
        yield Line(offset, carry, too_long=length > MAX_LINE_BYTES, length=length)


def owned(blocks: Iterable[bytes], start: int, end: int) -> Iterator[Line]:
    """The lines whose first byte lies in ``[start, end)``, from a stream that begins at
    :func:`read_offset` (start) and runs at least to the end of the last such line (or
    :func:`read_range`'s end). Blocks are pulled only while a line of the range may follow."""
    for line in lines(blocks, read_offset(start), owned_range=(start, end)):
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
