"""A meeting occurrence as an interaction, keyed by its UID and original start.

Who took part is settled first (``Occurrence.of``): rooms and equipment are
not people, and an outsider who declined did not meet anyone. Then the rules
of ``RULES`` run in order and the first ``Skip`` wins, as for mail
(``agent.pipeline.filters``):

1. ``no_participants``  nobody but the owner: no other organizer, no attendee but rooms
                        and declined outsiders (a blocked slot, a room booking)
2. ``internal_only``    nobody from outside takes part (unless internal meetings are logged)
3. ``never_log``        every outsider taking part is on the never-log list

An occurrence no rule skips is logged without the never-log addresses. The
outsiders who declined are logged with it, as participants whose response
status is ``declined`` (the RSVP is part of the record), but they count for
no rule and a decline never creates a contact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from agent.mail import text
from agent.mail.addresses import (
    normalize_email,
)
from agent.pipeline.filters import Skip, first_reason
from agent.pipeline.people import (
    name_facts,
    new_contacts,
    self_or_internal,
    within_limit,
)
from agent.pipeline.planned import Planned
from agent.pipeline.policy import Policy
from config.limits import MAX_SUBJECT_CHARS, clip, out_of_range
from connectors.errors import BadItem
from connectors.records import (
    Address,
    Attendee,
    CalendarEvent,
    CalendarReply,
    Limited,
)
from storage.ingest import InteractionRecord, ParticipantRecord, ResponseRecord

__all__ = [
    "RULES",
    "MeetingRule",
    "Occurrence",
    "Participant",
    "first_skip",
    "plan_meeting",
    "plan_replies",
    "skip_internal_only",
    "skip_never_log",
    "skip_no_participants",
]


class Participant(NamedTuple):
    """Someone taking part in an occurrence, under a normalized address."""

    address: Address
    role: str
    response_status: str | None


@dataclass(frozen=True)
class Occurrence:
    """A calendar event with its participants sorted out, as the rules see it."""

    event: CalendarEvent
    present: tuple[Participant, ...]
    """The organizer and the attendees who count, in that order: no rooms, no outsider who
    declined, no address that does not parse."""
    kept: tuple[Participant, ...]
    """``present`` without the never-log addresses: the participants to log."""
    outsiders: tuple[Participant, ...]
    """The people from outside in ``present``, the never-log ones included."""
    external: tuple[Participant, ...]
    """The people from outside in ``kept``."""
    declined: tuple[Participant, ...] = ()
    """The outsiders who declined, but for the never-log ones: logged with their answer,
    counted by no rule, never made contacts."""

    @classmethod
    def of(cls, event: CalendarEvent, policy: Policy) -> Occurrence:
        present = tuple(_present(event, policy))
        kept = tuple(p for p in present if not policy.filters.never_log.matches(p.address.email))
        return cls(
            event,
            present,
            kept,
            tuple(p for p in present if not self_or_internal(p.address, policy)),
            tuple(p for p in kept if not self_or_internal(p.address, policy)),
            tuple(
                p
                for p in _declined(event, policy)
                if not policy.filters.never_log.matches(p.address.email)
            ),
        )

    @property
    def logged(self) -> tuple[Participant, ...]:
        """The participants the interaction records: ``kept``, then those who declined."""
        return self.kept + self.declined


def _present(event: CalendarEvent, policy: Policy) -> list[Participant]:
    invited: list[Participant] = []
    if event.organizer is not None:
        invited.append(Participant(event.organizer, "organizer", None))
    invited += [
        Participant(a.address, "attendee", a.response_status)
        for a in event.attendees
        if _takes_part(a, policy)
    ]
    return [
        Participant(Address(email, p.address.name), p.role, p.response_status)
        for p in invited
        if (email := normalize_email(p.address.email)) is not None
    ]


def _declined(event: CalendarEvent, policy: Policy) -> list[Participant]:
    """The outsiders ``_takes_part`` leaves out for their decline, under normalized addresses."""
    return [
        Participant(Address(email, a.address.name), "attendee", a.response_status)
        for a in event.attendees
        if not a.is_resource
        and not _takes_part(a, policy)
        and (email := normalize_email(a.address.email)) is not None
    ]


def _takes_part(attendee: Attendee, policy: Policy) -> bool:
    """Rooms are not people; an outsider who declined met nobody, a colleague who did is ours."""
    if attendee.is_resource:
        return False
    return attendee.response_status != "declined" or self_or_internal(attendee.address, policy)


MeetingRule = Callable[[Occurrence, Policy], Skip | None]


def skip_no_participants(occurrence: Occurrence, policy: Policy) -> Skip | None:
    """A meeting with nobody in it but its owner is nobody's interaction: a blocked slot, a
    room booking, a reminder. Even where internal meetings are logged it met no one."""
    if all(p.address.email == policy.mailbox for p in occurrence.present):
        return Skip(
            "no_participants",
            "nobody but the owner: no attendee but rooms or declined outsiders",
        )
    return None


def skip_internal_only(occurrence: Occurrence, policy: Policy) -> Skip | None:
    """Colleagues meeting among themselves are not customer interactions, unless asked for."""
    if not policy.log_internal and occurrence.present and not occurrence.outsiders:
        return Skip("internal_only", "every attendee is internal")
    return None


def skip_never_log(occurrence: Occurrence, policy: Policy) -> Skip | None:
    """Outsiders took part, yet every one of them is on the never-log list.

    One listed outsider among others keeps the meeting; that participant is
    dropped (``Occurrence.kept``) and never becomes a contact.
    """
    if occurrence.outsiders and not occurrence.external:
        return Skip("never_log", "every external attendee is on the never-log list")
    return None


RULES: tuple[MeetingRule, ...] = (
    skip_no_participants,
    skip_internal_only,
    skip_never_log,
)
"""The meeting rules in the order ``first_skip`` runs them (see the module docstring)."""


def first_skip(occurrence: Occurrence, policy: Policy) -> Skip | None:
    """The first reason not to log ``occurrence``, or None to log it."""
    return first_reason(RULES, occurrence, policy)


def plan_meeting(event: CalendarEvent, policy: Policy) -> Planned | Skip:
    """One occurrence of a meeting as an interaction, keyed by UID and original start.

    Raises ``BadItem`` for an occurrence dated outside the range
    ``config.limits`` accepts.
    """
    strange = out_of_range(event.start)
    if strange is not None:
        raise BadItem(event.source_id, strange)
    occurrence = Occurrence.of(event, policy)
    skip = first_skip(occurrence, policy)
    if skip is not None:
        return skip
    limited: list[Limited] = []
    creatable = within_limit(_creatable(occurrence, policy), event.source_id, policy, limited)
    return Planned(
        _meeting_record(occurrence, policy),
        new_contacts(creatable, policy),
        name_facts(
            [(p.address, p.role) for p in occurrence.kept], event.updated or event.start, policy
        ),
        tuple(limited),
    )


_ANSWERS = frozenset({"needs_action", "accepted", "declined", "tentative"})
"""The answers a reply can record; DELEGATED and the like say nothing of the attendee."""


def plan_replies(replies: Sequence[CalendarReply], policy: Policy) -> tuple[ResponseRecord, ...]:
    """Attendees' answers (iTIP REPLY) as updates of the meetings they name, never meetings.

    An answer from a never-log address, or one that says nothing (an unknown
    PARTSTAT), updates nothing. The meeting is named as ``plan_meeting`` keys
    it: UID, original start, and its organizer's fingerprint.
    """
    responses = []
    for reply in replies:
        email = normalize_email(reply.attendee.address.email)
        status = reply.attendee.response_status
        if email is None or status not in _ANSWERS or policy.filters.never_log.matches(email):
            continue
        responses.append(
            ResponseRecord(
                connector=policy.connector,
                source_id=reply.source_id,
                uid=reply.uid,
                recurrence_id=reply.recurrence_id,
                fingerprint=_meeting_fingerprint(reply.organizer),
                email=email,
                name=reply.attendee.address.name,
                response_status=status,
                responded_at=reply.stamp,
            )
        )
    return tuple(responses)


def _meeting_record(occurrence: Occurrence, policy: Policy) -> InteractionRecord:
    event = occurrence.event
    return InteractionRecord(
        kind="meeting",
        dedupe_key=f"{event.uid}/{event.original_start.isoformat()}",
        occurred_at=event.start,
        ends_at=event.end,
        direction=_direction(occurrence, policy),
        connector=policy.connector,
        source_id=event.source_id,
        participants=tuple(
            ParticipantRecord(
                email=p.address.email,
                name=p.address.name,
                role=p.role,
                response_status=p.response_status,
            )
            for p in occurrence.logged
        ),
        subject=clip(event.summary, MAX_SUBJECT_CHARS) or None,
        summary=None
        if policy.visibility == "metadata"
        else (text.snippet(event.description) or None),
        thread=event.uid,
        visibility=policy.visibility,
        owner=policy.mailbox,
        status="cancelled" if event.status == "cancelled" else "active",
        revised_at=event.updated,
        fingerprint=_meeting_fingerprint(event.organizer),
    )


def _direction(occurrence: Occurrence, policy: Policy) -> str:
    """Outbound when one of ours organized a meeting with outsiders, inbound when they did."""
    if not occurrence.external:
        return "internal"
    organizer = occurrence.event.organizer
    ours = organizer is not None and self_or_internal(organizer, policy)
    return "outbound" if ours else "inbound"


def _creatable(occurrence: Occurrence, policy: Policy) -> list[str]:
    """The outsiders who may become contacts: as for mail, "sent" means the owner's meetings."""
    if policy.auto_create == "none":
        return []
    if policy.auto_create == "sent" and not _owner_takes_part(occurrence.event, policy):
        return []
    return [p.address.email for p in occurrence.external]


def _owner_takes_part(event: CalendarEvent, policy: Policy) -> bool:
    """The owner organized the meeting or accepted it."""
    organizer = event.organizer
    if organizer is not None and normalize_email(organizer.email) == policy.mailbox:
        return True
    return any(
        normalize_email(a.address.email) == policy.mailbox and a.response_status == "accepted"
        for a in event.attendees
    )


def _meeting_fingerprint(organizer: Address | None) -> str | None:
    """A meeting's organizer: fixed across its revisions, where everything else may change.

    Someone else's invitation reusing its UID has another organizer and is
    logged apart (``storage.ingest``). Without an organizer nothing tells two
    meetings apart.
    """
    email = normalize_email(organizer.email) if organizer is not None else None
    return "organizer:" + hashlib.sha256(email.encode()).hexdigest() if email else None
