"""What every command needs: the settings, read once, and the database they name.

Only ``crm-sync db upgrade`` (and the demo, on its own file) creates the
database. Every other command refuses one that is not there -- a SQLite file
that does not exist, a database without crm-sync's tables -- and names
``db upgrade``, so a mistyped path never leaves an empty database behind.
A SQLite file's folder is never created, by any command: a missing folder is
a config error naming the key that holds the path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from agent.runtime.db_errors import ENCODE_HINT, parse_url
from agent.runtime.debug import name_database
from config import ConfigError, Settings, load_settings
from config.loader import ENV_DATABASE_URL
from storage.db import (
    current_revision,
    head_revision,
    make_engine,
    session_factory,
    sqlite_path,
    upgrade,
)


class SchemaOutOfDate(Exception):
    """The database is older than this version of crm-sync."""


class DatabaseNotCreated(Exception):
    """The database has not been created yet: a setup step left out (exit status 2)."""


@dataclass
class App:
    config_path: Path | None = None
    debug: bool = False
    """``--debug``: errors come with their traceback (scrubbed like any log line)."""
    creates_database: bool = False
    """Whether this command may create the database (``db upgrade``, the demo)."""
    _settings: tuple[Settings, Path | None] | None = field(default=None, repr=False)

    @classmethod
    def for_settings(cls, settings: Settings) -> App:
        """An app on settings built in code (the demo) rather than read from a file."""
        return cls(creates_database=True, _settings=(settings, None))

    def _load(self) -> tuple[Settings, Path | None]:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def settings(self) -> Settings:
        return self._load()[0]

    @property
    def config_file(self) -> Path | None:
        return self._load()[1]

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config are relative to the config file's folder."""
        return self.config_file.parent if self.config_file else Path.cwd()

    @cached_property
    def database_url(self) -> str:
        """The database URL, refused without being repeated when it does not parse as written."""
        url = self.settings.database.url
        if parse_url(url) is None:
            raise self._url_error(f"not a valid URL ({ENCODE_HINT})")
        return url

    @property
    def database_source(self) -> str:
        """Where the database URL was set, for messages that ask a person to check it."""
        if os.environ.get(ENV_DATABASE_URL):
            return f"${ENV_DATABASE_URL}"
        if self.config_file is not None:
            return f"[database] url in {self.config_file}"
        return "[database] url"

    def _url_error(self, problem: str) -> ConfigError:
        """A config error about the database URL, naming the key or variable that set it."""
        if os.environ.get(ENV_DATABASE_URL):
            return ConfigError(None, [f"${ENV_DATABASE_URL}: {problem}"])
        return ConfigError(self.config_file, [f"database.url: {problem}"])

    @cached_property
    def engine(self) -> Engine:
        url = self.database_url
        path = sqlite_path(url)
        if path is not None:
            self._check_sqlite_file(path)
        engine = make_engine(url)
        name_database(engine.url)
        return engine

    def _check_sqlite_file(self, path: Path) -> None:
        if not path.parent.is_dir():
            raise self._url_error(
                f"the folder {path.parent} of the SQLite database {path.name} does not exist "
                "(correct the path, or create the folder)"
            )
        if not path.exists() and not self.creates_database:
            raise DatabaseNotCreated(
                f"the SQLite database {path} does not exist: run `crm-sync db upgrade` to "
                f"create it, or correct {self.database_source} if the path is wrong"
            )

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        if not self.creates_database:
            self._require_tables()
        return session_factory(self.engine)

    def require_database(self) -> None:
        """Refuse a database that is not there before anything is made beside it."""
        if not self.creates_database:
            self._require_tables()

    def upgrade(self) -> str | None:
        """Migrate the schema to this version's; create it only where this command may."""
        if not self.creates_database:
            self._require_tables()
        upgrade(self.engine)
        return current_revision(self.engine)

    def require_schema(self) -> None:
        """Readers refuse an old schema rather than migrate behind the admin's back."""
        revision = self._require_tables()
        if revision != head_revision():
            raise SchemaOutOfDate("the database schema is not current: run `crm-sync db upgrade`")

    def _require_tables(self) -> str:
        """The schema's revision; DatabaseNotCreated when the database has no crm-sync tables."""
        revision = current_revision(self.engine)
        if revision is None:
            shown = self.engine.url.render_as_string(hide_password=True)
            raise DatabaseNotCreated(
                f"the database {shown} holds no crm-sync tables: run `crm-sync db upgrade` "
                "to create them"
            )
        return revision
