"""Per-container state of the recommendations function, created on the first request and
reused (see :mod:`common.runtime`): settings or their error, logger, metrics, the
Personalize client, the purchases reader (the user-state store's or the Profile API's) and
its small thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from common import aws
from common.config import environ
from common.runtime import FunctionRuntime, PerContainer
from reco_api.exclusion import PurchaseReader, Reader
from reco_api.settings import ExclusionSettings, Settings, load

if TYPE_CHECKING:
    from mypy_boto3_personalize_runtime import PersonalizeRuntimeClient

SERVICE = "recommendations"

# ClientPolicy.max_attempts is botocore's ``max_attempts``: retries after the first call.
# Worst case per request: 2 calls x (1 s connect + 2 s read) + one backoff (at most 1 s
# after a throttle), about 7 s: a hanging Personalize answers 503 far inside API
# Gateway's 29 s, and one retry absorbs a blip without doubling a storm.
PERSONALIZE_POLICY = aws.ClientPolicy(
    connect_timeout=1.0, read_timeout=2.0, max_attempts=1, retry_mode="standard"
)
# The same without the retry, for a request whose remaining time would not cover it.
PERSONALIZE_SINGLE_ATTEMPT_POLICY = aws.ClientPolicy(
    connect_timeout=1.0, read_timeout=2.0, max_attempts=0, retry_mode="standard"
)


def worst_case_s(policy: aws.ClientPolicy) -> float:
    """The longest one call can take: every attempt's connect and read timeouts, plus
    botocore's standard backoff before each retry (at most 1, 2, 4, ... s, capped at 20)."""
    attempts = policy.max_attempts + 1
    backoff = sum(min(2.0**retry, 20.0) for retry in range(policy.max_attempts))
    return attempts * (policy.connect_timeout + policy.read_timeout) + backoff


# The token read is off the request path (background thread) and cached, so it may take
# longer than the exclusion budget: the next request then finds it cached.
SSM_POLICY = aws.ClientPolicy(connect_timeout=1.0, read_timeout=2.0, max_attempts=2)
TOKEN_TTL_S = 300.0
# The store's GetItem runs in the background like the Profile API read, and the response
# waits for it at most PROFILE_TIMEOUT_MS: short socket timeouts free a thread of a hung
# read soon; one retry (botocore's standard mode: throttling, 5xx, connection errors)
# absorbs a blip. Worst case 2 x (0.5 + 0.5) s + one backoff.
DYNAMODB_POLICY = aws.ClientPolicy(
    connect_timeout=0.5, read_timeout=0.5, max_attempts=1, retry_mode="standard"
)


class Runtime(FunctionRuntime[Settings]):
    """``personalize`` and ``purchases`` replace the real clients (unit tests pass fakes)."""

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        personalize: Callable[[], PersonalizeRuntimeClient] | None = None,
        purchases: Reader | None = None,
    ) -> None:
        super().__init__(SERVICE, load, env)
        self.cold = True
        self.settings: Settings | None = self.loaded.settings
        self._reader: Reader | None = purchases
        self._reader_lock = threading.Lock()
        self._personalize = personalize
        self._executor: ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()

    def personalize(self, single_attempt: bool = False) -> PersonalizeRuntimeClient:
        """The Personalize client; ``single_attempt`` when time is short (no retry)."""
        if self._personalize is not None:
            return self._personalize()
        policy = PERSONALIZE_SINGLE_ATTEMPT_POLICY if single_attempt else PERSONALIZE_POLICY
        return self.clients.personalize_runtime(policy)

    def purchases(self) -> Reader | None:
        """The purchases reader (the store's with USER_STATE_TABLE, else the Profile API's),
        or None when exclusion is not configured."""
        if self.settings is None or self.settings.exclusion is None:
            return None
        if self._reader is None:
            with self._reader_lock:
                if self._reader is None:
                    self._reader = self._build_reader()
        return self._reader

    def _build_reader(self) -> Reader:
        assert self.settings is not None and self.settings.exclusion is not None
        conf = self.settings.exclusion
        profile = self._profile_reader(conf) if conf.profile is not None else None
        if conf.user_state_table is None:
            assert profile is not None  # settings: exclusion needs one source or the other
            return profile
        from common.userstate import UserStateStore
        from reco_api.store import StoredPurchases

        store = UserStateStore(self.clients.dynamodb(DYNAMODB_POLICY), conf.user_state_table)
        return StoredPurchases(
            store,
            conf.budget_s,
            lambda: self.executor(conf.workers),
            profile=profile,
            on_config_problem=self._config_problem,
        )

    def _profile_reader(self, conf: ExclusionSettings) -> PurchaseReader:
        from common.http import HttpPolicy, session
        from common.profiles import ProfileClient
        from common.ratelimit import TokenBucket
        from common.secrets import SecretCache

        api = conf.profile
        assert api is not None
        secrets = SecretCache(lambda: self.clients.ssm(SSM_POLICY), ttl_seconds=TOKEN_TTL_S)
        # One quick retry of a failed connection only: a request that reached Segment
        # counts against the space's budget, so it is sent again only after taking a turn
        # (ProfileClient does that after a 429, within the few hundred ms budget).
        policy = HttpPolicy(
            connect_timeout=min(conf.budget_s, 1.0),
            read_timeout=conf.budget_s,
            retries=1,
            status_retries=0,
            backoff_factor=0.0,
            max_retry_after=0.0,
            pool_maxsize=conf.workers,
        )
        rate = api.requests_per_second
        client = ProfileClient(
            session=session(policy),
            base_url=api.api_url,
            space_id=api.space_id,
            token=lambda: secrets.get(api.token_parameter),
            forget_token=lambda: secrets.invalidate(api.token_parameter),
            timeout=policy.timeout,
            limiter=TokenBucket(rate) if rate is not None else None,
        )
        return PurchaseReader(
            client,
            conf.purchased_trait,
            conf.budget_s,
            lambda: self.executor(conf.workers),
            on_config_problem=self._config_problem,
            cache_ttl_s=conf.cache_ttl_s,
        )

    def _config_problem(self, setting: str, detail: str) -> None:
        self.logger.error(
            "purchased-item exclusion disabled for a while: configuration problem",
            setting=setting,
            reason=detail,
        )

    def executor(self, workers: int) -> ThreadPoolExecutor:
        """The container's purchases threads (``PROFILE_WORKERS``): one request at a time
        per container, and a few threads absorb reads still finishing after their budget
        expired."""
        if self._executor is None:
            with self._executor_lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(workers, thread_name_prefix="profile")
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


CONTAINER: PerContainer[Runtime] = PerContainer(lambda: Runtime(environ()))
get = CONTAINER.get
reset = CONTAINER.reset
