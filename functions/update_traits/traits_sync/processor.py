"""A Kinesis batch processed as a batch.

1. Classify every record: relevant, skipped (counted), or bad (dead-lettered).
2. Plan: one unit per distinct userId, one per anonymous session.
3. Run the units on the shared thread pool until shortly before the deadline: PutEvents,
   Profile API read, one GetRecommendations per user, exclusion, the identify to send.
4. Send the identifies in as few ``/v1/batch`` requests as the size limits allow, in the
   time kept back for it.

Returns the sequence numbers to retry: exactly the records of units that failed or did not
finish in time, and bad records whose dead-letter send failed. Nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor, Future, wait
from dataclasses import dataclass
from typing import Any, Protocol

from common.log import Logger, hash_id
from traits_sync import identify
from traits_sync.budget import Budget, OutOfTime
from traits_sync.kinesis import KinesisRecord
from traits_sync.messages import Bad, Classified, Skipped, TrackedEvent
from traits_sync.plan import Plan, SessionGroup, UserWork, build
from traits_sync.settings import Settings
from traits_sync.stats import Stats
from traits_sync.work import Services, StepFailed, put_events, user_identify

TIME_UP = "time_budget"
# Time kept back from the per-user phase for the identify requests, so that one user still
# busy at the end does not cost every other user their identify: at most this long, at most
# this share of what is left.
SEND_RESERVE_S = 5.0
SEND_RESERVE_SHARE = 0.2


class DeadLetters(Protocol):
    def send(self, records: Sequence[Bad]) -> tuple[list[Bad], list[tuple[Bad, str]]]: ...


class BatchSender(Protocol):
    def send_batch(self, body: bytes) -> None: ...


@dataclass(frozen=True)
class Ports:
    services: Services
    tracking: BatchSender
    dead_letters: DeadLetters
    executor: Executor


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
            user=hash_id(user_id) if user_id is not None else None,
            records=len(records),
        )

    def sequence_numbers(self, order: Sequence[KinesisRecord]) -> list[str]:
        return [r.sequence_number for r in order if r.sequence_number in self._sequences]


def process(
    records: Sequence[KinesisRecord],
    classified: Sequence[Classified],
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    logger: Logger,
) -> list[str]:
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
    reserve = min(SEND_RESERVE_S, SEND_RESERVE_SHARE * budget.remaining())
    identifies = _run_units(plan, settings, ports, budget.reserving(reserve), stats, failures)
    _send_identifies(identifies, ports, budget, stats, failures)
    return failures.sequence_numbers(records)


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
            reason=item.reason,
            sequenceNumber=item.record.sequence_number,
            shardId=item.record.shard_id,
        )
    for item, why in not_sent:
        failures.add([item.record], f"DeadLetterQueue:{why}")


def _run_units(
    plan: Plan,
    settings: Settings,
    ports: Ports,
    budget: Budget,
    stats: Stats,
    failures: Failures,
) -> list[tuple[UserWork, identify.Identify]]:
    services = ports.services
    user_futures: dict[Future[identify.Identify | None], UserWork] = {
        ports.executor.submit(user_identify, work, settings, services, budget, stats): work
        for work in plan.users
    }
    anonymous_futures: dict[Future[None], SessionGroup] = {
        ports.executor.submit(put_events, group, settings, services, budget, stats): group
        for group in plan.anonymous
    }
    _wait([*user_futures, *anonymous_futures], budget)

    identifies: list[tuple[UserWork, identify.Identify]] = []
    for future, work in user_futures.items():
        outcome = _outcome(future)
        if isinstance(outcome, str):
            failures.add(work.records, outcome, work.user_id)
        elif outcome is not None:
            identifies.append((work, outcome))
    for anonymous, group in anonymous_futures.items():
        outcome = _outcome(anonymous)
        if isinstance(outcome, str):
            failures.add(group.records, outcome)
    return identifies


def _send_identifies(
    identifies: list[tuple[UserWork, identify.Identify]],
    ports: Ports,
    budget: Budget,
    stats: Stats,
    failures: Failures,
) -> None:
    owner = {id(message): work for work, message in identifies}
    chunks = identify.batches([message for _, message in identifies])

    def send(chunk: list[identify.Identify]) -> None:
        budget.check()
        stats.add("BatchRequests")
        try:
            ports.tracking.send_batch(identify.batch_body(chunk))
        except Exception as exc:  # TrackingError, SecretError, ...: retried later
            raise StepFailed("SegmentBatch", getattr(exc, "kind", type(exc).__name__)) from exc
        stats.add("IdentifiesSent", len(chunk))

    futures: dict[Future[None], list[identify.Identify]] = {
        ports.executor.submit(send, chunk): chunk for chunk in chunks
    }
    _wait(list(futures), budget)
    for future, chunk in futures.items():
        outcome = _outcome(future)
        if isinstance(outcome, str):
            for message in chunk:
                work = owner[id(message)]
                failures.add(work.records, outcome, work.user_id)


def _wait(futures: Sequence[Future[Any]], budget: Budget) -> None:
    """Wait until all are done or the deadline passes; what has not started is cancelled
    (what is running stops at its next checkpoint)."""
    if not futures:
        return
    _, pending = wait(futures, timeout=budget.remaining())
    for future in pending:
        future.cancel()


def _outcome(future: Future[Any]) -> Any:
    """The unit's result, or a failure reason (a string)."""
    if not future.done() or future.cancelled():
        return TIME_UP
    try:
        return future.result(timeout=0)
    except OutOfTime:
        return TIME_UP
    except StepFailed as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - a bug: the records are retried, not lost
        return f"unexpected:{type(exc).__name__}"
