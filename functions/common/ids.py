"""User, session and item ids: their limit (Personalize's) and their text form.

A Segment id or trait entry may be a string or a JSON number; Personalize and the Profile
API take text, so a number is used as its decimal string (7.0 → "7").
"""

from __future__ import annotations

import math
from typing import Any

# Personalize's userId, sessionId and itemId (and the Profile API's user_id) limit.
MAX_ID_LENGTH = 256


def id_text(value: Any) -> str | None:
    """Strings as they are, numbers as decimal strings (7.0 → "7"), anything else None."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
    return str(value)


def encodable(text: str) -> bool:
    """Whether the text has a UTF-8 form: JSON may carry lone surrogates ("\\ud800") that no
    HTTP body, hash or log line can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def length_problem(text: str) -> str | None:
    """Why an id of this length cannot be sent (for a 400 naming the parameter), or None."""
    if text == "":
        return "must not be empty"
    if len(text) > MAX_ID_LENGTH:
        return f"must be at most {MAX_ID_LENGTH} characters"
    return None


def id_problem(text: str) -> str | None:
    """Why this id cannot be sent (for a 400 naming the parameter or field), or None: empty,
    longer than Personalize takes, or without a UTF-8 form (a lone surrogate)."""
    problem = length_problem(text)
    if problem is not None:
        return problem
    if not encodable(text):
        return "must be valid Unicode text"
    return None
