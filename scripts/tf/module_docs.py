"""Keep the input/output tables of each Terraform module's README in step with its code.

    PYTHONPATH=scripts python -m tf.module_docs [--check] [DIR ...]

For every DIR (default: terraform/ and each terraform/modules/*/) it reads variables.tf
and outputs.tf and rewrites the part of README.md between ``<!-- BEGIN_TF_DOCS -->`` and
``<!-- END_TF_DOCS -->``. ``--check`` changes nothing and exits 1 when a README is stale.

The parser relies on ``terraform fmt`` layout (top-level blocks closed by a ``}`` in
column 0, arguments indented by two spaces), which ``make test`` enforces.

An ``object({...})`` input gets one row for itself and one per attribute (``name.attr``)
with the attribute's type and ``optional()`` default. Its description is a heredoc: a
first paragraph about the whole, then one ``- attr: text`` line per attribute, so each
option is described once, where it is declared. An object whose description lists some
attributes must list all of them (and no others); one that lists none (a module's input
that the root passes down with its defaults applied) says where they are described.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"

_BLOCK = re.compile(r'^(variable|output) "([A-Za-z0-9_-]+)" \{\s*$')
_ARG = re.compile(r"^  ([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_NESTED = re.compile(r"^  [A-Za-z_][A-Za-z0-9_]*( \"[^\"]*\")* \{\s*$")
_HEREDOC = re.compile(r"^<<-?([A-Z]+)$")
_BULLET = re.compile(r"^- ([a-z0-9_]+): (.+)$")


@dataclass(frozen=True)
class Item:
    kind: str
    name: str
    args: dict[str, str]

    @property
    def description(self) -> str:
        raw = self.args.get("description", '""')
        heredoc = _HEREDOC.match(raw.split("\n", 1)[0])
        if heredoc:
            return raw.split("\n", 1)[1] if "\n" in raw else ""
        try:
            return str(json.loads(raw))
        except json.JSONDecodeError:
            return raw

    @property
    def summary(self) -> str:
        """The description without its ``- attr: text`` lines."""
        return " ".join(line for line in self.description.splitlines() if not _BULLET.match(line))

    @property
    def attribute_descriptions(self) -> dict[str, str]:
        found = (_BULLET.match(line) for line in self.description.splitlines())
        return {m.group(1): m.group(2) for m in found if m}

    @property
    def required(self) -> bool:
        return "default" not in self.args

    @property
    def sensitive(self) -> bool:
        return self.args.get("sensitive", "false") == "true"


def parse_blocks(text: str, kind: str) -> list[Item]:
    """Top-level ``kind`` blocks with their two-space-indented arguments (raw HCL text)."""
    items: list[Item] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _BLOCK.match(lines[i])
        i += 1
        if not match or match.group(1) != kind:
            continue
        args: dict[str, str] = {}
        current: str | None = None
        in_nested = False
        while i < len(lines) and lines[i] != "}":
            line = lines[i]
            i += 1
            if in_nested:
                in_nested = line != "  }"
                continue
            if _NESTED.match(line):
                in_nested, current = True, None
                continue
            arg = _ARG.match(line) if current is None or _balanced(args[current]) else None
            if arg:
                current = arg.group(1)
                args[current] = arg.group(2).strip()
                heredoc = _HEREDOC.match(args[current])
                while heredoc and i < len(lines) and lines[i].strip() != heredoc.group(1):
                    args[current] += "\n" + lines[i].strip()
                    i += 1
                i += 1 if heredoc else 0
            elif current and (line.startswith("   ") or not _balanced(args[current])):
                args[current] += "\n" + line.strip()
            else:
                current = None
        items.append(Item(kind, match.group(2), args))
        i += 1
    return items


def _balanced(text: str) -> bool:
    """Whether every bracket opened in ``text`` (outside strings) is closed."""
    depth, quoted, escaped = 0, False, False
    for ch in text:
        if quoted:
            quoted, escaped = (ch != '"' or escaped), (ch == "\\" and not escaped)
        elif ch == '"':
            quoted = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
    return depth <= 0


def _split_top(text: str, separators: str) -> list[str]:
    """``text`` split at the separators that are outside brackets and strings."""
    parts, depth, quoted, start = [], 0, False, 0
    for n, ch in enumerate(text):
        if ch == '"' and (n == 0 or text[n - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth -= 1
        elif not quoted and depth == 0 and ch in separators:
            parts.append(text[start:n])
            start = n + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str
    default: str | None  # HCL text; None when required


def _one_line(type_text: str) -> str:
    """A multi-line type expression on one line: object attributes separated by commas."""
    text = re.sub(r"\n(?=[)}\]])|(?<=[({\[])\n", " ", type_text.strip())
    return " ".join(text.replace("\n", ", ").split())


def object_attributes(type_text: str) -> list[Attribute] | None:
    """The attributes of an ``object({...})`` type, or None for any other type."""
    text = "\n".join(line.strip() for line in type_text.strip().splitlines())
    if not (text.startswith("object({") and text.endswith("})")):
        return None
    attributes = []
    for entry in _split_top(text[len("object({") : -len("})")], "\n,"):
        name, _, expr = entry.partition("=")
        expr = expr.strip()
        if expr.startswith("optional(") and expr.endswith(")"):
            args = [_one_line(a) for a in _split_top(expr[len("optional(") : -1], ",")]
            attributes.append(
                Attribute(name.strip(), args[0], args[1] if len(args) > 1 else "null")
            )
        else:
            attributes.append(Attribute(name.strip(), _one_line(expr), None))
    return attributes


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _prose(text: str) -> str:
    # "<name_prefix>" would be read as an HTML tag and vanish from the rendered table.
    return _cell(text).replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    return f"`{_cell(text)}`" if text else ""


def render(module_dir: Path) -> str:
    variables = parse_blocks((module_dir / "variables.tf").read_text(encoding="utf-8"), "variable")
    outputs = parse_blocks((module_dir / "outputs.tf").read_text(encoding="utf-8"), "output")
    rows = ["## Inputs", "", "| Name | Description | Type | Default | Required |"]
    rows.append("|---|---|---|---|:---:|")
    for v in sorted(variables, key=lambda v: (not v.required, v.name)):
        default = "" if v.required else _code(v.args["default"])
        flags = " (sensitive, ephemeral)" if v.args.get("ephemeral") == "true" else ""
        attributes = object_attributes(v.args.get("type", "any"))
        type_cell = "`object`" if attributes is not None else _code(v.args.get("type", "any"))
        rows.append(
            f"| `{v.name}` | {_prose(v.summary)}{flags} | {type_cell} "
            f"| {default} | {'yes' if v.required else 'no'} |"
        )
        described = v.attribute_descriptions
        if attributes is None:
            if described:
                raise ValueError(
                    f"{module_dir.name}: {v.name} is not an object but lists attributes"
                )
            continue
        names = [a.name for a in attributes]
        if described and set(described) != set(names):
            raise ValueError(
                f"{module_dir.name}: {v.name} describes {sorted(described)}, has {sorted(names)}"
            )
        for a in attributes:
            rows.append(
                f"| `{v.name}.{a.name}` | {_prose(described.get(a.name, ''))} | {_code(a.type)} "
                f"| {'' if a.default is None else _code(a.default)} "
                f"| {'yes' if a.default is None else 'no'} |"
            )
    rows += ["", "## Outputs", "", "| Name | Description | Sensitive |", "|---|---|:---:|"]
    for o in sorted(outputs, key=lambda o: o.name):
        rows.append(f"| `{o.name}` | {_prose(o.description)} | {'yes' if o.sensitive else 'no'} |")
    return "\n".join([BEGIN, *rows, END])


def update(readme: Path, tables: str) -> str:
    text = readme.read_text(encoding="utf-8") if readme.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return head + tables + tail
    return text.rstrip("\n") + ("\n\n" if text else "") + tables + "\n"


def module_dirs() -> list[Path]:
    return [TERRAFORM, *sorted(p.parent for p in (TERRAFORM / "modules").glob("*/variables.tf"))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a README is stale")
    parser.add_argument("dirs", nargs="*", type=Path)
    args = parser.parse_args(argv)
    stale = []
    for directory in args.dirs or module_dirs():
        readme = directory / "README.md"
        new = update(readme, render(directory))
        old = readme.read_text(encoding="utf-8") if readme.exists() else None
        if new != old:
            stale.append(readme)
            if not args.check:
                readme.write_text(new, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'updated'}: {path}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
