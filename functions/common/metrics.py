"""CloudWatch metrics in Embedded Metric Format: one JSON line per flush, no API calls.

https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from common.chunks import bounded
from common.settings import DEPLOYMENT_NAME, METRICS_NAMESPACE

MAX_METRICS_PER_BLOB = 100
DEFAULT_NAMESPACE = METRICS_NAMESPACE.default or ""
# Without DEPLOYMENT_NAME (Terraform sets it to name_prefix) metrics still carry the
# dimension, so alarms and dashboards always see the same dimension set.
DEFAULT_DEPLOYMENT = DEPLOYMENT_NAME.default or ""
# The one dimension set of every metric: two deployments in one account never mix.
DIMENSIONS = ("deployment", "service")


class Metrics:
    def __init__(self, namespace: str, service: str, deployment: str = DEFAULT_DEPLOYMENT) -> None:
        self.namespace = namespace
        self.service = service
        self.deployment = deployment
        self._values: dict[str, tuple[float, str]] = {}

    @classmethod
    def from_env(cls, env: Mapping[str, str], service: str) -> Metrics:
        """Namespace from ``METRICS_NAMESPACE``, deployment from ``DEPLOYMENT_NAME``; a
        malformed deployment name raises ConfigError (common.runtime reports it)."""
        return cls(METRICS_NAMESPACE.value(env), service, DEPLOYMENT_NAME.value(env))

    def add(self, name: str, value: float, unit: str = "Count") -> None:
        """Add to a metric (counts accumulate; other units keep the last value)."""
        if unit == "Count" and name in self._values:
            value += self._values[name][0]
        self._values[name] = (value, unit)

    def snapshot(self) -> dict[str, float]:
        return {name: value for name, (value, _) in self._values.items()}

    def flush(self, **properties: Any) -> None:
        """Write the collected metrics (plus searchable properties) and start afresh."""
        items = sorted(self._values.items())
        self._values = {}
        for chunk in bounded(items, lambda _: 0, max_count=MAX_METRICS_PER_BLOB):
            blob: dict[str, Any] = {
                "_aws": {
                    "Timestamp": int(time.time() * 1000),
                    "CloudWatchMetrics": [
                        {
                            "Namespace": self.namespace,
                            "Dimensions": [list(DIMENSIONS)],
                            "Metrics": [{"Name": n, "Unit": u} for n, (_, u) in chunk],
                        }
                    ],
                },
                "deployment": self.deployment,
                "service": self.service,
                **properties,
                **{n: v for n, (v, _) in chunk},
            }
            sys.stdout.write(json.dumps(blob, default=str, separators=(",", ":")) + "\n")
        sys.stdout.flush()
