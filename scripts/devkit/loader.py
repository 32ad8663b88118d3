"""Importing a function's handler module by path.

Both functions have an ``app`` module (Lambda's handler path is ``app.lambda_handler``), so
neither is ever imported as ``app``: each is loaded from its file under a name of its own.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"

Handler = Callable[[Any, Any], Any]


def load_app(
    function: str, functions_dir: Path = FUNCTIONS, *, name: str | None = None
) -> ModuleType:
    """Import ``<functions_dir>/<function>/app.py`` as module ``name`` (default
    ``<function>_app``), registered in ``sys.modules``.

    Shared code (``common``) and the function's own package are found through ``sys.path``,
    as in the Lambda runtime's task root: both folders are put there if missing.
    """
    path = functions_dir / function / "app.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    for entry in (functions_dir, functions_dir / function):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))
    module_name = name or f"{function}_app"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_handler(
    function: str, functions_dir: Path = FUNCTIONS, *, name: str | None = None
) -> Handler:
    """The ``lambda_handler`` of :func:`load_app`'s module."""
    module = load_app(function, functions_dir, name=name)
    handler = getattr(module, "lambda_handler", None)
    if not callable(handler):
        raise ImportError(f"{functions_dir / function / 'app.py'} has no lambda_handler")
    return handler  # type: ignore[no-any-return]


def run_in_process(function: str, event_path: str) -> None:
    """What ``python -m devkit.loader FUNCTION EVENT.json`` does: one invocation in a fresh
    process (a container of its own), the JSON result printed as the last line."""
    import json

    from devkit.context import LambdaContext

    handler = load_handler(function)
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    result = handler(event, LambdaContext(function_name=function, timeout_s=60.0))
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m devkit.loader FUNCTION EVENT.json")
    run_in_process(sys.argv[1], sys.argv[2])
