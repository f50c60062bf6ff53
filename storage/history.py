"""What the team's history with a contact or a company is, as a reader may see it.

Timelines, the last conversation, the teammates who know someone and a
salesperson's own recent work, each read with :func:`storage.visibility.visible`
applied in the query: there is no way to ask for them without a viewer.

A *teammate* is an address of the team: a user's sign-in address, a mailbox a
user owns, or the account a connector reads. Counting a teammate's
interactions with someone is counting the visible interactions both took
part in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    func,
    null,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from storage.models import (
    Contact,
    Interaction,
    InteractionParticipant,
    SyncState,
    User,
    UserMailbox,
    utcnow,
)
from storage.visibility import (
    KEPT,
    Viewer,
    hidden_count,
    owned_by,
    visible,
    visible_participation,
)

Rows = Select[*tuple[Any, ...]]
"""A statement of columns."""
PAGE = 25
MAX_PAGE = 400
"""Pages deeper than this are not offered: older history is a search or an export."""
KNOWN_SAMPLE = 1_000
"""Interactions, the newest, that say which teammates know someone (``who_knows``)."""


@dataclass(frozen=True)
class Person:
    email: str
    name: str | None
    role: str
    contact_id: int | None
    teammate: bool


@dataclass(frozen=True)
class Entry:
    """One interaction on a timeline."""

    id: int
    kind: str
    occurred_at: datetime
    subject: str | None
    snippet: str | None
    direction: str
    visibility: str
    thread: str | None
    people: tuple[Person, ...]
    status: str = "active"

    @property
    def teammates(self) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.teammate)


@dataclass(frozen=True)
class Timeline:
    entries: tuple[Entry, ...]
    page: int
    has_more: bool
    hidden: int
    """Interactions on this timeline the viewer may not read (private threads of others)."""


@dataclass(frozen=True)
class Teammate:
    email: str
    name: str | None
    interactions: int
    last_at: datetime


def team_of(session: Session) -> frozenset[str]:
    """Every address that is the team's own, read once per session: a report or a batch
    asks several times, and they change only when an admin adds a user or a connector.
    (A page's statements test against :data:`TEAM` instead, and need no read.)"""
    held: frozenset[str] | None = session.info.get("team")
    if held is None:
        held = session.info["team"] = frozenset(session.scalars(TEAM))
    return held


_TEAM_ROWS = union_all(
    select(User.email.label("address"), null().label("owner")),
    select(UserMailbox.account, func.coalesce(User.display_name, User.email)).join(
        User, User.id == UserMailbox.user_id
    ),
    select(SyncState.account, null()).where(SyncState.account.is_not(None)),
).subquery("team")
TEAM = select(_TEAM_ROWS.c.address)
"""Every address of the team, for a query to test against (``email.in_(TEAM)``): the
statement stays the same whoever joins the team, and a page needs no read of its own."""
_OWNERS = (
    select(_TEAM_ROWS.c.address, func.max(_TEAM_ROWS.c.owner).label("owner"))
    .group_by(_TEAM_ROWS.c.address)
    .subquery("owner")
)
"""Each address of the team once, with the name of the user whose mailbox it is (their
display name, else their sign-in address: a mailbox is one user's), or NULL."""


_SUBJECT = bindparam("subject", type_=Integer)


@dataclass(frozen=True)
class Among:
    """Whose history: one contact's (``company`` false) or the people of one company's,
    ``subject`` by id. A history is read in time order from the participants' own index,
    interaction rows being read only for the entries shown.

    The statements that read a history are built once per reader and kept (building
    one cost more Python than running it): they hold :attr:`condition`, which names
    the subject by a parameter, and are run with :attr:`params`."""

    company: bool
    subject: int

    @property
    def condition(self) -> ColumnElement[bool]:
        return subject_condition(self.company)

    @property
    def params(self) -> dict[str, int]:
        return {"subject": self.subject}


_OF_CONTACT = InteractionParticipant.contact_id == _SUBJECT
_OF_COMPANY = InteractionParticipant.contact_id.in_(
    select(Contact.id).where(Contact.company_id == _SUBJECT)
)


def subject_condition(company: bool) -> ColumnElement[bool]:
    """:attr:`Among.condition` for any contact's (or company's) history."""
    return _OF_COMPANY if company else _OF_CONTACT


def contact_interactions(contact_id: int) -> Among:
    return Among(company=False, subject=contact_id)


def company_interactions(company_id: int) -> Among:
    return Among(company=True, subject=company_id)


def timeline(
    session: Session, viewer: Viewer, among: Among, *, page: int = 1, size: int = PAGE
) -> Timeline:
    """The interactions ``among`` people, newest first, ``size`` at a time; the first
    page's rows also carry the held-back count (:func:`_hidden`), one round trip less."""
    page = _bounded(page)
    rows = session.execute(_timeline_rows(viewer, among.company, page, size), among.params).all()
    if page > 1 or viewer.include_private:
        hidden = 0
    else:
        hidden = rows[0].hidden if rows else _hidden(session, viewer, among)
    return _page(session, rows, page, size, hidden)


@lru_cache(maxsize=KEPT)
def _timeline_rows(viewer: Viewer, company: bool, page: int, size: int) -> Rows:
    rows = _window(viewer, newest_ids(viewer, subject_condition(company)), page, size)
    if page > 1 or viewer.include_private:
        return rows
    return rows.add_columns(_hidden_count(viewer, company).scalar_subquery().label("hidden"))


def last_conversation(session: Session, viewer: Viewer, among: Among) -> Entry | None:
    found = session.scalars(newest_ids(viewer, among.condition).limit(1), among.params).first()
    return interaction(session, viewer, found) if found is not None else None


def first_and_last(
    session: Session, viewer: Viewer, among: Among
) -> tuple[datetime | None, datetime | None]:
    first, last = session.execute(_first_and_last(viewer, among.company), among.params).one()
    return first, last


@lru_cache(maxsize=KEPT)
def _first_and_last(viewer: Viewer, company: bool) -> Rows:
    at = InteractionParticipant.occurred_at
    condition = subject_condition(company)
    return select(func.min(at), func.max(at)).where(condition, visible_participation(viewer))


def who_knows(session: Session, viewer: Viewer, among: Among, *, limit: int = 10) -> list[Teammate]:
    """The teammates who took part in the most of the newest :data:`KNOWN_SAMPLE` visible
    interactions ``among`` people, then the most recent: a page view reads a bounded
    number of rows, however long the history."""
    statement = _who_knows(viewer, among.company, KNOWN_SAMPLE, limit)
    return [Teammate(*row) for row in session.execute(statement, among.params)]


@lru_cache(maxsize=KEPT)
def _who_knows(viewer: Viewer, company: bool, sample: int, limit: int) -> Rows:
    newest = newest_ids(viewer, subject_condition(company)).limit(sample).subquery()
    team = _TEAMMATE
    count = func.count(func.distinct(newest.c.interaction_id))
    last = func.max(newest.c.occurred_at)
    return (
        select(team.email, _OWNERS.c.owner, count, last)
        .join(team, team.interaction_id == newest.c.interaction_id)
        .join(_OWNERS, _OWNERS.c.address == team.email)
        .group_by(team.email, _OWNERS.c.owner)
        .order_by(count.desc(), last.desc(), team.email)
        .limit(limit)
    )


def my_interactions(viewer: Viewer) -> ColumnElement[bool]:
    """Interactions in one of the viewer's mailboxes, or with the viewer's own address."""
    if viewer.user_id is None:
        return Interaction.id.is_(None)
    accounts = select(UserMailbox.account).where(UserMailbox.user_id == viewer.user_id)
    took_part = Interaction.id.in_(
        select(InteractionParticipant.interaction_id).where(
            InteractionParticipant.email.in_(accounts)
        )
    )
    return owned_by(viewer.user_id) | took_part


def my_recent(session: Session, viewer: Viewer, *, page: int = 1) -> Timeline:
    page = _bounded(page)
    rows = session.execute(_my_rows(viewer, page)).all()
    hidden = hidden_count(session, viewer, my_interactions(viewer)) if page == 1 else 0
    return _page(session, rows, page, PAGE, hidden)


@lru_cache(maxsize=KEPT)
def _my_rows(viewer: Viewer, page: int) -> Rows:
    ids = select(Interaction.id).where(my_interactions(viewer), visible(viewer))
    return _window(viewer, ids.order_by(*_NEWEST), page, PAGE)


def unanswered(
    session: Session, viewer: Viewer, *, within: timedelta = timedelta(days=30), limit: int = 50
) -> tuple[Entry, ...]:
    """Threads of the viewer's where the customer wrote last: the newest message of each is
    inbound, from the last ``within``."""
    since = utcnow() - within
    ranked = (
        select(
            Interaction.id,
            Interaction.direction,
            func.row_number()
            .over(
                partition_by=Interaction.thread,
                order_by=(Interaction.occurred_at.desc(), Interaction.id.desc()),
            )
            .label("n"),
        )
        .where(
            Interaction.kind == "email",
            Interaction.thread.is_not(None),
            Interaction.occurred_at >= since,
            my_interactions(viewer),
            visible(viewer),
        )
        .subquery()
    )
    ids = select(ranked.c.id).where(and_(ranked.c.n == 1, ranked.c.direction == "inbound"))
    rows = session.execute(_newest_first(viewer, Interaction.id.in_(ids)).limit(limit)).all()
    return entries_of(session, rows)


_NEWEST = (Interaction.occurred_at.desc(), Interaction.id.desc())
_TEAMMATE = aliased(InteractionParticipant, name="teammate")
"""Made once: a new alias adapts every column it is asked for again, which cost more than
the query it was made for."""


_ENTRY = (
    Interaction.id,
    Interaction.kind,
    Interaction.occurred_at,
    Interaction.subject,
    Interaction.summary,
    Interaction.direction,
    Interaction.visibility,
    Interaction.thread,
    Interaction.status,
)
"""What a timeline entry shows of an interaction: never its body."""


def _newest_first(viewer: Viewer, *where: ColumnElement[bool]) -> Rows:
    """The interactions matching ``where`` that ``viewer`` may read, newest first, as plain
    rows of what an entry shows (mapped objects cost more than the query on a page)."""
    return select(*_ENTRY).where(*where, visible(viewer)).order_by(*_NEWEST)


def newest_ids(viewer: Viewer, condition: ColumnElement[bool]) -> Select[int, datetime | None]:
    """The ids and times of the interactions whose participant rows match ``condition`` (an
    :attr:`Among.condition`) that ``viewer`` may read, newest first, each once (a person
    can hold two roles in one), from the participants' history index."""
    p = InteractionParticipant
    return (
        select(p.interaction_id, p.occurred_at)
        .where(condition, visible_participation(viewer))
        .group_by(p.occurred_at, p.interaction_id)
        .order_by(p.occurred_at.desc(), p.interaction_id.desc())
    )


def _hidden(session: Session, viewer: Viewer, among: Among) -> int:
    """:func:`storage.visibility.hidden_count` of the interactions ``among`` people, from
    their private participant rows only."""
    if viewer.include_private:
        return 0
    return int(session.scalar(_hidden_count(viewer, among.company), among.params) or 0)


@lru_cache(maxsize=KEPT)
def _hidden_count(viewer: Viewer, company: bool) -> Rows:
    p = InteractionParticipant
    held: ColumnElement[bool] = p.private.is_(True)
    if viewer.user_id is not None:
        held = held & ~owned_by(viewer.user_id, p.interaction_id)
    among = subject_condition(company)
    return select(func.count(func.distinct(p.interaction_id))).where(among, held)


def _bounded(page: int) -> int:
    """Pages deeper than :data:`MAX_PAGE` are not offered."""
    return max(1, min(page, MAX_PAGE))


def _window(viewer: Viewer, newest: Rows, page: int, size: int) -> Rows:
    """The rows of page ``page`` of ``size`` entries from ``newest``, a query of interaction
    ids newest first, read with their ids in one statement; one row more than shown says
    whether there is an older page."""
    window = newest.offset((page - 1) * size).limit(size + 1).subquery()
    return _newest_first(viewer, Interaction.id.in_(select(window.c[0])))


def _page(
    session: Session, rows: Sequence[Row[Any]], page: int, size: int, hidden: int
) -> Timeline:
    """A page of a timeline from the rows its :func:`_window` read."""
    return Timeline(
        entries=entries_of(session, rows[:size]),
        page=page,
        has_more=len(rows) > size and page < MAX_PAGE,
        hidden=hidden,
    )


_PEOPLE = (
    select(
        InteractionParticipant.interaction_id,
        InteractionParticipant.email,
        InteractionParticipant.name,
        InteractionParticipant.role,
        InteractionParticipant.contact_id,
        InteractionParticipant.email.in_(TEAM),
    )
    .where(InteractionParticipant.interaction_id.in_(bindparam("ids", expanding=True)))
    .order_by(InteractionParticipant.interaction_id, InteractionParticipant.id)
)


def entries_of(session: Session, rows: Sequence[Row[Any]]) -> tuple[Entry, ...]:
    """Timeline entries with their people, in one query for the lot."""
    ids = [row.id for row in rows]
    people: dict[int, list[Person]] = {i: [] for i in ids}
    if ids:
        found = session.execute(_PEOPLE, {"ids": ids})
        for interaction_id, email, name, role, contact_id, teammate in found:
            people[interaction_id].append(Person(email, name, role, contact_id, bool(teammate)))
    return tuple(
        Entry(
            id=row.id,
            kind=row.kind,
            occurred_at=row.occurred_at,
            subject=row.subject,
            snippet=row.summary,
            direction=row.direction,
            visibility=row.visibility,
            thread=row.thread,
            people=tuple(people[row.id]),
            status=row.status,
        )
        for row in rows
    )


def interaction(session: Session, viewer: Viewer, interaction_id: int) -> Entry | None:
    """One interaction, or ``None`` when it does not exist or the viewer may not see it: the
    two look the same, so an id tells nothing about a thread one may not read."""
    row = session.execute(_newest_first(viewer, Interaction.id == interaction_id)).first()
    return entries_of(session, [row])[0] if row is not None else None
