"""Keep the input/output tables of each Terraform module's README in step with its code.

    PYTHONPATH=scripts python -m tf.module_docs [--check] [DIR ...]

For every DIR (default: terraform/ and each terraform/modules/*/) it reads variables.tf
and outputs.tf and rewrites the part of README.md between ``<!-- BEGIN_TF_DOCS -->`` and
``<!-- END_TF_DOCS -->``. ``--check`` changes nothing and exits 1 when a README is stale.

The parser relies on ``terraform fmt`` layout (top-level blocks closed by a ``}`` in
column 0, arguments indented by two spaces), which ``make test`` enforces.
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


@dataclass(frozen=True)
class Item:
    kind: str
    name: str
    args: dict[str, str]

    @property
    def description(self) -> str:
        raw = self.args.get("description", '""')
        try:
            return str(json.loads(raw))
        except json.JSONDecodeError:
            return raw

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
            arg = _ARG.match(line)
            if arg:
                current = arg.group(1)
                args[current] = arg.group(2).strip()
            elif current and line.startswith("   "):
                args[current] += "\n" + line.strip()
            else:
                current = None
        items.append(Item(kind, match.group(2), args))
        i += 1
    return items


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
        rows.append(
            f"| `{v.name}` | {_prose(v.description)}{flags} | {_code(v.args.get('type', 'any'))} "
            f"| {default} | {'yes' if v.required else 'no'} |"
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
