"""One sync pass of one connector: fetch from the committed cursor, plan, write, commit.

Each batch's interactions, facts, counters and the connector's new cursor
commit in ONE transaction, so a crash anywhere loses nothing and duplicates
nothing: the next pass starts from the last committed cursor and every
write is idempotent.

A batch that fails for what it holds rather than for the database's state
(a value the database refuses) is written again in halves, down to single
items: the items that fail alone are quarantined with the reason, the rest
and the cursor commit, and the connector is never stuck on one message. The
halves are made of the items' own plans: a batch's raw mail is dropped as
soon as it is planned (``agent.pipeline.workers``), so memory holds at most
the batches being fetched and planned, never those being written, and what a
batch of big mail freed is handed back to the system once it is written
(``agent.runtime.heap``).

A pass run by the scheduler holds the connector's lease (storage.leases):
each of its transactions first checks that the lease is still its own, so a
run that lost it (expired and taken over, or freed as stuck) commits
nothing. It may also be asked to stop: it ends after the batch that has
just committed, and the next pass resumes from that batch's cursor.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline.planned import BatchPlan
from agent.pipeline.policy import Policy
from agent.pipeline.workers import PlannedBatch, Planner, merge_plans
from agent.runtime.db_errors import is_database_error
from agent.runtime.heap import release_freed
from agent.runtime.logs import scrub
from connectors.capabilities import Metered, Retrying
from connectors.errors import AuthError, ConnectorError, CursorInvalid, TransientError
from connectors.records import Batch, Connector, Cursor, Limited
from storage import audit, connector_days
from storage.connector_days import measures_of
from storage.db import describe_error, is_data_error, retrying, transaction
from storage.ingest import BatchWrite, WriteStats, contact_ids, write_batch
from storage.leases import Lease, LeaseLost, verify
from storage.models import SyncState
from storage.sync_state import (
    ConnectorStatus,
    LastRun,
    add_batch,
    get_state,
    next_status,
    record_run,
    set_status,
    update_counters,
)

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    connector: str
    status: str = "ok"
    items: int = 0
    logged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)
    quarantined: int = 0
    removed: int = 0
    interactions_created: int = 0
    contacts_created: int = 0
    companies_created: int = 0
    would_create: set[str] = field(default_factory=set)
    error: str | None = None
    seconds: float = 0.0
    resynced: bool = False


Progress = Callable[[Batch, SyncResult], None]


class Stopped(Exception):
    """The agent is stopping: the pass ends after the batch that just committed."""


@dataclass(frozen=True)
class _Fence:
    """What a leased pass checks: the lease before each commit, the stop request after."""

    lease: Lease | None = None
    stop: Callable[[], bool] | None = None

    def check(self, session: Session) -> None:
        if self.lease is not None:
            verify(session, self.lease)

    def stopping(self) -> bool:
        return self.stop is not None and self.stop()


_NO_FENCE = _Fence()


@dataclass(frozen=True)
class Outcome:
    """How a pass ended, as its connector's row records it.

    ``complete``: the pass read all there was, so ``last_success_at`` moves.
    ``reported`` is the pass's own status where it differs from the row's (a
    pass asked to stop leaves the row ``ok``). An ``unexpected`` error is
    logged with its traceback: no connector raised it on purpose.
    """

    status: ConnectorStatus
    error: str | None = None
    complete: bool = True
    reported: str | None = None
    unexpected: bool = False


COMPLETED = Outcome(ConnectorStatus.OK)


def _failed(exc: Exception) -> Outcome | None:
    if is_database_error(exc) and not is_data_error(exc):
        return None  # the database itself failed: the caller records it once it answers again
    error = f"{type(exc).__name__}: {describe_error(exc)}"
    return Outcome(ConnectorStatus.FAILING, error, unexpected=True)


OUTCOMES: tuple[tuple[type[Exception], Callable[[Any], Outcome | None]], ...] = (
    (LeaseLost, lambda _exc: None),
    (Stopped, lambda _exc: Outcome(ConnectorStatus.OK, complete=False, reported="stopped")),
    (AuthError, lambda exc: Outcome(ConnectorStatus.NEEDS_AUTH, f"{exc} {exc.hint}".strip())),
    (TransientError, lambda exc: Outcome(ConnectorStatus.FAILING, f"temporary: {exc}")),
    (CursorInvalid, _failed),  # a second time in one pass: the connector is at fault
    (ConnectorError, lambda exc: Outcome(ConnectorStatus.FAILING, str(exc))),
    (Exception, _failed),
)
"""Error kind -> outcome, first match wins. None: not the connector's failure to record
(the lease went to another holder, the database went away), so the error propagates."""


def outcome_of(exc: Exception) -> Outcome | None:
    """What a pass that raised ``exc`` records (:data:`OUTCOMES`)."""
    return next(rule(exc) for kind, rule in OUTCOMES if isinstance(exc, kind))


def sync_connector(
    sessions: sessionmaker[Session],
    connector: Connector,
    policy: Policy,
    *,
    kind: str,
    full: bool = False,
    dry_run: bool = False,
    propagate_deletes: bool = False,
    progress: Progress | None = None,
    lease: Lease | None = None,
    stop: Callable[[], bool] | None = None,
    processes: int = 0,
) -> SyncResult:
    """Run one pass; connector failures are recorded on its row, never raised.

    With ``lease``, every write first checks that the lease is still held; a
    lost lease ends the pass with status ``lease_lost`` and leaves the row to
    its new holder. With ``stop``, asked after each committed batch, a pass
    asked to stop ends with status ``stopped`` (the row says ``ok``, and
    ``last_success_at`` stays, as the pass did not complete). ``processes``
    worker processes plan the batches once the pass has a backlog
    (``agent.pipeline.workers``).
    """
    result = SyncResult(connector=connector.name)
    fence = _Fence(lease, stop)
    started = time.monotonic()
    run = partial(
        _run,
        sessions,
        connector,
        policy,
        result=result,
        dry_run=dry_run,
        propagate_deletes=propagate_deletes,
        progress=progress,
        fence=fence,
        processes=processes,
    )
    try:
        cursor = _begin(
            sessions, connector.name, kind, policy.mailbox, full=full, dry_run=dry_run, fence=fence
        )
        outcome = _pass(run, cursor, result)
    except LeaseLost as exc:
        return _lost(result, exc)
    _finish(sessions, connector.name, result, outcome, dry_run, fence)
    result.seconds = time.monotonic() - started
    if not dry_run and result.status != "lease_lost":
        _record_run(sessions, connector, result, fence)
    return result


def _begin(
    sessions: sessionmaker[Session],
    name: str,
    kind: str,
    account: str,
    *,
    full: bool,
    dry_run: bool,
    fence: _Fence,
) -> Cursor | None:
    """The cursor the pass starts from; the row says ``syncing`` unless it is a dry run."""
    with transaction(sessions) as session:
        fence.check(session)
        state = get_state(session, name, kind, account)
        if not dry_run:
            set_status(state, next_status(state.status, ConnectorStatus.SYNCING))
            state.last_run_at = _now()
        return None if full else state.cursor


def _pass(
    run: Callable[[Cursor | None], None], cursor: Cursor | None, result: SyncResult
) -> Outcome:
    """Run from ``cursor``, and from none when the source no longer knows it; how it ended.

    An error that is not the connector's to record (:data:`OUTCOMES`) propagates.
    """
    try:
        try:
            run(cursor)
        except CursorInvalid as exc:
            if cursor is None:
                raise
            log.warning("%s: cursor no longer valid (%s); full resync", result.connector, exc)
            result.resynced = True
            run(None)
    except Exception as exc:
        outcome = outcome_of(exc)
        if outcome is None:
            raise
        if outcome.unexpected:
            log.exception("%s: sync failed", result.connector)
        return outcome
    return COMPLETED


def _lost(result: SyncResult, exc: LeaseLost) -> SyncResult:
    log.warning("%s; this run commits nothing more", exc)
    result.status = "lease_lost"
    result.error = str(exc)
    return result


def _record_run(
    sessions: sessionmaker[Session], connector: Connector, result: SyncResult, fence: _Fence
) -> None:
    """The last run's figures, and the API quota it spent where the connector counts it."""
    spent = dict(connector.units_spent()) if isinstance(connector, Metered) else None
    last_run = LastRun(
        items=result.items,
        logged=result.logged,
        seconds=round(result.seconds, 3),
        quota_units=spent,
        retries=connector.retries if isinstance(connector, Retrying) else None,
    )
    try:
        with transaction(sessions) as session:
            fence.check(session)
            update_counters(
                get_state(session, connector.name), partial(record_run, last_run=last_run)
            )
    except LeaseLost as exc:
        _lost(result, exc)


