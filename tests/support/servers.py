"""The servers tests talk to, and what a test does when one is missing.

A test that needs a server (PostgreSQL, Dovecot, Chromium) skips with a
reason that says how to start one -- except under ``CI=true``, where every
server must be there and a missing one fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text

from storage.db import make_engine

IN_CI = os.environ.get("CI", "").lower() == "true"

PG_HOST = os.environ.get("PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("PGPORT", "5432")
PG_USER = os.environ.get("PGUSER", "postgres")
PG_ADMIN_URL = f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
PG_HOW_TO = (
    "no PostgreSQL server answers on "
    f"{PG_HOST}:{PG_PORT} as user {PG_USER}; start one with "
    "`bash tests/setup/postgres.sh` (or set PGHOST/PGPORT/PGUSER)"
)


def need_server(reason: str) -> None:
    """Skip for lack of a server -- or fail, in CI, where every server must be there."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@contextmanager
def temporary_pg_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database named ``PREFIX_<random>``, dropped after; skips (or,
    in CI, fails) where no server answers."""
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        admin.dispose()
        need_server(PG_HOW_TO)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
