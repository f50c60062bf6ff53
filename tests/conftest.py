"""Shared fixtures: real databases, never mocks.

``sqlite_url`` is a fresh SQLite file per test (a file, not ``:memory:``, so
WAL and locking behave as in production). ``pg_url`` is a fresh PostgreSQL
database per test session on 127.0.0.1:5432; where no server answers the
tests skip with a reason, except under ``CI=true``, where they fail.

The fake Google server and Dovecot come from :mod:`tests.support.server_fixtures`
(``fake_google``, ``dovecot``, ``imap_user``, ``dovecot_servers``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from storage.db import make_engine, upgrade
from tests.support.servers import temporary_pg_database

pytest_plugins = ["tests.support.server_fixtures"]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crm.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A fresh database for this test session; dropped at the end."""
    with temporary_pg_database("crm_sync_test") as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """The session's database, emptied for each test by dropping every table."""
    engine = make_engine(pg_server)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    yield pg_server


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that takes this runs on both databases."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()
