"""A meeting occurrence as an interaction, keyed by its UID and original start."""

from __future__ import annotations

import hashlib

from agent.mail import text
from agent.mail.addresses import (
    normalize_email,
)
from agent.pipeline.filters import Skip
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
    CalendarEvent,
    Limited,
)
from storage.ingest import InteractionRecord, ParticipantRecord


def plan_meeting(event: CalendarEvent, policy: Policy) -> Planned | Skip:
    """One occurrence of a meeting as an interaction, keyed by UID and original start.

    Raises ``BadItem`` for an occurrence dated outside the range
    ``config.limits`` accepts.
    """
    strange = out_of_range(event.start)
    if strange is not None:
        raise BadItem(event.source_id, strange)
    organizer = event.organizer
    people: list[tuple[Address, str, str | None]] = []
    if organizer is not None:
        people.append((organizer, "organizer", None))
    for attendee in event.attendees:
        if attendee.is_resource:
            continue
        address = attendee.address
        if attendee.response_status == "declined" and not self_or_internal(address, policy):
            continue
        people.append((address, "attendee", attendee.response_status))
    normalized = [
        (Address(email, a.name), role, status)
        for a, role, status in people
        if (email := normalize_email(a.email)) is not None
    ]
    kept = [p for p in normalized if not policy.filters.never_log.matches(p[0].email)]
    external = [p for p in kept if not self_or_internal(p[0], policy)]
    if normalized and not any(not self_or_internal(p[0], policy) for p in normalized):
        if not policy.log_internal:
            return Skip("internal_only", "every attendee is internal")
    elif not external:
        return Skip("never_log", "every external attendee is on the never-log list")
    owner_in = (
        organizer is not None and normalize_email(organizer.email) == policy.mailbox
    ) or any(
        normalize_email(a.address.email) == policy.mailbox and a.response_status == "accepted"
        for a in event.attendees
    )
    organizer_internal = organizer is not None and self_or_internal(organizer, policy)
    direction = "internal" if not external else ("outbound" if organizer_internal else "inbound")
    start_key = event.original_start.isoformat()
    record = InteractionRecord(
        kind="meeting",
        dedupe_key=f"{event.uid}/{start_key}",
        occurred_at=event.start,
        ends_at=event.end,
        direction=direction,
        connector=policy.connector,
        source_id=event.source_id,
        participants=tuple(
            ParticipantRecord(email=a.email, name=a.name, role=role, response_status=status)
            for a, role, status in kept
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
        fingerprint=_meeting_fingerprint(organizer),
    )
    limited: list[Limited] = []
    creatable = within_limit(
        [a.email for a, _, _ in external]
        if policy.auto_create != "none" and (owner_in or policy.auto_create == "sent_and_received")
        else [],
        event.source_id,
        policy,
        limited,
    )
    occurred = event.updated or event.start
    return Planned(
        record,
        new_contacts(creatable, policy),
        name_facts([(a, role) for a, role, _ in kept], occurred, policy),
        tuple(limited),
    )


def _meeting_fingerprint(organizer: Address | None) -> str | None:
    """A meeting's organizer: fixed across its revisions, where everything else may change.

    Someone else's invitation reusing its UID has another organizer and is
    logged apart (``storage.ingest``). Without an organizer nothing tells two
    meetings apart.
    """
    email = normalize_email(organizer.email) if organizer is not None else None
    return "organizer:" + hashlib.sha256(email.encode()).hexdigest() if email else None
