"""A connector's health, derived from its config and its ``sync_state`` row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from config import Settings
from storage.models import SyncState
from storage.sync_state import list_states


def _quota_units(counters: dict[str, Any]) -> int | None:
    spent = (counters.get("last_run") or {}).get("quota_units")
    return sum(int(v) for v in spent.values()) if isinstance(spent, dict) else None


def _state(row: SyncState | None, configured: bool, enabled: bool) -> str:
    if not configured:
        return "removed"
    if not enabled:
        return "paused"
    if row is None or row.status == "new":
        return "never_synced"
    return row.status


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
        last_success = row.last_success_at if row else None
        counters = dict(row.counters or {}) if row else {}
        result.append(
            {
                "connector": name,
                "kind": config.kind if config else (row.kind if row else None),
                "state": _state(row, config is not None, config.enabled if config else True),
                "last_success": last_success,
                "lag": (now - last_success) if last_success else None,
                "items": counters.get("items", 0),
                "skipped": counters.get("skipped", {}),
                "quarantined": counters.get("quarantined", 0),
                "last_error": row.last_error if row else None,
                "lease_owner": row.lease_owner if row else None,
                "lease_expires_at": row.lease_expires_at if row else None,
                "needs_auth": bool(row and row.status == "needs_auth"),
                "quota_units_last_run": _quota_units(counters),
                "counters": counters,
            }
        )
    return result
