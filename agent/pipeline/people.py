"""Who may become a contact, and which names are facts: one policy for mail and meetings.

Owners, colleagues, automated senders and never-log addresses never become
contacts; a message or meeting naming more people than
``limits.contact_recipients`` creates none (mail to thousands is a list or a
spam run, not a conversation with each), and neither does a message with a
weak spam signal (``agent.pipeline.spam.weak_signal``). Display names are
observations about the people using them, never overwrites.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from agent.mail.addresses import (
    company_domain,
    is_automated_address,
    is_internal,
    normalize_email,
    split_name,
)
from agent.mail.envelope import Envelope
from agent.mail.signature_fields import SignatureFields
from agent.pipeline.filters import sender_domain
from agent.pipeline.policy import Policy
from agent.pipeline.spam import weak_signal
from connectors.records import (
    Address,
    Limited,
)
from storage.ingest import Fact, NewContact


def self_or_internal(address: Address, policy: Policy) -> bool:
    email = normalize_email(address.email) or address.email
    return email == policy.mailbox or is_internal(email, policy.internal_domains)


def within_limit(
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


def without_suspects(
    creatable: list[str], envelope: Envelope, policy: Policy, limited: list[Limited]
) -> list[str]:
    """No contacts or companies from a message with a weak spam signal.

    A suspect score or a sender whose authentication failed in part is not
    reason enough to drop a message a customer may have written, so it is
    logged; but a spam run must not fill the CRM with its senders and
    recipients. Counted ``weak_spam_signal`` when it withheld any.
    """
    if not creatable:
        return creatable
    signal = weak_signal(
        envelope.headers,
        envelope.labels,
        sender_domain(envelope),
        policy.filters.spam,
        outbound=envelope.direction == "outbound",
    )
    if signal is None:
        return creatable
    detail = f"{signal.reason}: {signal.detail}; {len(creatable)} people not made contacts"
    limited.append(Limited(envelope.source_id, "weak_spam_signal", detail))
    return []


def new_contacts(emails: Iterable[str], policy: Policy) -> list[NewContact]:
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


def name_facts(
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


def signature_facts(
    sender: Address | None,
    fields: SignatureFields,
    time_zone: str | None,
    observed_at: datetime,
    policy: Policy,
) -> list[Fact]:
    """What a sender's signature and Date header say about them, as observations.

    Dated by the message, so the newest signature wins and a late backfill
    of old mail does not; a person's edit beats them all (``storage.merge``).
    Owners, colleagues, automated and never-log senders get none.
    """
    if sender is None or self_or_internal(sender, policy):
        return []
    if is_automated_address(sender.email) or policy.filters.never_log.matches(sender.email):
        return []
    values = [
        ("title", fields.title),
        *(("phone", phone) for phone in fields.phones),
        ("extra.company_name", fields.company),
        ("extra.website", fields.website),
        ("extra.time_zone", time_zone),
    ]
    return [
        Fact(sender.email, field, value, policy.connector, observed_at)
        for field, value in values
        if value
    ]


def company_name(domain: str) -> str:
    """A readable first guess from the domain (``acme-corp.co.uk`` -> ``Acme Corp``)."""
    label = domain.split(".", 1)[0]
    return " ".join(part.capitalize() for part in label.replace("_", "-").split("-") if part)
