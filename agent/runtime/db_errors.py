"""Database errors as one line a person can act on, and database URLs checked before use.

A driver's message is written for a developer: several lines, the SQL, a
link, sometimes a fragment of the connection string. An admin needs what
failed, where, and what to try. So a known failure is described from the
parsed URL (host, port, user, database -- never the password) and a fix;
an unknown one keeps its first line, scrubbed like a log line.

A failure the admin fixes in the configuration (the URL, the password,
the database's name) is told apart from an outage (:attr:`Problem.configuration`),
so the CLI can exit 2 for the one and 1 for the other.

A URL is checked before anything uses it: an unencoded ``@`` in a password
makes SQLAlchemy split the URL at the wrong place and take a piece of the
password for a host, a port or a database name, which its errors and the
driver's then repeat. Such a URL is refused without being repeated. Other
characters (``/ ? # : %``) SQLAlchemy reads as part of the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from agent.runtime.logs import scrub

_HOST = re.compile(r"[\w.%~-]+|[0-9A-Fa-f:.]+")
ENCODE_HINT = (
    "percent-encode special characters in the password: @ as %40, : as %3A, / as %2F, "
    "? as %3F, # as %23, % as %25"
)


def parse_url(url: str) -> URL | None:
    """The parsed URL, or None when SQLAlchemy would not read it as written."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    if parsed.get_backend_name() == "sqlite":
        return parsed
    if url.count("@") > 1 or (parsed.host is not None and not _HOST.fullmatch(parsed.host)):
        return None
    return parsed


@dataclass(frozen=True)
class Problem:
    """What went wrong with the database, and what to try."""

    what: str
    fix: str = ""
    connecting: bool = False
    """A failure to reach or enter the database, which the URL may be the cause of."""
    configuration: bool = False
    """The URL or the credentials are wrong, not the server down: retrying cannot help."""

    def line(self, source: str | None = None) -> str:
        """``database error: WHAT: FIX``, pointing at ``source`` of the URL when connecting."""
        fixes = [self.fix] if self.fix else []
        if self.connecting and source:
            fixes.append(f"check {source}")
        fix = ""
        for part in fixes:
            fix += part if not fix else (" " if fix.endswith("?") else "; ") + part
        return f"database error: {self.what}" + (f": {fix}" if fix else "")


_Rule = tuple[str, str, str, str]
_REACH = "reach"
"""Reaching or entering the database failed, perhaps for the URL: point at where it was set."""
_CONFIG = "config"
"""The URL or the credentials are wrong: a config error (exit 2), pointing at the URL."""
_RUN = "run"
"""Failed at run time, the URL not in doubt."""
_RUNNING = "is PostgreSQL running?"
_REACHABLE = "is the server up, and reachable through the firewall?"
_SLOTS = "stop idle clients or raise max_connections"
_LOST = "lost the connection to {where}"
_POSTGRES: tuple[_Rule, ...] = (
    (r"connection refused", "could not connect to {where} (connection refused)", _RUNNING, _REACH),
    (r"failed to resolve host|could not translate host name", "could not resolve the host{_host}",
     "", _REACH),
    (r"timeout expired|timed out", "could not connect to {where} (timed out)", _REACHABLE, _REACH),
    (r"no route to host|network is unreachable", "could not reach {where}", _REACHABLE, _REACH),
    (r"password authentication failed", "PostgreSQL at {where} refused the password of user{_user}",
     "correct the password", _CONFIG),
    (r"no pg_hba\.conf entry", "PostgreSQL at {where} does not let user{_user} in from here",
     "ask its admin to allow it in pg_hba.conf", _CONFIG),
    (r'role "[^"]*" does not exist', "PostgreSQL at {where} has no role{_user}", "create it",
     _CONFIG),
    (r'database "[^"]*" does not exist', "database{_database} does not exist on {where}",
     "create it (createdb{_database})", _CONFIG),
    (r"not currently accepting connections",
     "database{_database} on {where} is not accepting connections", "ask its admin", _REACH),
    (r"too many clients|remaining connection slots",
     "PostgreSQL at {where} has no free connection slot", _SLOTS, _RUN),
    (r"starting up|recovery mode", "PostgreSQL at {where} is starting up",
     "try again in a moment", _RUN),
    (r"shutting down", "PostgreSQL at {where} is shutting down", _RUNNING, _RUN),
    (r"terminating connection", _LOST + " (the server ended it)", _RUNNING, _RUN),
    (r"server closed the connection|consuming input failed|connection is (closed|lost)"
     r"|connection reset|broken pipe|ssl syscall|eof detected", _LOST, _RUNNING, _RUN),
)  # fmt: skip
"""(pattern in the driver's message, what, fix, kind): the first match wins."""

