"""Engines, sessions and schema upgrades for SQLite and PostgreSQL.

SQLite gets WAL (readers never block the writer), foreign keys (off by
default in SQLite) and a busy timeout on every connection, so it behaves
like the shared database as far as one machine can. Its file holds every
contact, so a new one is created readable by its owner only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from config.private_files import create_private_file

MIGRATIONS = Path(__file__).parent / "migrations"
T = TypeVar("T")
POOL: dict[str, Any] = {"pool_size": 10, "max_overflow": 5}
"""Connections a process keeps open, and how many more a busy moment may open: 15 at most,
as SQLAlchemy's default allows, but with 10 kept instead of 5. With 5, a web process
answering 8 requests at once opened and closed a PostgreSQL connection, a new server
process each, every few requests (325 in 8 s)."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; a missing SQLite file is created owner-only.

    Its folder is never created: a folder that is not there is far more often a
    mistyped path than a wish for a new tree, and SQLite then says it cannot
    open the file.
    """
    if make_url(url).get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            _create_private_file(path)
        pool = POOL if path is not None else {}
        engine = create_engine(url, connect_args={"timeout": 30}, **{**pool, **kwargs})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # The queries are short reads and writes by key; PostgreSQL's JIT compiler, which it
    # starts on a plan it thinks costly, spent 750 ms compiling a 150 ms search.
    connect_args = {"options": "-c jit=off", **kwargs.pop("connect_args", {})}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **{**POOL, **kwargs})


def sqlite_path(url: str) -> Path | None:
    """The file a SQLite URL names; ``None`` for other databases, memory and ``file:`` URIs."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _create_private_file(path: Path) -> None:
    """Create an empty database file with mode 0600 before SQLite opens it.

    SQLite would create it with the umask's mode (0644 by default), and it
    gives ``-wal`` and ``-shm`` the main file's mode, so they follow. An
    existing file keeps the mode its admin chose; ``status`` warns when loose.
    Where the file cannot be made, SQLite is left to report why.
    """
    if not path.parent.is_dir():
        return
    with contextlib.suppress(OSError):
        create_private_file(path)


_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A writing transaction takes the write lock up front (IMMEDIATE), so two
    # writers queue on the busy timeout instead of one failing later with
    # "database is locked"; readers begin DEFERRED and never wait.
    mode = "IMMEDIATE" if connection.get_execution_options().get("writes") else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


def is_retryable(exc: BaseException) -> bool:
    """A write that lost a race and may simply be done again in a new transaction.

    The ORM's failed ``version`` check (another writer changed the contact),
    and PostgreSQL's serialization failures and deadlocks.
    """
    if isinstance(exc, StaleDataError):
        return True
    return isinstance(exc, DBAPIError) and (
        getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES
    )


