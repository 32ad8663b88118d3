"""Keep each function's table of environment variables in step with the code that reads them.

    PYTHONPATH=scripts python -m docs.env_tables [--check]

For every function (a folder of ``functions/`` with an ``app.py``) it reads, with ``ast``, the
settings the function's own package and the ``functions/common`` code it uses read: calls of
``common.config``'s ``env_*`` readers (and of local wrappers around them, such as
``_trait(env, name, default)``), ``env.get("NAME", ...)`` and ``os.environ.get("NAME")``. Name,
default and accepted values come from the call's arguments (module constants resolved); the
meaning comes from an ``ENV_DOCS = {"NAME": "meaning", ...}`` mapping in the package that reads
the variable (the function's package, or ``functions/common`` for a shared reader), next to
the code. It rewrites the part of ``functions/<name>/README.md`` between
``<!-- BEGIN_ENV_DOCS -->`` and ``<!-- END_ENV_DOCS -->``. ``--check`` changes nothing and
exits 1 when a table is stale, a variable has no meaning or a meaning names no variable.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"
COMMON = "common"
BEGIN = "<!-- BEGIN_ENV_DOCS -->"
END = "<!-- END_ENV_DOCS -->"
DOCS_NAME = "ENV_DOCS"

# What each reader of common/config.py accepts: (kind of value, positional index of the
# default or None, (lo, hi) indexes or None, index of a choices tuple or None).
READERS: dict[str, tuple[str, int | None, tuple[int, int] | None, int | None]] = {
    "env_str": ("text", 2, None, None),
    "env_required": ("text", None, None, None),
    "env_int": ("integer", 2, (3, 4), None),
    "env_float": ("number", 2, (3, 4), None),
    "env_list": ("comma-separated list", 2, None, None),
    "env_choice": ("one of", 2, None, 3),
    "env_bool": ("`true` or `false`", 2, None, None),
    "env_url": ("http(s) URL", 2, None, None),
    "env_arn": ("ARN", None, None, None),
    "env_parameter_name": ("SSM parameter name or ARN", None, None, None),
    "env_rate": ("requests/s, decimal", None, None, None),
}
ALWAYS_REQUIRED = {"env_required", "env_parameter_name"}


@dataclass
class Setting:
    name: str
    kind: str = "text"
    default: str | None = None
    required: bool = False
    values: str = ""
    where: set[str] = field(default_factory=set)


class DocsError(Exception):
    """A variable without a meaning, or a meaning without a variable."""


def _literal(node: ast.expr | None, constants: dict[str, object]) -> object:
    if node is None:
        return None
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
        return _literal(node.args[0], constants)  # dict(DEFAULT), float(X): the value inside
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, dict):
        return "`" + json.dumps(value) + "`"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"`{value:,}`" if abs(value) >= 100_000 else f"`{value}`"
    return f"`{value}`"


@dataclass
class Module:
    path: Path
    package: str
    tree: ast.Module
    constants: dict[str, object]
    wrappers: dict[str, ast.FunctionDef]

    @classmethod
    def parse(cls, path: Path, package: str) -> Module:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        constants: dict[str, object] = {}
        wrappers: dict[str, ast.FunctionDef] = {}
        for node in tree.body:
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                targets, value = [node.target], node.value
            for target in targets:
                if isinstance(target, ast.Name):
                    found = _literal(value, constants)
                    if found is not None:
                        constants[target.id] = found
            if isinstance(node, ast.FunctionDef) and len(node.args.args) >= 2:
                wrappers[node.name] = node
        return cls(path, package, tree, constants, wrappers)

    def docs(self) -> dict[str, str]:
        for node in self.tree.body:
            target: ast.expr | None = None
            if isinstance(node, ast.AnnAssign):
                target, value_node = node.target, node.value
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value_node = node.targets[0], node.value
            if isinstance(target, ast.Name) and target.id == DOCS_NAME:
                # Keys may be the module's own name constants (RANKING = "PERSONALIZE_...").
                pairs = (
                    [
                        (_literal(k, self.constants), _literal(v, {}))
                        for k, v in zip(value_node.keys, value_node.values, strict=True)
                    ]
                    if isinstance(value_node, ast.Dict)
                    else []
                )
                if not pairs or any(
                    not isinstance(k, str) or not isinstance(v, str) for k, v in pairs
                ):
                    raise DocsError(f"{self.path}: {DOCS_NAME} must map names to meanings")
                return {str(k): " ".join(str(v).split()) for k, v in pairs}
        return {}

    def top_level_of(self, target: ast.AST) -> str | None:
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and any(
                child is target for child in ast.walk(node)
            ):
                return node.name
        return None

    def reads(self) -> Iterator[tuple[Setting, ast.AST]]:
        """Every setting read in this module, with the node that reads it."""
        defaults: dict[int, ast.expr] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
                for left, right in zip(node.values, node.values[1:], strict=False):
                    for inner in ast.walk(left):
                        defaults.setdefault(id(inner), right)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                setting = self._read(node, {}, defaults, depth=0)
                if setting is not None:
                    yield setting, node

    def _name(self, node: ast.expr | None, bound: dict[str, ast.expr]) -> str | None:
        if isinstance(node, ast.Name) and node.id in bound:
            node = bound[node.id]
        value = _literal(node, self.constants)
        if isinstance(value, str) and value.isupper() and value.replace("_", "").isalnum():
            return value
        return None

    def _read(
        self, call: ast.Call, bound: dict[str, ast.expr], defaults: dict[int, ast.expr], depth: int
    ) -> Setting | None:
        func = call.func
        # env.get("NAME", default) / os.environ.get("NAME"): the default may follow an `or`.
        if isinstance(func, ast.Attribute) and func.attr == "get" and call.args:
            owner = func.value
            is_env = (isinstance(owner, ast.Name) and owner.id == "env") or (
                isinstance(owner, ast.Attribute) and owner.attr == "environ"
            )
            name = self._name(call.args[0], bound) if is_env else None
            if name is None:
                return None
            value = _literal(call.args[1], self.constants) if len(call.args) > 1 else None
            if value in (None, ""):
                value = _literal(defaults.get(id(call)), self.constants)
            return Setting(name, default=None if value in (None, "") else _show(value))
        if not isinstance(func, ast.Name) or len(call.args) < 2:
            return None
        first = call.args[0]
        if not (isinstance(first, ast.Name) and first.id in ("env", *bound)):
            return None  # a reader applied to a literal mapping re-validates a value, no setting
        name = self._name(call.args[1], bound)
        if func.id in READERS and name is not None:
            return self._setting(func.id, name, call, bound)
        wrapper = self.wrappers.get(func.id)
        if wrapper is None or depth > 2:
            return None
        # A local wrapper such as _trait(env, name, default): read the reader it calls with
        # the wrapper's parameters bound to this call's arguments.
        params = [arg.arg for arg in wrapper.args.args + wrapper.args.kwonlyargs]
        inner_bound = dict(zip(params, call.args, strict=False))
        inner_bound.update({kw.arg: kw.value for kw in call.keywords if kw.arg})
        for node in ast.walk(wrapper):
            if isinstance(node, ast.Call) and node is not call:
                setting = self._read(node, inner_bound, defaults, depth + 1)
                if setting is not None:
                    return setting
        return None

    def _setting(
        self, reader: str, name: str, call: ast.Call, bound: dict[str, ast.expr]
    ) -> Setting:
        kind, default_at, bounds_at, choices_at = READERS[reader]

        def arg(index: int | None) -> object:
            if index is None or index >= len(call.args):
                return None
            node = call.args[index]
            if isinstance(node, ast.Name) and node.id in bound:
                node = bound[node.id]
            return _literal(node, self.constants)

        keywords = {kw.arg: kw.value for kw in call.keywords if kw.arg}
        required_node = keywords.get("required")
        if isinstance(required_node, ast.Name) and required_node.id in bound:
            required_node = bound[required_node.id]
        required = reader in ALWAYS_REQUIRED or _literal(required_node, self.constants) is True
        default = arg(default_at)
        setting = Setting(name, kind=kind, required=required)
        if default not in (None, "") and not required:
            setting.default = _show(default)
        if bounds_at is not None:
            lo, hi = arg(bounds_at[0]), arg(bounds_at[1])
            setting.values = f"{kind} {_show(lo).strip('`')}..{_show(hi).strip('`')}"
        elif choices_at is not None:
            choices = arg(choices_at)
            if isinstance(choices, tuple | list):
                setting.values = "one of " + ", ".join(f"`{c}`" for c in choices)
        elif reader == "env_arn":
            kinds = _literal(keywords.get("kinds"), self.constants)
            if isinstance(kinds, tuple | list):
                setting.values = "Personalize " + " or ".join(str(k) for k in kinds) + " ARN"
        elif reader == "env_rate":
            hi = self.constants.get("MAX_RATE")
            setting.values = f"requests/s 0.001..{_show(hi).strip('`')}" if hi else kind
        else:
            setting.values = kind
        return setting


def _modules(directory: Path, package: str) -> list[Module]:
    return [
        Module.parse(path, package)
        for path in sorted(directory.rglob("*.py"))
        if "__pycache__" not in path.parts
    ]


def _referenced(modules: Iterable[Module]) -> set[str]:
    names: set[str] = set()
    for module in modules:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Name):
                names.add(node.id)
            elif isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                names.update(alias.name for alias in node.names)
    return names


def settings_of(function: Path) -> list[tuple[Setting, str]]:
    """(setting, meaning) for each variable the function reads, sorted by name; the shared
    code is the ``common`` folder beside the function's."""
    own = _modules(function, function.name)
    common = _modules(function.parent / COMMON, COMMON)
    found: dict[str, Setting] = {}
    meanings = {COMMON: _docs(common), function.name: _docs(own)}

    def add(setting: Setting, module: Module) -> None:
        known = found.setdefault(setting.name, setting)
        known.where.add(module.package)
        if known is setting:
            return
        # Read twice (e.g. "is it set?", then validated): the validating read says more.
        known.default = known.default or setting.default
        if known.values in ("", "text"):
            known.values = setting.values
        known.required = known.required and setting.required

    for module in own:
        for setting, _ in module.reads():
            add(setting, module)
    # Shared readers count when the function's code uses them (directly or through
    # another common definition it uses).
    used = _referenced(own)
    while True:
        grown = used | _referenced_defs(common, used)
        if grown == used:
            break
        used = grown
    for module in common:
        for setting, node in module.reads():
            owner = module.top_level_of(node)
            if owner is None or owner in used:
                add(setting, module)
    rows = []
    for name in sorted(found):
        setting = found[name]
        package = function.name if function.name in setting.where else COMMON
        meaning = meanings[package].get(name) or meanings[function.name].get(name)
        if not meaning:
            raise DocsError(
                f"{name} (read in functions/{package}/) has no meaning: add it to an "
                f"{DOCS_NAME} mapping in functions/{package}/"
            )
        rows.append((setting, meaning))
    return rows


