"""A salesperson marking one of their threads private, or sharing it again.

An interaction's ``visibility`` is set when the agent logs it (``[agent]
visibility``); this is the one way a person changes it afterwards, from the
Gmail add-on. A thread is found by the messages a mailbox shows (their
Message-IDs, which are the interactions' dedupe keys) and by the provider's
thread id, then widened to every interaction logged under the same thread key.

Only the viewer's own interactions change: those one of their mailboxes holds
(:func:`storage.visibility.owned_by`). Marking someone else's thread is not
refused with an error: it simply changes nothing, so that the answer does not
tell whether such a thread exists. Messages the agent logs into the thread
later get the connector's visibility, as any new message does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from storage import audit, relationships
from storage.models import Interaction, InteractionParticipant
from storage.visibility import PRIVATE, Viewer, owned_by

SHARED = "shared"
MARKS = (PRIVATE, SHARED)


@dataclass(frozen=True)
class ThreadState:
    """The viewer's interactions of a thread: how many, and how many are private."""

    interactions: int
    private: int

    @property
    def is_private(self) -> bool:
        return self.interactions > 0 and self.private == self.interactions


def _own_thread(
    session: Session, viewer: Viewer, message_ids: Iterable[str], thread: str | None
) -> list[Interaction]:
    if viewer.user_id is None:
        return []
    keys = sorted({key for key in message_ids if key})
    found = or_(
        Interaction.dedupe_key.in_(keys),
        Interaction.thread == thread if thread else Interaction.id.is_(None),
    )
    threads = {t for t in session.scalars(select(Interaction.thread).where(found)) if t is not None}
    among = or_(found, Interaction.thread.in_(sorted(threads)))
    return list(
        session.scalars(
            select(Interaction).where(among, owned_by(viewer.user_id)).order_by(Interaction.id)
        )
    )


def thread_state(
    session: Session, viewer: Viewer, message_ids: Iterable[str], thread: str | None = None
) -> ThreadState:
    rows = _own_thread(session, viewer, message_ids, thread)
    return ThreadState(len(rows), sum(row.visibility == PRIVATE for row in rows))


def mark_thread(
    session: Session,
    viewer: Viewer,
    message_ids: Iterable[str],
    visibility: str,
    *,
    thread: str | None = None,
) -> ThreadState:
    """Set the viewer's interactions of the thread to ``visibility`` (``private`` or
    ``shared``), audited as the viewer; returns the thread's state after."""
    if visibility not in MARKS:
        raise ValueError(f"visibility must be one of {', '.join(MARKS)}")
    rows = _own_thread(session, viewer, message_ids, thread)
    if visibility == SHARED:
        # Sharing undoes a private mark only: a ``metadata`` interaction stays as logged.
        rows_to_change = [row for row in rows if row.visibility == PRIVATE]
    else:
        rows_to_change = [row for row in rows if row.visibility != PRIVATE]
    changes = [
        audit.Change(
            audit.user(viewer.actor),
            "thread_visibility",
            "interaction",
            row.id,
            {"visibility": row.visibility},
            {"visibility": visibility},
        )
        for row in rows_to_change
    ]
    for row in rows_to_change:
        row.visibility = visibility
    session.flush()
    relationships.refresh_contacts_and_companies(
        session, _contacts_in(session, [row.id for row in rows_to_change])
    )
    if changes:
        audit.record(session, changes)
    return ThreadState(len(rows), len(rows) if visibility == PRIVATE else 0)


def _contacts_in(session: Session, interaction_ids: list[int]) -> set[int]:
    """The contacts of these interactions: a thread made private leaves the team's figures."""
    if not interaction_ids:
        return set()
    return {
        contact_id
        for contact_id in session.scalars(
            select(InteractionParticipant.contact_id).where(
                InteractionParticipant.interaction_id.in_(interaction_ids),
                InteractionParticipant.contact_id.is_not(None),
            )
        )
        if contact_id is not None
    }
