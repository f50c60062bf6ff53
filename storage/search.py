"""Finding contacts and companies by part of a name, an address, a company or a domain.

Each database answers from its own substring index: the FTS5 trigram tables
on SQLite (migration 0006); on PostgreSQL, ``pg_trgm`` GIN indexes on
companies and domains (0006) and on ``contact_search``, one row per contact
with its name, addresses, company and domains and when the team was last in
touch, so that people are found and ranked from one index and one row each
(0009). Both need three characters to use the index, so a shorter query
matches the start of an address or a domain instead, which their unique
B-tree indexes serve. A search never scans the contacts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CompoundSelect,
    DateTime,
    Integer,
    Select,
    Subquery,
    Text,
    any_,
    bindparam,
    case,
    cast,
    column,
    false,
    func,
    literal_column,
    select,
    table,
    text,
    union,
    union_all,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.contact_lookup import escape_like, first_domain, first_email
from storage.models import Company, CompanyDomain, Contact, ContactEmail

MAX_QUERY = 200
"""Characters of a query kept: enough for any address, bounded for the index."""
TRIGRAM = 3
CONTACT_SEARCH = table(
    "contact_search",
    column("contact_id", Integer),
    column("name", Text),
    column("words", Text),
    column("last_contacted_at", DateTime(timezone=True)),
)
"""PostgreSQL's searchable row per contact (migration 0009), kept by triggers: read only."""


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
    short = len(needle) < TRIGRAM
    contacts, companies = _statements(postgres, short)
    literal = escape_like(needle)
    values = {
        "contains": f"%{literal}%",
        "starts": f"{literal}%",
        "phrase": '"' + needle.replace('"', '""') + '"',
        "low": needle,
        "high": needle + "\uffff",
        "limit": limit,
    }
    return SearchResult(
        query=needle,
        contacts=tuple(ContactHit(*row) for row in session.execute(contacts, values)),
        companies=tuple(CompanyHit(*row) for row in session.execute(companies, values)),
    )


@cache
def _statements(postgres: bool, short: bool) -> tuple[Select[Any], Select[Any]]:
    """The two statements of a search, built once per database and kind of query, the
    needle left as parameters: building four unions anew cost each search more Python
    (about 1.5 ms) than PostgreSQL spent answering a typical one."""
    if short:
        companies = select(Company.id).where(false())
        domains = _prefix(CompanyDomain.domain, CompanyDomain.company_id)
    else:
        companies = _substring(Company.name, Company.id, postgres)
        domains = _substring(CompanyDomain.domain, CompanyDomain.company_id, postgres)
    # Unions, not ORs of IN: each branch is an index probe and the database joins the
    # few ids found, where an OR would test every contact against every branch.
    company_ids = union(companies, domains)
    if postgres and not short:
        return _contact_search(), _companies(company_ids)
    names = (
        select(Contact.id).where(false())
        if short
        else _substring(Contact.display_name, Contact.id, postgres)
    )
    emails = (
        _prefix(ContactEmail.email, ContactEmail.contact_id)
        if short
        else _substring(ContactEmail.email, ContactEmail.contact_id, postgres)
    )
    contact_ids = union(
        names, emails, select(Contact.id).where(_among(Contact.company_id, company_ids, postgres))
    )
    return _contacts(_among(Contact.id, contact_ids, postgres)), _companies(company_ids)


def _among(
    column: InstrumentedAttribute[int] | InstrumentedAttribute[int | None],
    ids: CompoundSelect[Any],
    postgres: bool,
) -> ColumnElement[bool]:
    """``column IN ids``. PostgreSQL (which comes here for queries of one or two characters)
    gets ``= ANY`` of the ids gathered into one array first: it cannot foresee how few rows
    an index probe finds, and planned ``IN`` as a hash join over a scan of every contact
    (33 ms for "software" on 100,000 contacts, when it served every search; 21 ms so)."""
    if not postgres:
        return column.in_(ids)
    found = ids.subquery()
    gathered = select(func.array_agg(found.c[0])).scalar_subquery()
    return column == any_(cast(gathered, ARRAY(Integer)))