def retrying(
    attempts: int,
    work: Callable[[], T],
    *,
    on_retry: Callable[[BaseException, int], None] | None = None,
) -> tuple[T, int]:
    """``work()`` done again while it loses races (:func:`is_retryable`); its result and
    the number of attempts it took.

    ``work`` must run its own transaction, so each attempt starts from a fresh
    read; ``on_retry`` hears of each lost race and the attempt that lost it.
    Any other error propagates at once, and so does the race lost by the last
    of ``attempts``: the caller decides what giving up means.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return work(), attempt
        except Exception as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            if on_retry is not None:
                on_retry(exc, attempt)
    raise AssertionError("unreachable")


def is_data_error(exc: BaseException) -> bool:
    """A write refused for what it holds, which fails the same way however often it is tried.

    A value the database or a column type refuses (too long, out of range,
    a constraint). Not a race (:func:`is_retryable`) and not the database
    being unreachable, full or locked: those say nothing about the data.
    """
    if is_retryable(exc):
        return False
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, StatementError):
        # A bind parameter refused before it reached the database (models._PortableText).
        return not isinstance(exc, DBAPIError)
    return isinstance(exc, ValueError | TypeError | OverflowError)


def describe_error(exc: BaseException) -> str:
    """One line about ``exc`` for a person: the driver's first line, never the SQL or its values.

    SQLAlchemy's own text carries the statement and its parameters, which
    hold customer addresses, names and subjects.
    """
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return line[:300]


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(
    factory: sessionmaker[Session], *, secure_delete: bool = False
) -> Iterator[Session]:
    """One writing unit of work: commit on success, roll back on any exception.

    ``secure_delete`` makes SQLite overwrite what it deletes with zeros
    instead of leaving it in free pages, for erasures; it is switched off
    again once the work is written (left on after a failure, it only costs
    writes).
    """
    with factory() as session, session.begin():
        connection = session.connection(execution_options={"writes": True})
        scrub = secure_delete and connection.dialect.name == "sqlite"
        if scrub:
            connection.exec_driver_sql("PRAGMA secure_delete=ON")
        yield session
        if scrub:
            session.flush()
            connection.exec_driver_sql("PRAGMA secure_delete=OFF")


_PURGE_ATTEMPTS = 5


def purge_freed_space(engine: Engine, tables: Sequence[str], *, wait: float = 120.0) -> str | None:
    """Rewrite the database so deleted rows leave no bytes behind; ``None`` when done.

    Otherwise, what stopped it. SQLite: ``VACUUM`` rebuilds the file without
    its free pages, then a ``TRUNCATE`` checkpoint copies the log into it and
    empties the log, which still holds earlier versions of every page. A
    running agent's idle connections do not stop either; a reader in the
    middle of a transaction makes the checkpoint busy, so it is tried again
    for up to ``wait`` seconds. PostgreSQL: ``VACUUM`` of ``tables`` turns
    dead row versions into free space; it cannot run in a transaction,
    hence the autocommit connection.
    """
    if engine.dialect.name == "sqlite":
        return _purge_sqlite(engine, wait)
    if engine.dialect.name == "postgresql":
        return _purge_postgresql(engine, tables)
    return None


def _purge_sqlite(engine: Engine, wait: float) -> str | None:
    connection = engine.raw_connection()
    cursor = connection.cursor()
    per_attempt = wait / _PURGE_ATTEMPTS
    cursor.execute(f"PRAGMA busy_timeout={int(per_attempt * 1000)}")
    try:
        vacuumed = False
        problem = ""
        for attempt in range(_PURGE_ATTEMPTS):
            if attempt:
                time.sleep(min(1.0, per_attempt))
            try:
                if not vacuumed:
                    cursor.execute("VACUUM")
                    vacuumed = True
                busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            except sqlite3.OperationalError as exc:
                problem = f"{'the checkpoint' if vacuumed else 'VACUUM'} failed: {exc}"
                continue
            if not busy:
                return None
            problem = "the write-ahead log could not be emptied: another connection kept reading"
        return f"{problem} (tried for {wait:.0f} s)"
    finally:
        cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        cursor.close()
        connection.close()


def _purge_postgresql(engine: Engine, tables: Sequence[str]) -> str | None:
    if not tables:
        return None
    quote = engine.dialect.identifier_preparer.quote
    statement = "VACUUM " + ", ".join(quote(table) for table in tables)
    skipped: list[str] = []

    def notice(diagnostic: Any) -> None:
        if diagnostic.severity_nonlocalized == "WARNING":
            skipped.append(str(diagnostic.message_primary))

    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            driver: Any = connection.connection.driver_connection
            driver.add_notice_handler(notice)
            try:
                connection.exec_driver_sql(statement)
            finally:
                driver.remove_notice_handler(notice)
    except DBAPIError as exc:
        return f"VACUUM failed: {exc.orig}"
    return f"VACUUM skipped tables: {'; '.join(skipped)}" if skipped else None


def alembic_config(engine: Engine) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


_UPGRADE_LOCK = int.from_bytes(b"crm-sync", "big") >> 1


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision``; a no-op when it is there already.

    On PostgreSQL a session-level advisory lock serialises upgrades: agents
    starting together on a fresh database would otherwise both create the
    same tables and one would fail. SQLite takes one agent and needs none.
    """
    if engine.dialect.name != "postgresql":
        command.upgrade(alembic_config(engine), revision)
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _UPGRADE_LOCK})
        try:
            command.upgrade(alembic_config(engine), revision)
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _UPGRADE_LOCK})


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def table_names(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def head_revision() -> str | None:
    """The newest migration this version ships."""
    from alembic.script import ScriptDirectory

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def schema_is_current(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
