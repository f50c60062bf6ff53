"""The Alembic migrations make exactly the contract tables, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from storage.db import (
    current_revision,
    head_revision,
    make_engine,
    session_factory,
    table_names,
    upgrade,
)
from storage.models import (
    CONTRACT_TABLES,
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Interaction,
)

DESIGN_TABLES = {
    "companies",
    "company_domains",
    "contacts",
    "contact_emails",
    "interactions",
    "interaction_participants",
    "interaction_sources",
    "sync_state",
    "observations",
    "conflicts",
    "audit_log",
    "quarantine",
    "users",
    "user_mailboxes",
    "api_tokens",
    "contact_figures",
    "company_figures",
    "tags",
    "contact_tags",
    "company_tags",
    "segments",
    "connector_days",
}
SEARCH_INDEX = re.compile(r"_fts(_[a-z]+)?$|^contact_search$")
"""The search indexes kept by triggers, SQLite's full-text tables (migration 0006) and
PostgreSQL's ``contact_search`` (0009): indexes, not contract tables."""


def data_tables(engine: Engine) -> set[str]:
    return {t for t in table_names(engine) if not SEARCH_INDEX.search(t)} - {"alembic_version"}


def test_models_declare_the_design_tables() -> None:
    assert set(CONTRACT_TABLES) == DESIGN_TABLES


def test_migration_creates_exactly_the_contract_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        assert data_tables(engine) == DESIGN_TABLES
        assert current_revision(engine) == head_revision()
        upgrade(engine)  # a second upgrade is a no-op
        assert data_tables(engine) == DESIGN_TABLES
    finally:
        engine.dispose()


def test_migrated_columns_match_the_models(engine: Engine) -> None:
    inspector = inspect(engine)
    from storage.models import Base

    for name, table in Base.metadata.tables.items():
        assert {c["name"] for c in inspector.get_columns(name)} == set(table.columns.keys()), name


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("company_domains", {"domain"}),
        ("contact_emails", {"email"}),
        ("interactions", {"dedupe_key"}),
        ("interaction_sources", {"connector", "source_id"}),
    ],
    ids=["company-domain", "contact-email", "dedupe-key", "source"],
)
def test_uniqueness_contracts(engine: Engine, table: str, columns: set[str]) -> None:
    inspector = inspect(engine)
    unique_sets = [set(u["column_names"]) for u in inspector.get_unique_constraints(table)]
    unique_sets += [set(i["column_names"]) for i in inspector.get_indexes(table) if i["unique"]]
    assert columns in unique_sets


def test_one_address_belongs_to_one_contact(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        first = Contact(display_name="Ann")
        second = Contact(display_name="Other Ann")
        session.add_all([first, second])
        session.flush()
        session.add(ContactEmail(contact_id=first.id, email="ann@acme.example"))
    with pytest.raises(IntegrityError), sessions() as session, session.begin():
        session.add(ContactEmail(contact_id=second.id, email="ann@acme.example"))


def test_deleting_a_contact_cascades_to_its_emails(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        company = Company(name="Acme", domains=[CompanyDomain(domain="acme.example")])
        contact = Contact(display_name="Ann", company=company)
        contact.emails.append(ContactEmail(email="ann@acme.example"))
        session.add(contact)
        session.add(
            Interaction(
                kind="email",
                dedupe_key="m1@acme.example",
                occurred_at=datetime(2026, 1, 2, tzinfo=timezone.utc),
                direction="inbound",
            )
        )
    with sessions() as session, session.begin():
        session.execute(text("DELETE FROM contacts"))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM contact_emails")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM companies")).scalar() == 1
        assert connection.execute(text("SELECT count(*) FROM company_domains")).scalar() == 1


def test_sqlite_runs_with_wal_and_foreign_keys(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_contact_version_counts_updates(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        contact = Contact(display_name="Ann")
        session.add(contact)
    assert contact.version == 1
    with sessions() as session, session.begin():
        loaded = session.get(Contact, contact.id)
        assert loaded is not None
        loaded.title = "CTO"
    assert loaded.version == 2


def test_company_domains_migration_keeps_every_domain(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0001")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO companies (id, name, domain, created_at, updated_at) VALUES "
                    "(1, 'Acme', 'acme.example', '2026-01-01', '2026-01-01'), "
                    "(2, 'Globex', 'globex.example', '2026-01-01', '2026-01-01')"
                )
            )
        upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT company_id, domain FROM company_domains ORDER BY company_id")
            ).all()
        assert [tuple(r) for r in rows] == [(1, "acme.example"), (2, "globex.example")]
        assert "domain" not in {c["name"] for c in inspect(engine).get_columns("companies")}
    finally:
        engine.dispose()
