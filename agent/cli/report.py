"""``report``: the team's activity, relationships going cold, coverage, and the sources.

Each subcommand prints one of :mod:`storage.reports` as a table, as JSON
(``--json``, every field) or as CSV (``--csv``, one row per table row, for a
spreadsheet). Names and addresses come from mail: CSV cells are made plain,
and a cell a spreadsheet would take for a formula is quoted as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import click

from agent.cli.common import pass_app
from agent.cli.output import console, human, print_json, print_rows, write_csv
from agent.runtime.app import App
from agent.runtime.timing import duration_text
from storage import relationships, reports
from storage.visibility import Viewer

as_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")
as_csv_option = click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")


@click.group()
def report() -> None:
    """Reports on the team's work with its customers, and on what the connectors bring.

    Each prints a table; --json gives every field, --csv a spreadsheet's rows.
    """


def _emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    as_csv: bool,
    whole: Any,
    title: str,
    empty: str,
) -> None:
    if as_json:
        print_json(whole)
    elif as_csv:
        write_csv(rows, columns)
    else:
        print_rows(rows, columns, as_json=False, title=title, empty=empty)


def duration(seconds: int | None) -> str | None:
    return None if seconds is None else duration_text(timedelta(seconds=seconds))


ACTIVITY_COLUMNS = (
    "teammate",
    "period",
    "emails_sent",
    "emails_received",
    "meetings",
    "new_contacts",
    "median_reply_seconds",
    "unanswered",
)
ACTIVITY_TABLE = ("teammate", "period", "sent", "recv", "meet", "new", "reply", "wait")
"""Short headings and dates (sent, received, meetings, new contacts, median reply time,
threads waiting now), so that a row fits an 80-column terminal without cutting an address."""


def _activity_cells(row: reports.ActivityRow, period: str) -> dict[str, Any]:
    return {
        "teammate": row.teammate,
        "period": row.period.strftime("%Y-%m" if period == "month" else "%m-%d"),
        "sent": row.emails_sent,
        "recv": row.emails_received,
        "meet": row.meetings,
        "new": row.new_contacts,
        "reply": duration(row.median_reply_seconds),
        "wait": row.unanswered,
    }


@report.command("activity")
@click.option(
    "--by", type=click.Choice(reports.BY), default="teammate", show_default=True, help="Group by."
)
@click.option("--period", type=click.Choice(reports.PERIODS), default="week", show_default=True)
@click.option(
    "--periods",
    type=click.IntRange(min=1, max=104),
    default=8,
    show_default=True,
    help="How many periods, the current one last.",
)
@click.option(
    "--include-private", is_flag=True, help="Count private threads too (left out by default)."
)
@as_json_option
@as_csv_option
@pass_app
def report_activity(
    app: App,
    by: str,
    period: str,
    periods: int,
    include_private: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Per teammate and period: emails sent and received, meetings, new contacts, the median
    reply time, and threads waiting for an answer now.

    \b
    Example:
      crm-sync report activity --by teammate --period week --periods 4
    """
    app.require_schema()
    with app.sessions() as session:
        result = reports.activity(
            session,
            Viewer.cli(include_private=include_private),
            period=period,
            by=by,
            periods=periods,
        )
    if as_json or as_csv:
        rows = [asdict(row) for row in result.rows]
        columns: Sequence[str] = ACTIVITY_COLUMNS
    else:
        rows = [_activity_cells(row, period) for row in result.rows]
        columns = ACTIVITY_TABLE
    _emit(
        rows,
        columns,
        as_json=as_json,
        as_csv=as_csv,
        whole=asdict(result),
        title=f"Activity per {period}",
        empty="no activity in these periods",
    )


COOLING_COLUMNS = (
    "name",
    "email",
    "strength",
    "level",
    "last_at",
    "days_idle",
    "closest_teammate",
    "explanation",
)
COOLING_TABLE = ("name", "email", "strength", "days_idle", "closest_teammate")
"""What fits a terminal; --csv and --json add the level, the last date and why."""


