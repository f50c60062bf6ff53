"""Writing a planned batch: companies, contacts, interactions, facts -- idempotently.

The agent decides *what* to log (pure planning); this module makes it so in
the caller's transaction. Every insert is ``ON CONFLICT`` on a natural key
(company domain, contact address, dedupe key, source, participant, fact), so
writing the same batch twice, or two agents writing overlapping batches,
adds nothing and loses nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from config.limits import bounded_id
from storage import audit, fields, merge, relationships
from storage import relationship_increments as increments
from storage.batching import chunks
from storage.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    Observation,
    Quarantine,
    SyncState,
)
from storage.sync_state import add_batch, update_counters
from storage.upsert import greatest, insert_for, table_of


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
    revised_at: datetime | None = None
    """The source's last change; a later revision of a meeting updates the logged one."""
    fingerprint: str | None = None
    """What must agree for two records with one dedupe key to be one interaction (see
    :func:`_claim_keys`); None when the source cannot tell."""


@dataclass(frozen=True)
class ResponseRecord:
    """An attendee's answer to a meeting logged already (an iTIP REPLY): never a meeting.

    It names the meeting's occurrences by ``uid`` (stored as a meeting's
    ``thread``) and ``recurrence_id`` (None: every occurrence), among the
    meetings of the organizer ``fingerprint`` names (see :func:`_claim_keys`).
    ``responded_at`` orders answers; without it, the answer is taken only
    where no dated answer is stored.
    """

    connector: str
    source_id: str
    uid: str
    recurrence_id: datetime | None
    fingerprint: str | None
    email: str
    name: str
    response_status: str
    responded_at: datetime | None = None


RSVP_WITHOUT_MEETING = "rsvp_without_meeting"
"""The skip reason of an answer that names no meeting logged (yet) by any agent."""


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
    withdrawn: list[tuple[str, str]] = field(default_factory=list)
    """Sources their owner made private: an interaction left without sources goes too."""
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)
    """``(connector, source_id, reason)``."""
    responses: list[ResponseRecord] = field(default_factory=list)
    """Attendees' answers to meetings logged already; they never create an interaction."""


@dataclass
class WriteStats:
    interactions_created: int = 0
    sources_added: int = 0
    contacts_created: int = 0
    companies_created: int = 0
    sources_removed: int = 0
    interactions_deleted: int = 0
    collisions: list[tuple[str, str]] = field(default_factory=list)
    """``(source_id, dedupe key)`` of records that reused another's key and got their own."""
    skipped: Counter[str] = field(default_factory=Counter)
    """What the write found nothing to apply to, by reason (answers without a meeting).
    Already added to the connector's ``sync_state`` counters, in the same transaction."""


def write_batch(
    session: Session,
    batch: BatchWrite,
    *,
    propagate_deletes: bool,
    actor: str = "agent",
    figures: bool = True,
) -> WriteStats:
    """Apply ``batch`` in the caller's transaction; ``actor`` signs the audit entries.

    Relationship figures are kept current in the same transaction
    (``storage.relationship_increments``); ``figures=False`` leaves them to
    :func:`storage.relationships.refresh_stale` (the benchmark measuring what keeping them
    current costs)."""
    stats = WriteStats()
    changes: list[audit.Change] = []
    records = _claim_keys(session, batch.interactions, stats)
    created = _ensure_contacts(session, batch.new_contacts, stats, changes, actor)
    addresses = {p.email for r in records for p in r.participants}
    addresses |= {f.email for f in batch.facts} | {r.email for r in batch.responses}
    contact_of = contact_ids(session, addresses)
    touched = {contact_of[f.email] for f in batch.facts if f.email in contact_of}
    linked = {contact_of[p.email] for r in records for p in r.participants if p.email in contact_of}
    linked |= {contact_of[r.email] for r in batch.responses if r.email in contact_of}
    _lock_contacts(session, touched | linked | set(created.values()))
    interaction_of = _upsert_interactions(session, records, stats, changes, actor)
    _add_sources(session, records, interaction_of, stats)
    among, before = _figures_before(session, interaction_of, created, changes, figures)
    participants = _participant_rows(records, interaction_of, contact_of)
    _add_responses(session, batch.responses, contact_of, participants, stats)
    _upsert_participants(session, participants)
    if created:
        _link_earlier_participation(session, created)
    _record_facts(session, batch.facts, contact_of)
    moving = figures and any(f.field == "company" for f in batch.facts)
    company_before = relationships.company_of_each(session, touched) if moving else {}
    changes += apply_merge(session, touched, actor=actor)
    refresh_last_contacted(session, linked | set(created.values()))
    gone = [*batch.removed, *batch.withdrawn]
    removed = relationships.contacts_of_sources(session, gone) if figures else set()
    _remove_sources(session, batch.removed, propagate_deletes, stats, changes, actor)
    _remove_sources(session, batch.withdrawn, True, stats, changes, actor)
    _quarantine(session, batch.quarantined)
    audit.record(session, changes)
    if before is not None:
        _keep_figures_current(
            session,
            among,
            before,
            changes=changes,
            recompute=removed
            | {contact_of[r.email] for r in batch.responses if r.email in contact_of},
            created=set(created.values()),
            moved=_moved(company_before, relationships.company_of_each(session, company_before)),
        )
    return stats


