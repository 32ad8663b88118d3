"""Personalize filter expressions, the subset the bundle relies on:

    EXCLUDE|INCLUDE ItemID WHERE Interactions.EVENT_TYPE IN ("a", "b" | $PARAM | "*")
    EXCLUDE|INCLUDE ItemID WHERE Items.<FIELD> IN|NOT IN ("v", $PARAM)

chained with ``|``. Interaction clauses look at the user's most recent interactions of the
listed types, real-time events included, as Personalize does. Anything else (comparisons,
``IF CurrentUser``) is refused when the filter is created, not silently mis-applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

_CLAUSE = re.compile(
    r"^\s*(?P<action>EXCLUDE|INCLUDE)\s+ItemID\s+WHERE\s+"
    r"(?P<dataset>Interactions|Items)\.(?P<field>[A-Za-z_][A-Za-z0-9_]*)\s+"
    r"(?P<op>NOT\s+IN|IN)\s*\((?P<values>.*)\)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_VALUE = re.compile(r'\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|\$(?P<param>[A-Za-z0-9_]+))\s*(?:,|$)')


class FilterError(ValueError):
    """The expression is outside the supported subset, or filterValues are wrong."""


class History(Protocol):
    def recent_items(self, user_id: str, event_types: Sequence[str] | None) -> set[str]: ...


@dataclass(frozen=True)
class Clause:
    action: str  # "EXCLUDE" | "INCLUDE"
    dataset: str  # "interactions" | "items"
    field: str
    negated: bool
    values: tuple[tuple[str, str], ...]  # ("literal", v) or ("param", NAME)


@dataclass(frozen=True)
class Filter:
    arn: str
    name: str
    expression: str
    clauses: tuple[Clause, ...]

    def apply(
        self,
        ranked: list[tuple[str, float]],
        user_id: str | None,
        history: History,
        item_attributes: Mapping[str, Mapping[str, Any]],
        filter_values: Mapping[str, str] | None,
    ) -> list[tuple[str, float]]:
        result = ranked
        for clause in self.clauses:
            values = _resolve(clause, filter_values or {})
            if values is None:  # EXCLUDE with its parameter left out: clause ignored
                continue
            if clause.dataset == "interactions":
                types = None if "*" in values else values
                hits = history.recent_items(user_id, types) if user_id else set()
            else:
                wanted = set(values)
                hits = {
                    item
                    for item, _ in result
                    if bool(_attribute(item_attributes.get(item, {}), clause.field) & wanted)
                    != clause.negated
                }
            exclude = clause.action == "EXCLUDE"
            result = [(item, score) for item, score in result if (item in hits) != exclude]
        return result


def parse(arn: str, name: str, expression: str) -> Filter:
    clauses = []
    for part in _split_chain(expression):
        match = _CLAUSE.match(part)
        if not match:
            raise FilterError(f"unsupported filter expression: {part.strip()!r}")
        dataset = match["dataset"].lower()
        field = match["field"]
        negated = match["op"].upper().startswith("NOT")
        if dataset == "interactions" and (field.upper() != "EVENT_TYPE" or negated):
            raise FilterError("interactions can be filtered only with EVENT_TYPE IN (...)")
        values = _parse_values(match["values"])
        clauses.append(Clause(match["action"].upper(), dataset, field, negated, tuple(values)))
    if not clauses:
        raise FilterError("empty filter expression")
    return Filter(arn=arn, name=name, expression=expression, clauses=tuple(clauses))


def _split_chain(expression: str) -> list[str]:
    """Split on ``|`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in expression:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "|" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _parse_values(text: str) -> list[tuple[str, str]]:
    values: list[tuple[str, str]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _VALUE.match(text, position)
        if not match or match.end() == position:
            raise FilterError(f"cannot parse filter values: {text!r}")
        if match["param"] is not None:
            values.append(("param", match["param"]))
        else:
            values.append(("literal", match["quoted"].replace('\\"', '"')))
        position = match.end()
    if not values:
        raise FilterError("a filter needs at least one value")
    return values


def _resolve(clause: Clause, filter_values: Mapping[str, str]) -> list[str] | None:
    resolved: list[str] = []
    for kind, value in clause.values:
        if kind == "literal":
            resolved.append(value)
            continue
        raw = filter_values.get(value)
        if raw is None:
            if clause.action == "EXCLUDE":
                return None
            raise FilterError(f"filterValues must provide ${value} for an INCLUDE filter")
        resolved.extend(_parse_filter_value(raw))
    return resolved


def _parse_filter_value(raw: str) -> list[str]:
    """filterValues carry quoted, comma-separated values: ``"\\"comedy\\",\\"drama\\""``."""
    values = [v for kind, v in _parse_values(raw) if kind == "literal"]
    if not values:
        raise FilterError("filter values must be quoted strings")
    return values


def _attribute(attributes: Mapping[str, Any], field: str) -> set[str]:
    for key, value in attributes.items():
        if key.lower() == field.lower():
            if isinstance(value, list | tuple | set):
                return {str(v) for v in value}
            return set(str(value).split("|"))
    return set()
