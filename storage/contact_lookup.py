"""Finding a contact the way a person names one: by id, or by a name or part of one.

An address is the exact key (``storage.contacts.find_contact``); a listing
at 80 columns shows an id and a name before anything else, so those must
find a contact too. A name may match several people: the caller is given
every candidate, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, bindparam, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, joinedload, selectinload

from storage.models import Company, CompanyDomain, Contact, ContactEmail

MAX_CANDIDATES = 20


@dataclass(frozen=True)
class Candidate:
    """One contact a name may mean, with what tells it apart from the others."""

    id: int
    name: str
    email: str | None
    company: str | None


def contact_by_id(session: Session, contact_id: int) -> Contact | None:
    """The contact with ``contact_id``, its addresses and company loaded. The addresses
    come in the contact's own statement (one round trip less for every page); the
    company's domains in their own, so that rows never multiply addresses by domains."""
    return session.execute(_CONTACT, {"id": contact_id}).unique().scalar_one_or_none()


_CONTACT = (
    select(Contact)
    .where(Contact.id == bindparam("id"))
    .options(joinedload(Contact.emails), joinedload(Contact.company).selectinload(Company.domains))
)


def contacts_named(session: Session, name: str) -> list[Candidate]:
    """Contacts whose name is ``name``, ignoring case; else those whose name contains it.

    An exact match wins over partial ones, so "Ann Lee" is found although
    "Ann Leeds" contains it. At most :data:`MAX_CANDIDATES` + 1 rows, so a
    caller can tell "that many" from "more".
    """
    wanted = " ".join(name.split()).lower()
    if not wanted:
        return []
    lowered = func.lower(Contact.display_name)
    exact = _rows(session, lowered == wanted)
    if exact:
        return exact
    return _rows(session, lowered.like(f"%{escape_like(wanted)}%", escape="\\"))


def escape_like(text: str) -> str:
    """``text`` as a literal inside a ``LIKE ... ESCAPE '\\'`` pattern: its ``%`` and ``_``
    are searched for, not obeyed."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def first_email(contact_id: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ScalarSelect[Any]:
    """The contact's first address (the one it was created with), as a column of a query
    over rows that name the contact by ``contact_id``."""
    return (
        select(ContactEmail.email)
        .where(ContactEmail.contact_id == contact_id)
        .order_by(ContactEmail.id)
        .limit(1)
        .correlate_except(ContactEmail)
        .scalar_subquery()
    )


def first_domain(company_id: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ScalarSelect[Any]:
    """The company's first domain (as ``Company.domain``), as a column of a query over rows
    that name the company by ``company_id``."""
    return (
        select(CompanyDomain.domain)
        .where(CompanyDomain.company_id == company_id)
        .order_by(CompanyDomain.id)
        .limit(1)
        .correlate_except(CompanyDomain)
        .scalar_subquery()
    )


def _rows(session: Session, condition: ColumnElement[bool]) -> list[Candidate]:
    contacts = session.scalars(
        select(Contact)
        .where(condition)
        .options(selectinload(Contact.emails), selectinload(Contact.company))
        .order_by(Contact.last_contacted_at.desc().nulls_last(), Contact.id)
        .limit(MAX_CANDIDATES + 1)
    ).all()
    return [
        Candidate(
            id=contact.id,
            name=contact.display_name or "",
            email=contact.emails[0].email if contact.emails else None,
            company=contact.company.name if contact.company else None,
        )
        for contact in contacts
    ]
