"""``status`` as a table that fits the terminal, with the long texts in full below it.

At 80 columns one table of every field, the last error and the fix among
them, squeezed each cell to a word per line and cut the connector's name,
the one cell an admin copies into `crm-sync sync --connector NAME` or
`crm-sync verify NAME`. Here the table holds short cells only, in order of
priority and none of them ever cut: connector, kind, state, last success,
lag, items and quarantined (the count that tells an admin to look at
`status --quarantined`); quota units are added where some connector counted
them, while they fit. When the essentials do not fit, the time of day goes
first, then kind, then lag (which last success tells too); where even that
cannot fit (a name nearly as wide as the terminal), each connector gets two
plain lines instead of a table. The last error and the fix are never cells:
each connector that has one gets a block under the table, whole lines the
terminal wraps, so nothing is cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from agent.cli.output import console, human
from agent.runtime.inert_text import plain
from storage.sync_state import ConnectorHealth

ESSENTIAL = ("connector", "kind", "state", "last success", "lag", "items", "quarantined")
OPTIONAL = ("quota units", "retries")
"""Added while they fit, and only where some connector has a value."""
RIGHT = frozenset({"lag", "items", "quarantined", "quota units", "retries"})
GAP = 2
"""Between two columns: the table pads each side of a cell by one, the outer edges not."""

ATTEMPTS = (
    (True, ESSENTIAL),
    (False, ESSENTIAL),
    (False, tuple(c for c in ESSENTIAL if c != "kind")),
    (False, tuple(c for c in ESSENTIAL if c not in ("kind", "lag"))),
)
"""(with the time of day, essential columns), tried in turn until one fits: the time goes
before any column, then kind (it is in the config), then lag (last success says it too)."""

INDENT = "  "


def cells(row: ConnectorHealth, *, with_time: bool = True) -> dict[str, str]:
    """One connector's table cells, each one plain line (names and states may come from the
    database, where a removed connector's row keeps whatever was stored)."""
    return {
        "connector": human(row.connector),
        "kind": human(row.kind),
        "state": human(row.state),
        "last success": _when(row.last_success, with_time=with_time),
        "lag": human(row.lag),
        "items": str(row.items),
        "quarantined": str(row.quarantined),
        "quota units": human(row.quota_units_last_run),
        "retries": human(row.retries_last_run),
    }


def _when(value: datetime | None, *, with_time: bool) -> str:
    text = human(value)
    return text if with_time or value is None else text[:10]


def optional_columns(rows: Sequence[ConnectorHealth]) -> tuple[str, ...]:
    """The optional columns some connector has a value for: a column of dashes says nothing."""
    values = {
        "quota units": [row.quota_units_last_run for row in rows],
        "retries": [row.retries_last_run for row in rows],
    }
    return tuple(c for c in OPTIONAL if any(v is not None for v in values[c]))


def columns_for(
    table_rows: Sequence[dict[str, str]],
    width: int,
    essential: Sequence[str] = ESSENTIAL,
    optional: Sequence[str] = OPTIONAL,
) -> list[str] | None:
    """The columns to show at ``width``, every cell at its full width; None when even
    ``essential`` does not fit."""
    natural = {c: max(len(c), *(len(r[c]) for r in table_rows)) for c in (*essential, *optional)}
    used = sum(natural[c] for c in essential) + GAP * (len(essential) - 1)
    if used > width:
        return None
    chosen = list(essential)
    for column in optional:
        if used + GAP + natural[column] <= width:
            chosen.append(column)
            used += GAP + natural[column]
    return chosen


def choose(rows: Sequence[ConnectorHealth], width: int) -> tuple[bool, list[str]] | None:
    """(with the time of day, columns) of the first of :data:`ATTEMPTS` that fits ``width``;
    None when none does and each connector gets plain lines."""
    optional = optional_columns(rows)
    for with_time, essential in ATTEMPTS:
        columns = columns_for(
            [cells(r, with_time=with_time) for r in rows], width, essential, optional
        )
        if columns is not None:
            return with_time, columns
    return None


def table(rows: Sequence[ConnectorHealth], columns: Sequence[str], *, with_time: bool) -> Table:
    """The table of ``columns``: no cell wraps or is cut, :func:`choose` made sure they fit."""
    table_rows = [cells(row, with_time=with_time) for row in rows]
    shown = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for column in columns:
        shown.add_column(
            column,
            no_wrap=True,
            min_width=max(len(column), *(len(r[column]) for r in table_rows)),
            justify="right" if column in RIGHT else "left",
        )
    for cell in table_rows:
        shown.add_row(*(Text(cell[column]) for column in columns))
    return shown


def as_lines(rows: Sequence[ConnectorHealth]) -> list[str]:
    """Two plain lines per connector, for a terminal too narrow for any table: the name and
    state first, whole, as they are copied and grepped; an optional figure only where the
    connector has one."""
    lines = []
    for row in rows:
        cell = cells(row, with_time=False)
        lines.append(f"{cell['connector']}  {cell['state']}")
        rest = [f"{c} {cell[c]}" for c in ESSENTIAL[3:]]
        rest += [f"{c} {cell[c]}" for c in OPTIONAL if cell[c] != "-"]
        lines.append(INDENT * 2 + ", ".join([cell["kind"], *rest]))
    return lines


def notes(rows: Sequence[ConnectorHealth]) -> list[str]:
    """The last error and the fix of each connector that has one, as whole lines after a
    blank one: ``name: error``, then ``  fix: ...``. The error often quotes a mail server,
    so it is made inert here, whoever prints it."""
    lines = []
    for row in rows:
        if not (row.last_error or row.fix):
            continue
        name = human(row.connector)
        lines.append("")
        lines.append(f"{name}: {plain(row.last_error)}" if row.last_error else name)
        if row.fix:
            lines.append(f"{INDENT}fix: {plain(row.fix)}")
    return lines


def print_status(rows: Sequence[ConnectorHealth], *, title: str, out: Console = console) -> None:
    """``title``, the table that fits ``out`` (by default the terminal), and the notes.

    Lines are printed with ``soft_wrap``: the terminal wraps a long one, nothing cuts it,
    and what is copied from it or read through a pipe is the whole line.
    """
    out.print(title, markup=False, highlight=False, soft_wrap=True)
    chosen = choose(rows, out.width)
    if chosen is None:
        _print_lines(out, as_lines(rows))
    else:
        with_time, columns = chosen
        out.print(table(rows, columns, with_time=with_time), markup=False, highlight=False)
    _print_lines(out, notes(rows))


def _print_lines(out: Console, lines: Sequence[str]) -> None:
    for line in lines:
        out.print(Text(line), markup=False, highlight=False, soft_wrap=True)
