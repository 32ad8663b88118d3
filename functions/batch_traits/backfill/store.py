"""Small JSON objects in the batch bucket (plan, chunk states, report)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from common.aws import error_code


def get_json(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object as a JSON object; None when there is no such key."""
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise
    value = json.loads(response["Body"].read())
    return value if isinstance(value, dict) else None


def put_json(s3: Any, bucket: str, key: str, value: dict[str, Any]) -> None:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(value, separators=(",", ":"), sort_keys=True).encode(),
        ContentType="application/json",
    )


def keys(s3: Any, bucket: str, prefix: str, check: Callable[[], None] = lambda: None) -> list[str]:
    """Every key under a prefix; ``check`` runs before each page is asked for."""
    paginator = s3.get_paginator("list_objects_v2")
    found: list[str] = []
    pages = iter(paginator.paginate(Bucket=bucket, Prefix=prefix))
    while True:
        check()
        page = next(pages, None)
        if page is None:
            return found
        found += [entry["Key"] for entry in page.get("Contents", [])]
