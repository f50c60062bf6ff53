"""``contacts list`` as a table that fits the terminal without cutting an address.

At 80 columns a table of every field squeezes each one, and the address,
the one cell a person copies into `contacts show`, came out cut. Here the
columns that matter come first and keep their width (id, address, when last
contacted); name and company wrap; title, interactions and the other
addresses are added only while everything fits on one line per contact.
When the first five do not fit unwrapped, the time of day goes, then the
columns of least priority (last contacted, then company); where even id,
name and address cannot fit (an address nearly as wide as the terminal),
each contact gets two plain lines instead of a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.table import Table
from rich.text import Text

from agent.cli.output import console, human
from storage.contacts import ContactRow

ESSENTIAL = ("id", "name", "address", "company", "last contacted")
OPTIONAL = ("interactions", "title", "other addresses")
"""Added left to right while they fit."""
WRAPPING = frozenset({"name", "company"})
NARROWEST_WRAP = 8
GAP = 2


def cells(row: ContactRow, *, with_time: bool = True) -> dict[str, str]:
    """One contact's cells as plain one-line text."""
    return {
        "id": str(row.id),
        "name": human(row.name or None),
        "address": human(row.emails[0] if row.emails else None),
        "company": human(row.company),
        "last contacted": _when(row.last_contacted_at, with_time=with_time),
        "interactions": str(row.interactions),
        "title": human(row.title),
        "other addresses": human(list(row.emails[1:]) or None),
    }


def _when(value: datetime | None, *, with_time: bool) -> str:
    text = human(value)
    return text if with_time or value is None else text[:10]


def columns_for(
    rows: Sequence[dict[str, str]],
    width: int,
    essential: Sequence[str] = ESSENTIAL,
    *,
    wrap: bool = True,
) -> list[str] | None:
    """The columns to show at ``width``; None when ``essential`` cannot fit uncut (or, when
    not ``wrap``, without wrapping a name or a company)."""
    natural = {c: max(len(c), *(len(r[c]) for r in rows)) for c in (*ESSENTIAL, *OPTIONAL)}
    narrowest = sum(
        min(natural[c], NARROWEST_WRAP) if c in WRAPPING and wrap else natural[c] for c in essential
    ) + GAP * (len(essential) - 1)
    if narrowest > width:
        return None
    chosen = list(essential)
    used = sum(natural[c] for c in essential) + GAP * (len(essential) - 1)
    for column in OPTIONAL:
        if used + GAP + natural[column] <= width:
            chosen.append(column)
            used += GAP + natural[column]
    return chosen


ATTEMPTS = (
    (True, ESSENTIAL, False),
    (False, ESSENTIAL, True),
    (False, ESSENTIAL[:4], True),
    (False, ESSENTIAL[:3], True),
)
"""(with the time of day, essential columns, may wrap), tried in turn until one fits: the
time goes before a name or company wraps, then the lowest-priority columns, last contacted
and company."""


def print_contact_list(rows: Sequence[ContactRow], width: int) -> None:
    for with_time, essential, wrap in ATTEMPTS:
        table_rows = [cells(row, with_time=with_time) for row in rows]
        columns = columns_for(table_rows, width, essential, wrap=wrap)
        if columns is not None:
            break
    else:
        _print_as_lines(table_rows)
        return
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for column in columns:
        fixed = column not in WRAPPING
        natural = max(len(column), *(len(r[column]) for r in table_rows))
        table.add_column(
            column,
            no_wrap=fixed,
            min_width=natural if fixed else min(natural, NARROWEST_WRAP),
            overflow="fold",
            justify="right" if column in ("id", "interactions") else "left",
        )
    for cell in table_rows:
        table.add_row(*(Text(cell[column]) for column in columns))
    console.print(table)


def _print_as_lines(rows: Sequence[dict[str, str]]) -> None:
    for cell in rows:
        console.print(f"{cell['id']}  {cell['address']}", highlight=False, soft_wrap=True)
        rest = "  ".join(cell[c] for c in ("name", "company", "last contacted"))
        console.print(f"    {rest}", highlight=False, soft_wrap=True)
