"""The user-state store: one DynamoDB item per Segment userId, the bundle's own database.

It replaces the Segment Profile API on the hot path. What an item holds (attribute names
are short on purpose: DynamoDB bills reads per 4 KB and writes per 1 KB of the whole item,
names included, https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html):

====================  ===  ==========================================================
``user_id``           S    the partition key: the Segment userId
``purchased``         SS   every item id the user bought that the bundle has seen: the
                           stream's purchase events and the seed (set union, so a
                           redelivered record adds nothing)
``capped``            BOOL the purchases reached :data:`MAX_PURCHASES`; exclusion then
                           also reads the Profile API, as before the store
``seeded_at``         N    epoch seconds the Profile API's purchased trait was last merged
``refreshed_at``      N    epoch seconds (ms precision) of the last claimed refresh: when
                           its GetRecommendations started
``watermark``         N    event time (epoch ms) of the newest event the last refresh covered
``excluded``          N    how many purchases the last written list was computed without
``digest``            S    a hash of the last written list
``items``             L    the last written list (at most ``NUM_RESULTS``, 500 item ids)
``ver``               N    bumped by every write: the compare-and-set token of a claim
``expires_at``        N    the table's TTL attribute: last activity + the horizon
====================  ===  ==========================================================

Size: a DynamoDB item holds at most 400 KB
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-items).
With Personalize's item ids of at most 256 characters, :data:`MAX_PURCHASES` ids and a
500-item list stay below it (a unit test computes the worst case). A merge that would pass
the cap stores nothing new and sets ``capped``: such a user's exclusion reads the Profile
API on every refresh, so no purchase is ever forgotten, only paid for as before.

Every write bumps ``ver``; a refresh reads ``ver``, computes, then *claims* with a write
conditioned on ``ver`` being unchanged. A purchase merged, a seed, or another container's
refresh in between makes the claim fail, and the refresh starts again from what is stored
now: no list computed before a purchase was merged is written after it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from common.aws import error_code
from common.http import ServiceError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Purchases kept per user. 500 ids of 256 UTF-8 bytes (Personalize's longest item id) are
# 128 KB, the list 500 × 257 B more: a worst-case item stays below DynamoDB's 400 KB, and a
# typical one (tens of purchases) within one 1 KB write unit.
MAX_PURCHASES = 500
MAX_ITEM_BYTES = 400 * 1024
# Personalize's item ids have at most 256 characters, which UTF-8 may spell in up to 1 KB:
# an id of more than 256 bytes is not stored (the user is marked capped, so the Profile API
# keeps excluding it), and the stored list keeps its first 128 KB.
MAX_ITEM_ID_BYTES = 256
MAX_LIST = 500
MAX_LIST_BYTES = 128 * 1024
# BatchGetItem takes at most 100 keys a request
# (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_BatchGetItem.html);
# what it leaves in UnprocessedKeys is asked again with a growing, jittered wait.
BATCH_GET_KEYS = 100
UNPROCESSED_BACKOFF_S = 0.05
UNPROCESSED_BACKOFF_CAP_S = 1.0
DAY_S = 86_400


class StoreError(ServiceError):
    """The store could not answer. ``kind``: unavailable (throttled, 5xx, timeouts after
    botocore's own retries), timeout (unprocessed keys left at the deadline),
    misconfigured (no such table, access denied), rejected (ValidationException)."""


_CONFIGURATION_CODES = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException"}
)


def _store_error(exc: Exception) -> StoreError:
    code = error_code(exc) or type(exc).__name__
    if code in _CONFIGURATION_CODES:
        kind = "misconfigured"
    elif code == "ValidationException":
        kind = "rejected"  # no retry makes DynamoDB take this write (e.g. an item too large)
    else:
        kind = "unavailable"
    return StoreError(kind, f"DynamoDB: {code}")


@dataclass(frozen=True)
class UserState:
    """What the store holds for one user (an unknown user: every field empty, ``ver`` 0)."""

    user_id: str
    purchased: frozenset[str] = frozenset()
    capped: bool = False
    seeded_at: float | None = None
    refreshed_at: float | None = None
    watermark: int | None = None
    excluded: int = 0
    digest: str | None = None
    items: tuple[str, ...] = ()
    ver: int = 0

    @property
    def exists(self) -> bool:
        return self.ver > 0

    def seed_due(self, now: float, reseed_interval_s: float) -> bool:
        """Whether the Profile API's trait should be merged in now: never merged, or (with a
        re-seed interval) merged longer ago than it."""
        if self.seeded_at is None:
            return True
        return reseed_interval_s > 0 and now - self.seeded_at >= reseed_interval_s


def list_digest(items: Sequence[str]) -> str:
    """A short, stable hash of a ranked list (order matters)."""
    encoded = json.dumps(list(items), ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(encoded.encode("utf-8"), digest_size=12).hexdigest()


def item_size(item: Mapping[str, Any]) -> int:
    """An upper bound of an item's size as DynamoDB counts it (names + values; numbers
    counted as their text), for the cap's test and the docs."""
    total = 0
    for name, value in item.items():
        total += len(name.encode("utf-8")) + _value_size(value)
    return total


