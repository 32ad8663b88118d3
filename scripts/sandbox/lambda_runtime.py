"""Just enough of the Lambda runtime to call an unmodified handler in this process: loading
``functions/<name>/app.py`` by path, a context object, and one invocation at a time."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[Any, Any], Any]


def load_handler(functions_dir: Path, function: str) -> Handler:
    """Import ``functions/<function>/app.py`` under a unique module name and return its
    ``lambda_handler``.

    Both functions have an ``app`` module (Lambda's handler path is ``app.lambda_handler``),
    so neither is imported as ``app``; shared code (``common``) and the function's own
    package are found through ``sys.path``, as in the Lambda runtime's task root.
    """
    path = functions_dir / function / "app.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    for entry in (functions_dir, functions_dir / function):
        if str(entry) not in sys.path:
            sys.path.insert(0, str(entry))
    name = f"sandbox_{function}_app"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    handler = getattr(module, "lambda_handler", None)
    if not callable(handler):
        raise ImportError(f"{path} has no lambda_handler")
    return handler  # type: ignore[no-any-return]


@dataclass
class LambdaContext:
    """The attributes and method of the Python runtime's context object that handlers use."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    timeout_s: float
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    _deadline: float = 0.0

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.log_stream_name or time.strftime("%Y/%m/%d/[$LATEST]sandbox")
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass
class Function:
    """One deployed function: its handler and settings. ``invoke`` runs one invocation at a
    time, as one warm Lambda execution environment does (handlers may keep per-invocation
    state in module globals, such as a logger's bound request id)."""

    name: str
    handler: Handler
    region: str = "us-east-1"
    account: str = "123456789012"
    memory_mb: int = 256
    timeout_s: float = 30.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"

    def context(self, request_id: str | None = None) -> LambdaContext:
        ctx = LambdaContext(
            function_name=self.name,
            invoked_function_arn=self.arn,
            memory_limit_in_mb=self.memory_mb,
            timeout_s=self.timeout_s,
        )
        if request_id:
            ctx.aws_request_id = request_id
        return ctx

    def invoke(self, event: Any, request_id: str | None = None) -> Any:
        with self._lock:
            return self.handler(event, self.context(request_id))
