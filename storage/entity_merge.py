"""Merging two contacts, or two companies, into the one that is kept.

A merge loses nothing. The absorbed contact's addresses, observations,
interaction participations and conflicts move to the kept contact, whose
fields are then derived again from the union of observations by the merge
rules (``storage.ingest.apply_merge``); columns no observation feeds keep
the kept contact's value and take the absorbed one's only where it has
none. The absorbed company's contacts and domains move to the kept company.

Each merge runs in the caller's transaction with both rows locked (``FOR
UPDATE`` on PostgreSQL; on SQLite the writing transaction holds the whole
database), and bumps the ``version`` of every contact it changes, so a
concurrent editor re-reads instead of writing over it. A sync that is
writing to the absorbed contact at that moment fails its batch on the
foreign key and writes it again, to the kept contact, on its next pass.

Merging is safe to repeat: a contact or company merged into itself, or into
the one it was already merged into (the audit log remembers), is left alone.
The absorbed entity's audit row says only where it went; what it held is
recorded under the kept entity, so erasing the kept contact erases it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import DeclarativeBase, Session

from storage import audit, relationships
from storage.ingest import apply_merge, refresh_last_contacted
from storage.models import (
    AuditLog,
    Company,
    CompanyDomain,
    Conflict,
    Contact,
    ContactEmail,
    InteractionParticipant,
    Observation,
    utcnow,
)
from storage.upsert import greatest, insert_for, table_of

MERGED_INTO = "merged_into"
"""The audit action on an absorbed entity; its ``after`` names the entity it went into."""

_FILLED = (
    "display_name",
    "first_name",
    "last_name",
    "title",
    "phone",
    "address",
    "birthday",
    "preferred_channel",
    "company_id",
    "owner",
    "lead_source",
)
"""Contact columns the kept contact takes from the absorbed one where it has no value."""


class MergeError(Exception):
    """One of the two entities does not exist (and was not merged away before)."""


@dataclass(frozen=True)
class MergeResult:
    """What a merge did; ``merged`` is false when there was nothing to do."""

    kept: int
    absorbed: int
    merged: bool
    moved: Mapping[str, int] = field(default_factory=dict)


def merge_contacts(session: Session, keep: int, absorb: int, *, actor: str) -> MergeResult:
    """Move everything of contact ``absorb`` to contact ``keep`` and delete ``absorb``."""
    if keep == absorb:
        return MergeResult(keep, absorb, merged=False)
    rows = _lock(session, Contact, keep, absorb)
    if absorb not in rows and keep in rows and already_merged(session, "contact", absorb, keep):
        return MergeResult(keep, absorb, merged=False)
    _require(rows, "contact", keep, absorb)
    emails = _emails(session, keep, absorb)
    moved = {
        "emails": _repoint(session, ContactEmail, absorb, keep),
        "observations": _move_observations(session, absorb, keep),
        "participants": _repoint(session, InteractionParticipant, absorb, keep),
        "conflicts": _repoint(session, Conflict, absorb, keep),
    }
    kept = session.get(Contact, keep, populate_existing=True)
    assert kept is not None
    _fill_blanks(kept, rows[absorb])
    kept.updated_at = utcnow()
    session.execute(delete(table_of(Contact)).where(table_of(Contact).c.id == absorb))
    session.flush()
    changes = apply_merge(session, [keep], actor=actor)
    refresh_last_contacted(session, [keep])
    absorbed_company = rows[absorb]["company_id"]
    relationships.refresh_contacts_and_companies(
        session, [keep], also=[absorbed_company] if absorbed_company is not None else []
    )
    after = session.execute(select(table_of(Contact)).where(Contact.id == keep)).one()._asdict()
    audit.record(
        session,
        [
            audit.Change(
                actor,
                "merge",
                "contact",
                keep,
                {
                    "kept": _facts(rows[keep], emails[keep]),
                    "merged": _facts(rows[absorb], emails[absorb]),
                },
                {
                    **_facts(after, emails[keep] + emails[absorb]),
                    "merged_id": absorb,
                    "moved": moved,
                },
            ),
            audit.Change(actor, MERGED_INTO, "contact", absorb, None, {"into": keep}),
            *changes,
        ],
    )
    return MergeResult(keep, absorb, merged=True, moved=moved)


def merge_companies(session: Session, keep: int, absorb: int, *, actor: str) -> MergeResult:
    """Move company ``absorb``'s contacts and domains to company ``keep`` and delete ``absorb``."""
    if keep == absorb:
        return MergeResult(keep, absorb, merged=False)
    rows = _lock(session, Company, keep, absorb)
    if absorb not in rows and keep in rows and already_merged(session, "company", absorb, keep):
        return MergeResult(keep, absorb, merged=False)
    _require(rows, "company", keep, absorb)
    domains = {
        company_id: sorted(
            session.scalars(
                select(CompanyDomain.domain).where(CompanyDomain.company_id == company_id)
            )
        )
        for company_id in (keep, absorb)
    }
    contacts = table_of(Contact)
    moved_contacts = (
        session.execute(
            update(contacts)
            .where(contacts.c.company_id == absorb)
            .values(company_id=keep, version=contacts.c.version + 1)
            .returning(contacts.c.id)
        )
        .scalars()
        .all()
    )
    moved = {
        "contacts": len(moved_contacts),
        "domains": _repoint(session, CompanyDomain, absorb, keep, column="company_id"),
    }
    companies = table_of(Company)
    session.execute(delete(companies).where(companies.c.id == absorb))
    relationships.refresh(session, companies=[keep])
    name = rows[keep]["name"]
    audit.record(
        session,
        [
            audit.Change(
                actor,
                "merge",
                "company",
                keep,
                {
                    "kept": {"name": name, "domains": domains[keep]},
                    "merged": {"name": rows[absorb]["name"], "domains": domains[absorb]},
                },
                {
                    "name": name,
                    "domains": sorted(domains[keep] + domains[absorb]),
                    "merged_id": absorb,
                    "moved": moved,
                },
            ),
            audit.Change(actor, MERGED_INTO, "company", absorb, None, {"into": keep}),
            *(
                audit.Change(
                    actor, "update", "contact", i, {"company_id": absorb}, {"company_id": keep}
                )
                for i in sorted(moved_contacts)
            ),
        ],
    )
    return MergeResult(keep, absorb, merged=True, moved=moved)


