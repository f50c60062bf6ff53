"""A contact's and a company's whole record as one reader may see it.

The web pages, the JSON API, the add-ons and ``crm-sync contacts show`` all
read a person through :func:`contact_profile` and a company through
:func:`company_profile`, so each shows the same fields, provenance,
conflicts and history, filtered by the same :class:`~storage.visibility.Viewer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from storage import edits, fields, history, merge
from storage.contact_lookup import first_email
from storage.edits import ConflictView, Snapshot, Suggestion
from storage.models import Company, CompanyFigures, Contact, ContactFigures
from storage.relationships import Standing, standing
from storage.visibility import Viewer


@dataclass(frozen=True)
class FieldLine:
    """A field's value and who set it, when: ``source`` is a person (``user:NAME``) or a
    connector."""

    name: str
    value: str | None
    source: str | None
    observed_at: datetime | None
    manual: bool


@dataclass(frozen=True)
class ContactProfile:
    id: int
    name: str | None
    emails: tuple[str, ...]
    company_id: int | None
    company: str | None
    company_domain: str | None
    version: int
    fields: tuple[FieldLine, ...]
    extra: dict[str, object]
    suggestions: tuple[Suggestion, ...]
    conflicts: tuple[ConflictView, ...]
    last_contacted_at: datetime | None
    last: history.Entry | None
    teammates: tuple[history.Teammate, ...]
    timeline: history.Timeline
    relationship: Standing

    def snapshot(self) -> Snapshot:
        """What this reader saw, as an edit's base: the edit then conflicts with any
        change made since, instead of overwriting it."""
        return Snapshot(self.id, self.version, {f.name: f.value for f in self.fields})


@dataclass(frozen=True)
class CompanyPerson:
    id: int
    name: str | None
    email: str | None
    title: str | None
    last_contacted_at: datetime | None


@dataclass(frozen=True)
class CompanyProfile:
    id: int
    name: str
    domains: tuple[str, ...]
    people: tuple[CompanyPerson, ...]
    first_at: datetime | None
    last_at: datetime | None
    last: history.Entry | None
    teammates: tuple[history.Teammate, ...]
    timeline: history.Timeline
    relationship: Standing


def contact_profile(
    session: Session, viewer: Viewer, contact: Contact, *, page: int = 1
) -> ContactProfile:
    among = history.contact_interactions(contact.id)
    provenance = edits.provenance(session, contact.id)
    timeline = history.timeline(session, viewer, among, page=page)
    return ContactProfile(
        id=contact.id,
        name=contact.display_name,
        emails=tuple(e.email for e in contact.emails),
        company_id=contact.company_id,
        company=contact.company.name if contact.company else None,
        company_domain=contact.company.domain if contact.company else None,
        version=contact.version,
        fields=tuple(_line(name, fields.read(contact, name), provenance) for name in fields.FIELDS),
        extra=dict(contact.extra or {}),
        suggestions=tuple(edits.suggestions_in(provenance)),
        conflicts=tuple(edits.list_conflicts(session, contact_id=contact.id)),
        last_contacted_at=contact.last_contacted_at,
        last=_last(session, viewer, among, timeline),
        teammates=tuple(history.who_knows(session, viewer, among)),
        timeline=timeline,
        relationship=standing(session, ContactFigures, contact.id),
    )


def company_profile(
    session: Session, viewer: Viewer, company_id: int, *, page: int = 1, people: int = 200
) -> CompanyProfile | None:
    company = session.scalar(
        select(Company).where(Company.id == company_id).options(selectinload(Company.domains))
    )
    if company is None:
        return None
    among = history.company_interactions(company.id)
    first, last = history.first_and_last(session, viewer, among)
    timeline = history.timeline(session, viewer, among, page=page)
    rows = session.execute(
        select(
            Contact.id,
            Contact.display_name,
            first_email(Contact.id),
            Contact.title,
            Contact.last_contacted_at,
        )
        .where(Contact.company_id == company.id)
        .order_by(Contact.last_contacted_at.desc().nulls_last(), Contact.id)
        .limit(people)
    )
    return CompanyProfile(
        id=company.id,
        name=company.name,
        domains=tuple(d.domain for d in company.domains),
        people=tuple(CompanyPerson(*row) for row in rows),
        first_at=first,
        last_at=last,
        last=_last(session, viewer, among, timeline),
        teammates=tuple(history.who_knows(session, viewer, among)),
        timeline=timeline,
        relationship=standing(session, CompanyFigures, company.id),
    )


def _last(
    session: Session, viewer: Viewer, among: Any, timeline: history.Timeline
) -> history.Entry | None:
    """The first page of a timeline starts with the last conversation: no query for it."""
    if timeline.page == 1:
        return timeline.entries[0] if timeline.entries else None
    return history.last_conversation(session, viewer, among)


def _line(name: str, value: str | None, provenance: dict[str, merge.FieldValue]) -> FieldLine:
    held = provenance.get(name)
    if held is None:
        return FieldLine(name, value, None, None, manual=False)
    return FieldLine(name, value, held.source, held.observed_at, held.manual)
