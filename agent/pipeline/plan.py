"""The pipeline: records in, a planned database write out -- filter, match, log.

Everything here is pure: it decides what a batch means (which interactions,
which participants, who may become a contact, which facts were observed,
what was skipped and why) and hands ``storage.ingest`` a ``BatchWrite``.
The sync loop then writes it, with the connector's cursor, in one
transaction.

Mail: parse (``agent.mail.text``) -> envelope (``agent.mail.envelope``) -> filters
(``agent.pipeline.filters``) -> participants and contact policy (``agent.mail.addresses``).
Meetings: the same filters' rules and the same matching, on the attendees.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import Message
from typing import Literal

from agent.mail import text
from agent.mail.addresses import (
    FreeMail,
    company_domain,
    is_automated_address,
    is_internal,
    load_free_mail,
    normalize_email,
    split_name,
)
from agent.mail.envelope import Envelope, build_envelope
from agent.pipeline.filters import FilterPolicy, NeverLog, Skip, apply_filters
from config import Settings
from config.limits import DEFAULT as DEFAULT_LIMITS
from config.limits import MAX_CALENDAR_BYTES, MAX_SUBJECT_CHARS, Limits, clip, out_of_range
from connectors.errors import BadItem
from connectors.ical.bounded_rules import ExpansionBudget
from connectors.ical.parts import parse_calendar, to_calendar_event
from connectors.ical.recurrence import expand
from connectors.records import (
    Address,
    CalendarEvent,
    Item,
    Limited,
    MailMessage,
    SourceRemoved,
    Unreadable,
)
from storage.ingest import BatchWrite, Fact, InteractionRecord, NewContact, ParticipantRecord

AutoCreate = Literal["none", "sent", "sent_and_received"]


@dataclass(frozen=True)
class Policy:
    """Everything the pipeline decides by, for one connector."""

    connector: str
    mailbox: str
    internal_domains: frozenset[str]
    filters: FilterPolicy
    free_mail: FreeMail
    auto_create: AutoCreate = "sent"
    visibility: str = "shared"
    store_bodies: bool = False
    log_internal: bool = False
    has_calendar: bool = False
    """The owner's calendar is synced too: invitations by mail are then left to it."""
    horizon: timedelta = timedelta(days=90)
    limits: Limits = DEFAULT_LIMITS

    @classmethod
    def from_settings(cls, settings: Settings, connector: str, mailbox: str) -> Policy:
        free_mail = load_free_mail(
            settings.agent.free_mail_domains, settings.agent.not_free_mail_domains
        )
        internal = frozenset(settings.agent.internal_domains)
        owner = normalize_email(mailbox) or mailbox.lower()
        if not internal and company_domain(owner, free_mail):
            # Without configured domains, the owner's own company is internal.
            internal = frozenset({owner.rpartition("@")[2]})
        return cls(
            connector=connector,
            mailbox=owner,
            internal_domains=internal,
            filters=FilterPolicy(
                never_log=NeverLog.from_patterns(settings.privacy.never_log),
                internal_domains=internal,
                log_internal=settings.agent.log_internal,
                private_label=settings.privacy.private_label,
                share_label=settings.privacy.share_label,
            ),
            free_mail=free_mail,
            auto_create=settings.agent.auto_create_contacts,
            visibility=settings.agent.visibility,
            store_bodies=settings.privacy.store_bodies,
            log_internal=settings.agent.log_internal,
            has_calendar=any(
                c.kind in ("google_calendar", "ics")
                and (normalize_email(c.account) or c.account.lower()) == owner
                for c in settings.connectors
            ),
            limits=settings.limits.to_limits(),
        )


@dataclass
class BatchPlan:
    write: BatchWrite = field(default_factory=BatchWrite)
    skipped: Counter[str] = field(default_factory=Counter)
    logged: int = 0
    limited: list[Limited] = field(default_factory=list)
    """Items logged only up to a bound of ``config.limits``, with the reason."""


@dataclass(frozen=True)
class Planned:
    """One interaction to log, the contacts it may create and the facts it observed."""

    record: InteractionRecord
    new_contacts: list[NewContact]
    facts: list[Fact]
    limited: tuple[Limited, ...] = ()


def plan_batch(items: Sequence[Item], policy: Policy) -> BatchPlan:
    """What ``items`` mean for the database. Never raises for a bad item: it is quarantined."""
    plan = BatchPlan()
    for item in items:
        if isinstance(item, SourceRemoved):
            plan.write.removed.append((policy.connector, item.source_id))
            continue
        if isinstance(item, Unreadable):
            plan.write.quarantined.append((policy.connector, item.source_id, item.reason))
            continue
        if isinstance(item, Limited):
            plan.limited.append(item)
            continue
        try:
            outcome = (
                plan_mail(item, policy)
                if isinstance(item, MailMessage)
                else plan_meeting(item, policy)
            )
        except BadItem as exc:
            plan.write.quarantined.append((policy.connector, item.source_id, exc.reason))
            continue
        except Exception as exc:  # a parser bug must cost one item, not the sync
            reason = f"unexpected {type(exc).__name__}: {exc}"
            plan.write.quarantined.append((policy.connector, item.source_id, reason))
            continue
        if isinstance(outcome, Skip):
            plan.skipped[outcome.reason] += 1
            if outcome.reason == "private_label":
                # also when the label came after the message was logged
                plan.write.withdrawn.append((policy.connector, item.source_id))
            continue
        for planned in [outcome] if isinstance(outcome, Planned) else outcome:
            plan.write.interactions.append(planned.record)
            plan.write.new_contacts.extend(planned.new_contacts)
            plan.write.facts.extend(planned.facts)
            plan.limited.extend(planned.limited)
        plan.logged += 1
    return plan


