"""Per-container state, created on the first invocation and reused: the worker pool, the
pooled HTTP session, the secret cache and the AWS clients.

Nothing here runs at import time. Settings are re-read each invocation (microseconds) and
the state is rebuilt only if they changed, which only happens in tests.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from common import aws
from common.http import HttpPolicy, session
from common.profiles import ProfileClient, ProfileError
from common.ratelimit import TokenBucket
from common.secrets import SecretCache
from traits_sync.deadletter import DeadLetterQueue
from traits_sync.processor import Ports
from traits_sync.settings import Settings, load
from traits_sync.tracking import TrackingClient
from traits_sync.work import Services

SECRET_TTL_S = 300.0
PERSONALIZE_ATTEMPTS = 4  # per Personalize call, the first one included
SSM_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=3.0, max_attempts=3)
SQS_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=5.0, max_attempts=3)

_lock = threading.Lock()
_runtime: Runtime | None = None


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        workers = settings.worker_threads
        self.executor = ThreadPoolExecutor(workers, thread_name_prefix="traits")
        # A stream consumer can afford a little more patience than an API: four attempts
        # (botocore's max_attempts counts the retries after the first call) with its
        # standard backoff (throttling included), a connection per worker.
        self.personalize_policy = aws.ClientPolicy(
            connect_timeout=1.0,
            read_timeout=3.0,
            max_attempts=PERSONALIZE_ATTEMPTS - 1,
            retry_mode="standard",
            max_pool_connections=workers,
        )
        self.http_policy = HttpPolicy(
            connect_timeout=1.0,
            read_timeout=5.0,
            retries=2,
            backoff_factor=0.2,
            max_retry_after=2.0,
            pool_maxsize=workers,
        )
        self.http = session(self.http_policy)
        # Profile API requests each take a turn of the container's rate share
        # (SEGMENT_PROFILE_API_RPS), so only failed connections are retried by urllib3;
        # a 429 is waited out (Retry-After) by ProfileClient within the time budget.
        self.profile_http = session(replace(self.http_policy, retries=1, status_retries=0))
        self.profile_reads = ThreadPoolExecutor(workers, thread_name_prefix="profile")
        self.secrets = SecretCache(lambda: aws.client("ssm", SSM_POLICY), SECRET_TTL_S)
        self._ports: Ports | None = None

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.profile_reads.shutdown(wait=False, cancel_futures=True)

    def secret_parameters(self) -> dict[str, str]:
        """SSM parameter name → the setting that names it (for the log line)."""
        names = {self.settings.write_key_parameter: "SEGMENT_WRITE_KEY_PARAMETER"}
        if self.settings.profile is not None:
            names[self.settings.profile.token_parameter] = "SEGMENT_PROFILE_TOKEN_PARAMETER"
        return names

    def prefetch_secrets(self) -> None:
        """Read the secrets before any write, so a missing one fails early and by name."""
        for name in self.secret_parameters():
            self.secrets.get(name)

    def ports(self) -> Ports:
        if self._ports is None:
            self._ports = self._build_ports()
        return self._ports

    def _build_ports(self) -> Ports:
        settings = self.settings
        try:
            runtime_client = aws.client("personalize-runtime", self.personalize_policy)
            events_client = (
                aws.client("personalize-events", self.personalize_policy)
                if settings.tracking_id is not None
                else None
            )
            sqs = aws.client("sqs", SQS_POLICY)
        except Exception as exc:
            if type(exc).__name__ == "NoRegionError":
                raise aws.missing_region() from exc
            raise
        profiles: _ForgetfulProfiles | None = None
        if settings.profile is not None:
            conf = settings.profile
            rate = conf.requests_per_second
            client = ProfileClient(
                session=self.profile_http,
                base_url=conf.api_url,
                space_id=conf.space_id,
                token=lambda: self.secrets.get(conf.token_parameter),
                timeout=(1.0, 3.0),
                limiter=TokenBucket(rate) if rate is not None else None,
            )
            profiles = _ForgetfulProfiles(client, self.secrets, conf.token_parameter)
        write_key = settings.write_key_parameter
        return Ports(
            services=Services(events_client, runtime_client, profiles, self.profile_reads),
            tracking=TrackingClient(
                session=self.http,
                base_url=settings.segment_api_url,
                write_key=lambda: self.secrets.get(write_key),
                timeout=self.http_policy.timeout,
            ),
            dead_letters=DeadLetterQueue(sqs, settings.dead_letter_queue_url),
            executor=self.executor,
        )


class _ForgetfulProfiles:
    """Drops a rejected token from the cache so a rotated one is read on the next call."""

    def __init__(self, client: ProfileClient, secrets: SecretCache, parameter: str) -> None:
        self._client = client
        self._secrets = secrets
        self._parameter = parameter

    def traits(
        self, user_id: str, include: Iterable[str], *, deadline: float | None = None
    ) -> dict[str, Any]:
        try:
            return self._client.traits(user_id, include, deadline=deadline)
        except ProfileError as exc:
            if exc.kind == "auth":
                self._secrets.invalidate(self._parameter)
            raise


def get(env: Mapping[str, str]) -> Runtime:
    """The container's runtime for these settings (ConfigError if they are invalid)."""
    global _runtime
    settings = load(env)
    with _lock:
        if _runtime is None or _runtime.settings != settings:
            # Before the secrets are read: SSM would fail on it too, under another name.
            aws.require_region()
            old, _runtime = _runtime, Runtime(settings)
            if old is not None:
                old.shutdown()
        return _runtime


def reset() -> None:
    """Forget the runtime and cached clients (tests that change endpoints between cases)."""
    global _runtime
    with _lock:
        old, _runtime = _runtime, None
    if old is not None:
        old.shutdown()
    aws.reset_clients()
