"""The one per-container runtime pattern of every function.

A function's ``runtime`` module defines a ``Runtime`` (settings-or-error, lazily created
typed clients and pools) and one :class:`PerContainer` that builds it on the first
invocation and keeps it for the container's life. ``app.lambda_handler`` passes
``CONTAINER.get()`` to ``handle_with``; tests build a ``Runtime`` with fakes instead, or
``reset()`` the container after changing the environment.

Nothing here runs at import time: importing a handler never reads the environment or
imports boto3 (tests set their environment and emulators first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from common import aws
from common.config import ConfigError
from common.log import Logger, level_of
from common.metrics import Metrics
from common.settings import METRICS_NAMESPACE

S = TypeVar("S")


class Closeable(Protocol):
    def close(self) -> None: ...


R = TypeVar("R", bound=Closeable)


class PerContainer(Generic[R]):
    """A value built on first use, thread-safely, and reused until :meth:`reset`."""

    def __init__(self, build: Callable[[], R]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._value: R | None = None

    def get(self) -> R:
        found = self._value
        if found is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
                found = self._value
        return found

    def reset(self) -> None:
        """Forget (and close) the value: tests that change the environment between cases."""
        with self._lock:
            old, self._value = self._value, None
        if old is not None:
            old.close()


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """Settings, or the :class:`ConfigError` that loading them raised: read once per
    container, so a misconfigured deployment answers the same error on every call
    without reading the environment again."""

    settings: S | None
    error: ConfigError | None

    @classmethod
    def of(
        cls,
        load: Callable[[Mapping[str, str]], S],
        env: Mapping[str, str],
        *,
        region: bool = False,
    ) -> Loaded[S]:
        """``load(env)``; with ``region``, a missing AWS region is the error too (checked
        before any secret is read: SSM would fail on it under another name)."""
        try:
            settings = load(env)
            if region:
                aws.require_region()
        except ConfigError as exc:
            return cls(None, exc)
        return cls(settings, None)

    def require(self) -> S:
        """The settings, or raise the cached error."""
        if self.settings is None:
            assert self.error is not None
            raise self.error
        return self.settings


class FunctionRuntime(Generic[S]):
    """What every function's ``Runtime`` holds: its logger and metrics, the settings or
    their error (:attr:`loaded`, :attr:`config_error`) and the container's typed clients.
    Subclasses add their own clients, pools and ``close()``."""

    def __init__(
        self,
        service: str,
        load: Callable[[Mapping[str, str]], S],
        env: Mapping[str, str],
        *,
        region: bool = False,
    ) -> None:
        self.logger = Logger(service, level_of(env))
        try:
            self.metrics = Metrics.from_env(env, service)
            self.loaded: Loaded[S] = Loaded.of(load, env, region=region)
        except ConfigError as exc:
            # DEPLOYMENT_NAME malformed: the metrics keep the default dimension, and the
            # function answers the configuration error like any other setting's.
            self.metrics = Metrics(METRICS_NAMESPACE.value(env), service)
            self.loaded = Loaded(None, exc)
        self.config_error: ConfigError | None = self.loaded.error
        self.clients = aws.Clients()