_SQLITE: tuple[_Rule, ...] = (
    (r"unable to open database file", "cannot open the SQLite database{_database}",
     "does its folder exist, and may this user write there?", _CONFIG),
    (r"database is locked", "the SQLite database{_database} stayed locked by another process",
     "wait for it to finish, or stop it", _RUN),
    (r"readonly database", "the SQLite database{_database} is read-only",
     "let this user write to it and to its folder", _RUN),
    (r"disk i/o error", "disk I/O error on the SQLite database{_database}",
     "check the disk and its free space", _RUN),
    (r"database or disk is full", "the disk of the SQLite database{_database} is full",
     "free some space", _RUN),
    (r"malformed", "the SQLite database{_database} is damaged", "restore it from a backup",
     _RUN),
    (r"not a database", "the file{_database} is not a SQLite database", "", _CONFIG),
)  # fmt: skip
_EITHER: tuple[_Rule, ...] = (
    (r'no such table|relation "[^"]*" does not exist', "the crm-sync schema is missing or old",
     "run `crm-sync db upgrade`", _RUN),
    (r"can't load plugin", "the database URL names a database crm-sync does not support",
     "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB", _CONFIG),
    (r"could not parse .*url", "the database URL cannot be read", ENCODE_HINT, _CONFIG),
)  # fmt: skip


def describe(exc: BaseException, url: URL | None = None) -> Problem:
    """``exc`` (a SQLAlchemy or driver error) described for a person; no secret in it."""
    driver = getattr(exc, "orig", None) or exc
    message = str(driver)
    backend = url.get_backend_name() if url is not None else _guess_backend(driver)
    rules = _SQLITE if backend == "sqlite" else _POSTGRES
    for pattern, what, fix, kind in (*rules, *_EITHER):
        if re.search(pattern, message, re.I):
            fields = _fields(url, message)
            reach, config = kind in (_REACH, _CONFIG), kind == _CONFIG
            return Problem(what.format(**fields), fix.format(**fields), reach, config)
    lines = message.strip().splitlines()
    first = f": {lines[0]}" if lines else ""
    return Problem(scrub(f"{type(driver).__name__}{first}", addresses=False))


def is_database_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from the database or its driver rather than from crm-sync."""
    if isinstance(exc, SQLAlchemyError):
        return True
    module = type(exc).__module__
    return module.startswith(("psycopg", "sqlite3"))


def _guess_backend(driver: BaseException) -> str:
    return "sqlite" if type(driver).__module__.startswith("sqlite3") else "postgresql"


_SERVER = re.compile(r'connection to server at "([^"]+)"(?: \([^)]*\))?, port (\d+)')


def _fields(url: URL | None, message: str) -> dict[str, str]:
    """Names for the message, from the parsed URL (never its password); a name that is not
    known is left out (``_user`` is `` crm`` or empty)."""
    if url is None:
        found = _SERVER.search(message)
        where = f"{found.group(1)}:{found.group(2)}" if found else "the database server"
        return {"where": where, "_host": "", "_user": "", "_database": ""}
    host = url.host or "localhost"
    port = url.port or (5432 if url.get_backend_name() == "postgresql" else None)
    return {
        "where": f"{host}:{port}" if port else host,
        "_host": f" {host}",
        "_user": f" {url.username}" if url.username else "",
        "_database": f" {url.database}" if url.database else "",
    }