def _lock_contacts(session: Session, ids: Iterable[int]) -> None:
    """Lock the contacts this batch will touch, in id order, before writing anything else.

    Two agents updating overlapping contacts in different orders deadlock on
    PostgreSQL; taking these row locks first and in one order makes batches
    that share contacts wait for each other instead. ``NO KEY UPDATE`` still
    lets other writers insert rows that refer to them.
    """
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite's writer holds the whole database already
    for chunk in chunks(sorted(set(ids))):
        session.execute(
            select(Contact.id)
            .where(Contact.id.in_(chunk))
            .order_by(Contact.id)
            .with_for_update(key_share=True)
        ).all()


def contact_ids(session: Session, emails: Iterable[str]) -> dict[str, int]:
    """Address -> contact id for the addresses that belong to a contact."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(emails))):
        rows = session.execute(
            select(ContactEmail.email, ContactEmail.contact_id).where(ContactEmail.email.in_(chunk))
        )
        found.update({email: contact_id for email, contact_id in rows})
    return found


def company_ids(session: Session, domains: Iterable[str]) -> dict[str, int]:
    """Domain -> company id for the domains some company owns."""
    found: dict[str, int] = {}
    for chunk in chunks(sorted(set(domains))):
        rows = session.execute(
            select(CompanyDomain.domain, CompanyDomain.company_id).where(
                CompanyDomain.domain.in_(chunk)
            )
        )
        found.update({domain: company_id for domain, company_id in rows})
    return found


def _create_claimed(
    session: Session,
    owners: Table,
    owner_rows: Sequence[dict[str, object]],
    claims: Table,
    owner_column: str,
    key_column: str,
    keys: Sequence[str],
) -> dict[str, int]:
    """Insert an owner row per key, then claim each key for its row.

    The claim is ``INSERT ... ON CONFLICT DO NOTHING`` on the key's unique
    index, so two writers racing for one key (an address, a domain) cannot
    both win: the loser's new row is deleted again and it uses the winner's.
    Returns key -> new owner id for the keys this call won.
    """
    won: dict[str, int] = {}
    for chunk, rows in zip(chunks(keys), chunks(owner_rows), strict=True):
        ids = (
            session.execute(
                owners.insert().returning(owners.c.id, sort_by_parameter_order=True),
                list(rows),
            )
            .scalars()
            .all()
        )
        claimed = set(
            session.execute(
                insert_for(session, claims)
                .on_conflict_do_nothing(index_elements=[key_column])
                .returning(claims.c[key_column]),
                [{owner_column: i, key_column: k} for i, k in zip(ids, chunk, strict=True)],
            ).scalars()
        )
        lost = [i for i, k in zip(ids, chunk, strict=True) if k not in claimed]
        if lost:
            session.execute(delete(owners).where(owners.c.id.in_(lost)))
        won.update({k: i for i, k in zip(ids, chunk, strict=True) if k in claimed})
    return won


def _ensure_companies(
    session: Session,
    wanted: dict[str, str],
    stats: WriteStats,
    changes: list[audit.Change],
    actor: str,
) -> dict[str, int]:
    """Domain -> company id, creating a company for each domain nobody owns yet."""
    existing = company_ids(session, wanted)
    missing = sorted(set(wanted) - set(existing))
    if not missing:
        return existing
    won = _create_claimed(
        session,
        table_of(Company),
        [{"name": wanted[d]} for d in missing],
        table_of(CompanyDomain),
        "company_id",
        "domain",
        missing,
    )
    stats.companies_created += len(won)
    changes += [
        audit.Change(actor, "create", "company", i, None, {"name": wanted[d], "domain": d})
        for d, i in won.items()
    ]
    return existing | company_ids(session, missing)


def ensure_companies(session: Session, wanted: Mapping[str, str], *, actor: str) -> dict[str, int]:
    """Domain -> company id for ``wanted`` (domain -> name for a new one), audited as ``actor``."""
    changes: list[audit.Change] = []
    ids = _ensure_companies(session, dict(wanted), WriteStats(), changes, actor)
    audit.record(session, changes)
    return ids


def _ensure_contacts(
    session: Session,
    wanted: Sequence[NewContact],
    stats: WriteStats,
    changes: list[audit.Change],
    actor: str,
) -> dict[str, int]:
    """Create the contacts that do not exist yet; returns address -> new contact id."""
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
        changes,
        actor,
    )
    rows: list[dict[str, object]] = [
        {
            "company_id": companies.get(by_email[e].company_domain or ""),
            "version": 1,
            "extra": {},
            "do_not_contact": False,
        }
        for e in missing
    ]
    created = _create_claimed(
        session, table_of(Contact), rows, table_of(ContactEmail), "contact_id", "email", missing
    )
    stats.contacts_created += len(created)
    changes += [
        audit.Change(
            actor,
            "create",
            "contact",
            i,
            None,
            {"company_id": companies.get(by_email[e].company_domain or "")},
        )
        for e, i in created.items()
    ]
    return created


def _claim_keys(
    session: Session, records: Sequence[InteractionRecord], stats: WriteStats
) -> list[InteractionRecord]:
    """``records``, each under a dedupe key that cannot merge it with a different message.

    A Message-ID or a calendar UID is chosen by whoever wrote the message, so
    two different messages can carry the same one, by accident or to slip
    into another customer's timeline. A key belongs to the fingerprint it
    was first logged with (in the database, else first in the batch); a
    record with the same key and another fingerprint is logged under a key
    of its own, derived from both (so every copy of it lands there too), and
    reported in ``stats.collisions``. A row logged before fingerprints were
    kept takes the first one it meets. Records without a fingerprint cannot
    be told apart and keep the key.
    """
    keys = sorted({r.dedupe_key for r in records if r.fingerprint is not None})
    owner: dict[str, str | None] = {}
    for chunk in chunks(keys):
        owner.update(
            session.execute(
                select(Interaction.dedupe_key, Interaction.fingerprint).where(
                    Interaction.dedupe_key.in_(chunk)
                )
            ).all()
        )
    unclaimed = {key for key, fingerprint in owner.items() if fingerprint is None}
    resolved: list[InteractionRecord] = []
    for record in records:
        key, fingerprint = record.dedupe_key, record.fingerprint
        if fingerprint is not None and owner.get(key) is None:
            owner[key] = fingerprint
        if fingerprint is None or owner[key] == fingerprint:
            resolved.append(record)
            continue
        own = collision_key(key, fingerprint)
        stats.collisions.append((record.source_id, key))
        resolved.append(replace(record, dedupe_key=own))
    for key in sorted(k for k in unclaimed if owner[k] is not None):
        session.execute(
            update(table_of(Interaction))
            .where(Interaction.dedupe_key == key, Interaction.fingerprint.is_(None))
            .values(fingerprint=owner[key])
        )
    return resolved


def collision_key(key: str, fingerprint: str) -> str:
    """The key a record gets when ``key`` belongs to another fingerprint (``_claim_keys``)."""
    return "collision:" + hashlib.sha256(f"{key}\n{fingerprint}".encode()).hexdigest()


_REVISABLE = ("occurred_at", "ends_at", "status", "subject")
"""What a later revision of a meeting may change on the logged interaction."""


def _upsert_interactions(
    session: Session,
    records: Sequence[InteractionRecord],
    stats: WriteStats,
    changes: list[audit.Change],
    actor: str,
) -> dict[str, int]:
    """Insert new interactions; apply newer revisions of meetings; return key -> id.

    An email never changes once logged. A meeting does (moved, cancelled,
    renamed): the row takes the incoming version when its ``revised_at`` is
    at least the stored one, so the result does not depend on which
    attendee's calendar is synced first, and a stale copy never wins.
    """
    if not records:
        return {}
    unique = {r.dedupe_key: r for r in records}
    before = _current(session, sorted(k for k, r in unique.items() if r.kind == "meeting"))
    _insert_new(session, unique, stats, changes, actor)
    _apply_revisions(session, unique, before, changes, actor)
    return _interaction_ids(session, sorted(unique))


def _insert_new(
    session: Session,
    unique: Mapping[str, InteractionRecord],
    stats: WriteStats,
    changes: list[audit.Change],
    actor: str,
) -> None:
    """Insert the interactions no row holds yet; a key some agent logged before stays as is."""
    table = table_of(Interaction)
    for chunk in chunks(sorted(unique)):
        statement = insert_for(session, table).on_conflict_do_nothing(index_elements=["dedupe_key"])
        inserted = session.execute(
            statement.returning(table.c.id, table.c.kind, table.c.occurred_at),
            [_interaction_row(unique[key]) for key in chunk],
        ).all()
        stats.interactions_created += len(inserted)
        changes += [
            audit.Change(actor, "create", "interaction", i, None, {"kind": k, "occurred_at": at})
            for i, k, at in inserted
        ]


def _apply_revisions(
    session: Session,
    unique: Mapping[str, InteractionRecord],
    before: Mapping[str, tuple[int, dict[str, object], datetime | None]],
    changes: list[audit.Change],
    actor: str,
) -> None:
    """Update the meetings stored ``before`` this batch that it holds a newer revision of."""
    for key, (interaction_id, stored, revised) in sorted(before.items()):
        record = unique[key]
        revised_at = record.revised_at
        if revised_at is None or (revised is not None and revised_at < revised):
            continue  # no revision to apply, or an older one than the row's
        incoming = {name: getattr(record, name) for name in _REVISABLE}
        if incoming == stored:
            continue
        _revise(session, interaction_id, incoming, revised_at)
        changes.append(_revision_change(actor, interaction_id, stored, incoming))


def _revision_change(
    actor: str, interaction_id: int, stored: Mapping[str, object], incoming: Mapping[str, object]
) -> audit.Change:
    """The audit entry of a revision: only the fields it changed, before and after."""
    changed = [name for name in _REVISABLE if incoming[name] != stored[name]]
    return audit.Change(
        actor,
        "update",
        "interaction",
        interaction_id,
        {name: stored[name] for name in changed},
        {name: incoming[name] for name in changed},
    )


def _revise(
    session: Session, interaction_id: int, incoming: Mapping[str, object], revised_at: datetime
) -> None:
    """Write a revision unless the row has meanwhile taken a later one (from another agent)."""
    table = table_of(Interaction)
    session.execute(
        update(table)
        .where(
            table.c.id == interaction_id,
            (table.c.revised_at.is_(None)) | (table.c.revised_at <= revised_at),
        )
        .values(**incoming, revised_at=revised_at, updated_at=datetime.now(timezone.utc))
    )


def _interaction_ids(session: Session, keys: Sequence[str]) -> dict[str, int]:
    """Dedupe key -> interaction id, for the keys some interaction holds."""
    ids: dict[str, int] = {}
    for chunk in chunks(keys):
        ids.update(
            session.execute(
                select(Interaction.dedupe_key, Interaction.id).where(
                    Interaction.dedupe_key.in_(chunk)
                )
            ).all()
        )
    return ids


def _current(
    session: Session, keys: Sequence[str]
) -> dict[str, tuple[int, dict[str, object], datetime | None]]:
    """Stored meetings by dedupe key: id, the revisable values, and their revision."""
    found: dict[str, tuple[int, dict[str, object], datetime | None]] = {}
    for chunk in chunks(keys):
        for row in session.execute(
            select(
                Interaction.dedupe_key,
                Interaction.id,
                Interaction.revised_at,
                *(getattr(Interaction, name) for name in _REVISABLE),
            ).where(Interaction.dedupe_key.in_(chunk))
        ):
            values = {name: getattr(row, name) for name in _REVISABLE}
            found[row.dedupe_key] = (row.id, values, row.revised_at)
    return found


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
        "revised_at": record.revised_at,
        "fingerprint": record.fingerprint,
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
    for chunk in chunks([rows[key] for key in sorted(rows)]):
        stats.sources_added += len(session.execute(statement.returning(table.c.id), chunk).all())


ParticipantRows = dict[tuple[int, str, str], dict[str, object]]
"""``interaction_participants`` rows to upsert, by their unique key (interaction, email, role)."""


def _participant_rows(
    records: Sequence[InteractionRecord],
    interaction_of: dict[str, int],
    contact_of: dict[str, int],
) -> ParticipantRows:
    """The records' participants; a meeting's answers are dated by its revision, so that a
    stale copy of it never undoes a later reply."""
    rows: ParticipantRows = {}
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
                    "responded_at": record.revised_at if p.response_status else None,
                },
            )
    return rows


def _upsert_participants(session: Session, rows: ParticipantRows) -> None:
    """Insert participants; on an existing one, take the answer only when it is not older.

    The comparison runs in the statement, against the row as it is when the
    statement gets to it, so two agents writing answers in either order, or
    one writing the same answer twice, leave the newest (:func:`_newer_answer`).
    Meetings' participants and replies' answers go in one statement, in key
    order, so that two writers never lock the same rows in different orders.
    """
    if not rows:
        return
    table = table_of(InteractionParticipant)
    statement = insert_for(session, table)
    newer = _newer_answer(statement, table)
    statement = statement.on_conflict_do_update(
        index_elements=["interaction_id", "email", "role"],
        set_={
            "response_status": case(
                (newer, statement.excluded.response_status), else_=table.c.response_status
            ),
            "responded_at": case(
                (newer, statement.excluded.responded_at), else_=table.c.responded_at
            ),
        },
    )
    # in key order, like every upsert here, so two writers never wait on each other in a circle
    for chunk in chunks([rows[key] for key in sorted(rows)]):
        session.execute(statement, chunk)


def _newer_answer(statement: Any, table: Table) -> ColumnElement[bool]:
    """Whether the incoming answer replaces the stored one.

    An incoming row without an answer never does. One with an answer does
    unless the stored answer is dated and the incoming one is undated or
    older; a tie goes to the incoming one, so writing an answer again is a
    no-op. Rows written before answers were dated compare as undated.
    """
    excluded = statement.excluded
    stored_at = table.c.responded_at
    return and_(
        excluded.response_status.is_not(None),
        or_(
            stored_at.is_(None),
            and_(excluded.responded_at.is_not(None), stored_at <= excluded.responded_at),
        ),
    )


def _add_responses(
    session: Session,
    responses: Sequence[ResponseRecord],
    contact_of: Mapping[str, int],
    rows: ParticipantRows,
    stats: WriteStats,
) -> None:
    """Add to ``rows`` each answering attendee's response on the meetings it names.

    An attendee who was no participant becomes one, linked to their contact
    when they have one, but never made a contact: an answer alone is no
    interaction. Where the batch already holds the participant (the meeting
    itself, another answer), the newer answer stays, by the rule the
    database applies (:func:`_newer_answer`). An answer naming no logged
    meeting is counted under :data:`RSVP_WITHOUT_MEETING`, on ``stats`` and
    on its connector's counters.
    """
    unmatched: Counter[str] = Counter()
    for response in responses:
        meetings = _answered_meetings(session, response)
        if not meetings:
            unmatched[response.connector] += 1
        answer = {
            "response_status": response.response_status,
            "responded_at": response.responded_at,
        }
        for interaction_id in meetings:
            key = (interaction_id, response.email, "attendee")
            kept = rows.get(key)
            if kept is None:
                rows[key] = {
                    "interaction_id": interaction_id,
                    "contact_id": contact_of.get(response.email),
                    "email": response.email,
                    "name": response.name or None,
                    "role": "attendee",
                    **answer,
                }
            elif _replaces(kept, response.responded_at):
                kept.update(answer)
    for connector, count in sorted(unmatched.items()):
        stats.skipped[RSVP_WITHOUT_MEETING] += count
        _count_skips(session, connector, {RSVP_WITHOUT_MEETING: count})


def _replaces(kept: Mapping[str, object], responded_at: datetime | None) -> bool:
    """:func:`_newer_answer` for two rows of one batch: an answer dated ``responded_at``
    replaces ``kept``'s unless ``kept``'s is dated and this one is undated or older."""
    kept_at = kept["responded_at"]
    if kept["response_status"] is None or not isinstance(kept_at, datetime):
        return True
    return responded_at is not None and kept_at <= responded_at


def _answered_meetings(session: Session, response: ResponseRecord) -> list[int]:
    """The logged meetings ``response`` names, by UID, organizer and occurrence.

    A meeting's UID is its ``thread``; its organizer, its ``fingerprint``
    (a meeting logged before fingerprints were kept has none, and matches
    any). An occurrence is found by its dedupe key, UID and original start,
    or the key it got when another organizer's meeting held that one.
    """
    query = select(Interaction.id).where(
        Interaction.kind == "meeting", Interaction.thread == response.uid
    )
    fingerprint = response.fingerprint
    if fingerprint is None:
        query = query.where(Interaction.fingerprint.is_(None))
    else:
        query = query.where(
            or_(Interaction.fingerprint == fingerprint, Interaction.fingerprint.is_(None))
        )
    if response.recurrence_id is not None:
        key = f"{response.uid}/{response.recurrence_id.isoformat()}"
        keys = [key] if fingerprint is None else [key, collision_key(key, fingerprint)]
        query = query.where(Interaction.dedupe_key.in_(keys))
    return list(session.scalars(query.order_by(Interaction.id)))


def _count_skips(session: Session, connector: str, skipped: Mapping[str, int]) -> None:
    """Add ``skipped`` to the connector's counters, with the write that found them.

    Whether an answer names a logged meeting is known only here, in the
    transaction that applies it, so it is counted here: exactly once per
    committed write, however often a lost race makes the caller retry. A
    connector without a ``sync_state`` row (a one-off import) has no counters.
    """
    state = session.get(SyncState, connector)
    if state is not None:
        update_counters(
            state,
            lambda counters: add_batch(counters, items=0, logged=0, quarantined=0, skipped=skipped),
        )


def _figures_before(
    session: Session,
    interaction_of: Mapping[str, int],
    created: Mapping[str, int],
    changes: Sequence[audit.Change],
    figures: bool,
) -> tuple[set[int], increments.Pairs | None]:
    """The interactions whose people the batch may change, and who took part in them
    before it (nobody, in those it creates: they are not asked for)."""
    if not figures:
        return set(), None
    new = {c.entity_id for c in changes if c.entity == "interaction" and c.action == "create"}
    among = {*interaction_of.values(), *_earlier_participation(session, created)}
    return among, increments.pairs_in(session, among - new)


def _keep_figures_current(
    session: Session,
    among: set[int],
    before: increments.Pairs,
    *,
    changes: Sequence[audit.Change],
    recompute: set[int],
    created: set[int],
    moved: set[int],
) -> None:
    """Relationship figures after the batch: the people in revised meetings, those whose
    history lost something (``recompute``), the companies contacts ``moved`` between, are
    recomputed; the rest gain the batch's new interactions."""
    revised = {c.entity_id for c in changes if c.entity == "interaction" and c.action == "update"}
    increments.keep_current(
        session,
        among,
        before,
        recompute_contacts={c for c, i in before.contacts if i in revised} | recompute,
        recompute_companies=moved,
        created=created,
    )


