"""Admin pages: connector health, skipped and quarantined mail, conflicts, the audit log,
users and the never-log list.

Each reads or changes through the functions the CLI uses (``status``,
``conflicts resolve``, ``audit``, ``users list``), so the two cannot drift.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from agent.runtime.health import connector_health, quarantine_rows
from agent.web.context import AdminViewer, CsrfChecked, Database, state_of
from agent.web.render import flash, page
from storage import audit
from storage.edits import EditError, list_conflicts, resolve_conflict
from storage.fields import FieldError
from storage.models import utcnow
from storage.users import list_users

router = APIRouter(prefix="/admin", include_in_schema=False)


@router.get("")
def admin_home() -> Response:
    return RedirectResponse("/admin/connectors", status_code=303)


@router.get("/connectors")
def connectors_page(request: Request, viewer: AdminViewer, session: Database) -> Response:
    settings = state_of(request).app.settings
    health = connector_health(settings, session, utcnow())
    quarantined = quarantine_rows(session)[:200]
    return page(request, "admin/connectors.html", me=viewer, health=health, quarantined=quarantined)


@router.get("/conflicts")
def conflicts_page(
    request: Request, viewer: AdminViewer, session: Database, resolved: bool = False
) -> Response:
    rows = list_conflicts(session, include_resolved=resolved)
    return page(request, "admin/conflicts.html", me=viewer, conflicts=rows, resolved=resolved)


@router.post("/conflicts/{conflict_id}/resolve", dependencies=[CsrfChecked])
def conflict_resolve(
    request: Request,
    conflict_id: int,
    viewer: AdminViewer,
    keep: Annotated[Literal["manual", "latest", "value"], Form()],
    value: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    try:
        done = resolve_conflict(
            state_of(request).sessions,
            conflict_id,
            user=f"user:{viewer.email}",
            value=value if keep == "value" else None,
            keep=None if keep == "value" else keep,
        )
    except (EditError, FieldError, ValueError) as exc:
        flash(request, f"Conflict #{conflict_id}: {exc}", "error")
    else:
        flash(
            request, f"Conflict #{conflict_id} resolved: {done.field} = {done.value or '(empty)'}."
        )
    return RedirectResponse("/admin/conflicts", status_code=303)


@router.get("/audit")
def audit_page(
    request: Request,
    viewer: AdminViewer,
    session: Database,
    contact: Annotated[int | None, Query(ge=1)] = None,
    actor: Annotated[str, Query(max_length=200)] = "",
    days: Annotated[int, Query(ge=1, le=3650)] = 30,
) -> Response:
    rows = audit.entries(
        session,
        entity="contact" if contact is not None else None,
        entity_id=contact,
        actor=actor.strip() or None,
        since=utcnow() - timedelta(days=days),
    )
    return page(
        request, "admin/audit.html", me=viewer, rows=rows, contact=contact, actor=actor, days=days
    )


@router.get("/users")
def users_page(request: Request, viewer: AdminViewer, session: Database) -> Response:
    settings = state_of(request).app.settings
    return page(
        request,
        "admin/users.html",
        me=viewer,
        users=list_users(session),
        never_log=settings.privacy.never_log,
        config_file=state_of(request).app.config_file,
    )
