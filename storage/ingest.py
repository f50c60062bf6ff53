"""Writing a planned batch: companies, contacts, interactions, facts -- idempotently.

The agent decides *what* to log (pure planning); this module makes it so in
the caller's transaction. Every insert is ``ON CONFLICT`` on a natural key
(company domain, contact address, dedupe key, source, participant, fact), so
writing the same batch twice, or two agents writing overlapping batches,
adds nothing and loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TypeVar

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.orm import Session

from storage import merge
from storage.models import (
    Company,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    Observation,
    Quarantine,
)
from storage.upsert import greatest, insert_for, table_of

_CHUNK = 500
T = TypeVar("T")
MERGED_FIELDS = ("display_name", "first_name", "last_name", "title", "phone")


@dataclass(frozen=True)
class ParticipantRecord:
    email: str
    name: str
    role: str
    response_status: str | None = None


@dataclass(frozen=True)
class InteractionRecord:
    kind: str
    dedupe_key: str
    occurred_at: datetime
    direction: str
    connector: str
    source_id: str
    participants: tuple[ParticipantRecord, ...]
    subject: str | None = None
    summary: str | None = None
    body: str | None = None
    thread: str | None = None
    visibility: str = "shared"
    owner: str | None = None
    ends_at: datetime | None = None
    status: str = "active"


@dataclass(frozen=True)
class NewContact:
    """An address the policy allows to become a contact, with its company's domain."""

    email: str
    company_domain: str | None
    company_name: str | None = None


@dataclass(frozen=True)
class Fact:
    """An automatic or manual observation about the contact holding ``email``."""

    email: str
    field: str
    value: str
    source: str
    observed_at: datetime
    manual: bool = False


@dataclass
class BatchWrite:
    interactions: list[InteractionRecord] = field(default_factory=list)
    new_contacts: list[NewContact] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    """``(connector, source_id)`` pairs the provider no longer holds."""
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)
    """``(connector, source_id, reason)``."""


@dataclass
class WriteStats:
    interactions_created: int = 0
    sources_added: int = 0
    contacts_created: int = 0
    companies_created: int = 0
    sources_removed: int = 0
    interactions_deleted: int = 0


def write_batch(session: Session, batch: BatchWrite, *, propagate_deletes: bool) -> WriteStats:
    """Apply ``batch`` in the caller's transaction."""
    stats = WriteStats()
    created = _ensure_contacts(session, batch.new_contacts, stats)
    addresses = {p.email for r in batch.interactions for p in r.participants}
    addresses |= {f.email for f in batch.facts}
    contact_of = contact_ids(session, addresses)
    interaction_of = _upsert_interactions(session, batch.interactions, stats)
    _add_sources(session, batch.interactions, interaction_of, stats)
    _add_participants(session, batch.interactions, interaction_of, contact_of)
    if created:
        _link_earlier_participation(session, created)
    touched = {contact_of[f.email] for f in batch.facts if f.email in contact_of}
    _record_facts(session, batch.facts, contact_of)
    apply_merge(session, touched)
    linked = {
        contact_of[p.email]
        for r in batch.interactions
        for p in r.participants
        if p.email in contact_of
    }
    refresh_last_contacted(session, linked | set(created.values()))
    _remove_sources(session, batch.removed, propagate_deletes, stats)
    _quarantine(session, batch.quarantined)
    return stats


def contact_ids(session: Session, emails: Iterable[str]) -> dict[str, int]:
    """Address -> contact id for the addresses that belong to a contact."""
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(set(emails))):
        rows = session.execute(
            select(ContactEmail.email, ContactEmail.contact_id).where(ContactEmail.email.in_(chunk))
        )
        found.update({email: contact_id for email, contact_id in rows})
    return found


def _ensure_companies(
    session: Session, wanted: dict[str, str], stats: WriteStats
) -> dict[str, int]:
    if not wanted:
        return {}
    table = table_of(Company)
    for chunk in _chunks(sorted(wanted)):
        statement = insert_for(session, table).on_conflict_do_nothing(index_elements=["domain"])
        result = session.execute(
            statement.returning(table.c.id), [{"domain": d, "name": wanted[d]} for d in chunk]
        )
        stats.companies_created += len(result.all())
    ids: dict[str, int] = {}
    for chunk in _chunks(sorted(wanted)):
        ids.update(
            session.execute(
                select(Company.domain, Company.id).where(Company.domain.in_(chunk))
            ).all()
        )
    return ids


