"""Per-container state of the batch function, created on the first invocation and reused
(see :mod:`common.runtime`): settings or their error, logger, metrics, the HTTP session, the
secret cache, the events/s bucket and the AWS clients (created on first use).

The clients' timeouts and retries are also what bounds the time a chunk may take after its
deadline: :func:`worst_after_deadline_s` adds it up, and the default TIME_MARGIN_MS holds it
(tests/unit/test_batch_deadline.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from backfill.settings import Settings, load
from backfill.writer import LATE_TOKEN_WAIT_S, Ports, max_batch_messages
from common import aws
from common.config import environ
from common.http import HttpPolicy, session
from common.profiles import ProfileClient
from common.ratelimit import TokenBucket
from common.runtime import FunctionRuntime, PerContainer
from common.secrets import SecretCache
from common.tracking import TrackingClient

if TYPE_CHECKING:
    from mypy_boto3_personalize import PersonalizeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

SERVICE = "batch_traits"
SECRET_TTL_S = 300.0
# S3 and SQS answer in milliseconds from Lambda: short timeouts and two retries (standard
# mode) keep one call that hangs within TIME_MARGIN_MS (worst_after_deadline_s).
S3_POLICY = aws.ClientPolicy(connect_timeout=2.0, read_timeout=5.0, max_attempts=2)
SQS_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=3.0, max_attempts=2)
SSM_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=3.0, max_attempts=3)
PERSONALIZE_POLICY = aws.ClientPolicy(connect_timeout=2.0, read_timeout=10.0, max_attempts=4)
# Only connection failures are retried by urllib3: every request that Segment answers takes
# its turn of the events/s budget, and 429/5xx are handled by the writer (Retry-After
# within the deadline).
HTTP_POLICY = HttpPolicy(
    connect_timeout=2.0, read_timeout=6.0, retries=1, status_retries=0, pool_maxsize=2
)
PROFILE_TIMEOUT = (1.0, 3.0)
PROFILE_RETRIES = 1
# botocore's standard retry mode waits rand(0, 1) x min(base x 2^i, 20) s before retry i
# (base 1 s for throttling errors, less for others): botocore/retries/standard.py.
BOTOCORE_MAX_BACKOFF_S = 20.0


def call_s(policy: aws.ClientPolicy) -> float:
    """The longest one botocore call can take: every attempt (the first and max_attempts
    retries) connects and reads up to its timeouts, with the longest backoff before each
    retry. Only the standard retry mode is counted this way."""
    if policy.retry_mode != "standard":
        raise ValueError("only the standard retry mode is bounded here")
    attempts = policy.max_attempts + 1
    backoff = sum(min(2.0**i, BOTOCORE_MAX_BACKOFF_S) for i in range(policy.max_attempts))
    return attempts * (policy.connect_timeout + policy.read_timeout) + backoff


def http_s(policy: HttpPolicy, timeout: tuple[float, float] | None = None) -> float:
    """The longest one request of a :func:`common.http.session` can take: each try (the
    first and ``retries`` after a failed connection or send) connects and reads up to the
    timeout, with urllib3's backoff (factor x 2^i plus its jitter) before each retry."""
    connect, read = timeout or policy.timeout
    backoff = sum(
        policy.backoff_factor * 2.0**i + policy.backoff_factor / 2 for i in range(policy.retries)
    )
    return float((policy.retries + 1) * (connect + read) + backoff)


def worst_after_deadline_s() -> float:
    """How long an invocation may run past its deadline: the one call in flight at the
    deadline (S3, SQS, SSM, a Segment send, a Profile API read), or, when none straddled
    it, the one send allowed after it (its token wait, one attempt); then the hand-overs
    (one SendMessageBatch). Nothing else starts after the deadline (backfill.writer)."""
    send = http_s(HTTP_POLICY)
    in_flight = max(
        call_s(S3_POLICY),
        call_s(SQS_POLICY),
        call_s(SSM_POLICY),
        send,
        http_s(replace(HTTP_POLICY, retries=PROFILE_RETRIES), PROFILE_TIMEOUT),
        LATE_TOKEN_WAIT_S + send,
    )
    return in_flight + call_s(SQS_POLICY)


class Runtime(FunctionRuntime[Settings]):
    """``Runtime(env)``: the settings are loaded once; with an error (a missing region
    included) :attr:`config_error` is set and nothing else is built."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(SERVICE, load, env, region=True)
        self.secrets = SecretCache(lambda: self.clients.ssm(SSM_POLICY), SECRET_TTL_S)
        self._lock = threading.Lock()
        self._ports: Ports | None = None
        self.clock: Callable[[], float] = time.monotonic
        # The secrets as read at the start of the current record: a send or a Profile API
        # read never waits for SSM (a cached value may expire in the middle of a chunk).
        self._held: dict[str, str] = {}

    @property
    def settings(self) -> Settings:
        """The settings (raises the cached ConfigError when they are invalid)."""
        return self.loaded.require()

    def s3(self) -> S3Client:
        return self.clients.s3(S3_POLICY)

    def sqs(self) -> SQSClient:
        return self.clients.sqs(SQS_POLICY)

    def personalize(self) -> PersonalizeClient:
        return self.clients.personalize(PERSONALIZE_POLICY)

    def ports(self) -> Ports:
        """The write-back's clients, built on first use."""
        with self._lock:
            if self._ports is None:
                self._ports = self._build(self.settings)
            return self._ports

    def prefetch_write_key(self) -> None:
        """Read the secrets before each chunk, so a missing one fails early and by name, and
        hold them for the chunk's sends and Profile API reads."""
        settings = self.settings
        names = [settings.write_key_parameter]
        if settings.profile is not None:
            names.append(settings.profile.token_parameter)
        for name in names:
            self._held[name] = self.secrets.get(name)

    def _secret(self, name: str) -> str:
        held = self._held.get(name)
        return held if held is not None else self.secrets.get(name)

    def _forget(self, name: str) -> None:
        self._held.pop(name, None)
        self.secrets.invalidate(name)

    def close(self) -> None:
        self._ports = None

    def _build(self, settings: Settings) -> Ports:
        write_key = settings.write_key_parameter
        profiles = None
        if settings.profile is not None:
            conf = settings.profile
            profiles = ProfileClient(
                session=session(replace(HTTP_POLICY, retries=PROFILE_RETRIES)),
                base_url=conf.api_url,
                space_id=conf.space_id,
                token=lambda: self._secret(conf.token_parameter),
                forget_token=lambda: self._forget(conf.token_parameter),
                timeout=PROFILE_TIMEOUT,
                limiter=TokenBucket(conf.requests_per_second)
                if conf.requests_per_second is not None
                else None,
            )
        rate = settings.events_per_s
        return Ports(
            s3=self.s3(),
            sqs=self.sqs(),
            tracking=TrackingClient(
                session=session(HTTP_POLICY),
                base_url=settings.segment_api_url,
                write_key=lambda: self._secret(write_key),
                timeout=HTTP_POLICY.timeout,
            ),
            bucket=TokenBucket(
                rate, capacity=float(max_batch_messages(rate)), clock=self.clock, full=False
            ),
            profiles=profiles,
            clock=self.clock,
        )


CONTAINER: PerContainer[Runtime] = PerContainer(lambda: Runtime(environ()))
get = CONTAINER.get
reset = CONTAINER.reset
