"""Alembic environment: runs on the engine the caller passes in ``config.attributes``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from storage.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through storage.db.upgrade(engine)")

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite's batch mode rebuilds a table by dropping it: with foreign keys
        # on, that would cascade into every table referring to it. The pragma
        # only takes effect outside a transaction, hence the raw connection.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite:
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]
