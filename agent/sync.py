"""One sync pass of one connector: fetch from the committed cursor, plan, write, commit.

Each batch's interactions, facts, counters and the connector's new cursor
commit in ONE transaction, so a crash anywhere loses nothing and duplicates
nothing: the next pass starts from the last committed cursor and every
write is idempotent.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline import BatchPlan, Policy, plan_batch
from connectors.errors import AuthError, CursorInvalid, TransientError
from connectors.records import Batch, Connector, Cursor
from storage import audit
from storage.db import transaction
from storage.ingest import WriteStats, contact_ids, write_batch
from storage.models import SyncState
from storage.sync_state import get_state

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    connector: str
    status: str = "ok"
    items: int = 0
    logged: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
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
) -> SyncResult:
    """Run one pass; connector failures are recorded on its row, never raised."""
    result = SyncResult(connector=connector.name)
    started = time.monotonic()
    with transaction(sessions) as session:
        state = get_state(session, connector.name, kind)
        cursor: Cursor | None = None if full else state.cursor
        if not dry_run:
            state.status = "syncing"
            state.last_run_at = _now()
    try:
        try:
            _run(sessions, connector, policy, cursor, result, dry_run, propagate_deletes, progress)
        except CursorInvalid as exc:
            if cursor is None:
                raise
            log.warning("%s: cursor no longer valid (%s); full resync", connector.name, exc)
            result.resynced = True
            _run(sessions, connector, policy, None, result, dry_run, propagate_deletes, progress)
    except AuthError as exc:
        _finish(
            sessions, connector.name, result, "needs_auth", f"{exc} {exc.hint}".strip(), dry_run
        )
    except TransientError as exc:
        _finish(sessions, connector.name, result, "failing", f"temporary: {exc}", dry_run)
    except Exception as exc:
        log.exception("%s: sync failed", connector.name)
        _finish(
            sessions, connector.name, result, "failing", f"{type(exc).__name__}: {exc}", dry_run
        )
    else:
        _finish(sessions, connector.name, result, "ok", None, dry_run)
    result.seconds = time.monotonic() - started
    if not dry_run:
        _record_run(sessions, connector, result)
    return result


def _record_run(sessions: sessionmaker[Session], connector: Connector, result: SyncResult) -> None:
    """The last run's figures, and the API quota it spent where the connector counts it."""
    spent = getattr(connector, "units_spent", None)
    with transaction(sessions) as session:
        state = get_state(session, connector.name)
        counters = dict(state.counters or {})
        counters["last_run"] = {
            "items": result.items,
            "logged": result.logged,
            "seconds": round(result.seconds, 3),
            "quota_units": dict(spent) if isinstance(spent, Mapping) else None,
        }
        state.counters = counters


def _run(
    sessions: sessionmaker[Session],
    connector: Connector,
    policy: Policy,
    cursor: Cursor | None,
    result: SyncResult,
    dry_run: bool,
    propagate_deletes: bool,
    progress: Progress | None,
) -> None:
    for batch in connector.fetch(cursor):
        plan = plan_batch(batch.items, policy)
        if dry_run:
            _account_dry(sessions, batch, plan, result)
        else:
            with transaction(sessions) as session:
                stats = write_batch(
                    session,
                    plan.write,
                    propagate_deletes=propagate_deletes,
                    actor=audit.connector(connector.name),
                )
                state = get_state(session, connector.name)
                state.cursor = batch.cursor
                _count(state, batch, plan, stats)
            _account(result, batch, plan, stats)
        if progress is not None:
            progress(batch, result)


def _account(result: SyncResult, batch: Batch, plan: BatchPlan, stats: WriteStats) -> None:
    result.items += len(batch.items)
    result.logged += plan.logged
    result.skipped.update(plan.skipped)
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


def _count(state: SyncState, batch: Batch, plan: BatchPlan, stats: WriteStats) -> None:
    counters = dict(state.counters or {})
    counters["items"] = int(counters.get("items", 0)) + len(batch.items)
    counters["logged"] = int(counters.get("logged", 0)) + plan.logged
    counters["quarantined"] = int(counters.get("quarantined", 0)) + len(plan.write.quarantined)
    skipped = Counter({k: int(v) for k, v in dict(counters.get("skipped", {})).items()})
    skipped.update(plan.skipped)
    counters["skipped"] = dict(sorted(skipped.items()))
    state.counters = counters


def mark_failed(
    sessions: sessionmaker[Session], name: str, kind: str, error: Exception
) -> SyncResult:
    """Record a connector that could not even start (no grant, bad settings)."""
    result = SyncResult(connector=name)
    status = "needs_auth" if isinstance(error, AuthError) else "failing"
    hint = error.hint if isinstance(error, AuthError) else ""
    with transaction(sessions) as session:
        get_state(session, name, kind)
    _finish(sessions, name, result, status, f"{error} {hint}".strip(), dry_run=False)
    return result


def _finish(
    sessions: sessionmaker[Session],
    name: str,
    result: SyncResult,
    status: str,
    error: str | None,
    dry_run: bool,
) -> None:
    result.status = status
    result.error = error
    if dry_run:
        return
    with transaction(sessions) as session:
        state = get_state(session, name)
        state.status = status
        now = _now()
        if error is None:
            state.last_success_at = now
            state.last_error = None
        else:
            state.last_error = error
            state.last_error_at = now
            log.warning("%s: %s", name, error)


def _now() -> datetime:
    return datetime.now(timezone.utc)
