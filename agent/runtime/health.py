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
from storage.sync_state import (
    ConnectorHealth,
    ConnectorStatus,
    counters_of,
    list_states,
    status_of,
)

LAG_INTERVALS = 3
ALERTING = frozenset({ConnectorStatus.FAILING, ConnectorStatus.NEEDS_AUTH, ConnectorStatus.STUCK})
"""States that make ``status`` exit 1, so monitoring can page someone."""

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
    if not config.enabled:
        return ConnectorStatus.PAUSED.value
    stored = _stored_state(row, now, gone) if row is not None else None
    if stored is not None:
        return stored
    last_success = row.last_success_at if row is not None else None
    if last_success is None:
        return "never_synced"
    if now - last_success > LAG_INTERVALS * interval:
        return "lagging"
    return ConnectorStatus.OK.value


def _stored_state(row: SyncState, now: datetime, gone: Gone) -> str | None:
    """The state the row's status decides; None when its last success decides."""
    status = status_of(row)
    if status in (ConnectorStatus.PAUSED, ConnectorStatus.NEEDS_AUTH):
        return status.value
    if status is ConnectorStatus.STUCK or _stranded(row, now, gone):
        return ConnectorStatus.STUCK.value
    if status is ConnectorStatus.FAILING:
        return status.value
    if status is ConnectorStatus.SYNCING and row.lease_owner:
        return status.value
    return None


def _stranded(row: SyncState, now: datetime, gone: Gone) -> str | None:
    """Why the row's lease or run outlived its holder (``expired``, ``gone``, ``unrecorded``)."""
    if row.lease_owner:
        if row.lease_expires_at and row.lease_expires_at < now:
            return "expired"
        return "gone" if gone(row.lease_owner) else None
    return "unrecorded" if status_of(row) is ConnectorStatus.SYNCING else None


_FIXES = {
    "failing": "fix the error shown, then run `crm-sync sync --connector {name}` to retry now",
    "lagging": "no complete sync for 3 intervals: check that `crm-sync run` is running and its log",
    "never_synced": (
        "`crm-sync run` syncs it at its next tick; `crm-sync sync --connector {name}` now"
    ),
    "removed": "no longer in the config; the mail it logged stays",
}
"""What to try per display state, where it depends on nothing but the connector's name."""

_STUCK_FIXES: dict[str | None, str] = {
    "expired": (
        "the agent holding it ({holder}) stopped renewing its lease: make sure "
        "`crm-sync run` is running; it takes over from the committed cursor"
    ),
    "gone": (
        "the process holding it ({holder}) no longer runs: `crm-sync run` takes it "
        "over at its next tick, `crm-sync sync --connector {name}` now; either resumes "
        "from the committed cursor"
    ),
    "unrecorded": (
        "its last run ended without recording its outcome (the database went away, or "
        "the agent stopped, mid-run): once the database answers, run "
        "`crm-sync sync --connector {name}`; it resumes from the committed cursor"
    ),
    None: (
        "a run made no progress and was freed; if it recurs, check the network to the "
        "server, then run `crm-sync sync --connector {name}`"
    ),
}
"""What to try for a stuck connector, by why it is stuck (:func:`_stranded`)."""


def fix_for(
    state: str,
    name: str,
    row: SyncState | None,
    config: ConnectorConfig | None,
    now: datetime,
    gone: Gone = holder_gone,
) -> str:
    """One line: what to try for ``state``; empty when nothing is needed."""
    if state == ConnectorStatus.NEEDS_AUTH:
        return _auth_fix(name, config)
    if state == ConnectorStatus.STUCK:
        why = _stranded(row, now, gone) if row is not None else None
        holder = row.lease_owner if row is not None else None
        return _STUCK_FIXES[why].format(name=name, holder=holder)
    if state == ConnectorStatus.PAUSED:
        if config is not None and not config.enabled:
            return "set enabled = true in the config"
        return f"run `crm-sync connectors resume {name}`"
    return _FIXES.get(state, "").format(name=name)


def _auth_fix(name: str, config: ConnectorConfig | None) -> str:
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


def connector_health(settings: Settings, session: Session, now: datetime) -> list[ConnectorHealth]:
    """One record per connector, configured or still holding state in the database."""
    rows = {row.connector: row for row in list_states(session)}
    configured = {c.name: c for c in settings.connectors}
    names = [*configured, *sorted(name for name in rows if name not in configured)]
    return [_health(name, rows.get(name), configured.get(name), settings, now) for name in names]


def connector_status(settings: Settings, session: Session, now: datetime) -> list[dict[str, Any]]:
    """:func:`connector_health` as the rows ``status --json`` prints, for readers of mappings."""
    return [health.as_row() for health in connector_health(settings, session, now)]


def _health(
    name: str,
    row: SyncState | None,
    config: ConnectorConfig | None,
    settings: Settings,
    now: datetime,
) -> ConnectorHealth:
    interval = settings.interval_of(config) if config else settings.agent.interval
    state = derive_state(row, config, interval, now)
    fix = fix_for(state, name, row, config, now) or None
    if row is None:
        return ConnectorHealth(name, config.kind if config else None, state, fix=fix)
    last_success = row.last_success_at
    return ConnectorHealth(
        connector=name,
        kind=config.kind if config else row.kind,
        state=state,
        last_success=last_success,
        lag=(now - last_success) if last_success else None,
        last_error=_one_line(row.last_error),
        fix=fix,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        counters=counters_of(row),
    )


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
