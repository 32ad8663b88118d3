"""moto's server, with fixes for the moto 5.2.5 gaps that the Terraform root runs into.

    PYTHONPATH=scripts python -m tf.moto_server -H 127.0.0.1 -p 5000

Each fix makes the emulator behave as AWS does for a call the AWS provider makes; none
changes what the Terraform modules ask for:

- kinesis CreateStream ignores ``Tags`` (AWS applies them), so every plan after apply
  would show a tag drift on the stream. Fixed by applying them after creation.
- apigateway UpdateAccount with ``replace /cloudwatchRoleArn`` and no value (how the
  provider clears the setting on destroy, ``reset_on_delete``) raises KeyError, an HTTP
  500 that the provider retries for many minutes. Fixed by clearing the role.

Remove a fix when the pinned moto handles the call itself.
"""

from __future__ import annotations

import sys
from typing import Any


def _fix_kinesis_create_stream_tags() -> None:
    from moto.kinesis.responses import KinesisResponse

    original = KinesisResponse.create_stream

    def create_stream(self: Any) -> Any:
        result = original(self)
        tags = self._get_param("Tags")
        if tags:
            self.kinesis_backend.add_tags_to_stream(None, self._get_param("StreamName"), tags)
        return result

    KinesisResponse.create_stream = create_stream  # type: ignore[method-assign]


def _fix_apigateway_account_reset() -> None:
    from moto.apigateway.models import Account

    original = Account.apply_patch_operations

    def apply_patch_operations(self: Any, patch_operations: list[dict[str, Any]]) -> Any:
        remaining = []
        for op in patch_operations:
            if op.get("path", "").endswith("/cloudwatchRoleArn") and "value" not in op:
                self.cloudwatch_role_arn = None
            else:
                remaining.append(op)
        return original(self, remaining)

    Account.apply_patch_operations = apply_patch_operations  # type: ignore[method-assign]


def apply_fixes() -> None:
    _fix_kinesis_create_stream_tags()
    _fix_apigateway_account_reset()


def main(argv: list[str] | None = None) -> None:
    from moto import server

    apply_fixes()
    server.main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