def _ensure_contacts(
    session: Session, wanted: Sequence[NewContact], stats: WriteStats
) -> dict[str, int]:
    """Create the contacts that do not exist yet; returns address -> new contact id.

    The contact row is inserted first and its address claimed with ``ON
    CONFLICT DO NOTHING``: when another writer claimed the address in the
    meantime, our contact is removed again and theirs is used.
    """
    by_email = {c.email: c for c in wanted}
    missing = sorted(set(by_email) - set(contact_ids(session, by_email)))
    if not missing:
        return {}
    companies = _ensure_companies(
        session,
        {
            c.company_domain: c.company_name or c.company_domain
            for c in (by_email[e] for e in missing)
            if c.company_domain
        },
        stats,
    )
    created: dict[str, int] = {}
    contacts = table_of(Contact)
    emails = table_of(ContactEmail)
    for chunk in _chunks(missing):
        rows: list[dict[str, object]] = [
            {
                "company_id": companies.get(by_email[e].company_domain or ""),
                "version": 1,
                "extra": {},
                "do_not_contact": False,
            }
            for e in chunk
        ]
        new_ids = (
            session.execute(
                contacts.insert().returning(contacts.c.id, sort_by_parameter_order=True), rows
            )
            .scalars()
            .all()
        )
        claimed = set(
            session.execute(
                insert_for(session, emails)
                .on_conflict_do_nothing(index_elements=["email"])
                .returning(emails.c.email),
                [{"contact_id": i, "email": e} for i, e in zip(new_ids, chunk, strict=True)],
            ).scalars()
        )
        lost = [i for i, e in zip(new_ids, chunk, strict=True) if e not in claimed]
        if lost:
            session.execute(delete(contacts).where(contacts.c.id.in_(lost)))
        created.update({e: i for i, e in zip(new_ids, chunk, strict=True) if e in claimed})
    stats.contacts_created += len(created)
    return created


