"""An email as an interaction -- or, for an invitation, as the meetings it announces.

Parse (``agent.mail.text``) -> envelope (``agent.mail.envelope``) -> filters
(``agent.pipeline.filters``) -> participants and the contact policy
(``agent.pipeline.people``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from email.message import Message

from icalendar import Calendar

from agent.mail import text
from agent.mail.envelope import Envelope, build_envelope
from agent.mail.sender_zone import utc_offset
from agent.mail.signature_fields import SignatureFields, read_signature
from agent.pipeline.filters import Skip, apply_filters
from agent.pipeline.meetings import plan_meeting, plan_replies
from agent.pipeline.people import (
    name_facts,
    new_contacts,
    signature_facts,
    within_limit,
    without_suspects,
)
from agent.pipeline.planned import Answered, Planned
from agent.pipeline.policy import Policy
from config.limits import MAX_CALENDAR_BYTES
from connectors.ical.bounded_rules import ExpansionBudget
from connectors.ical.parts import calendar_replies, parse_calendar, to_calendar_event
from connectors.ical.recurrence import expand
from connectors.records import (
    Address,
    Limited,
    MailMessage,
)
from storage.ingest import Fact, InteractionRecord, ParticipantRecord


def plan_mail(message: MailMessage, policy: Policy) -> Planned | list[Planned] | Skip:
    """An email as an interaction -- or, for an invitation, as the meetings it announces."""
    parsed = text.parse_mime(message.raw)
    envelope = build_envelope(message, parsed, policy.internal_domains)
    skip = apply_filters(envelope, policy.filters)
    if skip is not None:
        return _skipped(skip, message, parsed, envelope, policy)
    participants = [
        (address, role)
        for address, role in envelope.participants
        if not policy.filters.never_log.matches(address.email)
    ]
    limited = _capped(message, envelope)
    creatable = within_limit(
        _mail_creatable(envelope, participants, policy), message.source_id, policy, limited
    )
    creatable = without_suspects(creatable, envelope, policy, limited)
    return Planned(
        _mail_record(message, parsed, envelope, participants, policy),
        new_contacts(creatable, policy),
        name_facts(participants, envelope.occurred_at, policy)
        + _sender_facts(parsed, envelope, policy),
        tuple(limited),
    )


def _skipped(
    skip: Skip, message: MailMessage, parsed: Message, envelope: Envelope, policy: Policy
) -> list[Planned] | Skip:
    """The skip, unless it is an invitation whose meetings no synced calendar logs, or a
    reply whose answers go to the meetings it names."""
    if envelope.calendar_method == "REPLY" and skip.reason in _ANSWERABLE:
        return _plan_answers(message, parsed, envelope, skip, policy)
    if skip.reason == "calendar_notification" and not policy.has_calendar:
        invited = _plan_invitation(message, parsed, envelope, policy)
        if invited is not None:
            return invited
    return skip


def _capped(message: MailMessage, envelope: Envelope) -> list[Limited]:
    if not envelope.dropped_participants:
        return []
    detail = f"{envelope.dropped_participants} more recipients than the agent records"
    return [Limited(message.source_id, "participants_capped", detail)]


def _mail_record(
    message: MailMessage,
    parsed: Message,
    envelope: Envelope,
    participants: Sequence[tuple[Address, str]],
    policy: Policy,
) -> InteractionRecord:
    summary, body = _summary_and_body(parsed, envelope, policy)
    return InteractionRecord(
        kind="email",
        dedupe_key=envelope.dedupe_key,
        occurred_at=envelope.occurred_at,
        direction=envelope.direction,
        connector=policy.connector,
        source_id=message.source_id,
        participants=tuple(
            ParticipantRecord(email=a.email, name=a.name, role=role) for a, role in participants
        ),
        subject=envelope.subject or None,
        summary=summary,
        body=body,
        thread=envelope.thread_key,
        visibility=policy.visibility,
        owner=policy.mailbox,
        fingerprint=envelope.fingerprint,
    )


def _summary_and_body(
    parsed: Message, envelope: Envelope, policy: Policy
) -> tuple[str | None, str | None]:
    """The reply's new text as a snippet, and whole when bodies are stored; neither for
    metadata-only visibility."""
    if policy.visibility == "metadata":
        return None, None
    sender = envelope.sender.email if envelope.sender else ""
    new_text = text.reply_body(parsed, sender=sender) or text.body_text(parsed)
    body = new_text if policy.store_bodies and new_text else None
    return text.snippet(new_text) or None, body


def _sender_facts(parsed: Message, envelope: Envelope, policy: Policy) -> list[Fact]:
    """The title, phones, company and website in an inbound message's signature, and the
    sender's time zone from its Date header.

    The signature is read from the message's own new text, quoted history
    left out (``agent.mail.signature_fields``); never in a metadata-only
    mailbox, where no body is read. The Date header is metadata, so the time
    zone is read there too.
    """
    sender = envelope.sender
    if envelope.direction != "inbound" or sender is None:
        return []
    fields = SignatureFields()
    if policy.visibility != "metadata":
        named = f"{sender.name} <{sender.email}>" if sender.name else sender.email
        fields = read_signature(text.body_text(parsed), named)
    time_zone = utc_offset(text.header_str(parsed, "date"))
    return signature_facts(sender, fields, time_zone, envelope.occurred_at, policy)


def _calendar_of(parsed: Message) -> Calendar | None:
    """The message's calendar part, parsed; None where there is none, it is over
    ``MAX_CALENDAR_BYTES``, or it cannot be read."""
    data = text.calendar_part(parsed)
    if data is None or len(data) > MAX_CALENDAR_BYTES:
        return None
    try:
        return parse_calendar(data)
    except ValueError:
        return None


_INVITATION_METHODS = frozenset({"REQUEST", "CANCEL"})
"""The iTIP methods that announce meetings. A REPLY (an attendee's answer) or a COUNTER
names a meeting without being one: it stays the ``calendar_notification`` skip, and is
never logged as a meeting of its own; a REPLY's answers update that meeting
(``_plan_answers``)."""

_ANSWERABLE = frozenset({"calendar_notification", "internal_only"})
"""The skips under which a reply's answers still count: a colleague's answer to the
owner's meeting with customers is mail between colleagues, yet names a customer
meeting. Every earlier skip (private, spam, never-log) leaves the answer out too."""


def _plan_answers(
    message: MailMessage, parsed: Message, envelope: Envelope, skip: Skip, policy: Policy
) -> Skip:
    """A reply by mail: ``skip`` as the message's count, with the answers it carries.

    Its answers update the meetings they name, whichever connector logged
    them, with the email's date for a reply that carries no DTSTAMP. A part
    that cannot be read leaves the plain skip: there is nothing to apply.
    """
    calendar = _calendar_of(parsed)
    if calendar is None:
        return skip
    replies, more = calendar_replies(
        calendar, source_prefix=message.source_id, stamp=envelope.occurred_at
    )
    answered = Answered(skip.reason, skip.detail, plan_replies(replies, policy))
    if not more:
        return answered
    detail = f"{more} more answers than the agent reads from one reply"
    return replace(answered, limited=(Limited(message.source_id, "replies_capped", detail),))


def _plan_invitation(
    message: MailMessage, parsed: Message, envelope: Envelope, policy: Policy
) -> list[Planned] | Skip | None:
    """Meetings from an invitation by mail, for owners whose calendar is not synced.

    The occurrences get the same dedupe keys as a calendar connector would
    give them (UID + original start), so the meeting is one interaction
    however it arrives. None when the message holds no usable invitation.
    """
    method = envelope.calendar_method or ""
    calendar = _calendar_of(parsed) if method in _INVITATION_METHODS else None
    if calendar is None:
        return None
    window = (envelope.occurred_at - timedelta(days=366), envelope.occurred_at + policy.horizon)
    budget = ExpansionBudget(policy.limits)
    occurrences = list(
        expand(calendar, *window, budget=budget, max_series=policy.limits.series_per_calendar)
    )
    planned: list[Planned] = []
    skip: Skip | None = None
    for occurrence in occurrences:
        event = to_calendar_event(
            occurrence,
            calendar="mail",
            owner=policy.mailbox,
            source_prefix=message.source_id,
            method=method,
        )
        outcome = plan_meeting(event, policy)
        if isinstance(outcome, Skip):
            skip = outcome
        else:
            planned.append(outcome)
    if planned and budget.capped:
        capped = tuple(
            Limited(f"{message.source_id}/{uid}", "series_capped", reason)
            for uid, reason in sorted(budget.capped.items())
        )
        planned[0] = replace(planned[0], limited=planned[0].limited + capped)
    return planned or skip


def _mail_creatable(
    envelope: Envelope, participants: Sequence[tuple[Address, str]], policy: Policy
) -> list[str]:
    if policy.auto_create == "none":
        return []
    if policy.auto_create == "sent" and envelope.direction != "outbound":
        return []
    roles = {"to", "cc", "bcc"} if policy.auto_create == "sent" else {"from", "to", "cc", "bcc"}
    return [a.email for a, role in participants if role in roles]
