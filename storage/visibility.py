"""Who sees which interactions: the one predicate every read query applies.

DESIGN.md's rule: an interaction is visible to a user when it is shared, or
when it is private and one of its sources is a mailbox the user owns
(``interaction_sources`` -> ``sync_state.account`` -> ``user_mailboxes``).
Admins administer; they do not read other people's private threads. The
CLI reads as whoever holds the database credentials, which is nobody's
mailbox: it sees shared interactions only, unless asked for every one.

Putting the rule in the query, never in a template or a route, is what
makes the web pages, the JSON API, the add-ons, the CLI and exports agree:
a reader that forgets to filter cannot exist, because the reads in
``storage`` take a :class:`Viewer` and have no way to skip it.

Each condition is built once per reader and kept (``lru_cache``): a clause
never changes once built, and building one cost more than a page's use of it.
The statements built on them are kept per reader too (``storage.history``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.models import (
    Interaction,
    InteractionParticipant,
    InteractionSource,
    SyncState,
    UserMailbox,
)

PRIVATE = "private"
ROLES = ("admin", "member")
KEPT = 1024
"""Conditions, and statements built on them, kept per kind: a team's readers, each in a few
roles, fit many times over."""


@dataclass(frozen=True)
class Viewer:
    """The reader a query answers to."""

    user_id: int | None
    """``None``: the command line, which owns no mailbox."""
    email: str
    role: str = "member"
    include_private: bool = False
    """Every interaction, private ones included: only the CLI's ``--include-private``."""

    @classmethod
    def cli(cls, *, include_private: bool = False) -> Viewer:
        return cls(user_id=None, email="cli", role="admin", include_private=include_private)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> str:
        """How this reader appears in the audit log when they change something."""
        return self.email


@lru_cache(maxsize=KEPT)
def visible(viewer: Viewer) -> ColumnElement[bool]:
    """The condition on :class:`Interaction` rows ``viewer`` may read."""
    if viewer.include_private:
        return true()
    shared = Interaction.visibility != PRIVATE
    if viewer.user_id is None:
        return shared
    # A CASE, not an OR: PostgreSQL would turn ``shared OR EXISTS`` into a hash of every
    # interaction in the viewer's mailboxes (100,000 rows, 130 ms) to test a few rows;
    # behind CASE the check runs per private row only, through the sources' index.
    return case((shared, true()), else_=owned_by(viewer.user_id))


@lru_cache(maxsize=KEPT)
def visible_participation(viewer: Viewer) -> ColumnElement[bool]:
    """:func:`visible` asked of :class:`InteractionParticipant` rows, whose ``private`` the
    database keeps equal to their interaction's (migration 0010): a person's history is
    found, ordered and counted from their participant rows without reading each
    interaction."""
    if viewer.include_private:
        return true()
    shared = InteractionParticipant.private.is_(False)
    if viewer.user_id is None:
        return shared
    return case(
        (shared, true()), else_=owned_by(viewer.user_id, InteractionParticipant.interaction_id)
    )


@lru_cache(maxsize=KEPT)
def owned_by(
    user_id: int, interaction: InstrumentedAttribute[int] | None = None
) -> ColumnElement[bool]:
    """The condition that one of ``user_id``'s mailboxes holds ``interaction`` (by default,
    the :class:`Interaction` row at hand).

    ``OFFSET 0`` keeps PostgreSQL from answering with a hash of every interaction in the
    user's mailboxes (100,000 rows, tens of milliseconds) built to test a few rows: it
    checks each row asked, through the sources' index.
    """
    return (
        select(InteractionSource.id)
        .where(
            InteractionSource.interaction_id
            == (Interaction.id if interaction is None else interaction),
            SyncState.connector == InteractionSource.connector,
            UserMailbox.account == SyncState.account,
            UserMailbox.user_id == user_id,
        )
        .offset(0)
        .exists()
    )


def hidden_count(session: Session, viewer: Viewer, among: ColumnElement[bool]) -> int:
    """How many interactions matching ``among`` the viewer may not read, so that a reader
    can say that something was held back rather than pretend it does not exist."""
    if viewer.include_private:
        return 0
    query = select(func.count()).select_from(Interaction).where(and_(among, ~visible(viewer)))
    return int(session.scalar(query) or 0)
