"""Reading contacts and their history for the CLI and reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from storage.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    InteractionParticipant,
)


@dataclass(frozen=True)
class ContactRow:
    id: int
    name: str
    emails: tuple[str, ...]
    company: str | None
    title: str | None
    interactions: int
    last_contacted_at: datetime | None
    last_subject: str | None = None


def list_contacts(
    session: Session, *, company: str | None = None, limit: int | None = None
) -> list[ContactRow]:
    """Contacts, most recently contacted first, with their interaction counts."""
    counts = (
        select(
            InteractionParticipant.contact_id,
            func.count(func.distinct(InteractionParticipant.interaction_id)).label("n"),
        )
        .group_by(InteractionParticipant.contact_id)
        .subquery()
    )
    query = (
        select(Contact, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.contact_id == Contact.id)
        .options(
            selectinload(Contact.emails),
            selectinload(Contact.company).selectinload(Company.domains),
            selectinload(Contact.last_interaction),
        )
        .order_by(Contact.last_contacted_at.desc().nulls_last(), Contact.id)
    )
    if company:
        query = query.join(CompanyDomain, CompanyDomain.company_id == Contact.company_id).where(
            CompanyDomain.domain == company.strip().lower()
        )
    if limit:
        query = query.limit(limit)
    return [
        ContactRow(
            id=contact.id,
            name=contact.display_name or "",
            emails=tuple(e.email for e in contact.emails),
            company=contact.company.name if contact.company else None,
            title=contact.title,
            interactions=count,
            last_contacted_at=contact.last_contacted_at,
            last_subject=contact.last_interaction.subject if contact.last_interaction else None,
        )
        for contact, count in session.execute(query).all()
    ]


@dataclass(frozen=True)
class CompanyRow:
    id: int
    name: str
    domains: tuple[str, ...]
    contacts: int

    @property
    def domain(self) -> str:
        return self.domains[0] if self.domains else ""


def list_companies(session: Session) -> list[CompanyRow]:
    """Companies with their domains and how many contacts each, largest first."""
    counts = (
        select(Contact.company_id, func.count().label("n")).group_by(Contact.company_id).subquery()
    )
    rows = session.execute(
        select(Company, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.company_id == Company.id)
        .options(selectinload(Company.domains))
        .order_by(func.coalesce(counts.c.n, 0).desc(), Company.name, Company.id)
    )
    return [
        CompanyRow(company.id, company.name, tuple(d.domain for d in company.domains), count)
        for company, count in rows
    ]


def find_contact(session: Session, email: str) -> Contact | None:
    """The contact holding ``email``, given as stored (``agent.mail.addresses.normalize_email``)."""
    return session.scalar(
        select(Contact)
        .join(ContactEmail, ContactEmail.contact_id == Contact.id)
        .where(ContactEmail.email == email.strip().lower())
        .options(
            selectinload(Contact.emails),
            selectinload(Contact.company).selectinload(Company.domains),
        )
    )
