"""Database errors said in one line, URLs checked before use, credentials masked in logs.

The errors are real: raised by PostgreSQL and SQLite themselves.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

from agent.runtime import logs
from agent.runtime.db_errors import Problem, describe, is_database_error, parse_url
from agent.runtime.debug import configure_logs, name_database
from tests.support.servers import PG_ADMIN_URL
from tests.support.tcp_proxy import running_proxy


def _error(url: str, sql: str = "SELECT 1") -> DBAPIError:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text(sql))
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("no error")


def _closed_port() -> int:
    with running_proxy("127.0.0.1", 9) as gone:
        return gone.port


def test_postgresql_errors(pg_engine: Engine) -> None:
    server = make_url(PG_ADMIN_URL)
    where = f"{server.host}:{server.port}"
    closed = _closed_port()
    cases = {
        server.set(port=closed): (
            f"database error: could not connect to 127.0.0.1:{closed} (connection refused): "
            "is PostgreSQL running? check FILE"
        ),
        server.set(database="no_such_db"): (
            f"database error: database no_such_db does not exist on {where}: "
            "create it (createdb no_such_db); check FILE"
        ),
        server.set(username="no_such_role"): (
            f"database error: PostgreSQL at {where} has no role no_such_role: create it; check FILE"
        ),
        server.set(host="no-such-host.invalid"): (
            "database error: could not resolve the host no-such-host.invalid: check FILE"
        ),
    }
    for url, line in cases.items():
        assert describe(_error(url.render_as_string(hide_password=False)), url).line("FILE") == line
    missing = _error(PG_ADMIN_URL, "SELECT * FROM no_such_table")
    assert describe(missing, server).line("FILE") == (
        "database error: the crm-sync schema is missing or old: run `crm-sync db upgrade`"
    )


def test_a_connection_the_server_ends(pg_engine: Engine) -> None:
    with pg_engine.connect() as connection:
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
        with pg_engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as ended:
            connection.execute(text("SELECT 1"))
    problem = describe(ended.value, pg_engine.url)
    assert problem.what.startswith(
        f"lost the connection to {pg_engine.url.host}:{pg_engine.url.port}"
    )
    assert problem.fix == "is PostgreSQL running?"


def test_sqlite_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'folder' / 'crm.db'}"
    problem = describe(_error(url), make_url(url))
    assert problem.what == f"cannot open the SQLite database {tmp_path}/missing/folder/crm.db"
    assert problem.connecting
    fallback = describe(_error(f"sqlite:///{tmp_path / 'x.db'}", "SELEC 1"))
    assert fallback == Problem('OperationalError: near "SELEC": syntax error')


def test_what_counts_as_a_database_error(tmp_path: Path) -> None:
    assert is_database_error(_error(f"sqlite:///{tmp_path / 'x.db'}", "SELEC 1"))
    assert not is_database_error(ValueError("no"))


@pytest.mark.parametrize(
    ("url", "valid"),
    [
        ("postgresql+psycopg://crm:p@ss:w/rd#x@127.0.0.1:5432/crm", False),
        ("postgresql+psycopg://crm:p@ssword/more@db.example/crm", False),
        ("postgresql+psycopg://crm:p%40ss%3Aw%2Frd%23x@127.0.0.1:5432/crm", True),
        ("postgresql+psycopg://crm:pa?ss#w/o:rd%@127.0.0.1:5432/crm", True),
        ("postgresql+psycopg://u:p@[::1]:5432/db", True),
        ("postgresql+psycopg:///crm?host=/var/run/postgresql", True),
        ("sqlite:////srv/@shared/crm.db", True),
        ("sqlite://", True),
        ("not a url", False),
    ],
    ids=[
        "at-colon-slash-hash",
        "at-in-password",
        "encoded",
        "read-as-written",
        "ipv6",
        "unix-socket",
        "sqlite-path-with-at",
        "sqlite-memory",
        "garbage",
    ],
)
def test_urls_are_checked_before_use(url: str, valid: bool) -> None:
    assert (parse_url(url) is not None) == valid


# -- logs --------------------------------------------------------------------------------------


@pytest.fixture
def logged(request: pytest.FixtureRequest) -> Iterator[tuple[io.StringIO, logging.Logger]]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logs(request.param, level="INFO", stream=stream)
    yield stream, logging.getLogger("crm-sync-test")
    root.handlers[:] = handlers
    root.setLevel(level)


SECRET = "Zq@9:x/Kv#7"


@pytest.mark.parametrize("logged", [False, True], ids=["plain", "debug"], indirect=True)
def test_url_credentials_never_reach_a_log(logged: tuple[io.StringIO, logging.Logger]) -> None:
    stream, log = logged
    url = f"postgresql+psycopg://crm:{SECRET}@db.example:5432/crm"
    log.warning("connecting to %s", url)
    try:
        raise ValueError(f"Could not parse SQLAlchemy URL from string '{url}'")
    except ValueError:
        log.exception("cannot start")
    output = stream.getvalue()
    assert len(re.findall(r"postgresql\+psycopg://crm:\*+@db\.example:5432/crm", output)) == 2
    assert "Kv#7" not in output and "9:x" not in output


@pytest.mark.parametrize("logged", [False, True], ids=["plain", "debug"], indirect=True)
def test_a_traceback_only_with_debug(
    logged: tuple[io.StringIO, logging.Logger], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    stream, log = logged
    url = f"sqlite:///{tmp_path / 'missing' / 'crm.db'}"
    name_database(make_url(url))
    try:
        raise _error(url)
    except DBAPIError:
        log.exception("c1: sync failed")
    finally:
        name_database(None)
    output = stream.getvalue()
    debug = request.node.callspec.params["logged"]
    if debug:
        assert "Traceback (most recent call last)" in output
    else:
        (line,) = output.splitlines()
        assert line.endswith(
            "c1: sync failed: database error: cannot open the SQLite database "
            f"{tmp_path}/missing/crm.db: does its folder exist, and may this user write there?"
        )


def test_scrub_masks_url_credentials() -> None:
    assert logs.scrub("url=redis://:hunter2@cache:6379/0", addresses=False) == (
        "url=redis://:***@cache:6379/0"
    )
    assert logs.scrub("see https://sqlalche.me/e/20/e3q8", addresses=False) == (
        "see https://sqlalche.me/e/20/e3q8"
    )


# -- what the config can fix (exit 2) and what it cannot (exit 1) ------------------------------


def _raised(make: Callable[[], object]) -> Exception:
    try:
        make()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def _case(name: str, tmp_path: Path) -> tuple[Exception, URL | None]:
    server = make_url(PG_ADMIN_URL)
    postgres = {
        "wrong-database": server.set(database="no_such_db"),
        "unknown-role": server.set(username="no_such_role"),
        "connection-refused": server.set(port=_closed_port()),
        "unknown-host": server.set(host="no-such-host.invalid"),
    }
    if name in postgres:
        url = postgres[name]
        return _error(url.render_as_string(hide_password=False)), url
    if name == "sqlite-folder-missing":
        url = make_url(f"sqlite:///{tmp_path / 'missing' / 'crm.db'}")
        return _error(url.render_as_string()), url
    if name == "sqlite-not-a-database":
        (tmp_path / "notes.txt").write_text("not a database, just some notes\n" * 200)
        url = make_url(f"sqlite:///{tmp_path / 'notes.txt'}")
        return _error(url.render_as_string(), "SELECT * FROM sqlite_master"), url
    if name == "unknown-scheme":
        return _raised(lambda: create_engine("mysql+nosuchdriver://crm:s3cret@db/crm")), None
    return _raised(lambda: make_url("crm:s3cret@db/crm")), None


CONFIGURATION = {
    "wrong-database": True,
    "unknown-role": True,
    "sqlite-folder-missing": True,
    "sqlite-not-a-database": True,
    "unknown-scheme": True,
    "not-a-url": True,
    "connection-refused": False,
    "unknown-host": False,
}
"""Whether each failure is the config's to fix (the CLI exits 2) or not (an outage: 1)."""


@pytest.mark.parametrize("name", list(CONFIGURATION), ids=list(CONFIGURATION))
def test_what_the_config_can_fix_is_told_from_an_outage(
    pg_engine: Engine, tmp_path: Path, name: str
) -> None:
    configuration = CONFIGURATION[name]
    exc, url = _case(name, tmp_path)
    assert is_database_error(exc)
    problem = describe(exc, url)
    assert problem.configuration is configuration, problem
    assert "s3cret" not in problem.line("FILE")