def _upsert_interactions(
    session: Session, records: Sequence[InteractionRecord], stats: WriteStats
) -> dict[str, int]:
    if not records:
        return {}
    table = table_of(Interaction)
    unique = {r.dedupe_key: r for r in records}
    for chunk in _chunks(sorted(unique)):
        statement = insert_for(session, table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        result = session.execute(
            statement.returning(table.c.id),
            [_interaction_row(unique[key]) for key in chunk],
        )
        stats.interactions_created += len(result.all())
    ids: dict[str, int] = {}
    for chunk in _chunks(sorted(unique)):
        ids.update(
            session.execute(
                select(Interaction.dedupe_key, Interaction.id).where(
                    Interaction.dedupe_key.in_(chunk)
                )
            ).all()
        )
    return ids


def _interaction_row(record: InteractionRecord) -> dict[str, object]:
    return {
        "kind": record.kind,
        "dedupe_key": record.dedupe_key,
        "occurred_at": record.occurred_at,
        "ends_at": record.ends_at,
        "subject": record.subject,
        "summary": record.summary,
        "body": record.body,
        "direction": record.direction,
        "thread": record.thread,
        "visibility": record.visibility,
        "status": record.status,
        "owner": record.owner,
    }


def _add_sources(
    session: Session,
    records: Sequence[InteractionRecord],
    interaction_of: dict[str, int],
    stats: WriteStats,
) -> None:
    rows = {
        (r.connector, r.source_id): {
            "interaction_id": interaction_of[r.dedupe_key],
            "connector": r.connector,
            "source_id": r.source_id,
        }
        for r in records
    }
    if not rows:
        return
    table = table_of(InteractionSource)
    statement = insert_for(session, table).on_conflict_do_nothing(
        index_elements=["connector", "source_id"]
    )
    for chunk in _chunks(list(rows.values())):
        stats.sources_added += len(session.execute(statement.returning(table.c.id), chunk).all())


def _add_participants(
    session: Session,
    records: Sequence[InteractionRecord],
    interaction_of: dict[str, int],
    contact_of: dict[str, int],
) -> None:
    rows: dict[tuple[int, str, str], dict[str, object]] = {}
    for record in records:
        interaction_id = interaction_of[record.dedupe_key]
        for p in record.participants:
            rows.setdefault(
                (interaction_id, p.email, p.role),
                {
                    "interaction_id": interaction_id,
                    "contact_id": contact_of.get(p.email),
                    "email": p.email,
                    "name": p.name or None,
                    "role": p.role,
                    "response_status": p.response_status,
                },
            )
    if not rows:
        return
    table = table_of(InteractionParticipant)
    statement = insert_for(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=["interaction_id", "email", "role"],
        set_={
            "response_status": func.coalesce(
                statement.excluded.response_status, table.c.response_status
            )
        },
    )
    for chunk in _chunks(list(rows.values())):
        session.execute(statement, chunk)


def _link_earlier_participation(session: Session, created: dict[str, int]) -> None:
    """Mail exchanged before someone became a contact joins their timeline."""
    table = table_of(InteractionParticipant)
    for email, contact_id in created.items():
        session.execute(
            update(table)
            .where(and_(table.c.email == email, table.c.contact_id.is_(None)))
            .values(contact_id=contact_id)
        )


def _record_facts(session: Session, facts: Sequence[Fact], contact_of: dict[str, int]) -> None:
    latest: dict[tuple[int, str, str, str, bool], datetime] = {}
    for fact in facts:
        contact_id = contact_of.get(fact.email)
        if contact_id is None:
            continue
        key = (contact_id, fact.field, fact.value, fact.source, fact.manual)
        if key not in latest or fact.observed_at > latest[key]:
            latest[key] = fact.observed_at
    if not latest:
        return
    table = table_of(Observation)
    statement = insert_for(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=["contact_id", "field", "value", "source", "manual"],
        set_={
            "observed_at": greatest(session, table.c.observed_at, statement.excluded.observed_at)
        },
    )
    rows = [
        {
            "contact_id": c,
            "field": f,
            "value": v,
            "source": s,
            "manual": m,
            "observed_at": at,
        }
        for (c, f, v, s, m), at in sorted(latest.items())
    ]
    for chunk in _chunks(rows):
        session.execute(statement, chunk)


def apply_merge(session: Session, contact_ids: Iterable[int]) -> None:
    """Re-derive the merged fields of ``contact_ids`` from their observations."""
    ids = sorted(set(contact_ids))
    for chunk in _chunks(ids):
        observations: dict[int, list[merge.Observation]] = {i: [] for i in chunk}
        for row in session.execute(
            select(
                Observation.contact_id,
                Observation.field,
                Observation.value,
                Observation.source,
                Observation.observed_at,
                Observation.manual,
            ).where(Observation.contact_id.in_(chunk))
        ):
            observations[row.contact_id].append(
                merge.Observation(row.field, row.value, row.source, row.observed_at, row.manual)
            )
        contacts = session.scalars(select(Contact).where(Contact.id.in_(chunk))).all()
        for contact in contacts:
            merged = merge.merge_contact(observations[contact.id])
            for name in MERGED_FIELDS:
                if name in merge.MULTI_VALUED:
                    values = merged.multi.get(name, ())
                    value = values[0] if values else None
                else:
                    value = merged.single[name].value if name in merged.single else None
                if value is not None and getattr(contact, name) != value:
                    setattr(contact, name, value)
    session.flush()


def refresh_last_contacted(session: Session, contact_ids: Iterable[int]) -> None:
    """``last_contacted_at`` and the last interaction, from the contact's timeline.

    Recomputed rather than bumped, so it is right whatever order mail arrives
    in; meetings count once they have started and unless cancelled.
    """
    ids = sorted(set(contact_ids))
    if not ids:
        return
    p = table_of(InteractionParticipant)
    i = table_of(Interaction)
    now = datetime.now(timezone.utc)
    counts = and_(
        i.c.status != "cancelled",
        (i.c.kind != "meeting") | (i.c.occurred_at <= now),
    )
    contacts = table_of(Contact)
    timeline = (
        select(i.c.id, i.c.occurred_at)
        .join(p, p.c.interaction_id == i.c.id)
        .where(p.c.contact_id == contacts.c.id, counts)
        .order_by(i.c.occurred_at.desc(), i.c.id.desc())
        .limit(1)
        .correlate(contacts)
    )
    latest_id = timeline.with_only_columns(i.c.id).scalar_subquery()
    latest_at = timeline.with_only_columns(i.c.occurred_at).scalar_subquery()
    for chunk in _chunks(ids):
        session.execute(
            update(contacts)
            .where(contacts.c.id.in_(chunk))
            .values(last_interaction_id=latest_id, last_contacted_at=latest_at)
            .execution_options(synchronize_session=False)
        )


def _remove_sources(
    session: Session, removed: Sequence[tuple[str, str]], propagate: bool, stats: WriteStats
) -> None:
    sources = table_of(InteractionSource)
    for connector, source_id in removed:
        interaction_ids = (
            session.execute(
                delete(sources)
                .where(sources.c.connector == connector, sources.c.source_id == source_id)
                .returning(sources.c.interaction_id)
            )
            .scalars()
            .all()
        )
        stats.sources_removed += len(interaction_ids)
        if not propagate:
            continue
        for interaction_id in interaction_ids:
            remaining = session.scalar(
                select(func.count()).where(sources.c.interaction_id == interaction_id)
            )
            if not remaining:
                session.execute(
                    delete(table_of(Interaction)).where(Interaction.id == interaction_id)
                )
                stats.interactions_deleted += 1


def _quarantine(session: Session, items: Sequence[tuple[str, str, str]]) -> None:
    if not items:
        return
    table = table_of(Quarantine)
    statement = insert_for(session, table).on_conflict_do_nothing(
        index_elements=["connector", "source_id"]
    )
    session.execute(
        statement, [{"connector": c, "source_id": s, "reason": r[:2000]} for c, s, r in items]
    )


def _chunks(items: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
