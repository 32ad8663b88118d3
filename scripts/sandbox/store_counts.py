"""The user-state store's counters for the console: users in the table (seeded, refreshed,
capped) from a Scan, and the deferred refreshes from the refresh queue and its poller.

A Scan reads the whole table: fine for the sandbox's few thousand users in moto, never
what a deployment should do (its counters are the function's metrics)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# One sample of the totals line may spend at most this long scanning.
SCAN_BUDGET_S = 2.0


@dataclass(frozen=True)
class StoreCounts:
    users: int = 0  # items in the table
    seeded: int = 0  # with seeded_at: the Profile API's trait merged in
    refreshed: int = 0  # with refreshed_at: a refresh claimed
    capped: int = 0  # purchases at the store's cap
    waiting: int = 0  # refresh messages in the queue (delayed, visible or in flight)
    trailing: int = 0  # refresh messages the poller consumed (deleted after the invocation)
    complete: bool = True  # False when the scan ran out of its time budget

    @property
    def deferred(self) -> int:
        """Refreshes deferred to the queue so far: consumed plus still waiting."""
        return self.trailing + self.waiting


def scan(
    dynamodb: Any, table: str, budget_s: float = SCAN_BUDGET_S
) -> tuple[int, int, int, int, bool]:
    """(users, seeded, refreshed, capped, complete): one paginated Scan of a few small
    attributes, stopped at ``budget_s``."""
    deadline = time.monotonic() + budget_s
    users = seeded = refreshed = capped = 0
    request: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": "user_id, seeded_at, refreshed_at, capped",
    }
    while True:
        page = dynamodb.scan(**request)
        for item in page.get("Items", []):
            users += 1
            seeded += "seeded_at" in item
            refreshed += "refreshed_at" in item
            capped += bool(item.get("capped", {}).get("BOOL"))
        last = page.get("LastEvaluatedKey")
        if not last:
            return users, seeded, refreshed, capped, True
        if time.monotonic() >= deadline:
            return users, seeded, refreshed, capped, False
        request["ExclusiveStartKey"] = last


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Messages in the queue: visible, delayed and in flight."""
    names = (
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    )
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(names))
    return sum(int(attributes["Attributes"].get(name, 0)) for name in names)


def sample(dynamodb: Any, sqs: Any, table: str, queue_url: str, trailing: int) -> StoreCounts:
    users, seeded, refreshed, capped, complete = scan(dynamodb, table)
    return StoreCounts(
        users=users,
        seeded=seeded,
        refreshed=refreshed,
        capped=capped,
        waiting=queue_depth(sqs, queue_url),
        trailing=trailing,
        complete=complete,
    )
