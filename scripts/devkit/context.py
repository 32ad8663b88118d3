"""The Lambda context object, as the Python runtime passes it to a handler."""

from __future__ import annotations

import time
import uuid
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass
class LambdaContext:
    """The attributes and the method of the Python runtime's context that handlers use.

    The remaining time runs down from ``timeout_s`` with the monotonic clock, as in Lambda;
    ``remaining_ms`` (the one positional argument) fixes it instead: a test of a deadline
    decision wants a known value, and may change it as a fake call "takes" time.
    """

    remaining_ms: int | None = None
    _: KW_ONLY
    function_name: str = "test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    timeout_s: float = 30.0
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = (
            self.invoked_function_arn
            or f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"
        )
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"
        self.log_stream_name = self.log_stream_name or time.strftime("%Y/%m/%d/[$LATEST]local")
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        if self.remaining_ms is not None:
            return self.remaining_ms
        return max(0, int((self._deadline - time.monotonic()) * 1000))