def _start_totals_over(sessions: sessionmaker[Session], name: str, fence: _Fence) -> None:
    """A pass from no cursor reads the whole source again: the totals of what was read,
    logged and skipped start from zero, or each full resync would count every item twice.
    Failures are runs, not items, and stay."""
    with transaction(sessions) as session:
        fence.check(session)
        update_counters(
            get_state(session, name),
            partial(replace, items=0, logged=0, quarantined=0, skipped={}, limited={}),
        )


def _run(
    sessions: sessionmaker[Session],
    connector: Connector,
    policy: Policy,
    cursor: Cursor | None,
    result: SyncResult,
    dry_run: bool,
    propagate_deletes: bool,
    progress: Progress | None,
    fence: _Fence,
    processes: int,
) -> None:
    if cursor is None and not dry_run:
        _start_totals_over(sessions, connector.name, fence)
    with Planner(policy, processes) as planner:
        for batch, plan in planner.plans(connector.fetch(cursor)):
            if dry_run:
                _account_dry(sessions, batch, plan, result)
            else:
                writer = _Writer(sessions, connector.name, propagate_deletes, fence)
                plan, stats = writer.commit(batch, plan)
                _account(result, batch, plan, stats)
            release_freed(batch.raw_bytes)
            if progress is not None:
                progress(batch, result)
            if fence.stopping():
                raise Stopped


