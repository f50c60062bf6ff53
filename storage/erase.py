"""Erasing a person, and applying the never-log list to what was logged before it.

Both are one operation on a :class:`Target`: whole contacts (with every
address, observation and conflict they hold) and participant addresses,
with or without a contact. Each interaction the target took part in meets
one of three fates, decided by :func:`fate` from its participants alone:

======  ==========================================================
keep    the target is not among its participants
trim    only the target's participant rows go; the rest stays
delete  the interaction goes, with its participants and sources
======  ==========================================================

An interaction is deleted when the target was its last *external*
participant: it had someone from outside before and has nobody after, so
what remains is no longer a customer interaction but a trace of the erased
person. One that never had an outside participant (internal mail logged on
purpose) only loses the target's rows. A company whose every domain is on
the never-log list goes too once none of its contacts is left. Email with one of *our* own addresses
on the never-log list is deleted outright, as the pipeline would have
skipped it (``agent.pipeline.filters.skip_never_log``); meetings drop the address, as
the pipeline does with their attendees.

Which side an address is on is the caller's decision (:data:`Ours`), asked
per interaction because the answer can depend on the mailbox it was logged
from. Matching addresses against the never-log list is the caller's too:
storage only receives the resulting predicate.

Only rows go: the subject and snippet of an interaction that stays are
kept as they are, even where they name the erased person. Free text that
may quote an address whatever the interaction -- a connector's last error,
a quarantine reason -- has the target's addresses replaced by
:data:`REDACTED`.

Deleted rows leave their bytes in the database's free space until it is
rewritten, and SQLite's search index keeps a deleted row's terms until it is
rebuilt, which the erasure does: callers run the erasure with ``secure_delete`` and then
``storage.db.purge_freed_space`` over :data:`ERASURE_TABLES`.

The audit log keeps that an erasure happened, never what was erased: its
rows carry ids and counts only. The erased entities' earlier audit rows go
with them, since they hold names and values of the person -- including the
rows of contacts merged into an erased one (``storage.entity_merge``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage import audit, relationships, search
from storage.batching import chunks
from storage.entity_merge import merged_into
from storage.ingest import refresh_last_contacted
from storage.models import (
    AuditLog,
    Company,
    CompanyDomain,
    Conflict,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    Observation,
    Quarantine,
    SyncState,
)
from storage.upsert import table_of

Ours = Callable[[str, str | None], bool]
"""``(address, interaction owner) -> bool``: whether the address is on our side."""

Fate = Literal["keep", "trim", "delete"]

REDACTED = "[erased]"
"""What an erased address becomes in free text that stays."""

ERASURE_TABLES = (
    "audit_log",
    "companies",
    "company_domains",
    "conflicts",
    "contact_emails",
    "contact_search",
    "contacts",
    "interaction_participants",
    "interaction_sources",
    "interactions",
    "observations",
    "quarantine",
    "sync_state",
)
"""Every table an erasure deletes from or rewrites, directly or by cascade."""


@dataclass(frozen=True)
class Target:
    """What to erase.

    ``addresses`` are participant addresses to remove wherever they occur;
    ``contact_ids`` are contacts erased whole, whose participant rows go
    whatever address they carry. ``vetoes`` are the addresses on the
    never-log list: one of ours among them keeps a whole email out.
    ``company_ids`` are companies that exist only because of listed domains.
    """

    contact_ids: frozenset[int] = frozenset()
    addresses: frozenset[str] = frozenset()
    vetoes: frozenset[str] = frozenset()
    company_ids: frozenset[int] = frozenset()
    """Companies all of whose domains are listed: erased once no contact is left in them."""

    def __bool__(self) -> bool:
        return bool(self.contact_ids or self.addresses or self.company_ids)


@dataclass(frozen=True)
class Erasure:
    """An erasure worked out against the database, before anything is deleted.

    ``contacts`` maps each erased contact to its counts (emails,
    observations, conflicts); ``deleted`` each deleted interaction to its
    counts (participants, sources); ``trimmed`` each kept interaction to the
    number of participant rows it loses.
    """

    target: Target
    contacts: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    deleted: Mapping[int, Mapping[str, int]] = field(default_factory=dict)
    trimmed: Mapping[int, int] = field(default_factory=dict)
    companies: tuple[int, ...] = ()
    participants: int = 0
    audit_entries: int = 0
    relinked: frozenset[int] = frozenset()
    """Other contacts that lose an interaction: their last contact is recomputed."""
    history: frozenset[int] = frozenset()
    """The erased contacts and those merged into them: their audit rows go."""

    def __bool__(self) -> bool:
        return bool(self.contacts or self.deleted or self.trimmed or self.companies)

    def counts(self) -> dict[str, int]:
        """Totals for people and for the audit log: numbers, never the data."""
        return {
            "contacts": len(self.contacts),
            "emails": sum(c["emails"] for c in self.contacts.values()),
            "observations": sum(c["observations"] for c in self.contacts.values()),
            "conflicts": sum(c["conflicts"] for c in self.contacts.values()),
            "participants": self.participants,
            "interactions_deleted": len(self.deleted),
            "interactions_trimmed": len(self.trimmed),
            "sources": sum(d["sources"] for d in self.deleted.values()),
            "companies": len(self.companies),
            "audit_entries": self.audit_entries,
        }


def fate(
    kind: str,
    owner: str | None,
    participants: Sequence[tuple[str, bool]],
    vetoes: frozenset[str],
    ours: Ours,
) -> Fate:
    """What becomes of one interaction; ``participants`` are ``(address, erased?)``."""
    gone = [email for email, erased in participants if erased]
    if not gone:
        return "keep"
    if kind == "email" and any(email in vetoes and ours(email, owner) for email in gone):
        return "delete"
    outside_before = any(not ours(email, owner) for email, _ in participants)
    outside_after = any(not ours(email, owner) for email, erased in participants if not erased)
    return "delete" if outside_before and not outside_after else "trim"


def forget_target(session: Session, email: str) -> Target:
    """A person by one normalized address: their contact, and every address it holds."""
    contact_id = session.scalar(select(ContactEmail.contact_id).where(ContactEmail.email == email))
    if contact_id is None:
        return Target(addresses=frozenset({email}))
    emails = session.scalars(
        select(ContactEmail.email).where(ContactEmail.contact_id == contact_id)
    ).all()
    return Target(contact_ids=frozenset({contact_id}), addresses=frozenset({email, *emails}))


def never_log_target(
    session: Session, listed: Callable[[str], bool], listed_domain: Callable[[str], bool]
) -> Target:
    """Everything logged for addresses and domains on the never-log list.

    Every known address is tested in Python, not in SQL, so that the list's
    own rules (plus tags, sub-domains, Gmail folding) decide, exactly as in
    the pipeline. A contact any of whose addresses is listed is erased whole;
    a company all of whose domains are listed would never have been created.
    """
    participants = session.scalars(select(InteractionParticipant.email).distinct()).all()
    vetoes = frozenset(email for email in participants if listed(email))
    contact_ids = frozenset(
        contact_id
        for email, contact_id in session.execute(
            select(ContactEmail.email, ContactEmail.contact_id)
        )
        if listed(email)
    )
    addresses = set(vetoes)
    for chunk in chunks(sorted(contact_ids)):
        addresses.update(
            session.scalars(select(ContactEmail.email).where(ContactEmail.contact_id.in_(chunk)))
        )
    domains: dict[int, list[bool]] = {}
    for domain, company_id in session.execute(
        select(CompanyDomain.domain, CompanyDomain.company_id)
    ):
        domains.setdefault(company_id, []).append(listed_domain(domain))
    return Target(
        contact_ids=contact_ids,
        addresses=frozenset(addresses),
        vetoes=vetoes,
        company_ids=frozenset(c for c, flags in domains.items() if all(flags)),
    )


def plan_erasure(session: Session, target: Target, ours: Ours) -> Erasure:
    """Work out what erasing ``target`` removes; reads only, for dry runs and confirmations."""
    if not target:
        return Erasure(target)
    fates = _decide(session, target, ours)
    companies = _emptied_companies(session, target)
    history = _with_absorbed(session, target.contact_ids)
    return Erasure(
        target=target,
        contacts=_contact_counts(session, sorted(target.contact_ids)),
        deleted=fates.deleted,
        trimmed=fates.trimmed,
        companies=companies,
        participants=fates.participants,
        audit_entries=_count_audit(session, history, fates.deleted, companies),
        relinked=frozenset(fates.relinked - target.contact_ids),
        history=history,
    )


@dataclass
class _Fates:
    deleted: dict[int, dict[str, int]] = field(default_factory=dict)
    trimmed: dict[int, int] = field(default_factory=dict)
    relinked: set[int] = field(default_factory=set)
    participants: int = 0


def _decide(session: Session, target: Target, ours: Ours) -> _Fates:
    """The fate of every interaction the target took part in, with what each loses."""
    p = table_of(InteractionParticipant)
    touched = sorted(
        {
            interaction_id
            for clause in _targeted(target)
            for interaction_id in session.scalars(
                select(p.c.interaction_id).distinct().where(clause)
            )
        }
    )
    fates = _Fates()
    for chunk in chunks(touched):
        people: dict[int, list[tuple[str, int | None, bool]]] = {i: [] for i in chunk}
        for interaction_id, email, contact_id in session.execute(
            select(p.c.interaction_id, p.c.email, p.c.contact_id).where(
                p.c.interaction_id.in_(chunk)
            )
        ):
            erased = email in target.addresses or contact_id in target.contact_ids
            people[interaction_id].append((email, contact_id, erased))
        sources = _count_by(session, InteractionSource.interaction_id, chunk)
        for interaction_id, kind, owner in session.execute(
            select(Interaction.id, Interaction.kind, Interaction.owner).where(
                Interaction.id.in_(chunk)
            )
        ):
            rows = people[interaction_id]
            gone = sum(erased for _, _, erased in rows)
            fates.participants += gone
            decided = fate(kind, owner, [(e, erased) for e, _, erased in rows], target.vetoes, ours)
            if decided == "delete":
                fates.deleted[interaction_id] = {
                    "participants": len(rows),
                    "sources": sources.get(interaction_id, 0),
                }
                fates.relinked.update(c for _, c, erased in rows if c is not None and not erased)
            elif decided == "trim":
                fates.trimmed[interaction_id] = gone
    return fates


def apply_erasure(session: Session, erasure: Erasure, *, actor: str, action: str) -> None:
    """Delete what ``erasure`` found, in the caller's transaction, and audit it by counts.

    Participant rows are deleted by the target again rather than by the
    rows found, so one that a concurrent sync added in the meantime goes too.
    """
    _redact(session, erasure.target.addresses)
    if not erasure:
        return
    target = erasure.target
    their_companies = relationships.companies_of(session, target.contact_ids)
    _delete_audit(session, erasure.history, erasure.deleted, erasure.companies)
    for clause in _targeted(target):
        session.execute(delete(table_of(InteractionParticipant)).where(clause))
    interactions = table_of(Interaction)
    for chunk in chunks(sorted(erasure.deleted)):
        session.execute(delete(interactions).where(interactions.c.id.in_(chunk)))
    contacts = table_of(Contact)
    for chunk in chunks(sorted(target.contact_ids)):
        session.execute(delete(contacts).where(contacts.c.id.in_(chunk)))
    companies = table_of(Company)
    for chunk in chunks(erasure.companies):
        session.execute(delete(companies).where(companies.c.id.in_(chunk)))
    refresh_last_contacted(session, erasure.relinked)
    relationships.refresh_contacts_and_companies(
        session, erasure.relinked, also=their_companies - set(erasure.companies)
    )
    audit.record(session, _audit_entries(erasure, actor, action))
    search.rebuild_index(session)


def erase(session: Session, target: Target, ours: Ours, *, actor: str, action: str) -> Erasure:
    """Plan and apply in one go, in the caller's transaction; returns what was erased."""
    erasure = plan_erasure(session, target, ours)
    apply_erasure(session, erasure, actor=actor, action=action)
    return erasure


