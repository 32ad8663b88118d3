"""Build deterministic Lambda artifacts.

    python scripts/package.py [--out build] [--python-version 3.13] [--arch arm64]

Writes ``<out>/<function>/function.zip`` for every folder of ``functions/`` that
holds an ``app.py`` (plus the shared ``functions/common`` package when the function
imports it) and ``<out>/layer.zip`` with the runtime dependencies under ``python/``,
installed from the hashed lock for the Lambda target, not for the build machine.

Two builds of the same tree give byte-identical zips: entries are sorted, every
timestamp is fixed, modes are normalised, and caches/bytecode are never included.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"
COMMON = "common"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"

# 1980-01-01 is the earliest timestamp a zip entry can hold.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXEC_MODE = 0o755
EXCLUDED_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}

PLATFORMS = {
    # Lambda runs Amazon Linux 2023 (glibc 2.34); manylinux2014 wheels are the portable floor.
    "arm64": ["manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"],
    "x86_64": ["manylinux2014_x86_64", "manylinux_2_28_x86_64", "manylinux_2_34_x86_64"],
}


def _included(path: Path, base: Path) -> bool:
    rel = path.relative_to(base)
    if any(part in EXCLUDED_DIRS or part.startswith(".") for part in rel.parts):
        return False
    return path.is_file() and path.suffix not in EXCLUDED_SUFFIXES


def write_zip(target: Path, files: dict[str, Path]) -> None:
    """Write ``files`` (archive name -> source path) as a reproducible zip."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name in sorted(files):
            src = files[name]
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            mode = EXEC_MODE if os.access(src, os.X_OK) and src.suffix != ".py" else FILE_MODE
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3  # unix, so the mode bits are honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, src.read_bytes(), compresslevel=9)
    tmp.replace(target)


def function_names() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS.glob("*/app.py"))


def _tree(base: Path, prefix: str = "") -> dict[str, Path]:
    return {
        prefix + p.relative_to(base).as_posix(): p
        for p in sorted(base.rglob("*"))
        if _included(p, base)
    }


def _uses_common(files: dict[str, Path]) -> bool:
    needles = (f"from {COMMON} ", f"from {COMMON}.", f"import {COMMON}")
    for path in files.values():
        if path.suffix == ".py":
            text = path.read_text(encoding="utf-8")
            if any(n in text for n in needles):
                return True
    return False


def build_function(name: str, out: Path) -> Path:
    files = _tree(FUNCTIONS / name)
    common = FUNCTIONS / COMMON
    if common.is_dir() and _uses_common(files):
        files.update(_tree(common, prefix=f"{COMMON}/"))
    target = out / name / "function.zip"
    write_zip(target, files)
    return target


def build_layer(out: Path, python_version: str, arch: str) -> Path:
    with tempfile.TemporaryDirectory(prefix="layer-") as tmp:
        site = Path(tmp) / "python"
        cmd = [
            sys.executable, "-m", "pip", "install",
            "--quiet", "--disable-pip-version-check", "--no-input",
            "--require-hashes", "--no-deps", "--no-compile",
            "--implementation", "cp",
            "--python-version", python_version,
            "--only-binary=:all:",
            "--target", str(site),
            "-r", str(RUNTIME_LOCK),
        ]  # fmt: skip
        for platform in PLATFORMS[arch]:
            cmd += ["--platform", platform]
        env = dict(os.environ, PIP_NO_CACHE_DIR="0", PYTHONDONTWRITEBYTECODE="1")
        subprocess.run(cmd, check=True, env=env)
        # pip leaves a bin/ for console scripts, useless in a layer.
        shutil.rmtree(site / "bin", ignore_errors=True)
        files = _tree(Path(tmp))
        target = out / "layer.zip"
        write_zip(target, files)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build", help="output folder")
    parser.add_argument(
        "--python-version", default=os.environ.get("LAMBDA_PYTHON_VERSION", "3.13"),
        help="Lambda runtime's Python version (default 3.13)",
    )  # fmt: skip
    parser.add_argument(
        "--arch", choices=sorted(PLATFORMS), default=os.environ.get("LAMBDA_ARCH", "arm64"),
        help="Lambda architecture (default arm64)",
    )  # fmt: skip
    parser.add_argument("--only", choices=["functions", "layer"], help="build only one kind")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()

    built: list[Path] = []
    if args.only in (None, "functions"):
        built += [build_function(name, out) for name in function_names()]
    if args.only in (None, "layer"):
        built.append(build_layer(out, args.python_version, args.arch))
    for path in built:
        rel = path.relative_to(out.parent) if out.parent in path.parents else path
        print(f"{path.stat().st_size:>10,} B  {sha256(path)[:12]}  {rel}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
