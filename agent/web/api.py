"""The JSON API under ``/api/v1``: what the pages show, for other tools.

Read with a personal token (``crm-sync tokens create``) as
``Authorization: Bearer crm_...``, or a signed-in browser session. The same
:class:`~storage.visibility.Viewer` filters every answer, so a token sees
exactly what its owner sees on the pages. The OpenAPI document is at
``/api/v1/openapi.json``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from agent.runtime.health import connector_status
from agent.web.context import ApiAdmin, ApiViewer, Database, state_of
from storage import history
from storage.contact_lookup import contact_by_id
from storage.history import Entry, Timeline
from storage.models import utcnow
from storage.profiles import (
    CompanyProfile,
    ContactProfile,
    company_profile,
    contact_profile,
)
from storage.search import MAX_QUERY, SearchResult, search

router = APIRouter(prefix="/api/v1", tags=["crm"])
PageNumber = Annotated[int, Query(ge=1, le=history.MAX_PAGE)]


@router.get("/me")
def me(viewer: ApiViewer) -> dict[str, Any]:
    """Who the token or session belongs to."""
    return {"email": viewer.email, "role": viewer.role}


@router.get("/search")
def search_api(
    viewer: ApiViewer,
    session: Database,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY)],
) -> SearchResult:
    """Contacts and companies whose name, address, company or domain contains ``q``."""
    return search(session, q)


@router.get("/contacts/{contact_id}")
def contact_api(
    contact_id: int, viewer: ApiViewer, session: Database, page: PageNumber = 1
) -> ContactProfile:
    """A contact: fields with provenance, conflicts, last conversation, teammates, timeline."""
    contact = contact_by_id(session, contact_id)
    if contact is None:
        raise HTTPException(404, "no such contact")
    return contact_profile(session, viewer, contact, page=page)


@router.get("/contacts/{contact_id}/interactions")
def contact_interactions_api(
    contact_id: int, viewer: ApiViewer, session: Database, page: PageNumber = 1
) -> Timeline:
    """A contact's interactions, newest first, 25 a page."""
    if contact_by_id(session, contact_id) is None:
        raise HTTPException(404, "no such contact")
    return history.timeline(session, viewer, history.contact_interactions(contact_id), page=page)


@router.get("/companies/{company_id}")
def company_api(
    company_id: int, viewer: ApiViewer, session: Database, page: PageNumber = 1
) -> CompanyProfile:
    """A company: domains, people, first and last contact, teammates, timeline."""
    profile = company_profile(session, viewer, company_id, page=page)
    if profile is None:
        raise HTTPException(404, "no such company")
    return profile


@router.get("/interactions/{interaction_id}")
def interaction_api(interaction_id: int, viewer: ApiViewer, session: Database) -> Entry:
    """One email or meeting, with its participants."""
    entry = history.interaction(session, viewer, interaction_id)
    if entry is None:
        raise HTTPException(404, "no such interaction")
    return entry


@router.get("/status")
def status_api(request: Request, viewer: ApiAdmin, session: Database) -> list[dict[str, Any]]:
    """Every connector's health, as ``crm-sync status --json`` prints it (admins only)."""
    return connector_status(state_of(request).app.settings, session, utcnow())