def already_merged(session: Session, entity: str, absorbed: int, into: int) -> bool:
    """Whether ``absorbed`` went into ``into``, directly or through others merged into it."""
    targets = merged_into(session, entity)
    seen: set[int] = set()
    current: int | None = absorbed
    while current is not None and current not in seen:
        if current == into:
            return True
        seen.add(current)
        current = targets.get(current)
    return False


def merged_into(session: Session, entity: str) -> dict[int, int]:
    """Absorbed id -> the id it was merged into, for every merge of ``entity`` so far."""
    rows = session.execute(
        select(AuditLog.entity_id, AuditLog.after).where(
            AuditLog.entity == entity, AuditLog.action == MERGED_INTO
        )
    )
    return {
        entity_id: int(after["into"])
        for entity_id, after in rows
        if entity_id is not None and isinstance(after, dict) and "into" in after
    }


def _lock(
    session: Session, model: type[DeclarativeBase], *ids: int
) -> dict[int, Mapping[str, Any]]:
    """Both rows, locked in id order so that two merges of the same pair cannot deadlock."""
    table = table_of(model)
    found = session.execute(
        select(table).where(table.c.id.in_(ids)).order_by(table.c.id).with_for_update()
    )
    return {row.id: dict(row._mapping) for row in found}


def _require(rows: Mapping[int, object], entity: str, *ids: int) -> None:
    missing = [i for i in ids if i not in rows]
    if missing:
        raise MergeError(f"no {entity} with id {missing[0]}")


def _repoint(
    session: Session,
    model: type[DeclarativeBase],
    old: int,
    new: int,
    *,
    column: str = "contact_id",
) -> int:
    table: Table = table_of(model)
    found = session.execute(
        update(table).where(table.c[column] == old).values({column: new}).returning(table.c.id)
    )
    return len(found.all())


def _move_observations(session: Session, old: int, new: int) -> int:
    """The absorbed contact's facts become the kept one's; a shared fact keeps its latest time."""
    table = table_of(Observation)
    rows = [
        {
            "contact_id": new,
            "field": o.field,
            "value": o.value,
            "source": o.source,
            "manual": o.manual,
            "observed_at": o.observed_at,
            "recorded_at": o.recorded_at,
        }
        for o in session.execute(select(table).where(table.c.contact_id == old))
    ]
    if not rows:
        return 0
    statement = insert_for(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=["contact_id", "field", "value", "source", "manual"],
        set_={
            "observed_at": greatest(session, table.c.observed_at, statement.excluded.observed_at)
        },
    )
    session.execute(statement, rows)
    session.execute(delete(table).where(table.c.contact_id == old))
    return len(rows)


def _fill_blanks(kept: Contact, absorbed: Mapping[str, Any]) -> None:
    for name in _FILLED:
        if getattr(kept, name) is None and absorbed[name] is not None:
            setattr(kept, name, absorbed[name])
    kept.do_not_contact = bool(kept.do_not_contact or absorbed["do_not_contact"])
    extra = {**(absorbed["extra"] or {}), **(kept.extra or {})}
    if extra != kept.extra:
        kept.extra = extra


def _emails(session: Session, *contact_ids: int) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {i: [] for i in contact_ids}
    for contact_id, email in session.execute(
        select(ContactEmail.contact_id, ContactEmail.email)
        .where(ContactEmail.contact_id.in_(contact_ids))
        .order_by(ContactEmail.id)
    ):
        found[contact_id].append(email)
    return found


def _facts(row: Mapping[str, Any], emails: list[str]) -> dict[str, Any]:
    """A contact's own values for the audit log (JSON: dates as ISO text)."""
    facts = {
        name: value.isoformat() if isinstance(value, date) else value
        for name in (*_FILLED, "do_not_contact", "extra")
        if (value := row[name]) is not None
    }
    return {**facts, "emails": sorted(emails)}
