"""Per-container state of the batch function, created on the first invocation and reused
(see :mod:`common.runtime`): settings or their error, logger, metrics, the HTTP session, the
secret cache, the events/s bucket and the AWS clients (created on first use)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from backfill.settings import Settings, load
from backfill.writer import Ports, max_batch_messages
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
S3_POLICY = aws.ClientPolicy(connect_timeout=2.0, read_timeout=30.0, max_attempts=4)
SQS_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=5.0, max_attempts=3)
SSM_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=3.0, max_attempts=3)
PERSONALIZE_POLICY = aws.ClientPolicy(connect_timeout=2.0, read_timeout=10.0, max_attempts=4)
# Only connection failures are retried by urllib3: every request that Segment answers takes
# its turn of the events/s budget, and 429/5xx are handled by the writer (Retry-After
# within the deadline). One send takes at most 2 x (2 s + 6 s) = 16 s, inside the default
# TIME_MARGIN_MS (20 s) that a chunk keeps before the Lambda timeout.
HTTP_POLICY = HttpPolicy(
    connect_timeout=2.0, read_timeout=6.0, retries=1, status_retries=0, pool_maxsize=2
)


class Runtime(FunctionRuntime[Settings]):
    """``Runtime(env)``: the settings are loaded once; with an error (a missing region
    included) :attr:`config_error` is set and nothing else is built."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(SERVICE, load, env, region=True)
        self.secrets = SecretCache(lambda: self.clients.ssm(SSM_POLICY), SECRET_TTL_S)
        self._lock = threading.Lock()
        self._ports: Ports | None = None

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
        """Read the write key before any chunk, so a missing one fails early and by name."""
        self.secrets.get(self.settings.write_key_parameter)

    def close(self) -> None:
        self._ports = None

    def _build(self, settings: Settings) -> Ports:
        write_key = settings.write_key_parameter
        profiles = None
        if settings.profile is not None:
            conf = settings.profile
            profiles = ProfileClient(
                session=session(replace(HTTP_POLICY, retries=1)),
                base_url=conf.api_url,
                space_id=conf.space_id,
                token=lambda: self.secrets.get(conf.token_parameter),
                forget_token=lambda: self.secrets.invalidate(conf.token_parameter),
                timeout=(1.0, 3.0),
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
                write_key=lambda: self.secrets.get(write_key),
                timeout=HTTP_POLICY.timeout,
            ),
            bucket=TokenBucket(rate, capacity=float(max_batch_messages(rate)), full=False),
            profiles=profiles,
        )


CONTAINER: PerContainer[Runtime] = PerContainer(lambda: Runtime(environ()))
get = CONTAINER.get
reset = CONTAINER.reset
