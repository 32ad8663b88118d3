"""The docs and code comments name only files that exist, and cite nothing outside the
repository; each function's settings table is generated from the code. File reading only."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

from common.settings import Arn, Integer, Setting, Text
from docs import env_tables, links

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_has_no_broken_reference() -> None:
    problems = links.check(ROOT)
    assert not problems, "\n".join(str(problem) for problem in problems)


def test_the_settings_tables_are_current() -> None:
    functions = env_tables.function_dirs()
    assert {path.name for path in functions} >= {"recommendations", "update_traits"}
    for function in functions:
        text = (function / "README.md").read_text(encoding="utf-8")
        assert env_tables.update(text, env_tables.render(function)) == text, (
            f"{function.name}: run `make fmt`"
        )


def test_the_top_readme_stays_short() -> None:
    assert (ROOT / "README.md").stat().st_size <= 15 * 1024


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return _tree(
        tmp_path,
        {
            "README.md": """\
                # Top

                ## The Segment Profile API budget

                See [the budget](#the-segment-profile-api-budget),
                [the API](functions/api/README.md#routes) and `functions/api/app.py`,
                `terraform/modules/*/main.tf`, `functions/<name>/app.py`.
                Online: [docs](https://example.com/functions/none.md), `https://x.org/scripts/nope.py`.

                ```sh
                cat scripts/not-checked-in-a-fence.py
                ```
                """,
            "functions/api/README.md": "# API\n\n## Routes\n",
            "functions/api/app.py": '"""Handler; see functions/api/README.md."""\n# terraform/x/\n',
            "terraform/modules/a/main.tf": "# the root is terraform/\n",
        },
    )


def _messages(root: Path) -> list[str]:
    return [f"{problem.file}: {problem.message}" for problem in links.check(root)]


def test_a_tree_whose_references_all_exist_passes(repo: Path) -> None:
    (repo / "functions/api/app.py").write_text('"""Handler; see functions/api/README.md."""\n')
    assert _messages(repo) == []


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("README.md", "[x](docs/missing.md)\n", "link to 'docs/missing.md': no such file"),
        ("README.md", "[x](#no-such-heading)\n", "link to '#no-such-heading': no such heading"),
        (
            "README.md",
            "[x](functions/api/README.md#nowhere)\n",
            "link to 'functions/api/README.md#nowhere': no such heading",
        ),
        ("README.md", "[x]: functions/gone.md\n", "link to 'functions/gone.md': no such file"),
        (
            "functions/api/README.md",
            "[up](../missing/README.md)\n",
            "link to '../missing/README.md': no such file",
        ),
        ("README.md", "Read `scripts/bench/traits.py`.\n", "names 'scripts/bench/traits.py'"),
        ("README.md", "Run scripts/bench/traits.py.\n", "names 'scripts/bench/traits.py'"),
        ("README.md", "All of `tests/unit/test_*.py`.\n", "names 'tests/unit/test_*.py'"),
        ("README.md", "See `.notes/design.md`.\n", "cites '.notes/'"),
        ("README.md", "As CONTRACT §5 says.\n", "cites 'CONTRACT §'"),
        ("functions/api/logic.py", "# see functions/common/profiles.py\n", "names"),
        ("functions/api/logic.py", '"""Limits (segment.md §3)."""\n', "cites 'segment.md'"),
        ("terraform/modules/a/vars.tf", "x = 1 # see terraform/modules/b/\n", "names"),
        ("Makefile", "# writes scripts/gen/out.py\nall:\n", "names 'scripts/gen/out.py'"),
    ],
)
def test_a_broken_reference_is_found(repo: Path, name: str, text: str, expected: str) -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    found = [message for message in _messages(repo) if message.startswith(f"{name}:")]
    assert any(expected in message for message in found), found


def test_paths_in_fenced_code_and_urls_are_not_references(repo: Path) -> None:
    found = _messages(repo)
    assert not any("not-checked" in message or "none.md" in message for message in found)
    assert not any("nope.py" in message for message in found)


def test_github_heading_slugs() -> None:
    text = "# Secrets (Segment write key, Profile API token)\n## The artifacts (`make package`)\n"
    text += "## Segment × Amazon Personalize\n## Notes\n## Notes\n```\n# not a heading\n```\n"
    assert links.anchors(text) == {
        "secrets-segment-write-key-profile-api-token",
        "the-artifacts-make-package",
        "segment--amazon-personalize",
        "notes",
        "notes-1",
    }


def test_the_table_comes_from_the_records() -> None:
    records = [
        Setting("WORKERS", Integer(1, 32), "threads | per container", default="4"),
        Setting("BYTES", Integer(1024, 268_435_456), "bytes per chunk", default="4194304"),
        Setting("TRAIT", Text(r"[a-z_]{1,9}", "a trait name"), "the trait", default="recs"),
        Setting("QUEUE", Text(), "the queue", required=True),
        Setting("FILTER", Arn(("filter",)), "the filter"),
    ]
    table = env_tables.table(env_tables.checked(records, where="test"))
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows == [
        "| `BYTES` | `4,194,304` | integer 1024..268,435,456 | bytes per chunk |",
        "| `FILTER` | unset | Personalize filter ARN | the filter |",
        "| `QUEUE` | **required** | text | the queue |",
        "| `TRAIT` | `recs` | a trait name | the trait |",
        "| `WORKERS` | `4` | integer 1..32 | threads \\| per container |",
    ]
    readme = "# fn\n\n<!-- BEGIN_ENV_DOCS -->\nold\n<!-- END_ENV_DOCS -->\nafter\n"
    updated = env_tables.update(readme, table)
    assert updated.endswith("<!-- END_ENV_DOCS -->\nafter\n") and "old" not in updated


def test_each_function_table_lists_exactly_its_records() -> None:
    for function in env_tables.function_dirs():
        module = importlib.import_module(env_tables.settings_module(function))
        listed = {record.name for record in module.SETTINGS}
        table = env_tables.render(function)
        named = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
        assert named == listed, function.name


def test_two_records_of_one_name_are_an_error() -> None:
    first = Setting("TRAIT", Text(), "the trait")
    again = Setting("TRAIT", Text(), "another meaning")
    assert env_tables.checked([first, first], where="x") == [first]
    with pytest.raises(env_tables.DocsError, match="TRAIT is declared twice"):
        env_tables.checked([first, again], where="x")
