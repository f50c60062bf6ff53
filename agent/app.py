"""What every command needs: the settings, read once, and the database they name."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config import Settings, load_settings
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
    def engine(self) -> Engine:
        return make_engine(self.settings.database.url)

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
