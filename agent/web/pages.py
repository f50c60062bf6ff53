"""The pages salespeople use: search, a contact, a company, their own activity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from agent.web.context import CsrfChecked, Database, PageViewer, state_of
from agent.web.render import flash, page
from storage import fields, history
from storage.contact_lookup import contact_by_id
from storage.edits import EditError, Snapshot, set_fields
from storage.fields import FieldError
from storage.profiles import company_profile, contact_profile
from storage.search import MAX_QUERY, search

router = APIRouter(include_in_schema=False)
PageNumber = Annotated[int, Query(alias="page", ge=1, le=history.MAX_PAGE)]


@router.get("/")
def home() -> Response:
    return RedirectResponse("/search", status_code=303)


@router.get("/search")
def search_page(
    request: Request,
    viewer: PageViewer,
    session: Database,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
) -> Response:
    found = search(session, q)
    return page(request, "search.html", me=viewer, q=q, found=found)


@router.get("/search/results")
def search_results(
    request: Request,
    viewer: PageViewer,
    session: Database,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
) -> Response:
    """The results alone, for the search box's as-you-type updates."""
    return page(request, "_results.html", me=viewer, q=q, found=search(session, q))


@router.get("/contacts/{contact_id}")
def contact_page(
    request: Request,
    contact_id: int,
    viewer: PageViewer,
    session: Database,
    page_number: PageNumber = 1,
) -> Response:
    contact = contact_by_id(session, contact_id)
    if contact is None:
        raise HTTPException(404)
    profile = contact_profile(session, viewer, contact, page=page_number)
    return page(request, "contact.html", me=viewer, c=profile, editable=fields.FIELDS)


@router.post("/contacts/{contact_id}/fields", dependencies=[CsrfChecked])
def contact_edit(
    request: Request,
    contact_id: int,
    viewer: PageViewer,
    session: Database,
    field: Annotated[str, Form(max_length=100)],
    version: Annotated[int, Form()],
    seen: Annotated[str, Form(max_length=10_000)] = "",
    value: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """A field edited from what the editor saw (``seen`` at ``version``): a change made by
    someone else since is never overwritten; it ends in a conflict shown on the page."""
    contact = contact_by_id(session, contact_id)
    if contact is None or not contact.emails:
        raise HTTPException(404)
    if field not in fields.FIELDS:
        raise HTTPException(400, f"not a field: {field}")
    base = Snapshot(contact_id, version, {field: seen or None})
    email = contact.emails[0].email
    session.rollback()
    try:
        outcome = set_fields(
            state_of(request).sessions,
            email,
            {field: value},
            user=f"user:{viewer.email}",
            base=base,
        )
    except (EditError, FieldError) as exc:
        flash(request, str(exc), "error")
        return RedirectResponse(f"/contacts/{contact_id}", status_code=303)
    if outcome.conflicts:
        flash(
            request,
            f"{field}: someone changed it since you opened the page; "
            "both values are kept as a conflict below.",
            "error",
        )
    elif outcome.kept:
        flash(
            request,
            f"{field}: someone set it since you opened the page; their value was kept.",
            "error",
        )
    else:
        flash(request, f"{field} saved.")
    return RedirectResponse(f"/contacts/{contact_id}", status_code=303)


@router.get("/companies/{company_id}")
def company_page(
    request: Request,
    company_id: int,
    viewer: PageViewer,
    session: Database,
    page_number: PageNumber = 1,
) -> Response:
    profile = company_profile(session, viewer, company_id, page=page_number)
    if profile is None:
        raise HTTPException(404)
    return page(request, "company.html", me=viewer, c=profile)


@router.get("/activity")
def activity_page(
    request: Request, viewer: PageViewer, session: Database, page_number: PageNumber = 1
) -> Response:
    return page(
        request,
        "activity.html",
        me=viewer,
        recent=history.my_recent(session, viewer, page=page_number),
        waiting=history.unanswered(session, viewer),
    )
