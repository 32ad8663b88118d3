"""A Kinesis batch processed as a batch.

1. Classify every record: relevant, skipped (counted), or bad (dead-lettered).
2. Plan: one unit per distinct userId, one per anonymous session.
3. Run the units on the shared thread pool until shortly before the deadline: PutEvents,
   Profile API read, one GetRecommendations per user, exclusion, the identify to send.
4. Send the identifies in as few ``/v1/batch`` requests as the size limits allow, in the
   time kept back for it.

Returns the sequence numbers to retry: exactly the records of units that failed or did not
finish in time, and bad records whose dead-letter send failed. Nothing else.

Refusals that no retry can fix (PutEvents InvalidInputException for an event, Segment 400
for an identify, GetRecommendations InvalidInputException or Profile API 400 for a user):

- if the same service accepted some other call in this invocation, the refusal is about
  those records: they are dead-lettered with the service's reason, and the shard moves on;
- if it accepted none, every user gets it, which is a misconfiguration (a wrong tracking
  id, URL or campaign): the records are reported for retry, one ERROR line names the
  setting, and ``ConfigurationErrors`` counts it. So do errors that always mean one
  (ResourceNotFound, AccessDenied, a rejected Profile API token).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from common import settings as shared
from common.log import Logger
from traits_sync import identify, refreshqueue
from traits_sync import settings as own
from traits_sync.budget import Budget, OutOfTime
from traits_sync.kinesis import KinesisRecord
from traits_sync.messages import Bad, Rules, Skipped, TrackedEvent, classify
from traits_sync.plan import Plan, SessionGroup, UserWork, build
from traits_sync.ports import Ports
from traits_sync.refresh import (
    Outstanding,
    Prepared,
    StoreView,
    claim,
    finish_seeds,
    queued_refresh,
    read_states,
    release_claims,
    user_refresh,
)
from traits_sync.refreshqueue import Deferred
from traits_sync.settings import Settings
from traits_sync.stats import Stats
from traits_sync.work import (
    CONFIGURATION_KINDS,
    PERMANENT_KINDS,
    PUT_EVENTS_ACCEPTED,
    StepFailed,
    put_events,
    service_reason,
    user_identify,
)

TIME_UP = "time_budget"
# Time kept back from the per-user phase for the identify requests, so that one user still
# busy at the end does not cost every other user their identify: at most this long, at most
# this share of what is left.
SEND_RESERVE_S = 5.0
SEND_RESERVE_SHARE = 0.2
# Evidence counters (see PUT_EVENTS_ACCEPTED): a user unit that completed got its Profile API
# read and recommendation; a /v1/batch request that Segment accepted.
USERS_COMPLETED = "accepted:users"
SEGMENT_ACCEPTED = "accepted:SegmentBatch"
_EVIDENCE = {
    "PutEvents": PUT_EVENTS_ACCEPTED,
    "GetRecommendations": USERS_COMPLETED,
    "ProfileAPI": USERS_COMPLETED,
    "SegmentBatch": SEGMENT_ACCEPTED,
    "UserState": USERS_COMPLETED,
    "RefreshQueue": USERS_COMPLETED,
}
# The setting to look at when a service refuses every call of a step.
_SETTINGS = {
    "PutEvents": own.PERSONALIZE_TRACKING_ID.name,
    "GetRecommendations": shared.PERSONALIZE_CAMPAIGN_ARN.name,
    "ProfileAPI": shared.SEGMENT_SPACE_ID.name,
    "SegmentBatch": shared.SEGMENT_API_URL.name,
    "UserState": shared.USER_STATE_TABLE.name,
    "RefreshQueue": own.REFRESH_QUEUE_URL.name,
}


class Failures:
    """Sequence numbers to report, in record order, each once."""

    def __init__(self, stats: Stats, logger: Logger) -> None:
        self._stats = stats
        self._logger = logger
        self._sequences: dict[str, None] = {}

    def add(
        self, records: Sequence[KinesisRecord], reason: str, user_id: str | None = None
    ) -> None:
        for record in records:
            self._sequences[record.sequence_number] = None
        self._stats.failed(reason, len(records), user=user_id is not None)
        self._logger.warning(
            "records reported for retry",
            reason=reason,
            user=self._logger.pseudonym(user_id) if user_id is not None else None,
            records=len(records),
        )

    def has(self, record: KinesisRecord) -> bool:
        return record.sequence_number in self._sequences

    def sequence_numbers(self, order: Sequence[KinesisRecord]) -> list[str]:
        return [r.sequence_number for r in order if r.sequence_number in self._sequences]


def rules(settings: Settings) -> Rules:
    """What makes a record relevant, from the settings (one per invocation: ``Rules``
    holds the latest usable event time)."""
    return Rules(
        settings.tracked_events,
        settings.purchase_events,
        settings.item_id_property,
        recommendation_id_property=settings.recommendation_id_property,
        impression_property=settings.impression_property,
    )


def process(
    records: Sequence[KinesisRecord],
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    logger: Logger,
) -> list[str]:
    """The whole batch: classify, dead-letter, run the units, send the identifies, settle.

    Raises :class:`~common.secrets.SecretError` before any write when a secret the batch
    needs cannot be read (the caller reports every record for retry).
    """
    relevance = rules(settings)
    classified = [classify(record, relevance) for record in records]
    if any(isinstance(c, TrackedEvent) and c.user_id is not None for c in classified):
        ports.prefetch_secrets()
    failures = Failures(stats, logger)
    relevant = [c for c in classified if isinstance(c, TrackedEvent)]
    bad = [c for c in classified if isinstance(c, Bad)]
    stats.add("Records", len(records))
    stats.add("Relevant", len(relevant))
    stats.add("Attributed", sum(1 for e in relevant if e.attribution.recommendation_id))
    stats.add("AttributionDropped", sum(len(e.attribution.dropped) for e in relevant))
    for skipped in (c for c in classified if isinstance(c, Skipped)):
        stats.skipped(skipped.reason)

    _dead_letter(bad, ports, budget, stats, logger, failures)
    plan = build(relevant)
    reserve = _reserve(budget)
    refusals: list[Refusal] = []
    units = budget.reserving(reserve)
    store = None
    if settings.store is not None:
        # Buyers get their state from the purchase merge's own write.
        view = read_states(ports, (u.user_id for u in plan.users if not u.purchased), units, stats)
        store = _Stored(view, owners={u.user_id: u for u in plan.users})
    identifies: list[tuple[Owner, identify.Identify]] = list(
        _run_units(plan, settings, ports, units, stats, failures, refusals, store)
    )
    sends: DeferredSends = []
    if store is not None:
        sends = _start_deferred(store.deferred, ports, budget)
        claimed, requeued = _claim(store, ports, budget, stats, failures, refusals)
        identifies += claimed
        sends += _start_deferred(requeued, ports, budget)
    _send_identifies(identifies, ports, budget, stats, failures, refusals)
    if store is not None:
        _release_unsent(identifies, store, ports, budget, stats, failures, refusals)
        again = finish_seeds(store.seeds, settings, ports, budget, stats)
        sends += _start_deferred(again, ports, budget)
        _finish_deferred(sends, store, ports, budget, stats, failures)
    refusals += [
        Refusal("PutEvents", "invalid_input", [record], reason)
        for group in plan.session_groups
        for record, reason in group.rejected
    ]
    rejected = _settle(refusals, stats, logger, failures)
    _dead_letter(rejected, ports, budget, stats, logger, failures)
    return failures.sequence_numbers(records)


def _reserve(budget: Budget) -> float:
    return min(SEND_RESERVE_S, SEND_RESERVE_SHARE * budget.remaining())


@dataclass
class QueuedWork:
    """The refresh-queue messages of one user in an SQS batch (the user's owner of the
    identify, like a UserWork in a Kinesis batch)."""

    user_id: str
    records: list[KinesisRecord]
    deferred: Deferred


class Owner(Protocol):
    user_id: str

    @property
    def records(self) -> Sequence[KinesisRecord]: ...


def process_refreshes(
    records: Sequence[KinesisRecord],
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    logger: Logger,
) -> list[str]:
    """An SQS batch of the refresh queue: one trailing refresh per user (the newest
    ``after`` of their messages), unless a newer refresh already covered it. Returns the
    messageIds to retry; a message this function did not write is dead-lettered."""
    if settings.store is None:
        raise shared.USER_STATE_TABLE.error("is required to consume the refresh queue")
    failures = Failures(stats, logger)
    stats.add("Records", len(records))
    bad: list[Bad] = []
    works: dict[str, QueuedWork] = {}
    for record in records:
        try:
            deferred = refreshqueue.parse(refreshqueue.body_of(record))
        except (refreshqueue.BadRefresh, ValueError) as exc:
            bad.append(Bad(record, f"not a refresh message: {exc}", "BadRefreshMessage"))
            continue
        work = works.get(deferred.user_id)
        if work is None:
            works[deferred.user_id] = QueuedWork(deferred.user_id, [record], deferred)
        else:
            work.records.append(record)
            if deferred.after > work.deferred.after:
                work.deferred = deferred
    _dead_letter(bad, ports, budget, stats, logger, failures)
    if not works:
        return failures.sequence_numbers(records)
    ports.prefetch_secrets()
    units = budget.reserving(_reserve(budget))
    view = read_states(ports, works, units, stats)
    store = _Stored(view, owners=dict(works))
    futures: dict[Future[Prepared | None], QueuedWork] = {
        ports.executor.submit(
            queued_refresh,
            work.deferred,
            settings,
            ports,
            units,
            stats,
            view,
            store.seeds,
            work.records[0].sequence_number,
        ): work
        for work in works.values()
    }
    _wait(list(futures), units)
    refusals: list[Refusal] = []
    for future, work in futures.items():
        done, outcome = _settled(future, work.records, work.user_id, failures, refusals)
        if done:
            stats.add(USERS_COMPLETED)
            if outcome is not None:
                store.prepared.append((work, outcome))
    # A refresh that lost its claim goes back on the queue as a new message (this one is
    # done): a contended user is retried in moments, not after the visibility timeout.
    identifies, requeued = _claim(store, ports, budget, stats, failures, refusals)
    sends = _start_deferred(requeued, ports, budget)
    _send_identifies(identifies, ports, budget, stats, failures, refusals)
    _release_unsent(identifies, store, ports, budget, stats, failures, refusals)
    again = finish_seeds(store.seeds, settings, ports, budget, stats)
    sends += _start_deferred(again, ports, budget)
    _finish_deferred(sends, store, ports, budget, stats, failures)
    rejected = _settle(refusals, stats, logger, failures)
    _dead_letter(rejected, ports, budget, stats, logger, failures)
    return failures.sequence_numbers(records)


@dataclass(frozen=True)
class Refusal:
    """Records a service refused for good, with its reason (dead-letter or configuration)."""

    step: str
    kind: str
    records: Sequence[KinesisRecord]
    reason: str
    user_id: str | None = None


def _settle(refusals: list[Refusal], stats: Stats, logger: Logger, failures: Failures) -> list[Bad]:
    """Dead letters for refusals that concern their records; retry (and one ERROR line per
    step) for those every call got. Records already reported for retry stay so."""
    bad: dict[str, Bad] = {}
    misconfigured: dict[str, str] = {}
    for refusal in refusals:
        healthy = stats[_EVIDENCE.get(refusal.step, "")] > 0
        if refusal.kind in CONFIGURATION_KINDS or not healthy:
            misconfigured.setdefault(refusal.step, refusal.reason)
            pending = [r for r in refusal.records if not failures.has(r)]
            if pending:
                reason = f"configuration:{refusal.step}:{refusal.kind}"
                failures.add(pending, reason, refusal.user_id)
            continue
        for record in refusal.records:
            if not failures.has(record):
                bad.setdefault(
                    record.sequence_number,
                    Bad(record, refusal.reason, f"{refusal.step}:{_code(refusal.reason)}"),
                )
    for step, reason in misconfigured.items():
        logger.error(
            "invalid configuration",
            setting=_SETTINGS.get(step, "unknown"),
            step=step,
            reason=f"every call was refused: {_code(reason)}",
        )
    if misconfigured:
        stats.add("ConfigurationErrors")
    # A record refused here may also belong to a unit that failed later: retry wins.
    return [b for b in bad.values() if not failures.has(b.record)]


def _dead_letter(
    bad: list[Bad],
    ports: Ports,
    budget: Budget,
    stats: Stats,
    logger: Logger,
    failures: Failures,
) -> None:
    if not bad:
        return
    if budget.expired():
        failures.add([b.record for b in bad], TIME_UP)
        return
    sent, not_sent = ports.dead_letters.send(bad)
    stats.add("DeadLettered", len(sent))
    for item in sent:
        logger.info(
            "record dead-lettered",
            reason=item.code or item.reason,  # a service's own words may quote the data
            sequenceNumber=item.record.sequence_number,
            shardId=item.record.shard_id,
        )
    for item, why in not_sent:
        failures.add([item.record], f"DeadLetterQueue:{why}")


def _code(reason: str) -> str:
    """The service's error code from ``"<step> rejected the <what>: <code>: <message>"``:
    loggable, unlike the message, which may quote the data."""
    parts = reason.split(": ")
    return parts[1] if len(parts) > 1 else reason


@dataclass
class _Stored:
    """A batch's use of the user-state store: its one read, the seeds running beside the
    refreshes, and the refreshes deferred to the refresh queue (with the unit they defer)."""

    view: StoreView
    seeds: Outstanding = field(default_factory=Outstanding)
    deferred: list[Deferred] = field(default_factory=list)
    owners: dict[str, Owner] = field(default_factory=dict)
    prepared: list[tuple[Owner, Prepared]] = field(default_factory=list)


def _release_unsent(
    identifies: Sequence[tuple[Owner, identify.Identify]],
    store: _Stored,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    failures: Failures,
    refusals: Sequence[Refusal],
) -> None:
    """Release every claim whose identify did not reach Segment (retried, refused, or cut
    by the deadline after it was claimed)."""
    refused = {r.user_id for r in refusals if r.step == "SegmentBatch"}
    sent = {
        owner.user_id
        for owner, _ in identifies
        if owner.user_id not in refused and not any(failures.has(r) for r in owner.records)
    }
    unsent = [user for user in list(store.seeds.claimed) if user not in sent]
    release_claims(unsent, store.seeds, ports, budget, stats)


def _claim(
    store: _Stored,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    failures: Failures,
    refusals: list[Refusal],
) -> tuple[list[tuple[Owner, identify.Identify]], list[Deferred]]:
    """Claim every prepared refresh, in parallel, just before the identifies are sent: the
    identifies to send, and the refreshes that lost their claim to a purchase or seed and go
    through the refresh queue at once."""
    futures = {
        ports.executor.submit(claim, prepared, ports, stats, store.seeds): owner
        for owner, prepared in store.prepared
    }
    _wait(list(futures), budget)
    identifies: list[tuple[Owner, identify.Identify]] = []
    requeued: list[Deferred] = []
    for future, owner in futures.items():
        done, outcome = _settled(future, owner.records, owner.user_id, failures, refusals)
        if done and isinstance(outcome, Deferred):
            requeued.append(outcome)
        elif done and outcome is not None:
            identifies.append((owner, outcome))
    return identifies, requeued


DeferredSends = list[tuple[list[Deferred], "Future[list[tuple[Deferred, str]]] | None"]]


def _start_deferred(deferred: Sequence[Deferred], ports: Ports, budget: Budget) -> DeferredSends:
    """Send the deferred refreshes (trailing, after a seed, after lost claims) on the units'
    pool, ten a request, beside whatever the batch does next."""
    queue = ports.refresh_queue
    chunks = [list(deferred[i : i + 10]) for i in range(0, len(deferred), 10)]
    if queue is None or budget.expired():
        return [(chunk, None) for chunk in chunks]
    return [(chunk, ports.executor.submit(queue.send, chunk)) for chunk in chunks]


def _finish_deferred(
    sends: DeferredSends,
    store: _Stored,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    failures: Failures,
) -> None:
    """A user whose message could not be sent has their records reported for retry (their
    events were sent, but the trait would miss them)."""
    for chunk, future in sends:
        if future is None:
            why = TIME_UP if ports.refresh_queue is not None else "no_refresh_queue"
            not_sent = [(d, why) for d in chunk]
        else:
            try:
                not_sent = future.result(timeout=budget.remaining())
            except Exception as exc:  # noqa: BLE001 - not sent: the records are retried
                not_sent = [(d, type(exc).__name__) for d in chunk]
        stats.add("RefreshesQueued", len(chunk) - len(not_sent))
        for deferred, why in not_sent:
            owner = store.owners[deferred.user_id]
            failures.add(owner.records, f"RefreshQueue:{why}", owner.user_id)


def _run_units(
    plan: Plan,
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    failures: Failures,
    refusals: list[Refusal],
    store: _Stored | None = None,
) -> list[tuple[UserWork, identify.Identify]]:
    # Submitted in the order of each unit's first record, users and anonymous sessions
    # alike: Lambda checkpoints at the lowest sequence number reported, so when time runs
    # short it is the latest records that wait for the retry, and every invocation moves
    # the checkpoint forward (anonymous sessions submitted last starved the first records
    # on every retry).
    user_futures: dict[Future[identify.Identify | Prepared | Deferred | None], UserWork] = {}
    anonymous_futures: dict[Future[None], SessionGroup] = {}
    for unit in plan.order:
        if isinstance(unit, UserWork):
            future: Future[identify.Identify | Prepared | Deferred | None]
            if store is None:
                future = ports.executor.submit(user_identify, unit, settings, ports, budget, stats)
            else:
                future = ports.executor.submit(
                    user_refresh, unit, settings, ports, budget, stats, store.view, store.seeds
                )
            user_futures[future] = unit
        else:
            group_future = ports.executor.submit(put_events, unit, settings, ports, budget, stats)
            anonymous_futures[group_future] = unit
    _wait([*user_futures, *anonymous_futures], budget)

    identifies: list[tuple[UserWork, identify.Identify]] = []
    for future, work in user_futures.items():
        done, outcome = _settled(future, work.records, work.user_id, failures, refusals)
        if done:
            stats.add(USERS_COMPLETED)
            if isinstance(outcome, Deferred):
                assert store is not None
                store.deferred.append(outcome)
            elif isinstance(outcome, Prepared):
                assert store is not None
                store.prepared.append((work, outcome))
            elif outcome is not None:
                identifies.append((work, outcome))
    for anonymous, group in anonymous_futures.items():
        _settled(anonymous, group.records, None, failures, refusals)
    return identifies


def _send_identifies(
    identifies: Sequence[tuple[Owner, identify.Identify]],
    ports: Ports,
    budget: Budget,
    stats: Stats,
    failures: Failures,
    refusals: list[Refusal],
) -> None:
    owner = {id(message): work for work, message in identifies}
    chunks = identify.batches([message for _, message in identifies])

    def send(chunk: list[identify.Identify]) -> list[tuple[identify.Identify, str]]:
        """Send a chunk; a chunk Segment refuses (400: one bad message fails the request)
        is halved until the refused messages are alone. Returns those, with the reason."""
        budget.check()
        stats.add("BatchRequests")
        try:
            ports.tracking.send_batch(identify.batch_body(chunk))
        except Exception as exc:  # TrackingError, SecretError, ...: retried later
            kind = getattr(exc, "kind", type(exc).__name__)
            if kind != "rejected":
                raise StepFailed("SegmentBatch", kind) from exc
            if len(chunk) == 1:
                return [(chunk[0], f"Segment rejected the identify: {service_reason(exc)}")]
            middle = len(chunk) // 2
            return send(chunk[:middle]) + send(chunk[middle:])
        stats.add("IdentifiesSent", len(chunk))
        stats.add(SEGMENT_ACCEPTED)
        return []

    futures: dict[Future[list[tuple[identify.Identify, str]]], list[identify.Identify]] = {
        ports.executor.submit(send, chunk): chunk for chunk in chunks
    }
    _wait(list(futures), budget)
    for future, chunk in futures.items():
        outcome = _outcome(future)
        if isinstance(outcome, Refusal | str):
            reason = outcome if isinstance(outcome, str) else outcome.reason
            for message in chunk:
                work = owner[id(message)]
                failures.add(work.records, reason, work.user_id)
            continue
        for message, why in outcome:
            work = owner[id(message)]
            refusals.append(Refusal("SegmentBatch", "rejected", work.records, why, work.user_id))


def _settled(
    future: Future[Any],
    records: Sequence[KinesisRecord],
    user_id: str | None,
    failures: Failures,
    refusals: list[Refusal],
) -> tuple[bool, Any]:
    """``(True, value)`` for a unit that completed; ``(False, None)`` once its refusal (a
    :class:`Refusal` with its records) or its retry reason is recorded."""
    outcome = _outcome(future)
    if isinstance(outcome, Refusal):
        refusals.append(replace(outcome, records=records, user_id=user_id))
        return False, None
    if isinstance(outcome, str):
        failures.add(records, outcome, user_id)
        return False, None
    return True, outcome


def _wait(futures: Sequence[Future[Any]], budget: Budget) -> None:
    """Wait until all are done or the deadline passes; what has not started is cancelled
    (what is running stops at its next checkpoint)."""
    if not futures:
        return
    _, pending = wait(futures, timeout=budget.remaining())
    for future in pending:
        future.cancel()


def _outcome(future: Future[Any]) -> Any:
    """The unit's result, a failure reason (a string), or a :class:`Refusal` (its records
    filled in by the caller) when the service refused the unit for good or the deployment
    is misconfigured."""
    if not future.done() or future.cancelled():
        return TIME_UP
    try:
        return future.result(timeout=0)
    except OutOfTime:
        return TIME_UP
    except StepFailed as exc:
        if exc.kind in PERMANENT_KINDS or exc.kind in CONFIGURATION_KINDS:
            what = "user" if exc.step in ("GetRecommendations", "ProfileAPI") else "record"
            reason = f"{exc.step} rejected the {what}: {service_reason(exc)}"
            return Refusal(exc.step, exc.kind, (), reason)
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - a bug: the records are retried, not lost
        return f"unexpected:{type(exc).__name__}"