_BATCH_ATTEMPTS = 5


@dataclass(frozen=True)
class _Writer:
    """Writes one connector's batches: each with its cursor in one transaction."""

    sessions: sessionmaker[Session]
    name: str
    propagate_deletes: bool
    fence: _Fence

    def commit(self, batch: PlannedBatch, plan: BatchPlan) -> tuple[BatchPlan, WriteStats]:
        """Write ``batch`` and its cursor; in parts when it holds an item the database refuses.

        Returns the plan as written (with the refused items quarantined) and
        what the writes did.
        """
        try:
            return plan, self._write(plan.write, batch, plan)
        except Exception as exc:
            if not is_data_error(exc):
                raise
            log.warning(
                "%s: a batch of %d items was refused (%s); writing it in parts",
                self.name,
                len(batch.items),
                describe_error(exc),
            )
        return self._in_parts(batch)

    def _in_parts(self, batch: PlannedBatch) -> tuple[BatchPlan, WriteStats]:
        """Halve the batch until the items that fail alone are found; quarantine those.

        The parts commit without the cursor, which moves last, with the
        quarantine entries: a crash in between writes the parts again, and
        writes are idempotent.
        """
        written, stats = BatchPlan(), WriteStats()
        refused: list[tuple[str, str, str]] = []
        pending: list[Sequence[int]] = [range(len(batch.parts))]
        while pending:
            group = pending.pop()
            plan = merge_plans(batch.parts[i] for i in group)
            try:
                _add_stats(stats, self._write(plan.write, None, plan))
            except Exception as exc:
                if not is_data_error(exc):
                    raise
                if len(group) == 1:
                    source_id = batch.items[group[0]].source_id
                    reason = f"the database refused it: {describe_error(exc)}"
                    refused.append((self.name, source_id, reason))
                    log.warning("%s: %s quarantined: %s", self.name, source_id, reason)
                else:
                    half = len(group) // 2
                    pending += [group[half:], group[:half]]
                continue
            written = merge_plans((written, plan))
        written.write.quarantined += refused
        _add_stats(stats, self._write(BatchWrite(quarantined=refused), batch, written))
        return written, stats

    def _write(self, write: BatchWrite, batch: Batch | None, plan: BatchPlan) -> WriteStats:
        """One transaction; with ``batch``, it also moves the cursor and counts the batch.

        Written again if it lost a race with another agent or a person
        changing the same contact: the writes are idempotent. Records that
        reused another message's dedupe key are added to ``plan.limited``.
        """

        def once() -> WriteStats:
            with transaction(self.sessions) as session:
                stats = write_batch(
                    session,
                    write,
                    propagate_deletes=self.propagate_deletes,
                    actor=audit.connector(self.name),
                )
                self.fence.check(session)
                collided = [
                    Limited(source_id, "dedupe_collision", f"{key} names another message")
                    for source_id, key in stats.collisions
                ]
                if batch is not None:
                    state = get_state(session, self.name)
                    state.cursor = batch.cursor
                    _count(session, state, batch, plan, collided)
            plan.limited += collided
            return stats

        stats, _attempts = retrying(_BATCH_ATTEMPTS, once, on_retry=self._lost_race)
        return stats

    def _lost_race(self, _exc: BaseException, _attempt: int) -> None:
        log.info("%s: batch lost a race with another writer; writing it again", self.name)


