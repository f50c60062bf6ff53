"""``INSERT ... ON CONFLICT`` for the dialect at hand.

Idempotent writes that hold under races need the database to decide, not a
check-then-insert: both SQLite and PostgreSQL speak ``ON CONFLICT``, through
their own SQLAlchemy insert constructs.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session


def table_of(model: type[DeclarativeBase]) -> Table:
    """A model's table, typed as a ``Table`` for Core statements."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_for(session: Session, table: Table) -> Any:
    """The dialect's insert construct for ``table`` (it has ``on_conflict_*``)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def greatest(session: Session, *values: ColumnElement[Any]) -> ColumnElement[Any]:
    """The larger of two values: ``GREATEST`` on PostgreSQL, scalar ``MAX`` on SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        return func.greatest(*values)
    return func.max(*values)