@report.command("cooling")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=50, show_default=True)
@click.option("--companies", is_flag=True, help="Companies instead of contacts.")
@as_json_option
@as_csv_option
@pass_app
def report_cooling(app: App, limit: int, companies: bool, as_json: bool, as_csv: bool) -> None:
    """Relationships going cold: fewer interactions in the last 30 days than before,
    strongest first, with how long they have been idle and who knows them best.

    \b
    Example:
      crm-sync report cooling --limit 20 --companies
    """
    app.require_schema()
    relationships.refresh_stale_in_steps(app.sessions)
    with app.sessions() as session:
        found = reports.cooling(session, Viewer.cli(), limit=limit, companies=companies)
    rows = [asdict(row) for row in found]
    _emit(
        rows,
        COOLING_COLUMNS if as_csv else COOLING_TABLE,
        as_json=as_json,
        as_csv=as_csv,
        whole=rows,
        title="Going cold",
        empty="nothing is cooling",
    )


COVERAGE_COLUMNS = ("company", "domain", "teammate", "interactions_365", "strength")


@report.command("coverage")
@as_json_option
@as_csv_option
@pass_app
def report_coverage(app: App, as_json: bool, as_csv: bool) -> None:
    """Companies only one teammate knows (the bus factor), and how many companies are
    known by 0, 1, 2 and 3 or more teammates.

    \b
    Example:
      crm-sync report coverage --csv > coverage.csv
    """
    app.require_schema()
    relationships.refresh_stale_in_steps(app.sessions)
    with app.sessions() as session:
        result = reports.coverage(session, Viewer.cli())
    rows = [asdict(row) for row in result.companies]
    _emit(
        rows,
        COVERAGE_COLUMNS,
        as_json=as_json,
        as_csv=as_csv,
        whole=asdict(result),
        title="Companies one teammate knows",
        empty="no company depends on one teammate",
    )
    if not (as_json or as_csv):
        bands = ", ".join(f"{band}: {n}" for band, n in result.by_teammates.items())
        console.print(f"companies by teammates who know them: {bands}")


SOURCES_COLUMNS = ("connector", "items", "logged", "quarantined", "skipped", "limited")


def _source_cells(connector: str, measures: Mapping[str, int]) -> dict[str, Any]:
    def reasons(prefix: str) -> dict[str, int]:
        return {m[len(prefix) :]: n for m, n in measures.items() if m.startswith(prefix)}

    return {
        "connector": connector,
        **{m: measures.get(m, 0) for m in ("items", "logged", "quarantined")},
        "skipped": reasons("skipped:"),
        "limited": reasons("limited:"),
    }


@report.command("sources")
@click.option(
    "--days",
    type=click.IntRange(min=1, max=366),
    default=30,
    show_default=True,
    help="How many days, today last.",
)
@as_json_option
@as_csv_option
@pass_app
def report_sources(app: App, days: int, as_json: bool, as_csv: bool) -> None:
    """What each connector brought: items read, logged, quarantined, skipped and limited by
    reason, per day and in total, and the interactions it holds.

    \b
    Example:
      crm-sync report sources --days 7
    """
    app.require_schema()
    with app.sessions() as session:
        result = reports.sources(session, days=days)
    if as_json:
        print_json(asdict(result))
        return
    if as_csv:
        daily = [{"day": d.day, **_source_cells(d.connector, d.measures)} for d in result.per_day]
        flat = [
            {**r, "skipped": _pairs(r["skipped"]), "limited": _pairs(r["limited"])} for r in daily
        ]
        write_csv(flat, ("day", *SOURCES_COLUMNS))
        return
    totals = [
        {**_source_cells(t.connector, t.measures), "interactions": t.interactions}
        for t in result.totals
    ]
    print_rows(
        totals,
        (*SOURCES_COLUMNS, "interactions"),
        as_json=False,
        title=f"Sources, last {days} days",
        empty="no connector has brought anything yet",
    )


def _pairs(reasons: Mapping[str, int]) -> str:
    """Reasons as ``reason=n`` pairs in one cell."""
    return human(reasons) if reasons else ""
