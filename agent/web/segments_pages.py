"""The segment pages, and tags on a contact's or a company's page.

Segments are for every signed-in user: a segment reads figures and tags,
which count only what the whole team may see. Tags are added and removed
with forms carrying the session's CSRF token, and recorded as the signed-in
person (``user:EMAIL``), as the CLI and the API do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from agent.web.context import CsrfChecked, Database, PageViewer
from agent.web.render import flash, page
from storage import segments, tags
from storage.models import Company, Contact
from storage.tags import TagError, TagLink
from storage.visibility import Viewer

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
MAX_PAGE = 1000
Kind = Literal["contacts", "companies"]
TagName = Annotated[str, Form(max_length=tags.MAX_TAG * 4)]


@router.get("/segments")
def segments_page(request: Request, viewer: PageViewer, session: Database) -> Response:
    rows = segments.list_segments(session)
    return page(request, "segments/list.html", me=viewer, rows=rows)


@router.get("/segments/{name}")
def segment_page(
    request: Request,
    name: str,
    viewer: PageViewer,
    session: Database,
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    segment = segments.get_segment(session, name)
    if segment is None:
        raise HTTPException(404, "no such segment")
    rows = segments.members(
        session, segment, limit=PER_PAGE + 1, offset=(page_number - 1) * PER_PAGE
    )
    return page(
        request,
        "segments/members.html",
        me=viewer,
        segment=segment,
        total=segments.count(session, segment),
        rows=rows[:PER_PAGE],
        page_number=page_number,
        has_more=len(rows) > PER_PAGE,
    )


@dataclass(frozen=True)
class Tagged:
    """What the tags partial shows: the subject, its page, and its tags."""

    id: int
    name: str
    tags: list[TagLink]
    base: str


@router.get("/contacts/{contact_id}/tags")
def contact_tags_page(
    request: Request, contact_id: int, viewer: PageViewer, session: Database
) -> Response:
    return _tags_page(request, viewer, session, "contacts", contact_id)


@router.get("/companies/{company_id}/tags")
def company_tags_page(
    request: Request, company_id: int, viewer: PageViewer, session: Database
) -> Response:
    return _tags_page(request, viewer, session, "companies", company_id)


@router.post("/contacts/{contact_id}/tags", dependencies=[CsrfChecked])
def contact_tag_add(
    request: Request, contact_id: int, viewer: PageViewer, session: Database, tag: TagName
) -> Response:
    return _change(request, session, viewer, "contacts", contact_id, tag, adding=True)


@router.post("/contacts/{contact_id}/tags/remove", dependencies=[CsrfChecked])
def contact_tag_remove(
    request: Request, contact_id: int, viewer: PageViewer, session: Database, tag: TagName
) -> Response:
    return _change(request, session, viewer, "contacts", contact_id, tag, adding=False)


@router.post("/companies/{company_id}/tags", dependencies=[CsrfChecked])
def company_tag_add(
    request: Request, company_id: int, viewer: PageViewer, session: Database, tag: TagName
) -> Response:
    return _change(request, session, viewer, "companies", company_id, tag, adding=True)


@router.post("/companies/{company_id}/tags/remove", dependencies=[CsrfChecked])
def company_tag_remove(
    request: Request, company_id: int, viewer: PageViewer, session: Database, tag: TagName
) -> Response:
    return _change(request, session, viewer, "companies", company_id, tag, adding=False)


def _tags_page(
    request: Request, viewer: Viewer, session: Session, kind: Kind, subject_id: int
) -> Response:
    return page(request, "segments/tags.html", me=viewer, c=_tagged(session, kind, subject_id))


def _subject(kind: Kind) -> tags.Kind:
    return "contact" if kind == "contacts" else "company"


def _tagged(session: Session, kind: Kind, subject_id: int) -> Tagged:
    name_of = Contact.display_name if kind == "contacts" else Company.name
    model = Contact if kind == "contacts" else Company
    found = session.execute(select(model.id, name_of).where(model.id == subject_id)).first()
    if found is None:
        raise HTTPException(404)
    base = f"/{kind}/{subject_id}"
    listed = tags.tags_of(session, _subject(kind), subject_id)
    return Tagged(subject_id, found[1] or f"#{subject_id}", listed, base)


def _change(
    request: Request,
    session: Session,
    viewer: Viewer,
    kind: Kind,
    subject_id: int,
    tag: str,
    *,
    adding: bool,
) -> Response:
    target = _tagged(session, kind, subject_id)
    who = f"user:{viewer.email}"
    try:
        if adding:
            done = tags.add_tag(session, _subject(kind), [subject_id], tag, source=who, actor=who)
        else:
            done = tags.remove_tag(session, _subject(kind), [subject_id], tag, actor=who)
    except TagError as exc:
        flash(request, str(exc), "error")
    else:
        verb = "added" if adding else "removed"
        flash(request, f"Tag “{done.tag}” {verb}." if done.ids else f"Tag “{done.tag}”: no change.")
    return RedirectResponse(f"{target.base}/tags", status_code=303)
