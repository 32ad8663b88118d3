"""Just enough of the Lambda runtime to call an unmodified handler in this process: one
invocation at a time, with a context object (the loading and the context are the dev kit's)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from devkit.context import LambdaContext
from devkit.loader import Handler, load_handler

__all__ = ["Function", "Handler", "LambdaContext", "load_handler"]


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
