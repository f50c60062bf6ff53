"""A connector's health, derived from its config and its ``sync_state`` row.

The row stores what the agent last did (``new``, ``syncing``, ``ok``,
``failing``, ``needs_auth``, ``paused``, ``stuck``); what an admin needs to
see is derived from it, the config and the clock, first match wins:

=============  ===========================================================
state          when
=============  ===========================================================
removed        the row exists, the config no longer names the connector
paused         ``enabled = false`` in the config, or status ``paused``
needs_auth     status ``needs_auth``: only an admin can restore access
stuck          status ``stuck`` (a run made no progress for the stall
               limit); a lease still held after it expired (its agent
               died or hangs, and no agent has taken the connector over);
               a lease held by a process of this host that no longer
               runs; or status ``syncing`` with no lease at all (a run
               ended without recording its outcome: the database went
               away mid-run, or its agent was stopped mid-run)
failing        status ``failing``
syncing        status ``syncing`` under a live lease of a live holder
never_synced   no row, or no pass has ever completed
lagging        the last complete pass is older than 3 intervals
ok             otherwise
=============  ===========================================================

Each state that needs a person comes with ``fix``: one line saying what to try.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config import Settings
from config.schema import ConnectorConfig
from storage.leases import holder_gone
from storage.models import Quarantine, SyncState
from storage.sync_state import list_states

LAG_INTERVALS = 3
ALERTING = frozenset({"failing", "needs_auth", "stuck"})
"""States that make ``status`` exit 1, so monitoring can page someone."""


def _quota_units(counters: dict[str, Any]) -> int | None:
    spent = (counters.get("last_run") or {}).get("quota_units")
    return sum(int(v) for v in spent.values()) if isinstance(spent, dict) else None


Gone = Callable[[str], bool]
"""Whether a lease owner is a process known to have ended (:func:`storage.leases.holder_gone`)."""


def derive_state(
    row: SyncState | None,
    config: ConnectorConfig | None,
    interval: timedelta,
    now: datetime,
    gone: Gone = holder_gone,
) -> str:
    """The display state of one connector; see the module docstring's table."""
    if config is None:
        return "removed"
    status = row.status if row is not None else "new"
    if not config.enabled or status == "paused":
        return "paused"
    if status == "needs_auth":
        return "needs_auth"
    if status == "stuck" or (row is not None and _stranded(row, now, gone)):
        return "stuck"
    if status == "failing":
        return "failing"
    if status == "syncing" and row is not None and row.lease_owner:
        return "syncing"
    last_success = row.last_success_at if row is not None else None
    if last_success is None:
        return "never_synced"
    if now - last_success > LAG_INTERVALS * interval:
        return "lagging"
    return "ok"


def _stranded(row: SyncState, now: datetime, gone: Gone) -> str | None:
    """Why the row's lease or run outlived its holder (``expired``, ``gone``, ``unrecorded``)."""
    if row.lease_owner:
        if row.lease_expires_at and row.lease_expires_at < now:
            return "expired"
        return "gone" if gone(row.lease_owner) else None
    return "unrecorded" if row.status == "syncing" else None


def fix_for(
    state: str,
    name: str,
    row: SyncState | None,
    config: ConnectorConfig | None,
    now: datetime,
    gone: Gone = holder_gone,
) -> str:
    """One line: what to try for ``state``; empty when nothing is needed."""
    if state == "needs_auth":
        if getattr(config, "auth", None) == "service_account":
            return (
                "grant the service account domain-wide delegation for the connector's scopes, "
                f"then run `crm-sync connectors resume {name}`"
            )
        if config is not None and config.kind == "imap":
            return (
                "correct the password (or its ${VARIABLE}) in the config, "
                f"then run `crm-sync connectors resume {name}`"
            )
        return f"run `crm-sync connectors auth {name}`"
    if state == "stuck":
        why = _stranded(row, now, gone) if row is not None else None
        holder = row.lease_owner if row is not None else None
        if why == "expired":
            return (
                f"the agent holding it ({holder}) stopped renewing its lease: make sure "
                "`crm-sync run` is running; it takes over from the committed cursor"
            )
        if why == "gone":
            return (
                f"the process holding it ({holder}) no longer runs: `crm-sync run` takes it "
                f"over at its next tick, `crm-sync sync --connector {name}` now; either resumes "
                "from the committed cursor"
            )
        if why == "unrecorded":
            return (
                "its last run ended without recording its outcome (the database went away, or "
                "the agent stopped, mid-run): once the database answers, run "
                f"`crm-sync sync --connector {name}`; it resumes from the committed cursor"
            )
        return (
            "a run made no progress and was freed; if it recurs, check the network to the "
            f"server, then run `crm-sync sync --connector {name}`"
        )
    if state == "failing":
        return f"fix the error shown, then run `crm-sync sync --connector {name}` to retry now"
    if state == "lagging":
        return "no complete sync for 3 intervals: check that `crm-sync run` is running and its log"
    if state == "paused":
        if config is not None and not config.enabled:
            return "set enabled = true in the config"
        return f"run `crm-sync connectors resume {name}`"
    if state == "never_synced":
        return f"`crm-sync run` syncs it at its next tick; `crm-sync sync --connector {name}` now"
    if state == "removed":
        return "no longer in the config; the mail it logged stays"
    return ""


def connector_status(settings: Settings, session: Session, now: datetime) -> list[dict[str, Any]]:
    """One dict per connector, configured or still holding state in the database."""
    rows = {row.connector: row for row in list_states(session)}
    names = [c.name for c in settings.connectors]
    names += sorted(name for name in rows if name not in names)
    configured = {c.name: c for c in settings.connectors}
    result = []
    for name in names:
        row = rows.get(name)
        config = configured.get(name)
        interval = settings.interval_of(config) if config else settings.agent.interval
        state = derive_state(row, config, interval, now)
        last_success = row.last_success_at if row else None
        counters = dict(row.counters or {}) if row else {}
        result.append(
            {
                "connector": name,
                "kind": config.kind if config else (row.kind if row else None),
                "state": state,
                "last_success": last_success,
                "lag": (now - last_success) if last_success else None,
                "items": counters.get("items", 0),
                "skipped": counters.get("skipped", {}),
                "limited": counters.get("limited", {}),
                "quarantined": counters.get("quarantined", 0),
                "last_error": _one_line(row.last_error) if row else None,
                "fix": fix_for(state, name, row, config, now) or None,
                "lease_owner": row.lease_owner if row else None,
                "lease_expires_at": row.lease_expires_at if row else None,
                "needs_auth": state == "needs_auth",
                "failures": counters.get("failures", 0),
                "consecutive_failures": counters.get("consecutive_failures", 0),
                "quota_units_last_run": _quota_units(counters),
                "counters": counters,
            }
        )
    return result


def quarantine_rows(session: Session) -> list[dict[str, Any]]:
    """Every quarantined item, newest first: what an admin looks at when a count is not 0."""
    found = session.scalars(
        select(Quarantine).order_by(Quarantine.created_at.desc(), Quarantine.id.desc())
    )
    return [
        {
            "connector": row.connector,
            "source_id": row.source_id,
            "reason": row.reason,
            "created_at": row.created_at,
        }
        for row in found
    ]


def _one_line(text: str | None) -> str | None:
    return " ".join(text.split()) if text else text