def _moved(before: Mapping[int, int | None], after: Mapping[int, int | None]) -> set[int]:
    """The companies that contacts left or joined."""
    return {
        company
        for contact, was in before.items()
        if was != after.get(contact)
        for company in (was, after.get(contact))
        if company is not None
    }


def _earlier_participation(session: Session, created: Mapping[str, int]) -> set[int]:
    """The interactions logged before these addresses became contacts: their figures (and
    their companies') gain them when :func:`_link_earlier_participation` links them."""
    found: set[int] = set()
    table = table_of(InteractionParticipant)
    for chunk in chunks(sorted(created)):
        found.update(
            session.scalars(
                select(table.c.interaction_id).where(
                    table.c.email.in_(chunk), table.c.contact_id.is_(None)
                )
            )
        )
    return found


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
    for chunk in chunks(rows):
        session.execute(statement, chunk)


_OBSERVATIONS = select(
    Observation.contact_id,
    Observation.field,
    Observation.value,
    Observation.source,
    Observation.observed_at,
    Observation.manual,
).where(Observation.contact_id.in_(bindparam("ids", expanding=True)))


def load_observations(
    session: Session, contact_ids: Iterable[int]
) -> dict[int, list[merge.Observation]]:
    """Every observation of ``contact_ids``, as the merge takes them."""
    ids = sorted(set(contact_ids))
    found: dict[int, list[merge.Observation]] = {i: [] for i in ids}
    for chunk in chunks(ids):
        for row in session.execute(_OBSERVATIONS, {"ids": chunk}):
            found[row.contact_id].append(
                merge.Observation(row.field, row.value, row.source, row.observed_at, row.manual)
            )
    return found


