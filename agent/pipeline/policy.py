"""What the pipeline decides by, for one connector: read once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from agent.mail.addresses import (
    FreeMail,
    company_domain,
    load_free_mail,
    normalize_email,
)
from agent.pipeline.filters import FilterPolicy, NeverLog
from agent.pipeline.spam import SpamPolicy
from config import Settings
from config.limits import DEFAULT as DEFAULT_LIMITS
from config.limits import Limits

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
                spam=SpamPolicy(**settings.filters.model_dump()),
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