def _substring(
    column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None],
    key: InstrumentedAttribute[int],
    postgres: bool,
) -> Select[Any]:
    """``key`` of the rows whose ``column`` contains the needle."""
    table = column.class_.__tablename__
    if not postgres:
        # A phrase of three characters or more matches as a substring, case folded the
        # Unicode way (LIKE would fold ASCII only); the quotes make every character literal.
        found: Select[Any] = (
            select(literal_column("rowid"))
            .select_from(text(f"{table}_fts"))
            .where(text(f"{table}_fts MATCH :phrase"))
        )
        return select(key).where(column.class_.id.in_(found))
    return select(key).where(func.lower(column).like(bindparam("contains"), escape="\\"))


def _prefix(column: InstrumentedAttribute[str], key: InstrumentedAttribute[int]) -> Select[Any]:
    """``key`` of the rows whose ``column`` (stored lower-case) starts with the needle: a
    range on the column's own index."""
    return select(key).where(column >= bindparam("low"), column < bindparam("high"))


def _contacts(found: ColumnElement[bool]) -> Select[Any]:
    """The first contacts ranked, then their company and address: a broad term ("works":
    9,627 people) joined every match to its company before keeping 20."""
    starts = case(
        (func.lower(Contact.display_name).like(bindparam("starts"), escape="\\"), 0),
        else_=1,
    ).label("starts")
    ranked = (
        select(Contact.id, starts, Contact.last_contacted_at)
        .where(found)
        .order_by(starts, *_latest_first(Contact.last_contacted_at, Contact.id))
        .limit(bindparam("limit"))
        .subquery()
    )
    return _hits(ranked)


def _contact_search() -> Select[Any]:
    """PostgreSQL, three characters or more: the first contacts ranked, from the rows of
    ``contact_search``. The best of those whose name starts with the needle and the best
    of those whose words contain it hold the first ``limit`` of the whole ranking: every
    name that starts with the needle contains it too."""
    rows = CONTACT_SEARCH.c

    def best(starts: int, condition: ColumnElement[bool]) -> Select[Any]:
        return (
            select(rows.contact_id.label("id"), literal_column(str(starts)).label("starts"))
            .add_columns(rows.last_contacted_at)
            .where(condition)
            .order_by(*_latest_first(rows.last_contacted_at, rows.contact_id))
            .limit(bindparam("limit"))
        )

    both = union_all(
        best(0, rows.name.like(bindparam("starts"), escape="\\")),
        best(1, rows.words.like(bindparam("contains"), escape="\\")),
    ).subquery()
    starts = func.min(both.c.starts)
    ranked = (
        select(both.c.id, starts.label("starts"), both.c.last_contacted_at)
        .group_by(both.c.id, both.c.last_contacted_at)
        .order_by(starts, *_latest_first(both.c.last_contacted_at, both.c.id))
        .limit(bindparam("limit"))
        .subquery()
    )
    return _hits(ranked)


def _hits(ranked: Subquery) -> Select[Any]:
    """The contacts ``ranked`` (``id``, ``starts``, ``last_contacted_at``, at most ``limit``
    of them) with their name, first address and company, in rank order."""
    return (
        select(
            ranked.c.id,
            Contact.display_name,
            first_email(ranked.c.id),
            Company.name,
            ranked.c.last_contacted_at,
        )
        .join(Contact, Contact.id == ranked.c.id)
        .outerjoin(Company, Company.id == Contact.company_id)
        .order_by(ranked.c.starts, *_latest_first(ranked.c.last_contacted_at, ranked.c.id))
    )


def _latest_first(
    last: ColumnElement[Any] | InstrumentedAttribute[Any],
    key: ColumnElement[Any] | InstrumentedAttribute[Any],
) -> tuple[Any, ...]:
    """The people most recently in touch first, the never contacted last, ties by id."""
    return last.desc().nulls_last(), key


def _companies(ids: CompoundSelect[Any]) -> Select[Any]:
    starts = case((func.lower(Company.name).like(bindparam("starts"), escape="\\"), 0), else_=1)
    return (
        select(Company.id, Company.name, first_domain(Company.id))
        .where(Company.id.in_(ids))
        .order_by(starts, Company.name, Company.id)
        .limit(bindparam("limit"))
    )


def rebuild_index(session: Session) -> None:
    """Rewrite SQLite's search index from its tables, leaving no trace of deleted rows in it
    (an erasure needs that: FTS5 keeps a deleted row's terms until its segments merge)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    for name in ("contacts", "contact_emails", "companies", "company_domains"):
        session.execute(text(f"INSERT INTO {name}_fts({name}_fts) VALUES ('rebuild')"))
