"""What every command needs: the settings, read once, and the database they name."""

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
    make_engine,
    schema_is_current,
    session_factory,
    upgrade,
)


class SchemaOutOfDate(Exception):
    """The database is older than this version of crm-sync."""


@dataclass
class App:
    config_path: Path | None = None
    debug: bool = False
    """``--debug``: errors come with their traceback (scrubbed like any log line)."""
    _settings: tuple[Settings, Path | None] | None = field(default=None, repr=False)

    @classmethod
    def for_settings(cls, settings: Settings) -> App:
        """An app on settings built in code (the demo) rather than read from a file."""
        return cls(_settings=(settings, None))

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
        if parse_url(url) is not None:
            return url
        if os.environ.get(ENV_DATABASE_URL):
            raise ConfigError(None, [f"${ENV_DATABASE_URL}: not a valid URL ({ENCODE_HINT})"])
        raise ConfigError(self.config_file, [f"database.url: not a valid URL ({ENCODE_HINT})"])

    @property
    def database_source(self) -> str:
        """Where the database URL was set, for messages that ask a person to check it."""
        if os.environ.get(ENV_DATABASE_URL):
            return f"${ENV_DATABASE_URL}"
        if self.config_file is not None:
            return f"[database] url in {self.config_file}"
        return "[database] url (no config file: the default is ./crm-sync.db)"

    @cached_property
    def engine(self) -> Engine:
        engine = make_engine(self.database_url)
        name_database(engine.url)
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    def upgrade(self) -> str | None:
        upgrade(self.engine)
        return current_revision(self.engine)

    def require_schema(self) -> None:
        """Readers refuse an old schema rather than migrate behind the admin's back."""
        if not schema_is_current(self.engine):
            raise SchemaOutOfDate("the database schema is not current: run `crm-sync db upgrade`")
