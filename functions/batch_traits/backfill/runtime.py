"""Per-container state, created on first use and reused: settings (or the error they gave),
the HTTP session, the secret cache, the events/s bucket and the AWS clients (created lazily).

Follows the pattern of the other functions (settings re-read each invocation, the state
rebuilt only when they change); nothing runs at import time."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from backfill.settings import Settings, load
from backfill.writer import Ports, max_batch_messages
from common import aws
from common.http import HttpPolicy, session
from common.profiles import ProfileClient
from common.ratelimit import TokenBucket
from common.secrets import SecretCache
from common.tracking import TrackingClient

SECRET_TTL_S = 300.0
S3_POLICY = aws.ClientPolicy(connect_timeout=2.0, read_timeout=30.0, max_attempts=4)
SQS_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=5.0, max_attempts=3)
SSM_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=3.0, max_attempts=3)
PERSONALIZE_POLICY = aws.ClientPolicy(connect_timeout=2.0, read_timeout=10.0, max_attempts=4)

_lock = threading.Lock()
_runtime: Runtime | None = None


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Only connection failures are retried by urllib3: every request that Segment
        # answers takes its turn of the events/s budget, and 429/5xx are handled by the
        # writer (Retry-After within the deadline).
        self.http_policy = HttpPolicy(
            connect_timeout=2.0, read_timeout=10.0, retries=2, status_retries=0, pool_maxsize=2
        )
        self.http = session(self.http_policy)
        self.secrets = SecretCache(lambda: aws.client("ssm", SSM_POLICY), SECRET_TTL_S)
        rate = settings.events_per_s
        self.events = TokenBucket(rate, capacity=float(max_batch_messages(rate)))
        self._ports: Ports | None = None

    def s3(self) -> Any:
        return aws.client("s3", S3_POLICY)

    def sqs(self) -> Any:
        return aws.client("sqs", SQS_POLICY)

    def personalize(self) -> Any:
        return aws.client("personalize", PERSONALIZE_POLICY)

    def ports(self) -> Ports:
        if self._ports is None:
            settings = self.settings
            write_key = settings.write_key_parameter
            profiles = None
            if settings.profile is not None:
                conf = settings.profile
                profiles = ProfileClient(
                    session=session(replace(self.http_policy, retries=1)),
                    base_url=conf.api_url,
                    space_id=conf.space_id,
                    token=lambda: self.secrets.get(conf.token_parameter),
                    timeout=(1.0, 3.0),
                    limiter=TokenBucket(conf.requests_per_second)
                    if conf.requests_per_second is not None
                    else None,
                )
            self._ports = Ports(
                s3=self.s3(),
                sqs=self.sqs(),
                tracking=TrackingClient(
                    session=self.http,
                    base_url=settings.segment_api_url,
                    write_key=lambda: self.secrets.get(write_key),
                    timeout=self.http_policy.timeout,
                ),
                bucket=self.events,
                profiles=profiles,
            )
        return self._ports

    def prefetch_write_key(self) -> None:
        """Read the write key before any chunk, so a missing one fails early and by name."""
        self.secrets.get(self.settings.write_key_parameter)


def get(env: Mapping[str, str]) -> Runtime:
    """The container's runtime for these settings (ConfigError if they are invalid)."""
    global _runtime
    settings = load(env)
    with _lock:
        if _runtime is None or _runtime.settings != settings:
            aws.require_region()
            _runtime = Runtime(settings)
        return _runtime


def reset() -> None:
    """Forget the runtime and cached clients (tests that change endpoints between cases)."""
    global _runtime
    with _lock:
        _runtime = None
    aws.reset_clients()