def _audit_entries(erasure: Erasure, actor: str, action: str) -> Iterator[audit.Change]:
    yield audit.Change(actor, action, "erasure", None, None, erasure.counts())
    for contact_id, counts in sorted(erasure.contacts.items()):
        yield audit.Change(actor, "erase", "contact", contact_id, dict(counts), None)
    for interaction_id, counts in sorted(erasure.deleted.items()):
        yield audit.Change(actor, "erase", "interaction", interaction_id, dict(counts), None)
    for company_id in erasure.companies:
        yield audit.Change(actor, "erase", "company", company_id)
    for interaction_id, gone in sorted(erasure.trimmed.items()):
        yield audit.Change(
            actor, "erase_participants", "interaction", interaction_id, {"participants": gone}
        )


def _redact(session: Session, addresses: Collection[str]) -> None:
    """Replace ``addresses`` in the free text of other rows, whatever their case.

    Matched in Python: those tables are small, and SQL's ``replace`` knows no
    case nor where an address ends (``ann@x`` is not in ``joann@x``).
    """
    if not addresses:
        return
    alternatives = "|".join(re.escape(a) for a in sorted(addresses, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w.%+-])(?:{alternatives})(?![\w-]|\.\w)", re.IGNORECASE)
    for model, key, column in (
        (SyncState, "connector", "last_error"),
        (Quarantine, "id", "reason"),
    ):
        table = table_of(model)
        found = session.execute(
            select(table.c[key], table.c[column]).where(table.c[column].contains("@"))
        ).all()
        for identity, text in found:
            redacted = pattern.sub(REDACTED, text)
            if redacted != text:
                session.execute(
                    update(table).where(table.c[key] == identity).values({column: redacted})
                )