def apply_merge(
    session: Session, contact_ids: Iterable[int], *, actor: str = "agent"
) -> list[audit.Change]:
    """Re-derive the fields of ``contact_ids`` from their observations (``storage.fields``).

    Returns the audit entries for the fields that changed; the caller records them.
    """
    changes: list[audit.Change] = []
    ids = sorted(set(contact_ids))
    for chunk in chunks(ids):
        derived = {i: fields.derive(o) for i, o in load_observations(session, chunk).items()}
        domains = {v.value for d in derived.values() if (v := d.get("company")) and v.value}
        companies = company_ids(session, domains)
        for contact in session.scalars(select(Contact).where(Contact.id.in_(chunk))).all():
            for name, merged in derived[contact.id].items():
                before = fields.read(contact, name)
                if fields.assign(contact, name, merged.value, companies):
                    after = fields.read(contact, name)
                    changes.append(
                        audit.Change(
                            actor, "update", "contact", contact.id, {name: before}, {name: after}
                        )
                    )
    session.flush()
    return changes


def refresh_last_contacted(session: Session, contact_ids: Iterable[int]) -> None:
    """``last_contacted_at`` and the last interaction, from the contact's timeline.

    Recomputed rather than bumped, so it is right whatever order mail arrives
    in; meetings count once they have started and unless cancelled, and not
    for a participant who declined (who is on record, but met nobody).
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
        .where(
            p.c.contact_id == contacts.c.id,
            counts,
            p.c.response_status.is_(None) | (p.c.response_status != "declined"),
        )
        .order_by(i.c.occurred_at.desc(), i.c.id.desc())
        .limit(1)
        .correlate(contacts)
    )
    latest_id = timeline.with_only_columns(i.c.id).scalar_subquery()
    latest_at = timeline.with_only_columns(i.c.occurred_at).scalar_subquery()
    for chunk in chunks(ids):
        session.execute(
            update(contacts)
            .where(contacts.c.id.in_(chunk))
            .values(last_interaction_id=latest_id, last_contacted_at=latest_at)
            .execution_options(synchronize_session=False)
        )


def _remove_sources(
    session: Session,
    removed: Sequence[tuple[str, str]],
    propagate: bool,
    stats: WriteStats,
    changes: list[audit.Change],
    actor: str,
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
        statement,
        [{"connector": c, "source_id": bounded_id(s), "reason": r[:2000]} for c, s, r in items],
    )
