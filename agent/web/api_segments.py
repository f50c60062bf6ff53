"""Tags and saved segments in the JSON API (``/api/v1``), beside :mod:`agent.web.api`.

Read and written with a personal token or a signed-in session, like the
rest of the API. A write made with a session cookie must also send the
session's CSRF token in the ``X-CSRF-Token`` header (the value every page's
forms carry): a browser attaches the cookie to a request another site
makes, but that site cannot read the token. A token-authenticated write
needs no CSRF token, since no browser sends a bearer token by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from agent.web.context import BEARER, ApiViewer, Database, Forbidden
from agent.web.security import csrf_ok
from storage import segments, tags
from storage.contact_lookup import contact_by_id
from storage.segments import Member, SegmentSummary
from storage.tags import TagCount, TagError, TagLink
from storage.visibility import Viewer

CSRF_HEADER = "x-csrf-token"

router = APIRouter(prefix="/api/v1", tags=["segments"])


def api_writer(
    request: Request,
    viewer: ApiViewer,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Viewer:
    """The API reader, who may write: with a token, or with a session and its CSRF token."""
    if bearer is None and not csrf_ok(request.session, request.headers.get(CSRF_HEADER)):
        raise Forbidden
    return viewer


ApiWriter = Annotated[Viewer, Depends(api_writer)]


class NewTag(BaseModel):
    tag: str = Field(min_length=1, max_length=tags.MAX_TAG * 4)


@dataclass(frozen=True)
class SubjectTags:
    contact_id: int
    tags: list[TagLink]


@dataclass(frozen=True)
class SegmentMembers:
    name: str
    subject: str
    definition: dict[str, Any]
    members: int
    """How many there are in all; ``rows`` holds ``limit`` of them from ``offset``."""
    limit: int
    offset: int
    rows: list[Member]


@router.get("/tags")
def tags_api(viewer: ApiViewer, session: Database) -> list[TagCount]:
    """Every tag with how many contacts and companies carry it, most used first."""
    return tags.list_tags(session)


@router.get("/segments")
def segments_api(viewer: ApiViewer, session: Database) -> list[SegmentSummary]:
    """Every saved segment with its conditions and how many members it has now."""
    return segments.list_segments(session)


@router.get("/segments/{name}")
def segment_api(
    name: str,
    viewer: ApiViewer,
    session: Database,
    limit: Annotated[int, Query(ge=1, le=segments.MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SegmentMembers:
    """A segment's members with their figures, strongest first."""
    segment = segments.get_segment(session, name)
    if segment is None:
        raise HTTPException(404, "no such segment")
    return SegmentMembers(
        name=segment.name,
        subject=segment.subject,
        definition=dict(segment.definition),
        members=segments.count(session, segment),
        limit=limit,
        offset=offset,
        rows=segments.members(session, segment, limit=limit, offset=offset),
    )


@router.post("/contacts/{contact_id}/tags", status_code=201)
def contact_tag_add(
    contact_id: int, body: NewTag, viewer: ApiWriter, session: Database
) -> SubjectTags:
    """Tag a contact (source ``user:EMAIL``); tagging it again changes nothing."""
    return _change(session, viewer, contact_id, body.tag, adding=True)


@router.delete("/contacts/{contact_id}/tags/{tag}")
def contact_tag_remove(
    contact_id: int, tag: str, viewer: ApiWriter, session: Database
) -> SubjectTags:
    """Take a tag off a contact, whoever put it there; removing it again changes nothing."""
    return _change(session, viewer, contact_id, tag, adding=False)


def _change(
    session: Session, viewer: Viewer, contact_id: int, tag: str, *, adding: bool
) -> SubjectTags:
    if contact_by_id(session, contact_id) is None:
        raise HTTPException(404, "no such contact")
    who = f"user:{viewer.email}"
    try:
        if adding:
            tags.add_tag(session, "contact", [contact_id], tag, source=who, actor=who)
        else:
            tags.remove_tag(session, "contact", [contact_id], tag, actor=who)
    except TagError as exc:
        raise HTTPException(422, str(exc)) from None
    return SubjectTags(contact_id, tags.tags_of(session, "contact", contact_id))
