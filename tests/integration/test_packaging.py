"""Packaging: deterministic zips with only what a function needs, layer built for Lambda."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import package  # noqa: E402


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wheel_tags(zf: zipfile.ZipFile) -> dict[str, list[str]]:
    tags: dict[str, list[str]] = {}
    for name in zf.namelist():
        if name.endswith(".dist-info/WHEEL"):
            lines = zf.read(name).decode().splitlines()
            tags[name.split("/")[1]] = [
                ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Tag:")
            ]
    return tags


def _build(out: Path, arch: str = "arm64") -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package.py"), "--out", str(out), "--arch", arch],
        check=True,
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    first, second = tmp_path_factory.mktemp("build-a"), tmp_path_factory.mktemp("build-b")
    _build(first)
    _build(second)
    return first, second


@pytest.mark.slow
def test_two_builds_give_identical_zips(two_builds: tuple[Path, Path]) -> None:
    first, second = two_builds
    zips_a = sorted(p.relative_to(first) for p in first.rglob("*.zip"))
    zips_b = sorted(p.relative_to(second) for p in second.rglob("*.zip"))
    assert zips_a == zips_b
    expected = {Path("layer.zip")} | {Path(f, "function.zip") for f in package.function_names()}
    assert set(zips_a) == expected
    for rel in zips_a:
        assert _sha(first / rel) == _sha(second / rel), rel


@pytest.mark.slow
def test_function_zips_hold_only_code(two_builds: tuple[Path, Path]) -> None:
    first, _ = two_builds
    for name in package.function_names():
        with zipfile.ZipFile(first / name / "function.zip") as zf:
            names = zf.namelist()
            assert "app.py" in names
            assert names == sorted(names)
            for entry in names:
                assert "__pycache__" not in entry and not entry.endswith((".pyc", ".pyo"))
                assert not entry.startswith("tests/") and "/tests/" not in entry
            for info in zf.infolist():
                assert info.date_time == package.FIXED_DATE
                assert (info.external_attr >> 16) & 0o777 in (0o644, 0o755)
            # Nothing from another function leaks in.
            for other in package.function_names():
                if other != name:
                    other_files = {
                        p.relative_to(package.FUNCTIONS / other).as_posix()
                        for p in (package.FUNCTIONS / other).rglob("*.py")
                    } - {"app.py"}
                    assert not other_files & set(names)


@pytest.mark.slow
def test_layer_is_built_for_lambda_arm64(two_builds: tuple[Path, Path]) -> None:
    first, _ = two_builds
    with zipfile.ZipFile(first / "layer.zip") as zf:
        names = zf.namelist()
        assert "python/requests/__init__.py" in names
        assert all(n.startswith("python/") for n in names)
        assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
        assert not any(n.startswith(("python/boto3/", "python/botocore/")) for n in names)
        tags = _wheel_tags(zf)
    assert tags, "no dist-info found in the layer"
    binary = {dist: t for dist, t in tags.items() if not all(x.endswith("-none-any") for x in t)}
    # charset-normalizer ships compiled wheels: proves we did not take the build machine's.
    assert binary, tags
    for dist, dist_tags in binary.items():
        assert all("aarch64" in t for t in dist_tags), (dist, dist_tags)
        assert all(t.startswith(("cp313-", "cp3-", "py3-")) or "abi3" in t for t in dist_tags)


@pytest.mark.slow
def test_layer_x86_64_differs_only_in_binary_wheels(
    tmp_path: Path, two_builds: tuple[Path, Path]
) -> None:
    _build(tmp_path, arch="x86_64")
    with zipfile.ZipFile(tmp_path / "layer.zip") as zf:
        tags = _wheel_tags(zf)
    binary = {dist: t for dist, t in tags.items() if not all(x.endswith("-none-any") for x in t)}
    assert binary
    for dist_tags in binary.values():
        assert all("x86_64" in t for t in dist_tags)
    assert _sha(tmp_path / "layer.zip") != _sha(two_builds[0] / "layer.zip")


def test_write_zip_is_reproducible_and_sorted(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "b.py").write_text("B = 1\n")
    (src / "a.py").write_text("A = 1\n")
    files = {"b.py": src / "b.py", "a.py": src / "a.py"}
    package.write_zip(tmp_path / "one.zip", files)
    # Same content, different mtimes and insertion order → same bytes.
    (src / "a.py").touch()
    package.write_zip(tmp_path / "two.zip", dict(reversed(list(files.items()))))
    assert _sha(tmp_path / "one.zip") == _sha(tmp_path / "two.zip")
    with zipfile.ZipFile(tmp_path / "one.zip") as zf:
        assert zf.namelist() == ["a.py", "b.py"]


def test_tree_skips_caches_tests_and_bytecode(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "pkg" / "mod.py").write_text("")
    (tmp_path / "pkg" / "old.pyc").write_bytes(b"\0")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("")
    (tmp_path / "app.py").write_text("")
    assert sorted(package._tree(tmp_path)) == ["app.py", "pkg/mod.py"]
