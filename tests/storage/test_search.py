"""Search by part of a name, an address, a company or a domain, from the database's index."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from storage.models import Company, CompanyDomain, Contact, ContactEmail
from storage.search import search


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
                text("EXPLAIN SELECT id FROM contacts WHERE lower(display_name) LIKE '%whit%'")
            ).all()
            assert any("ix_contacts_display_name_trgm" in str(row) for row in plan), plan