def plan_mail(message: MailMessage, policy: Policy) -> Planned | list[Planned] | Skip:
    """An email as an interaction -- or, for an invitation, as the meetings it announces."""
    parsed = text.parse_mime(message.raw)
    envelope = build_envelope(message, parsed, policy.internal_domains)
    skip = apply_filters(envelope, policy.filters)
    if skip is not None:
        if skip.reason == "calendar_notification" and not policy.has_calendar:
            invited = _plan_invitation(message, parsed, envelope, policy)
            if invited is not None:
                return invited
        return skip
    participants = [
        (address, role)
        for address, role in envelope.participants
        if not policy.filters.never_log.matches(address.email)
    ]
    summary: str | None = None
    body: str | None = None
    if policy.visibility != "metadata":
        sender = envelope.sender.email if envelope.sender else ""
        new_text = text.reply_body(parsed, sender=sender) or text.body_text(parsed)
        summary = text.snippet(new_text) or None
        body = new_text if policy.store_bodies and new_text else None
    record = InteractionRecord(
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
    limited: list[Limited] = []
    if envelope.dropped_participants:
        detail = f"{envelope.dropped_participants} more recipients than the agent records"
        limited.append(Limited(message.source_id, "participants_capped", detail))
    creatable = _within_limit(
        _mail_creatable(envelope, participants, policy), message.source_id, policy, limited
    )
    return Planned(
        record,
        _new_contacts(creatable, policy),
        _name_facts(participants, envelope.occurred_at, policy),
        tuple(limited),
    )


def _within_limit(
    creatable: list[str], source_id: str, policy: Policy, limited: list[Limited]
) -> list[str]:
    """No contacts from a message that names more people than ``contact_recipients``.

    Mail to thousands is a list or a spam run, not a conversation with each
    of them; the interaction is still logged.
    """
    limit = policy.limits.contact_recipients
    if len(creatable) <= limit:
        return creatable
    detail = f"{len(creatable)} people could become contacts; the limit is {limit}"
    limited.append(Limited(source_id, "too_many_recipients", detail))
    return []


_INVITATION_METHODS = frozenset({"REQUEST", "CANCEL"})


def _plan_invitation(
    message: MailMessage, parsed: Message, envelope: Envelope, policy: Policy
) -> list[Planned] | Skip | None:
    """Meetings from an invitation by mail, for owners whose calendar is not synced.

    The occurrences get the same dedupe keys as a calendar connector would
    give them (UID + original start), so the meeting is one interaction
    however it arrives. None when the message holds no usable invitation.
    """
    method = envelope.calendar_method or ""
    data = text.calendar_part(parsed) if method in _INVITATION_METHODS else None
    if data is None or len(data) > MAX_CALENDAR_BYTES:
        return None
    try:
        calendar = parse_calendar(data)
    except ValueError:
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
    creatable = _within_limit(
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
        _new_contacts(creatable, policy),
        _name_facts([(a, role) for a, role, _ in kept], occurred, policy),
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


def self_or_internal(address: Address, policy: Policy) -> bool:
    email = normalize_email(address.email) or address.email
    return email == policy.mailbox or is_internal(email, policy.internal_domains)


def _new_contacts(emails: Iterable[str], policy: Policy) -> list[NewContact]:
    result = []
    for email in dict.fromkeys(emails):
        if (
            email == policy.mailbox
            or is_internal(email, policy.internal_domains)
            or is_automated_address(email)
            or policy.filters.never_log.matches(email)
        ):
            continue
        domain = company_domain(email, policy.free_mail)
        result.append(NewContact(email, domain, company_name(domain) if domain else None))
    return result


def _name_facts(
    participants: Iterable[tuple[Address, str]], observed_at: datetime, policy: Policy
) -> list[Fact]:
    """Display names people use are observations about them, never overwrites."""
    facts = []
    for address, _role in participants:
        name = address.name.strip()
        if not name or "@" in name or self_or_internal(address, policy):
            continue
        facts.append(Fact(address.email, "display_name", name, policy.connector, observed_at))
        first, last = split_name(name)
        if first:
            facts.append(Fact(address.email, "first_name", first, policy.connector, observed_at))
        if last:
            facts.append(Fact(address.email, "last_name", last, policy.connector, observed_at))
    return facts


def company_name(domain: str) -> str:
    """A readable first guess from the domain (``acme-corp.co.uk`` -> ``Acme Corp``)."""
    label = domain.split(".", 1)[0]
    return " ".join(part.capitalize() for part in label.replace("_", "-").split("-") if part)
