"""The report pages: each a chart drawn on the server over the table it sums up.

Thin views over :mod:`storage.reports` (the same figures as ``crm-sync
report`` and ``/api/v1/reports``), read as the signed-in person; the
sources report shows connectors, so it is for admins, like the admin pages.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from agent.web import charts
from agent.web.context import AdminViewer, Database, PageViewer
from agent.web.render import page
from storage import reports

router = APIRouter(include_in_schema=False)

Period = Annotated[str, Query(pattern="^(day|week|month)$")]
Periods = Annotated[int, Query(ge=1, le=52)]
Limit = Annotated[int, Query(ge=1, le=200)]
Days = Annotated[int, Query(ge=1, le=90)]
ACTIVITY_SERIES = ("emails sent", "emails received", "meetings")
SOURCE_SERIES = ("logged", "skipped", "limited", "quarantined")


@router.get("/reports/activity")
def activity_page(
    request: Request,
    viewer: PageViewer,
    session: Database,
    period: Period = "week",
    periods: Periods = 8,
) -> Response:
    found = reports.activity(session, viewer, period=period, periods=periods)
    return page(
        request,
        "reports/activity.html",
        me=viewer,
        report=found,
        chart=activity_chart(found),
        tab="activity",
    )


def reasons(measures: dict[str, int], kind: str) -> str:
    """``skipped:bulk`` and ``skipped:chat`` as ``bulk 2, chat 1``."""
    prefix = kind + ":"
    found = sorted((m[len(prefix) :], n) for m, n in measures.items() if m.startswith(prefix))
    return ", ".join(f"{reason} {n}" for reason, n in found) or "—"


def activity_chart(found: reports.Activity) -> charts.Svg:
    """A group per teammate, a bar per period (oldest first), stacked by kind."""
    by_teammate: dict[str, list[charts.Bar]] = {t: [] for t in found.teammates}
    for row in found.rows:
        values = (row.emails_sent, row.emails_received, row.meetings)
        label = f"{found.period} of {row.period.isoformat()}"
        tick = row.period.strftime("%b" if found.period == "month" else "%m-%d")
        by_teammate[row.teammate].append(charts.Bar(label, values, tick))
    groups = [charts.Group(teammate, bars) for teammate, bars in by_teammate.items()]
    title = f"Emails and meetings per teammate, one bar per {found.period}, oldest first"
    return charts.columns(title, ACTIVITY_SERIES, groups)


@router.get("/reports/cooling")
def cooling_page(
    request: Request,
    viewer: PageViewer,
    session: Database,
    limit: Limit = 50,
    companies: bool = False,
) -> Response:
    found = reports.cooling(session, viewer, limit=limit, companies=companies)
    bars = [
        charts.Bar(
            row.name or row.email or str(row.id), (round(row.before_90 / 3, 1), row.recent_30)
        )
        for row in found
    ]
    chart = charts.rows(
        "Interactions per 30 days: before, and in the last 30 days",
        ("before (per 30 days)", "last 30 days"),
        bars,
    )
    return page(
        request,
        "reports/cooling.html",
        me=viewer,
        rows=found,
        chart=chart,
        companies=companies,
        tab="cooling",
    )


@router.get("/reports/coverage")
def coverage_page(request: Request, viewer: PageViewer, session: Database) -> Response:
    found = reports.coverage(session, viewer)
    bars = [
        charts.Bar(f"{row.company} · {row.teammate or '?'}", (row.interactions_365,))
        for row in found.companies
    ]
    chart = charts.rows(
        "Interactions in 365 days with companies one teammate knows",
        ("interactions in 365 days",),
        bars,
    )
    bands = charts.rows(
        "Companies by how many teammates know them",
        ("companies",),
        [charts.Bar(f"{band} teammates", (n,)) for band, n in found.by_teammates.items()],
    )
    return page(
        request,
        "reports/coverage.html",
        me=viewer,
        report=found,
        chart=chart,
        bands=bands,
        tab="coverage",
    )


@router.get("/reports/sources")
def sources_page(
    request: Request, viewer: AdminViewer, session: Database, days: Days = 30
) -> Response:
    found = reports.sources(session, days=days)
    per_day: dict[str, list[float]] = {d.isoformat(): [0, 0, 0, 0] for d in found.days}
    for row in found.per_day:
        figures = per_day[row.day.isoformat()]
        for measure, n in row.measures.items():
            kind = measure.partition(":")[0]
            if kind in SOURCE_SERIES:
                figures[SOURCE_SERIES.index(kind)] += n
    groups = [charts.Group(day[5:], [charts.Bar(day, values)]) for day, values in per_day.items()]
    chart = charts.columns("What the connectors brought per day", SOURCE_SERIES, groups)
    return page(
        request,
        "reports/sources.html",
        me=viewer,
        report=found,
        chart=chart,
        days=days,
        reasons=reasons,
        tab="sources",
    )
