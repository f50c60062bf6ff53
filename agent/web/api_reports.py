"""The reports in the JSON API: ``/api/v1/reports/...``, the figures of ``crm-sync report``.

Authenticated like the rest of the API (:mod:`agent.web.api`): a personal
token or a signed-in session, read as its owner. The sources report shows
connectors and is for admins only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from agent.web.context import ApiAdmin, ApiViewer, Database
from storage import reports

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.get("/activity")
def activity_api(
    viewer: ApiViewer,
    session: Database,
    period: Annotated[str, Query(pattern="^(day|week|month)$")] = "week",
    by: Annotated[str, Query(pattern="^teammate$")] = "teammate",
    periods: Annotated[int, Query(ge=1, le=104)] = 8,
) -> reports.Activity:
    """Per teammate and period: emails sent and received, meetings, new contacts, median
    reply time, and threads waiting now (newest period)."""
    return reports.activity(session, viewer, period=period, by=by, periods=periods)


@router.get("/cooling")
def cooling_api(
    viewer: ApiViewer,
    session: Database,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    companies: bool = False,
) -> list[reports.Cooling]:
    """Contacts (or companies) going cold, strongest first."""
    return reports.cooling(session, viewer, limit=limit, companies=companies)


@router.get("/coverage")
def coverage_api(viewer: ApiViewer, session: Database) -> reports.Coverage:
    """Companies known by one teammate only, and companies by number of teammates."""
    return reports.coverage(session, viewer)


@router.get("/sources")
def sources_api(
    viewer: ApiAdmin, session: Database, days: Annotated[int, Query(ge=1, le=366)] = 30
) -> reports.Sources:
    """What each connector brought per day, its totals, and its interactions (admins only)."""
    return reports.sources(session, days=days)