def _add_stats(total: WriteStats, stats: WriteStats) -> None:
    for name, value in vars(stats).items():
        setattr(total, name, getattr(total, name) + value)


def _account(result: SyncResult, batch: Batch, plan: BatchPlan, stats: WriteStats) -> None:
    result.items += len(batch.items)
    result.logged += plan.logged
    result.skipped.update(plan.skipped)
    result.skipped.update(stats.skipped)  # the write already counted these on the row
    result.limited.update(note.reason for note in plan.limited)
    result.quarantined += len(plan.write.quarantined)
    result.removed += len(plan.write.removed)
    result.interactions_created += stats.interactions_created
    result.contacts_created += stats.contacts_created
    result.companies_created += stats.companies_created


def _account_dry(
    sessions: sessionmaker[Session], batch: Batch, plan: BatchPlan, result: SyncResult
) -> None:
    wanted = {c.email for c in plan.write.new_contacts}
    with sessions() as session:
        existing = contact_ids(session, wanted)
    result.would_create |= wanted - set(existing)
    _account(result, batch, plan, WriteStats())


def _count(
    session: Session, state: SyncState, batch: Batch, plan: BatchPlan, extra: Sequence[Limited]
) -> None:
    """The batch's figures on the connector's totals and on today's row of
    ``connector_days``, in the batch's transaction."""
    notes = [*plan.limited, *extra]
    figures: dict[str, Any] = {
        "items": len(batch.items),
        "logged": plan.logged,
        "quarantined": len(plan.write.quarantined),
        "skipped": plan.skipped,
        "limited": Counter(note.reason for note in notes),
    }
    update_counters(state, lambda counters: add_batch(counters, **figures))
    connector_days.record(session, state.connector, _now().date(), measures_of(**figures))
    for note in notes:
        log.info("%s: %s: %s (%s)", state.connector, note.source_id, note.detail, note.reason)


def mark_failed(
    sessions: sessionmaker[Session], name: str, kind: str, error: Exception
) -> SyncResult:
    """Record a connector that could not even start (no grant, bad settings)."""
    result = SyncResult(connector=name)
    auth = isinstance(error, AuthError)
    status = ConnectorStatus.NEEDS_AUTH if auth else ConnectorStatus.FAILING
    hint = error.hint if isinstance(error, AuthError) else ""
    with transaction(sessions) as session:
        get_state(session, name, kind)
    _finish(sessions, name, result, Outcome(status, f"{error} {hint}".strip()), dry_run=False)
    return result


def _finish(
    sessions: sessionmaker[Session],
    name: str,
    result: SyncResult,
    outcome: Outcome,
    dry_run: bool,
    fence: _Fence = _NO_FENCE,
) -> None:
    result.status = outcome.reported or outcome.status.value
    result.error = outcome.error
    if dry_run:
        return
    try:
        with transaction(sessions) as session:
            fence.check(session)
            state = get_state(session, name)
            set_status(state, next_status(state.status, outcome.status))
            now = _now()
            if outcome.error is None and outcome.complete:
                state.last_success_at = now
                state.last_error = None
            elif outcome.error is not None:
                state.last_error = scrub(outcome.error, addresses=True)
                state.last_error_at = now
                log.warning("%s: %s", name, outcome.error)
    except LeaseLost as exc:
        _lost(result, exc)


def _now() -> datetime:
    return datetime.now(timezone.utc)
