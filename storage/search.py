"""Finding contacts and companies by part of a name, an address, a company or a domain.

Each database answers from its own substring index (migration 0006): the
FTS5 trigram tables on SQLite, ``pg_trgm`` GIN indexes on PostgreSQL. Both
need three characters to use the index, so a shorter query matches the start
of an address or a domain instead, which their unique B-tree indexes serve.
A search never scans the contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    any_,
    case,
    cast,
    false,
    func,
    literal_column,
    select,
    text,
    union,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.contact_lookup import escape_like, first_domain, first_email
from storage.models import Company, CompanyDomain, Contact, ContactEmail

MAX_QUERY = 200
"""Characters of a query kept: enough for any address, bounded for the index."""
TRIGRAM = 3


@dataclass(frozen=True)
class ContactHit:
    id: int
    name: str | None
    email: str | None
    company: str | None
    last_contacted_at: datetime | None


@dataclass(frozen=True)
class CompanyHit:
    id: int
    name: str
    domain: str | None


@dataclass(frozen=True)
class SearchResult:
    query: str
    contacts: tuple[ContactHit, ...] = ()
    companies: tuple[CompanyHit, ...] = ()


def search(session: Session, query: str, *, limit: int = 20) -> SearchResult:
    """Contacts and companies matching ``query``; the people most recently in touch first."""
    needle = " ".join(query.split())[:MAX_QUERY].lower()
    if not needle:
        return SearchResult(query="")
    postgres = session.get_bind().dialect.name == "postgresql"
    if len(needle) < TRIGRAM:
        names = select(Contact.id).where(false())
        companies = select(Company.id).where(false())
        emails = _prefix(ContactEmail.email, ContactEmail.contact_id, needle)
        domains = _prefix(CompanyDomain.domain, CompanyDomain.company_id, needle)
    else:
        names = _substring(Contact.display_name, Contact.id, needle, postgres)
        emails = _substring(ContactEmail.email, ContactEmail.contact_id, needle, postgres)
        companies = _substring(Company.name, Company.id, needle, postgres)
        domains = _substring(CompanyDomain.domain, CompanyDomain.company_id, needle, postgres)
    # Unions, not ORs of IN: each branch is an index probe and the database joins the
    # few ids found, where an OR would test every contact against every branch.
    company_ids = union(companies, domains)
    contact_ids = union(
        names, emails, select(Contact.id).where(_among(Contact.company_id, company_ids, postgres))
    )
    return SearchResult(
        query=needle,
        contacts=tuple(
            _contacts(session, _among(Contact.id, contact_ids, postgres), needle, limit)
        ),
        companies=tuple(_companies(session, company_ids, needle, limit)),
    )


def _among(
    column: InstrumentedAttribute[int] | InstrumentedAttribute[int | None],
    ids: CompoundSelect[Any],
    postgres: bool,
) -> ColumnElement[bool]:
    """``column IN ids``. PostgreSQL gets ``= ANY`` of the ids gathered into one array first:
    it cannot foresee how few rows a trigram match finds, and planned ``IN`` as a hash join
    over a scan of every contact (33 ms for "software" on 100,000 contacts; 21 ms so)."""
    if not postgres:
        return column.in_(ids)
    found = ids.subquery()
    gathered = select(func.array_agg(found.c[0])).scalar_subquery()
    return column == any_(cast(gathered, ARRAY(Integer)))


def _substring(
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
    key: InstrumentedAttribute[int],
    needle: str,
    postgres: bool,
) -> Select[Any]:
    """``key`` of the rows whose ``column`` contains ``needle``."""
    table = column.class_.__tablename__
    if not postgres:
        # A phrase of three characters or more matches as a substring, case folded the
        # Unicode way (LIKE would fold ASCII only); the quotes make every character literal.
        phrase = '"' + needle.replace('"', '""') + '"'
        found: Select[Any] = (
            select(literal_column("rowid"))
            .select_from(text(f"{table}_fts"))
            .where(text(f"{table}_fts MATCH :phrase").bindparams(phrase=phrase))
        )
        return select(key).where(column.class_.id.in_(found))
    pattern = f"%{escape_like(needle)}%"
    return select(key).where(func.lower(column).like(pattern, escape="\\"))


def _prefix(
    column: InstrumentedAttribute[str], key: InstrumentedAttribute[int], needle: str
) -> Select[Any]:
    """``key`` of the rows whose ``column`` (stored lower-case) starts with ``needle``: a
    range on the column's own index."""
    return select(key).where(column >= needle, column < needle + "\uffff")


def _contacts(
    session: Session, found: ColumnElement[bool], needle: str, limit: int
) -> list[ContactHit]:
    """The first ``limit`` contacts ranked, then their company and address: a broad term
    ("works": 9,627 people) joined every match to its company before keeping 20."""
    starts = case(
        (func.lower(Contact.display_name).like(f"{escape_like(needle)}%", escape="\\"), 0),
        else_=1,
    ).label("starts")
    ranked = (
        select(Contact.id, Contact.display_name, Contact.company_id, Contact.last_contacted_at)
        .add_columns(starts)
        .where(found)
        .order_by(starts, Contact.last_contacted_at.desc().nulls_last(), Contact.id)
        .limit(limit)
        .subquery()
    )
    rows = session.execute(
        select(
            ranked.c.id,
            ranked.c.display_name,
            first_email(ranked.c.id),
            Company.name,
            ranked.c.last_contacted_at,
        )
        .outerjoin(Company, Company.id == ranked.c.company_id)
        .order_by(ranked.c.starts, ranked.c.last_contacted_at.desc().nulls_last(), ranked.c.id)
    )
    return [ContactHit(*row) for row in rows]


def _companies(
    session: Session, ids: CompoundSelect[Any], needle: str, limit: int
) -> list[CompanyHit]:
    starts = case(
        (func.lower(Company.name).like(f"{escape_like(needle)}%", escape="\\"), 0), else_=1
    )
    rows = session.execute(
        select(Company.id, Company.name, first_domain(Company.id))
        .where(Company.id.in_(ids))
        .order_by(starts, Company.name, Company.id)
        .limit(limit)
    )
    return [CompanyHit(*row) for row in rows]


def rebuild_index(session: Session) -> None:
    """Rewrite SQLite's search index from its tables, leaving no trace of deleted rows in it
    (an erasure needs that: FTS5 keeps a deleted row's terms until its segments merge)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    for table in ("contacts", "contact_emails", "companies", "company_domains"):
        session.execute(text(f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')"))