def _value_size(value: Mapping[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind in ("S", "N"):
        return len(str(inner).encode("utf-8")) + (1 if kind == "N" else 0)
    if kind in ("SS", "NS"):
        return sum(len(str(v).encode("utf-8")) for v in inner)
    if kind == "BOOL" or kind == "NULL":
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + _value_size(v) for k, v in inner.items())
    raise ValueError(f"unsupported attribute type {kind}")


@dataclass(frozen=True)
class Claim:
    """A refresh about to be sent: written only if ``ver`` is still what was read."""

    user_id: str
    read_ver: int
    refreshed_at: float
    watermark: int | None
    excluded: int
    items: tuple[str, ...]


@dataclass
class UserStateStore:
    """The store's calls, each bounded by the caller's deadline (on :attr:`clock`).

    ``client`` is a boto3 DynamoDB client whose botocore retry mode handles throttling and
    5xx; what remains is a :class:`StoreError`.
    """

    client: DynamoDBClient
    table: str
    ttl_days: int = 400
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    # -- reads ---------------------------------------------------------------------------

    def get_many(
        self, user_ids: Iterable[str], deadline: float, *, consistent: bool = True
    ) -> dict[str, UserState]:
        """Every user's state (an unknown user gets an empty one). BatchGetItem, 100 keys a
        request; unprocessed keys are asked again until ``deadline`` (then kind timeout)."""
        wanted = list(dict.fromkeys(user_ids))
        found: dict[str, UserState] = {u: UserState(u) for u in wanted}
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            keys = [{"user_id": {"S": u}} for u in wanted[start : start + BATCH_GET_KEYS]]
            self._batch_get(keys, deadline, consistent, found)
        return found

    def _batch_get(
        self,
        keys: list[dict[str, Any]],
        deadline: float,
        consistent: bool,
        found: dict[str, UserState],
    ) -> None:
        request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": consistent}}
        attempt = 0
        while True:
            try:
                response = self.client.batch_get_item(RequestItems=request)
            except Exception as exc:  # botocore already retried what it retries
                raise _store_error(exc) from exc
            for raw in response.get("Responses", {}).get(self.table, []):
                state = decode(raw)
                found[state.user_id] = state
            left = response.get("UnprocessedKeys", {}).get(self.table)
            if not left or not left.get("Keys"):
                return
            request = {self.table: left}
            attempt += 1
            wait = self.rng.uniform(
                0, min(UNPROCESSED_BACKOFF_CAP_S, UNPROCESSED_BACKOFF_S * 2**attempt)
            )
            if self.clock() + wait >= deadline:
                raise StoreError("timeout", "DynamoDB: unprocessed keys at the deadline")
            self.sleep(wait)

    def get(self, user_id: str, *, consistent: bool = False) -> UserState:
        try:
            response = self.client.get_item(
                TableName=self.table,
                Key={"user_id": {"S": user_id}},
                ConsistentRead=consistent,
            )
        except Exception as exc:
            raise _store_error(exc) from exc
        item = response.get("Item")
        return decode(item) if item else UserState(user_id)

    # -- writes --------------------------------------------------------------------------

    def add_purchases(self, user_id: str, items: Iterable[str]) -> UserState:
        """Merge purchased items (set union) and return the state after it. Past the cap
        (or for an id longer than :data:`MAX_ITEM_ID_BYTES`) nothing is added and
        ``capped`` is set instead."""
        return self._merge(user_id, items, "", {})

    def seed(self, user_id: str, items: Iterable[str]) -> UserState:
        """Merge the Profile API's purchased trait and mark the user seeded now."""
        return self._merge(user_id, items, "seeded_at = :now, ", {":now": _num(self.wall())})

    def _merge(
        self, user_id: str, items: Iterable[str], also: str, values: dict[str, Any]
    ) -> UserState:
        """``ADD purchased`` conditioned on the union fitting the cap. The condition counts
        the stored set, not the union: when it fails, the items not stored yet are merged
        once more under a condition on what is stored now. Only a union that passes the cap,
        or an id too long to bound the item's size, marks the user capped."""
        wanted = set(items)
        fits = {i for i in wanted if len(i.encode("utf-8", "surrogatepass")) <= MAX_ITEM_ID_BYTES}
        sets = f"{also}capped = :true, " if fits != wanted else also
        extra = {**values, ":true": {"BOOL": True}} if fits != wanted else values
        new = sorted(fits)
        for _ in range(3):
            if not new:  # nothing left to store: everything is there already
                if not sets:
                    return self.get(user_id, consistent=True)
                return self._update(user_id, f"ADD ver :one SET {sets}expires_at = :exp", extra)
            room = MAX_PURCHASES - len(new)
            if room < 0:
                break
            try:
                return self._update(
                    user_id,
                    f"ADD purchased :p, ver :one SET {sets}expires_at = :exp",
                    {**extra, ":p": {"SS": new}, ":room": {"N": str(room)}},
                    condition="attribute_not_exists(purchased) OR size(purchased) <= :room",
                )
            except _ConditionFailed:
                new = sorted(fits - self.get(user_id, consistent=True).purchased)
        return self._update(
            user_id,
            f"ADD ver :one SET {also}capped = :true, expires_at = :exp",
            {**values, ":true": {"BOOL": True}},
        )

    def claim(self, claim: Claim) -> UserState | None:
        """Record a refresh if nothing was written since ``claim.read_ver`` was read: the
        state after it, or None when the claim was lost (read again and start over)."""
        values: dict[str, Any] = {
            ":at": _num(claim.refreshed_at),
            ":ex": {"N": str(claim.excluded)},
            ":d": {"S": list_digest(claim.items)},
            ":items": {"L": [{"S": i} for i in _bounded_list(claim.items)]},
            ":read": {"N": str(claim.read_ver)},
        }
        expression = (
            "ADD ver :one SET refreshed_at = :at, excluded = :ex, digest = :d, #items = :items, "
            "expires_at = :exp"
        )
        if claim.watermark is not None:
            expression += ", watermark = :wm"
            values[":wm"] = {"N": str(claim.watermark)}
        condition = "attribute_not_exists(ver)" if claim.read_ver == 0 else "ver = :read"
        if claim.read_ver == 0:
            del values[":read"]
        try:
            return self._update(
                claim.user_id, expression, values, condition=condition, names={"#items": "items"}
            )
        except _ConditionFailed:
            return None

    def release(self, user_id: str, refreshed_at: float) -> bool:
        """Forget the refresh claimed at ``refreshed_at`` (its identify was not sent), unless
        another claim came since (a purchase or seed does not change ``refreshed_at``: the
        claim is still the last one). True when released."""
        try:
            self._update(
                user_id,
                "REMOVE refreshed_at, digest, #items ADD ver :one SET expires_at = :exp",
                {":at": _num(refreshed_at)},
                condition="refreshed_at = :at",
                names={"#items": "items"},
            )
        except _ConditionFailed:
            return False
        return True

    def _update(
        self,
        user_id: str,
        expression: str,
        values: dict[str, Any],
        *,
        condition: str | None = None,
        names: dict[str, str] | None = None,
    ) -> UserState:
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"user_id": {"S": user_id}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": {
                **values,
                ":one": {"N": "1"},
                ":exp": {"N": str(int(self.wall()) + self.ttl_days * DAY_S)},
            },
            "ReturnValues": "ALL_NEW",
        }
        if condition is not None:
            params["ConditionExpression"] = condition
        if names:
            params["ExpressionAttributeNames"] = names
        try:
            response = self.client.update_item(**params)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise _ConditionFailed() from exc
            raise _store_error(exc) from exc
        return decode(response["Attributes"])


