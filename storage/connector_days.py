"""What each connector brought, day by day: the figures the sources report draws.

A connector's ``sync_state`` counters are running totals, reset by a full
resync; they cannot say what came in on Tuesday. Each committed batch adds
its figures to one row per connector, day and measure (``items``,
``logged``, ``quarantined``, ``skipped:REASON``, ``limited:REASON``) in the
batch's own transaction, so the days agree with the data they describe.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from sqlalchemy.orm import Session

from storage.models import ConnectorDay
from storage.upsert import insert_for, table_of

MEASURES = ("items", "logged", "quarantined")
SKIPPED = "skipped:"
LIMITED = "limited:"


def measures_of(
    *,
    items: int,
    logged: int,
    quarantined: int,
    skipped: Mapping[str, int],
    limited: Mapping[str, int],
) -> dict[str, int]:
    """One batch's figures as measures, the reasons prefixed (``skipped:automated``)."""
    measures = {"items": items, "logged": logged, "quarantined": quarantined}
    measures.update({SKIPPED + reason: n for reason, n in skipped.items()})
    measures.update({LIMITED + reason: n for reason, n in limited.items()})
    return measures


def record(session: Session, connector: str, day: date, measures: Mapping[str, int]) -> None:
    """Add ``measures`` to ``connector``'s row for ``day``, in the caller's transaction.

    An ``ON CONFLICT`` add: two agents counting the same connector and day
    (one after a lease changed hands) both land, whichever inserts first.
    Zero figures write nothing.
    """
    rows = [
        {"connector": connector, "day": day, "measure": measure, "n": n}
        for measure, n in sorted(measures.items())
        if n
    ]
    if not rows:
        return
    table = table_of(ConnectorDay)
    statement = insert_for(session, table).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.connector, table.c.day, table.c.measure],
        set_={"n": table.c.n + statement.excluded.n},
    )
    session.execute(statement)