def _targeted(target: Target) -> Iterator[ColumnElement[bool]]:
    """The target's participant rows, one bounded ``IN`` list at a time."""
    p = table_of(InteractionParticipant)
    for chunk in chunks(sorted(target.addresses)):
        yield p.c.email.in_(chunk)
    for ids in chunks(sorted(target.contact_ids)):
        yield p.c.contact_id.in_(ids)


def _contact_counts(session: Session, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {}
    for chunk in chunks(ids):
        emails = _count_by(session, ContactEmail.contact_id, chunk)
        observations = _count_by(session, Observation.contact_id, chunk)
        conflicts = _count_by(session, Conflict.contact_id, chunk)
        found = session.scalars(select(Contact.id).where(Contact.id.in_(chunk))).all()
        counts.update(
            {
                i: {
                    "emails": emails.get(i, 0),
                    "observations": observations.get(i, 0),
                    "conflicts": conflicts.get(i, 0),
                }
                for i in found
            }
        )
    return counts


def _count_by(
    session: Session, column: InstrumentedAttribute[int], ids: Sequence[int]
) -> dict[int, int]:
    return {
        key: int(n)
        for key, n in session.execute(
            select(column, func.count()).where(column.in_(ids)).group_by(column)
        )
    }


def _with_absorbed(session: Session, contact_ids: frozenset[int]) -> frozenset[int]:
    """``contact_ids`` and every contact merged into one of them, directly or not."""
    into = merged_into(session, "contact")
    found = set(contact_ids)
    for absorbed in into:
        chain: list[int] = []
        current: int | None = absorbed
        while current is not None and current not in chain:
            chain.append(current)
            if current in found:
                found.update(chain)
                break
            current = into.get(current)
    return frozenset(found)


def _emptied_companies(session: Session, target: Target) -> tuple[int, ...]:
    """The target's companies that no contact outside the target belongs to."""
    ids = sorted(target.company_ids)
    kept: set[int | None] = set()
    for chunk in chunks(ids):
        kept.update(
            company_id
            for company_id, contact_id in session.execute(
                select(Contact.company_id, Contact.id).where(Contact.company_id.in_(chunk))
            )
            if contact_id not in target.contact_ids
        )
    return tuple(i for i in ids if i not in kept)


def _about(
    contact_ids: Iterable[int], interaction_ids: Iterable[int], company_ids: Iterable[int]
) -> Iterator[ColumnElement[bool]]:
    """The audit rows of the erased entities, one bounded ``IN`` list at a time."""
    for entity, ids in (
        ("contact", contact_ids),
        ("interaction", interaction_ids),
        ("company", company_ids),
    ):
        for chunk in chunks(sorted(ids)):
            yield and_(AuditLog.entity == entity, AuditLog.entity_id.in_(chunk))


def _count_audit(
    session: Session,
    contact_ids: Iterable[int],
    interaction_ids: Iterable[int],
    company_ids: Iterable[int],
) -> int:
    return sum(
        int(session.scalar(select(func.count()).where(clause)) or 0)
        for clause in _about(contact_ids, interaction_ids, company_ids)
    )


def _delete_audit(
    session: Session,
    contact_ids: Iterable[int],
    interaction_ids: Iterable[int],
    company_ids: Iterable[int],
) -> None:
    for clause in _about(contact_ids, interaction_ids, company_ids):
        session.execute(delete(table_of(AuditLog)).where(clause))