class _ConditionFailed(Exception):
    pass


def _bounded_list(items: Sequence[str]) -> list[str]:
    """The written list as stored: its first items within :data:`MAX_LIST_BYTES` (it only
    tells a seed which purchases were just recommended; 500 ids of 256 four-byte characters
    would pass the item's limit on their own)."""
    kept: list[str] = []
    total = 0
    for item in items:
        total += len(item.encode("utf-8", "surrogatepass")) + 1
        if total > MAX_LIST_BYTES:
            break
        kept.append(item)
    return kept


def _num(value: float) -> dict[str, str]:
    """Epoch seconds at millisecond precision, rounded down (a refresh's start never moves
    past an event it preceded), as DynamoDB's number text."""
    return {"N": str(Decimal(math.floor(value * 1000)) / 1000)}


def decode(item: Mapping[str, Any]) -> UserState:
    def number(name: str) -> float | None:
        raw = item.get(name, {}).get("N")
        return float(raw) if raw is not None else None

    watermark = number("watermark")
    return UserState(
        user_id=item["user_id"]["S"],
        purchased=frozenset(item.get("purchased", {}).get("SS", ())),
        capped=bool(item.get("capped", {}).get("BOOL", False)),
        seeded_at=number("seeded_at"),
        refreshed_at=number("refreshed_at"),
        watermark=int(watermark) if watermark is not None else None,
        excluded=int(number("excluded") or 0),
        digest=item.get("digest", {}).get("S"),
        items=tuple(v["S"] for v in item.get("items", {}).get("L", ())),
        ver=int(number("ver") or 0),
    )
