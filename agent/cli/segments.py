"""``segments``: saved questions over contacts or companies, answered afresh each time.

A segment is defined by relationship figures and tags (``storage.segments``):
"customers at medium strength or more and idle for 45 days" is::

    crm-sync segments add cold-customers --subject contact \\
        --tag customer --level-at-least medium --idle-days-at-least 45
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, NoReturn, TypeVar

import click
from rich.table import Table
from rich.text import Text

from agent.cli.common import EXIT_FAILURE, actor, as_user, pass_app
from agent.cli.output import console, errors, human, print_json, print_rows, write_csv
from agent.runtime.app import App
from storage import segments
from storage.db import transaction
from storage.relationship_rules import LEVELS, TRENDS
from storage.segments import SegmentError

F = TypeVar("F", bound=Callable[..., Any])
MEMBER_COLUMNS = (
    "id",
    "name",
    "email",
    "domain",
    "level",
    "strength",
    "idle_days",
    "trend",
    "closest_teammate",
)
NUMBERS = frozenset({"id", "strength", "idle_days"})
CONDITIONS = (
    click.option(
        "--level-at-least",
        type=click.Choice(LEVELS),
        help="Relationship level at least this.",
    ),
    click.option(
        "--strength-at-least", type=click.FloatRange(min=0), help="Strength score at least this."
    ),
    click.option(
        "--idle-days-at-least",
        type=click.IntRange(0, segments.MAX_IDLE_DAYS),
        help="No interaction for at least this many days (or never any).",
    ),
    click.option(
        "--idle-days-at-most",
        type=click.IntRange(0, segments.MAX_IDLE_DAYS),
        help="An interaction within this many days.",
    ),
    click.option("--trend", type=click.Choice(TRENDS), help="The trend of the last 30 days."),
    click.option("--tag", help="Carries this tag."),
    click.option(
        "--closest-teammate",
        metavar="EMAIL",
        help="The teammate who knows them best: what that teammate owns.",
    ),
    click.option(
        "--company-domain", metavar="DOMAIN", help="A contact of, or the company with, this domain."
    ),
)


def with_conditions(command: F) -> F:
    for option in reversed(CONDITIONS):
        command = option(command)
    return command


@click.group("segments")
def segments_group() -> None:
    """Saved segments of contacts or companies, by relationship figures and tags."""


@segments_group.command("add")
@click.argument("name")
@click.option(
    "--subject",
    type=click.Choice(segments.SUBJECTS),
    default="contact",
    show_default=True,
    help="Whether members are contacts or companies.",
)
@with_conditions
@as_user
@pass_app
def segments_add(app: App, /, name: str, subject: str, user: str | None, **conditions: Any) -> None:
    """Save a segment named NAME: every condition given must hold.

    \b
    Customers gone quiet:
      segments add cold --tag customer --level-at-least medium --idle-days-at-least 45
    What a teammate owns:
      segments add alices --subject company --closest-teammate alice@ours.example
    """
    app.require_schema()
    definition = {key: value for key, value in conditions.items() if value is not None}
    with transaction(app.sessions) as session:
        try:
            segment = segments.add_segment(session, name, subject, definition, actor=actor(user))
        except SegmentError as exc:
            _fail(str(exc))
        size = segments.count(session, segment)
    console.print(
        f"saved segment {segment.name!r}: {size} members now", highlight=False, soft_wrap=True
    )


@segments_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def segments_list(app: App, as_json: bool) -> None:
    """Every saved segment with its conditions and how many members it has now."""
    app.require_schema()
    with app.sessions() as session:
        rows = [asdict(s) for s in segments.list_segments(session)]
    print_rows(
        rows,
        ["name", "subject", "members", "definition", "created_by"],
        as_json=as_json,
        empty="no segments yet: `crm-sync segments add NAME ...`",
    )


@segments_group.command("show")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, segments.MAX_LIMIT), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@pass_app
def segments_show(
    app: App, name: str, limit: int, offset: int, as_json: bool, as_csv: bool
) -> None:
    """The members of segment NAME with their figures, strongest first."""
    app.require_schema()
    with app.sessions() as session:
        try:
            segment = segments.require_segment(session, name)
            members = segments.members(session, segment, limit=limit, offset=offset)
        except SegmentError as exc:
            _fail(str(exc))
    rows = [asdict(m) for m in members]
    if as_csv:
        write_csv(rows, [*MEMBER_COLUMNS, "last_at"])
        return
    if as_json:
        print_json(rows)
    elif not rows:
        console.print("no members at the moment")
    else:
        _print_members(rows, "domain" if segment.subject == "company" else "email")


def _print_members(rows: Sequence[Mapping[str, Any]], address: str) -> None:
    """A table whose address column is never cut (people copy it into other commands); the
    other columns fold when the terminal is narrow."""
    columns = ["id", "name", address, "level", "strength", "idle_days", "trend", "closest_teammate"]
    cells = [{c: human(row.get(c)) for c in columns} for row in rows]
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for column in columns:
        fixed = column in ("id", address)
        natural = max(len(column), *(len(cell[column]) for cell in cells))
        table.add_column(
            column.replace("_", " "),
            no_wrap=fixed,
            min_width=natural if fixed else None,
            overflow="fold",
            justify="right" if column in NUMBERS else "left",
        )
    for cell in cells:
        table.add_row(*(Text(cell[column]) for column in columns))
    console.print(table)


@segments_group.command("remove")
@click.argument("name")
@as_user
@pass_app
def segments_remove(app: App, name: str, user: str | None) -> None:
    """Remove segment NAME. Tags it put on people (`tags apply`) stay."""
    app.require_schema()
    with transaction(app.sessions) as session:
        removed = segments.remove_segment(session, name, actor=actor(user))
    if not removed:
        _fail(f"no segment named {name!r}")
    console.print(f"removed segment {name!r}", highlight=False, soft_wrap=True)


def _fail(message: str) -> NoReturn:
    errors.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(EXIT_FAILURE)
