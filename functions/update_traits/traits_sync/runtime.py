"""Per-container state of the traits function, created on the first invocation and reused
(see :mod:`common.runtime`): settings or their error, logger, metrics, the worker pools,
the pooled HTTP sessions, the secret cache and the AWS clients (created on first use).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from common import aws
from common import settings as shared
from common.config import environ
from common.http import HttpPolicy, session
from common.profiles import ProfileClient
from common.ratelimit import TokenBucket
from common.runtime import FunctionRuntime, PerContainer
from common.secrets import LogHashKey, SecretCache, SecretError
from common.userstate import UserStateStore
from traits_sync.deadletter import DeadLetterQueue
from traits_sync.ports import Ports
from traits_sync.refreshqueue import RefreshQueue
from traits_sync.settings import Settings, load
from traits_sync.tracking import TrackingClient

SERVICE = "update_traits"
SECRET_TTL_S = 300.0
PERSONALIZE_ATTEMPTS = 4  # per Personalize call, the first one included
SSM_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=3.0, max_attempts=3)
SQS_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=5.0, max_attempts=3)
# The store answers in milliseconds; botocore's standard mode retries its throttling and 5xx.
STORE_READ_THREADS = 2


def store_policy(workers: int) -> aws.ClientPolicy:
    return aws.ClientPolicy(
        connect_timeout=1.0,
        read_timeout=2.0,
        max_attempts=3,
        retry_mode="standard",
        max_pool_connections=workers + STORE_READ_THREADS,
    )


def personalize_policy(workers: int) -> aws.ClientPolicy:
    """A stream consumer can afford a little more patience than an API: four attempts
    (botocore's max_attempts counts the retries after the first call) with its standard
    backoff (throttling included), a connection per worker."""
    return aws.ClientPolicy(
        connect_timeout=1.0,
        read_timeout=3.0,
        max_attempts=PERSONALIZE_ATTEMPTS - 1,
        retry_mode="standard",
        max_pool_connections=workers,
    )


def http_policy(workers: int) -> HttpPolicy:
    return HttpPolicy(
        connect_timeout=1.0,
        read_timeout=5.0,
        retries=2,
        backoff_factor=0.2,
        max_retry_after=2.0,
        pool_maxsize=workers,
    )


class Runtime(FunctionRuntime[Settings]):
    """``Runtime(env)``: the settings are loaded once; with an error (a missing region
    included) :attr:`config_error` is set and nothing else is built."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(SERVICE, load, env, region=True)
        self.settings: Settings | None = self.loaded.settings
        self.log_hash_key: LogHashKey | None = None
        self.secrets = SecretCache(lambda: self.clients.ssm(SSM_POLICY), SECRET_TTL_S)
        self._lock = threading.Lock()
        self._state: _State | None = None
        if self.settings is not None and self.settings.log_hash_key_parameter is not None:
            # Read in the background: a batch never waits for it, and logs no user id until
            # it is known (never an unkeyed hash).
            key = LogHashKey(
                self.secrets, self.settings.log_hash_key_parameter, on_problem=self._no_log_key
            )
            self.log_hash_key = key
            self.logger.use_pseudonym_key(key.current)
            key.current()

    def _no_log_key(self, problem: SecretError) -> None:
        self.logger.error(
            "user ids are left out of the logs: the pseudonym key cannot be read",
            setting=shared.LOG_HASH_KEY_PARAMETER.name,
            reason=problem.reason,
        )

    def secret_parameters(self) -> dict[str, str]:
        """SSM parameter name → the setting that names it (for the log line)."""
        settings = self.loaded.require()
        names = {settings.write_key_parameter: shared.SEGMENT_WRITE_KEY_PARAMETER.name}
        if settings.profile is not None:
            names[settings.profile.token_parameter] = shared.SEGMENT_PROFILE_TOKEN_PARAMETER.name
        return names

    def prefetch_secrets(self) -> None:
        """Read the secrets before any write, so a missing one fails early and by name."""
        for name in self.secret_parameters():
            self.secrets.get(name)

    def ports(self) -> Ports:
        """The real clients and pools, built on first use (ConfigError if misconfigured)."""
        with self._lock:
            if self._state is None:
                self._state = self._build()
            return self._state.ports

    def close(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            state.executor.shutdown(wait=False, cancel_futures=True)
            state.profile_reads.shutdown(wait=False, cancel_futures=True)
            state.store_reads.shutdown(wait=False, cancel_futures=True)

    def _build(self) -> _State:
        settings = self.loaded.require()
        workers = settings.worker_threads
        policy = personalize_policy(workers)
        runtime_client = self.clients.personalize_runtime(policy)
        events_client = (
            self.clients.personalize_events(policy) if settings.tracking_id is not None else None
        )
        sqs = self.clients.sqs(SQS_POLICY)
        web = http_policy(workers)
        executor = ThreadPoolExecutor(workers, thread_name_prefix="traits")
        profile_reads = ThreadPoolExecutor(workers, thread_name_prefix="profile")
        write_key = settings.write_key_parameter
        store_reads = ThreadPoolExecutor(STORE_READ_THREADS, thread_name_prefix="store")
        conf = settings.store
        store = (
            UserStateStore(self.clients.dynamodb(store_policy(workers)), conf.table, conf.ttl_days)
            if conf is not None
            else None
        )
        refresh_queue = (
            RefreshQueue(sqs, conf.refresh_queue_url)
            if conf is not None and conf.refresh_queue_url is not None
            else None
        )
        ports = Ports(
            personalize_events=events_client,
            personalize_runtime=runtime_client,
            profiles=self._profiles(settings) if settings.profile is not None else None,
            profile_reads=profile_reads,
            tracking=TrackingClient(
                session=session(web),
                base_url=settings.segment_api_url,
                write_key=lambda: self.secrets.get(write_key),
                timeout=web.timeout,
            ),
            dead_letters=DeadLetterQueue(sqs, settings.dead_letter_queue_url),
            executor=executor,
            prefetch_secrets=self.prefetch_secrets,
            store=store,
            store_reads=store_reads if store is not None else None,
            refresh_queue=refresh_queue,
        )
        return _State(ports, executor, profile_reads, store_reads)

    def _profiles(self, settings: Settings) -> ProfileClient:
        assert settings.profile is not None
        conf = settings.profile
        rate = conf.requests_per_second
        # Profile API requests each take a turn of the container's rate share
        # (SEGMENT_PROFILE_API_RPS), so only failed connections are retried by urllib3;
        # a 429 is waited out (Retry-After) by ProfileClient within the time budget.
        policy = replace(http_policy(settings.worker_threads), retries=1, status_retries=0)
        return ProfileClient(
            session=session(policy),
            base_url=conf.api_url,
            space_id=conf.space_id,
            token=lambda: self.secrets.get(conf.token_parameter),
            forget_token=lambda: self.secrets.invalidate(conf.token_parameter),
            timeout=(1.0, 3.0),
            limiter=TokenBucket(rate) if rate is not None else None,
        )


@dataclass(frozen=True)
class _State:
    ports: Ports
    executor: ThreadPoolExecutor
    profile_reads: ThreadPoolExecutor
    store_reads: ThreadPoolExecutor


CONTAINER: PerContainer[Runtime] = PerContainer(lambda: Runtime(environ()))
get = CONTAINER.get
reset = CONTAINER.reset
