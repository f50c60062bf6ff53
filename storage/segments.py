"""Saved segments: a named question over contacts or companies, asked afresh on every read.

A segment is a :class:`Definition` -- relationship figures (level, strength,
idle days, trend, closest teammate), a tag and a company domain -- kept as
JSON in ``segments`` and turned into *one* SQL statement by
:func:`members`: the database filters, orders and pages, so reading the
twenty strongest customers of a large team never loads every contact into
Python. The same conditions answer :func:`count` and :func:`member_ids` (what
a tagging rule applies, ``storage.tags.apply_rule``).

A subject without a figures row is read with the figures of no history at
all (level and trend ``none``, strength 0, never seen): "idle for 45 days"
holds for someone nobody has ever written to.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import ColumnElement, Select, delete, exists, func, literal, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage import audit
from storage.contact_lookup import first_domain, first_email
from storage.models import (
    Company,
    CompanyDomain,
    CompanyFigures,
    CompanyTag,
    Contact,
    ContactFigures,
    ContactTag,
    Segment,
    Tag,
    utcnow,
)
from storage.relationship_rules import LEVELS, TRENDS, level_at_least
from storage.tags import TagError, normalise_tag

Subject = Literal["contact", "company"]
SUBJECTS: tuple[Subject, ...] = ("contact", "company")
MAX_NAME = 100
MAX_LIMIT = 1000
MAX_IDLE_DAYS = 36_500
_NAME = re.compile(r"^\w[\w .-]*$")


class SegmentError(ValueError):
    """A segment that cannot be saved or read as asked; the message names what is wrong."""


class Definition(BaseModel):
    """Who belongs: every condition given must hold (an empty definition is everyone)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level_at_least: str | None = Field(None, description=f"one of {', '.join(LEVELS)}")
    strength_at_least: float | None = Field(None, ge=0, allow_inf_nan=False)
    idle_days_at_least: int | None = Field(None, ge=0, le=MAX_IDLE_DAYS)
    """No interaction for at least this many days (or none ever)."""
    idle_days_at_most: int | None = Field(None, ge=0, le=MAX_IDLE_DAYS)
    """An interaction within this many days."""
    trend: str | None = Field(None, description=f"one of {', '.join(TRENDS)}")
    tag: str | None = None
    closest_teammate: str | None = Field(None, max_length=320)
    """The teammate who knows the subject best (their address): what that teammate owns."""
    company_domain: str | None = Field(None, max_length=253)

    @field_validator("level_at_least")
    @classmethod
    def _level(cls, value: str | None) -> str | None:
        return _one_of(value, LEVELS)

    @field_validator("trend")
    @classmethod
    def _trend(cls, value: str | None) -> str | None:
        return _one_of(value, TRENDS)

    @field_validator("tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalise_tag(value)
        except TagError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("closest_teammate")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = value.strip().lower()
        if "@" not in address.strip("@") or any(c.isspace() for c in address):
            raise ValueError(f"{value!r} is not an email address")
        return address

    @field_validator("company_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        domain = value.strip().rstrip(".").lower().rpartition("@")[2]
        if "." not in domain or any(c.isspace() for c in domain):
            raise ValueError(f"{value!r} is not a domain (acme.example)")
        return domain

    def stored(self) -> dict[str, Any]:
        """The conditions given, as the ``definition`` column keeps them."""
        return self.model_dump(exclude_none=True)


def _one_of(value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    wanted = value.strip().lower()
    if wanted not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")
    return wanted


KEYS = tuple(Definition.model_fields)


def parse_definition(raw: Mapping[str, Any]) -> Definition:
    """``raw`` validated; a :class:`SegmentError` naming every key that is wrong."""
    try:
        return Definition.model_validate(dict(raw))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"]) or "definition"
            if error["type"] == "extra_forbidden":
                problems.append(f"{key}: not a segment condition (known: {', '.join(KEYS)})")
            else:
                problems.append(f"{key}: {error['msg'].removeprefix('Value error, ')}")
        raise SegmentError("; ".join(problems)) from None


def check_name(name: str) -> str:
    """A segment's name as stored: trimmed; letters, digits, spaces, ``. - _``."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise SegmentError("a segment needs a name")
    if len(cleaned) > MAX_NAME:
        raise SegmentError(f"a segment name is at most {MAX_NAME} characters")
    if not _NAME.match(cleaned):
        raise SegmentError(f"{name!r}: a segment name is letters, digits, spaces, '.', '-' and '_'")
    return cleaned


def check_subject(subject: str) -> Subject:
    if subject not in SUBJECTS:
        raise SegmentError(f"subject: {subject!r} is not one of {', '.join(SUBJECTS)}")
    return subject


# -- saving ------------------------------------------------------------------------------------


def add_segment(
    session: Session,
    name: str,
    subject: str,
    definition: Mapping[str, Any],
    *,
    actor: str,
) -> Segment:
    """Save a segment; a :class:`SegmentError` when the name is taken or anything is wrong."""
    name, subject = check_name(name), check_subject(subject)
    stored = parse_definition(definition).stored()
    if get_segment(session, name) is not None:
        raise SegmentError(f"a segment named {name!r} exists already (remove it first)")
    segment = Segment(name=name, subject=subject, definition=stored, created_by=actor)
    session.add(segment)
    session.flush()
    audit.record(
        session,
        [
            audit.Change(
                actor,
                "add",
                "segment",
                segment.id,
                None,
                {"name": name, "subject": subject, **stored},
            )
        ],
    )
    return segment


def remove_segment(session: Session, name: str, *, actor: str) -> bool:
    """Remove a saved segment; False when there was none. Tags it put on people stay."""
    segment = get_segment(session, name)
    if segment is None:
        return False
    before = {"name": segment.name, "subject": segment.subject, **segment.definition}
    session.execute(delete(Segment).where(Segment.id == segment.id))
    audit.record(session, [audit.Change(actor, "remove", "segment", segment.id, before, None)])
    return True


def get_segment(session: Session, name: str) -> Segment | None:
    """The segment named ``name``, ignoring case and extra spaces (one name, one segment)."""
    wanted = " ".join(name.split()).lower()
    return session.scalar(select(Segment).where(func.lower(Segment.name) == wanted))


def require_segment(session: Session, name: str) -> Segment:
    segment = get_segment(session, name)
    if segment is None:
        raise SegmentError(f"no segment named {name!r}")
    return segment


@dataclass(frozen=True)
class SegmentSummary:
    name: str
    subject: str
    definition: dict[str, Any]
    created_by: str
    created_at: datetime
    members: int


def list_segments(session: Session, *, now: datetime | None = None) -> list[SegmentSummary]:
    """Every saved segment by name, with how many members it has now."""
    return [
        SegmentSummary(
            name=s.name,
            subject=s.subject,
            definition=dict(s.definition),
            created_by=s.created_by,
            created_at=s.created_at,
            members=count(session, s, now=now),
        )
        for s in session.scalars(select(Segment).order_by(Segment.name))
    ]


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A contact or company in a segment, with the figures that put it there."""

    id: int
    name: str | None
    email: str | None
    """A contact's first address; None for a company."""
    domain: str | None
    """A company's first domain; for a contact, its company's."""
    level: str
    strength: float
    last_at: datetime | None
    idle_days: int | None
    trend: str
    closest_teammate: str | None


@dataclass(frozen=True)
class _Shape:
    """What differs between a segment of contacts and one of companies."""

    entity: Any
    figures: Any
    figures_key: InstrumentedAttribute[int]
    link_key: InstrumentedAttribute[int]
    company_id: InstrumentedAttribute[Any]
    name: InstrumentedAttribute[Any]


_SHAPES = {
    "contact": _Shape(
        Contact,
        ContactFigures,
        ContactFigures.contact_id,
        ContactTag.contact_id,
        Contact.company_id,
        Contact.display_name,
    ),
    "company": _Shape(
        Company,
        CompanyFigures,
        CompanyFigures.company_id,
        CompanyTag.company_id,
        Company.id,
        Company.name,
    ),
}


def _conditions(shape: _Shape, definition: Definition, now: datetime) -> list[ColumnElement[bool]]:
    """One SQL condition per condition of the definition."""
    figures = shape.figures
    level = func.coalesce(figures.level, literal("none"))
    found: list[ColumnElement[bool]] = []
    if definition.level_at_least is not None:
        found.append(level.in_(level_at_least(definition.level_at_least)))
    if definition.strength_at_least is not None:
        found.append(func.coalesce(figures.strength, 0.0) >= definition.strength_at_least)
    if definition.idle_days_at_least is not None:
        cutoff = now - timedelta(days=definition.idle_days_at_least)
        found.append(or_(figures.last_at.is_(None), figures.last_at <= cutoff))
    if definition.idle_days_at_most is not None:
        found.append(figures.last_at > now - timedelta(days=definition.idle_days_at_most + 1))
    if definition.trend is not None:
        found.append(func.coalesce(figures.trend, literal("none")) == definition.trend)
    if definition.closest_teammate is not None:
        found.append(func.lower(figures.closest_teammate) == definition.closest_teammate)
    if definition.tag is not None:
        found.append(_tagged(shape, definition.tag))
    if definition.company_domain is not None:
        found.append(
            shape.company_id.in_(
                select(CompanyDomain.company_id).where(
                    CompanyDomain.domain == definition.company_domain
                )
            )
        )
    return found


def _tagged(shape: _Shape, tag: str) -> ColumnElement[bool]:
    link = shape.link_key.class_
    return exists().where(shape.link_key == shape.entity.id, link.tag_id == Tag.id, Tag.name == tag)


def _base(segment: Segment, now: datetime, *columns: Any) -> Select[Any]:
    shape = _SHAPES[check_subject(segment.subject)]
    definition = parse_definition(segment.definition)
    return (
        select(*columns)
        .select_from(shape.entity)
        .outerjoin(shape.figures, shape.figures_key == shape.entity.id)
        .where(*_conditions(shape, definition, now))
    )


def member_ids(segment: Segment, *, now: datetime | None = None) -> Select[Any]:
    """The ids of the segment's members, as a statement to select from or to test ``IN``."""
    shape = _SHAPES[check_subject(segment.subject)]
    return _base(segment, now or utcnow(), shape.entity.id)


def count(session: Session, segment: Segment, *, now: datetime | None = None) -> int:
    query = _base(segment, now or utcnow(), func.count())
    return int(session.scalar(query) or 0)


def members(
    session: Session,
    segment: Segment,
    *,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> list[Member]:
    """The segment's members, strongest first, ``limit`` of them from ``offset``: one query."""
    if not 1 <= limit <= MAX_LIMIT:
        raise SegmentError(f"limit: from 1 to {MAX_LIMIT}")
    if offset < 0:
        raise SegmentError("offset: 0 or more")
    now = now or utcnow()
    shape = _SHAPES[check_subject(segment.subject)]
    figures, entity = shape.figures, shape.entity
    strength = func.coalesce(figures.strength, 0.0)
    email = first_email(entity.id) if entity is Contact else literal(None)
    query = (
        _base(
            segment,
            now,
            entity.id,
            shape.name,
            email,
            first_domain(shape.company_id),
            func.coalesce(figures.level, literal("none")),
            strength,
            figures.last_at,
            func.coalesce(figures.trend, literal("none")),
            figures.closest_teammate,
        )
        .order_by(strength.desc(), entity.id)
        .limit(limit)
        .offset(offset)
    )
    return [
        Member(
            id=row[0],
            name=row[1],
            email=row[2],
            domain=row[3],
            level=row[4],
            strength=float(row[5]),
            last_at=row[6],
            idle_days=None if row[6] is None else max(0, (now - row[6]).days),
            trend=row[7],
            closest_teammate=row[8],
        )
        for row in session.execute(query)
    ]
