"""Every row of every table, to show what an operation changed and that nothing else moved."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Engine, MetaData, select

_SEARCH_INDEX = re.compile(r"_fts(_[a-z]+)?$|^contact_search$")
Snapshot = dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]
"""Table -> primary key -> row."""


def snapshot(engine: Engine) -> Snapshot:
    metadata = MetaData()
    metadata.reflect(engine)
    found: Snapshot = {}
    with engine.connect() as connection:
        for name, table in metadata.tables.items():
            if _SEARCH_INDEX.search(name):
                continue  # a search index kept by triggers: derived from the tables, not data
            key = [c.name for c in table.primary_key.columns]
            found[name] = {
                tuple(row._mapping[k] for k in key): tuple(row)
                for row in connection.execute(select(table))
            }
    return found


Change = tuple[set[tuple[Any, ...]], set[tuple[Any, ...]], set[tuple[Any, ...]]]


def diff(before: Snapshot, after: Snapshot) -> dict[str, Change]:
    """Per table that differs: the primary keys removed, added and changed."""
    changes: dict[str, Change] = {}
    for name in before.keys() | after.keys():
        old, new = before.get(name, {}), after.get(name, {})
        removed = set(old.keys() - new.keys())
        added = set(new.keys() - old.keys())
        changed = {k for k in old.keys() & new.keys() if old[k] != new[k]}
        if removed or added or changed:
            changes[name] = (removed, added, changed)
    return changes