def _referenced_defs(common: list[Module], used: set[str]) -> set[str]:
    names: set[str] = set()
    for module in common:
        for node in module.tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in used:
                names |= _referenced([Module(module.path, COMMON, ast.Module([node], []), {}, {})])
    return names


def _docs(modules: Iterable[Module]) -> dict[str, str]:
    docs: dict[str, str] = {}
    for module in modules:
        for name, meaning in module.docs().items():
            if name in docs:
                raise DocsError(f"{name} is described twice in {module.package}")
            docs[name] = meaning
    return docs


def stale_meanings(functions: Iterable[Path]) -> list[str]:
    """Meanings in an ENV_DOCS mapping that no function reads (a renamed or removed setting)."""
    functions = list(functions)
    read = {setting.name for function in functions for setting, _ in settings_of(function)}
    packages = [*{function.parent / COMMON for function in functions}, *functions]
    return sorted(
        f"{name} (functions/{directory.name}/)"
        for directory in packages
        for name in _docs(_modules(directory, directory.name))
        if name not in read
    )


def render(function: Path) -> str:
    lines = [
        BEGIN,
        "<!-- Generated by `make fmt` (scripts/docs/env_tables.py) from the code that reads each",
        f"variable and the {DOCS_NAME} mapping beside it; edit those, not this table. -->",
        "",
        "| variable | default | accepted | meaning |",
        "|---|---|---|---|",
    ]
    for setting, meaning in settings_of(function):
        default = "**required**" if setting.required else (setting.default or "unset")
        cell = meaning.replace("|", "\\|")
        lines.append(f"| `{setting.name}` | {default} | {setting.values or 'text'} | {cell} |")
    lines.append(END)
    return "\n".join(lines)


def update(text: str, table: str) -> str:
    if BEGIN not in text or END not in text:
        raise DocsError(f"the README has no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    return head + table + rest.split(END, 1)[1]


def function_dirs(functions: Path = FUNCTIONS) -> list[Path]:
    return sorted(path.parent for path in functions.glob("*/app.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a table is stale")
    args = parser.parse_args(argv)
    stale: list[str] = []
    try:
        functions = function_dirs()
        for function in functions:
            readme = function / "README.md"
            old = readme.read_text(encoding="utf-8") if readme.exists() else ""
            try:
                new = update(old, render(function))
            except DocsError as error:
                raise DocsError(f"{readme.relative_to(ROOT)}: {error}") from None
            if new != old:
                stale.append(str(readme.relative_to(ROOT)))
                if not args.check:
                    readme.write_text(new, encoding="utf-8")
        unused = stale_meanings(functions)
    except DocsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name in unused:
        print(f"error: {DOCS_NAME} describes {name}, which no function reads", file=sys.stderr)
    for path in stale:
        print(f"{'stale' if args.check else 'updated'}: {path}")
    return 1 if unused or (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
