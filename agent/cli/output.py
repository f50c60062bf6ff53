"""One way to print: a rich table or line for people, JSON for programs.

Much of what is printed comes from mail and calendars (subjects, snippets,
names, error texts) and is written by strangers.
:func:`agent.runtime.inert_text.plain` is the one place that makes such text
harmless to a terminal, and everything this module prints passes through
it: the shared consoles neutralise every string and every text segment they
render, and parse no Rich markup (a caller passing ``markup=True`` escapes
what it inserts; styles come from ``Text`` instead), so a command cannot
forget.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from agent.runtime.inert_text import json_text, plain
from storage.export import inert_cell

_UNSAFE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


class _NeutralConsole(Console):
    """A console the text it prints cannot steer.

    Strings are made plain before rich parses or lays them out; every text
    segment is checked again on the way out, which covers a ``Text`` or a
    progress column built from data by hand. Rich's own control segments
    (the cursor moves of a progress bar) pass.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(plain(text, multiline=True), **kwargs)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and _UNSAFE.search(segment.text):
                segment = Segment(plain(segment.text, multiline=True), segment.style)
            yield segment


console = _NeutralConsole(markup=False, emoji=False)
errors = _NeutralConsole(stderr=True, markup=False, emoji=False)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json_text(to_jsonable(value), indent=2) + "\n")


def human(value: Any) -> str:
    """``value`` as one plain line for a table cell or a ``key: value`` line."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M")
    if isinstance(value, timedelta):
        return ago(value)
    if isinstance(value, list | tuple):
        return ", ".join(human(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{human(k)}={human(v)}" for k, v in sorted(value.items())) or "-"
    return plain(str(value))


def ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str | None = None,
    empty: str = "nothing to show",
) -> None:
    """Print ``rows``; JSON carries every key, the table only ``columns``.

    Cells are one plain line each, and ``Text``: never markup, whichever console prints them.
    """
    if as_json:
        print_json(list(rows))
        return
    if not rows:
        console.print(empty)
        return
    table = Table(title=title, header_style="bold")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*(Text(human(row.get(column))) for column in columns))
    console.print(table)


def write_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """``rows`` as CSV on stdout, a header of ``columns`` first; every cell one plain line
    that a spreadsheet will not run as a formula (``storage.export.inert_cell``)."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in columns])


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime | date) else plain(str(value))
    return inert_cell(text)
