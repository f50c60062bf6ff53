"""Search by part of a name, an address, a company or a domain, from the database's index."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage.db import make_engine, upgrade
from storage.models import Company, CompanyDomain, Contact, ContactEmail
from storage.search import ContactHit, search


def _seed(session: Session) -> None:
    acme = Company(name="Acme Widgets")
    session.add(acme)
    session.flush()
    session.add(CompanyDomain(company_id=acme.id, domain="acme.example"))
    for name, email, company in (
        ("Dana Whitfield", "dana@acme.example", acme.id),
        ("Raj Patel", "raj@other.example", None),
        ("Zoë Ångström", "zoe@north.example", None),
        ("100% Sure_Thing", "pct@odd.example", None),
    ):
        contact = Contact(display_name=name, company_id=company)
        session.add(contact)
        session.flush()
        session.add(ContactEmail(contact_id=contact.id, email=email))


@pytest.mark.parametrize(
    ("query", "people", "companies"),
    [
        ("whitf", ["Dana Whitfield"], []),
        ("WHITF", ["Dana Whitfield"], []),
        ("acme", ["Dana Whitfield"], ["Acme Widgets"]),  # by company, then its people
        ("widgets", ["Dana Whitfield"], ["Acme Widgets"]),
        ("other.exa", ["Raj Patel"], []),
        ("ra", ["Raj Patel"], []),  # two letters: the start of an address
        ("ångs", ["Zoë Ångström"], []),
        ("100%", ["100% Sure_Thing"], []),  # LIKE's wildcards are searched for, not obeyed
        ("e_t", ["100% Sure_Thing"], []),
        ("nobody", [], []),
        ("   ", [], []),
    ],
)
def test_search_finds_by_any_part(
    engine: Engine, query: str, people: list[str], companies: list[str]
) -> None:
    with Session(engine) as session, session.begin():
        _seed(session)
    with Session(engine) as session:
        found = search(session, query)
    assert [h.name for h in found.contacts] == people
    assert [h.name for h in found.companies] == companies


def test_search_follows_renames_and_deletions(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        _seed(session)
    with Session(engine) as session, session.begin():
        dana = session.query(Contact).filter_by(display_name="Dana Whitfield").one()
        dana.display_name = "Dana Okafor"
        session.delete(session.query(Contact).filter_by(display_name="Raj Patel").one())
    with Session(engine) as session:
        assert [h.name for h in search(session, "okafor").contacts] == ["Dana Okafor"]
        assert search(session, "whitfield").contacts == ()
        assert search(session, "patel").contacts == ()


def _found(engine: Engine, query: str) -> list[str | None]:
    with Session(engine) as session:
        return [hit.name for hit in search(session, query).contacts]


def test_search_follows_every_change_that_decides_a_match_or_a_rank(engine: Engine) -> None:
    """PostgreSQL answers from rows its triggers keep (migration 0009): each kind of write
    that changes what a person is found by, or where they rank, is followed at once."""
    with Session(engine) as session, session.begin():
        _seed(session)
    with Session(engine) as session, session.begin():
        acme = session.query(Company).filter_by(name="Acme Widgets").one()
        acme.name = "Globex Tools"
        session.add(CompanyDomain(company_id=acme.id, domain="globex.example"))
        raj = session.query(Contact).filter_by(display_name="Raj Patel").one()
        session.add(ContactEmail(contact_id=raj.id, email="rajesh@sales.example"))
    assert _found(engine, "globex tools") == ["Dana Whitfield"]
    assert _found(engine, "acme widgets") == []
    assert _found(engine, "globex.exa") == ["Dana Whitfield"]
    assert _found(engine, "acme.exa") == ["Dana Whitfield"]  # her own address, still hers
    assert _found(engine, "sales.exa") == ["Raj Patel"]

    with Session(engine) as session, session.begin():
        moved = session.query(ContactEmail).filter_by(email="rajesh@sales.example").one()
        moved.contact_id = session.query(Contact).filter_by(display_name="Dana Whitfield").one().id
        session.delete(session.query(CompanyDomain).filter_by(domain="globex.example").one())
    assert _found(engine, "sales.exa") == ["Dana Whitfield"]
    assert _found(engine, "globex.exa") == []

    with Session(engine) as session, session.begin():
        session.delete(session.query(Company).filter_by(name="Globex Tools").one())
    assert _found(engine, "globex") == []
    assert _found(engine, "whitf") == ["Dana Whitfield"]


def test_an_upgrade_makes_the_people_already_there_searchable(db_url: str) -> None:
    """Migration 0009 fills PostgreSQL's rows from the contacts a database already holds."""
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0008")
        with Session(engine) as session, session.begin():
            _seed(session)
        upgrade(engine)
        assert _found(engine, "whitf") == ["Dana Whitfield"]
        assert _found(engine, "acme widgets") == ["Dana Whitfield"]
        assert _found(engine, "other.exa") == ["Raj Patel"]
    finally:
        engine.dispose()


def test_search_ranks_names_that_start_with_it_then_the_latest_contact(engine: Engine) -> None:
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    with Session(engine) as session, session.begin():
        for name, days in (
            ("Sam Old", 30),
            ("Sam New", 1),
            ("Ann Samuels", 0),
            ("Sam Never", None),
        ):
            contact = Contact(display_name=name)
            session.add(contact)
            session.flush()
            session.add(ContactEmail(contact_id=contact.id, email=f"{name.split()[1]}@x.example"))
            if days is not None:
                contact.last_contacted_at = now - timedelta(days=days)
    assert _found(engine, "sam") == ["Sam New", "Sam Old", "Sam Never", "Ann Samuels"]
    with Session(engine) as session, session.begin():
        old = session.query(Contact).filter_by(display_name="Sam Old").one()
        old.last_contacted_at = now
    assert _found(engine, "sam") == ["Sam Old", "Sam New", "Sam Never", "Ann Samuels"]
    assert [hit.name for hit in _limited(engine, "sam", 1)] == ["Sam Old"]


def _limited(engine: Engine, query: str, limit: int) -> tuple[ContactHit, ...]:
    with Session(engine) as session:
        return search(session, query, limit=limit).contacts


def test_search_is_served_by_an_index_not_a_scan(engine: Engine) -> None:
    """The plan the database picks, asked directly: FTS5 on SQLite, a trigram GIN index on
    PostgreSQL (told not to scan, as it would on a table this small)."""
    with Session(engine) as session, session.begin():
        _seed(session)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            plan = connection.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT rowid FROM contacts_fts "
                    "WHERE contacts_fts MATCH '\"whit\"'"
                )
            ).all()
            assert any("VIRTUAL TABLE INDEX" in str(row) for row in plan), plan
        else:
            connection.execute(text("SET enable_seqscan = off"))
            plan = connection.execute(
                text("EXPLAIN SELECT contact_id FROM contact_search WHERE words LIKE '%whit%'")
            ).all()
            assert any("ix_contact_search_words" in str(row) for row in plan), plan
