"""Find references in the docs and code comments to files that are not in the repository.

    PYTHONPATH=scripts python -m docs.links [ROOT]

Checked, by reading files only (no git, no network):

- every relative link of every Markdown file (``[text](path#anchor)``, reference
  definitions), resolved from the file's folder; an anchor must name a heading (GitHub's
  slugs) or an ``<a name>`` of the target file;
- every repository path (``functions/...``, ``scripts/...``, ``terraform/...``,
  ``tests/...``, ``requirements/...``, ``.ci/...``) named in Markdown prose or inline code, and
  in code comments and docstrings (Python, Terraform, Makefile, TOML, shell), resolved from
  the repository root; ``*``, ``<name>``, ``…`` and ``{a,b}`` are wildcards that must match
  at least one file;
- citations of notes kept outside the repository (the ``.notes`` folder, the design
  contract's sections, the reference notes): cite the public source instead.

Fenced code blocks in Markdown are not checked (they show commands and output, not
references); URLs are not followed.
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOTS = ("functions", "scripts", "terraform", "tests", "requirements", ".ci")
SKIP_DIRS = {
    ".git",
    ".venv",
    "venv",
    "build",
    ".sandbox",
    "node_modules",
    ".terraform",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}
CODE_SUFFIXES = {".py", ".tf", ".hcl", ".toml", ".sh", ".in", ".cfg", ".ini"}
CODE_NAMES = {"Makefile"}

# Citations of files outside the repository (design notes, the contract, reference notes).
OUTSIDE = re.compile(
    r"\.notes/|\bCONTRACT(?:\.md)?\s*§|\b(?:segment|aws|checkov)\.md\b|\bshared/(?:reference|design)\b"
)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\bwww\.\S+", re.IGNORECASE)
_ROOTS = "|".join(re.escape(root) for root in ROOTS)
# A path: a known top folder, then path characters (wildcards and placeholders included).
_PATH = re.compile(rf"(?<![\w./-])(?:\./)?((?:{_ROOTS})/[\w./*<>{{}},…+-]*)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def files(root: Path) -> Iterator[Path]:
    """The repository's own files: everything but tool caches, builds and virtualenvs."""
    stack = [root]
    while stack:
        folder = stack.pop()
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                if entry.name not in SKIP_DIRS and not entry.is_symlink():
                    stack.append(entry)
            elif entry.is_file():
                yield entry


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line, _ in _prose_lines(markdown):
        found.update(_HTML_ANCHOR.findall(line))
        match = _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def _prose_lines(markdown: str) -> Iterator[tuple[str, int]]:
    """Lines outside fenced code blocks, with their 1-based numbers."""
    fence: str | None = None
    for number, line in enumerate(markdown.splitlines(), 1):
        match = _FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield line, number


def _expand(pattern: str) -> list[str]:
    """``{a,b}`` alternatives, one level at a time."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [p for part in match.group(1).split(",") for p in _expand(head + part + tail)]


def path_exists(root: Path, reference: str) -> bool:
    reference = reference.split("#", 1)[0].split("::", 1)[0]
    reference = re.sub(r":\d+(?:-\d+)?$", "", reference)  # file.py:12
    for pattern in _expand(reference):
        pattern = re.sub(r"<[^<>]*>", "*", pattern).replace("…", "**").replace("...", "**")
        pattern = pattern.rstrip("/") or "."
        if not any(c in pattern for c in "*?["):
            if (root / pattern).exists():
                return True
            continue
        if any(root.glob(pattern)):
            return True
    return False


def _clean(candidate: str) -> str:
    return candidate.rstrip(".,;:)'\"")


def paths_in(text: str) -> Iterator[str]:
    """Repository paths named in a piece of prose, code span or comment (URLs skipped)."""
    text = _URL.sub(" ", text)
    for match in _PATH.finditer(text):
        yield _clean(match.group(1))


def check_markdown(root: Path, path: Path) -> Iterator[Problem]:
    text = path.read_text(encoding="utf-8")
    name = path.relative_to(root).as_posix()
    cache: dict[Path, set[str]] = {}

    def anchors_of(target: Path) -> set[str]:
        if target not in cache:
            cache[target] = anchors(target.read_text(encoding="utf-8"))
        return cache[target]

    for line, number in _prose_lines(text):
        for match in OUTSIDE.finditer(line):
            yield Problem(name, number, f"cites {match.group(0)!r}, which is not in the repository")
        targets = [m.group(1) for m in _LINK.finditer(line)]
        reference = _REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
        for target in targets:
            if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # a URL, mailto:, ...
            file_part, _, anchor = target.partition("#")
            if file_part.startswith("/"):
                resolved = root / file_part.lstrip("/")
            else:
                resolved = (path.parent / file_part) if file_part else path
            if not resolved.exists():
                yield Problem(name, number, f"link to {target!r}: no such file")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors_of(resolved):
                yield Problem(name, number, f"link to {target!r}: no such heading")
        # Paths in prose and inline code; link targets were checked above.
        prose = _LINK.sub(lambda m: m.group(0).split("](", 1)[0], line)
        for candidate in paths_in(prose.replace("`", " ")):
            if not path_exists(root, candidate):
                yield Problem(name, number, f"names {candidate!r}, which does not exist")


def comments(path: Path, text: str) -> Iterator[tuple[str, int]]:
    """(comment or docstring text, line) of a code file."""
    if path.suffix == ".py" or text.startswith("#!/usr/bin/env python"):
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
        except (SyntaxError, tokenize.TokenError):
            return
        starts = {tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT}
        for index, token in enumerate(tokens):
            if token.type == tokenize.COMMENT:
                yield token.string, token.start[0]
            elif token.type == tokenize.STRING:
                # A docstring: a string that is a whole statement (not a value in code).
                before = tokens[index - 1].type if index else tokenize.NEWLINE
                after = tokens[index + 1].type if index + 1 < len(tokens) else tokenize.NEWLINE
                if before in starts and after in (tokenize.NEWLINE, tokenize.ENDMARKER):
                    yield token.string, token.start[0]
        return
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith(("#", "//")):
            yield stripped, number
            continue
        for marker in (" # ", " // ", " ## "):
            if marker in line:
                yield line.split(marker, 1)[1], number
                break


def check_code(root: Path, path: Path) -> Iterator[Problem]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return
    if not (_PATH.search(text) or OUTSIDE.search(text)):
        return  # nothing that could be a reference: skip tokenizing
    name = path.relative_to(root).as_posix()
    for comment, number in comments(path, text):
        for match in OUTSIDE.finditer(comment):
            yield Problem(name, number, f"cites {match.group(0)!r}, which is not in the repository")
        for candidate in paths_in(comment.replace("`", " ")):
            if not path_exists(root, candidate):
                yield Problem(name, number, f"names {candidate!r}, which does not exist")


def is_code(path: Path) -> bool:
    if path.suffix in CODE_SUFFIXES or path.name in CODE_NAMES:
        return True
    if path.suffix == "" and path.stat().st_size < 1_000_000:
        with path.open("rb") as handle:
            return handle.read(2) == b"#!"
    return False


def check(root: Path) -> list[Problem]:
    root = root.resolve()
    problems: list[Problem] = []
    for path in files(root):
        if path.suffix == ".md":
            problems.extend(check_markdown(root, path))
        elif is_code(path):
            problems.extend(check_code(root, path))
    return sorted(problems)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]) if args else Path(__file__).resolve().parents[2]
    problems = check(root)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
