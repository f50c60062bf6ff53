"""The append-only audit log: who changed what, from what, to what.

Every change to a contact, company or interaction leaves a row here, made by
a person (``user:NAME``) or a connector (``connector:NAME``). Rows are only
ever inserted; nothing in crm-sync updates or deletes them, except ``forget``,
which must erase a person everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage.contact_lookup import escape_like
from storage.models import AuditLog, utcnow
from storage.upsert import table_of


@dataclass(frozen=True)
class Change:
    actor: str
    action: str
    entity: str
    entity_id: int | None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None


def user(name: str) -> str:
    return f"user:{name}"


def connector(name: str) -> str:
    return f"connector:{name}"


def record(session: Session, changes: Iterable[Change]) -> int:
    """Insert one row per change (in one statement); returns how many."""
    now = utcnow()
    rows = [
        {
            "at": now,
            "actor": c.actor,
            "action": c.action,
            "entity": c.entity,
            "entity_id": c.entity_id,
            "before": _jsonable(c.before),
            "after": _jsonable(c.after),
        }
        for c in changes
    ]
    if rows:
        session.execute(table_of(AuditLog).insert(), rows)
    return len(rows)


def history(session: Session, entity: str, entity_id: int) -> list[AuditLog]:
    """An entity's audit rows, oldest first."""
    return list(
        session.scalars(
            select(AuditLog)
            .where(AuditLog.entity == entity, AuditLog.entity_id == entity_id)
            .order_by(AuditLog.at, AuditLog.id)
        )
    )


def _jsonable(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {
        key: value.isoformat() if isinstance(value, datetime | date) else value
        for key, value in values.items()
    }


def entries(
    session: Session,
    *,
    entity: str | None = None,
    entity_id: int | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AuditLog]:
    """Audit rows matching every filter given, newest first, at most ``limit``.

    ``actor`` matches a whole actor (``user:ann``) or its name alone (``ann``).
    """
    query = select(AuditLog).order_by(AuditLog.at.desc(), AuditLog.id.desc()).limit(limit)
    if entity is not None:
        query = query.where(AuditLog.entity == entity)
    if entity_id is not None:
        query = query.where(AuditLog.entity_id == entity_id)
    if actor:
        query = query.where(
            or_(
                AuditLog.actor == actor, AuditLog.actor.like(f"%:{escape_like(actor)}", escape="\\")
            )
        )
    if since is not None:
        query = query.where(AuditLog.at >= since)
    if until is not None:
        query = query.where(AuditLog.at < until)
    return list(session.scalars(query))
