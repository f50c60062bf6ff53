"""The filter chain: which emails are not logged, and why.

Each step is a pure function ``(envelope, policy) -> Skip | None``;
``apply_filters`` runs them in the order of ``CHAIN`` and returns the first
``Skip``. The order only decides which reason is reported when several apply,
and goes from the admin's and user's explicit wishes to the heuristics:

1. ``private_label``      the user marked the message private
2. ``not_shared``         a share label is configured and the message lacks it
3. ``spam_or_trash``      spam, trash or junk label or folder; then, in this order:
   ``spam_folder``        the ``$Junk`` keyword, a junk folder named in another language
   ``spam_flagged``       a receiving server's spam verdict or score
   ``auth_failed``        the sender's DMARC, or SPF and DKIM, failed
4. ``chat``               Gmail chat transcripts
5. ``never_log``          the never-log list covers the people involved
6. ``internal_only``      nobody from outside took part (unless internal mail is logged)
7. ``calendar_notification``  invitations and replies sent by calendar systems
8. ``automated_auto_submitted``  RFC 3834 Auto-Submitted, X-Autoreply, null Return-Path
9. ``automated_list``     List-Id or List-Unsubscribe present
10. ``automated_bulk``    Precedence: bulk, list or junk
11. ``automated_sender``  the sender is a no-reply, bounce or notification address
12. ``gmail_category_*``  Gmail's Promotions, Social, Updates and Forums tabs

The spam steps (``SPAM_STEPS``, run by step 3 once no label matched) read the
verdicts servers and the user already made (``agent.pipeline.spam``;
``[filters]`` turns each off). They come before the others so that a spoofed
mail claiming to come from a colleague is reported as what it is. Weaker
signals skip nothing: the message is logged, but no contact is made from it
(``agent.pipeline.people``).

Calendar notifications come before the generic automation checks so that
invitations keep their own reason: they are linked to meetings later.
``X-Auto-Response-Suppress`` alone skips nothing: it asks receivers not to
auto-reply, which senders request for reasons other than being automated.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from agent.mail.addresses import (
    addresses,
    is_automated_address,
    is_internal,
    normalize_domain,
    normalize_email,
)
from agent.mail.envelope import Envelope
from agent.pipeline import spam
from agent.pipeline.spam import SpamPolicy

__all__ = [
    "CHAIN",
    "SPAM_STEPS",
    "FilterPolicy",
    "NeverLog",
    "Skip",
    "Step",
    "apply_filters",
    "is_automated_address",
    "sender_domain",
    "skip_auth_failed",
    "skip_auto_submitted",
    "skip_automated_sender",
    "skip_bulk",
    "skip_calendar_notification",
    "skip_chat",
    "skip_gmail_category",
    "skip_internal_only",
    "skip_list",
    "skip_never_log",
    "skip_not_shared",
    "skip_private_label",
    "skip_spam_flagged",
    "skip_spam_folder",
    "skip_spam_or_trash",
]


@dataclass(frozen=True)
class Skip:
    """Why a message is not logged: ``reason`` is stable snake_case, ``detail`` is for people."""

    reason: str
    detail: str = ""


@dataclass(frozen=True)
class NeverLog:
    """The privacy list: addresses and domains whose mail is never logged.

    Patterns: an address (``bob@example.com``, normalized like any address, so
    Gmail folding applies, and covering the same address with any ``+tag``);
    ``*@mybank.com``, ``@mybank.com`` or a bare ``mybank.com`` (the domain and
    all its sub-domains: a privacy list errs on the side of not logging);
    ``*@*.mybank.com`` (sub-domains only).
    """

    addresses: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    subdomains_of: frozenset[str] = frozenset()

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> NeverLog:
        """Raises ValueError naming the first pattern that is none of the accepted forms."""
        exact: set[str] = set()
        domains: set[str] = set()
        subdomains: set[str] = set()
        for pattern in patterns:
            text = pattern.strip().lower()
            local, _, domain = text.rpartition("@") if "@" in text else ("*", "@", text)
            if local not in ("", "*"):
                address = None if "*" in text else normalize_email(text, strip_plus_tags=True)
                if address is None:
                    raise ValueError(f"not a never-log pattern: {pattern!r}")
                exact.add(address)
                continue
            normalized = normalize_domain(domain.removeprefix("*."))
            if normalized is None:
                raise ValueError(f"not a never-log pattern: {pattern!r}")
            (subdomains if domain.startswith("*.") else domains).add(normalized)
        return cls(frozenset(exact), frozenset(domains), frozenset(subdomains))

    def matches(self, email: str) -> bool:
        """Whether mail with this address must not be logged (the pipeline also drops it)."""
        address = normalize_email(email, strip_plus_tags=True)
        if address is None:
            return False
        if address in self.addresses:
            return True
        domain = address.rpartition("@")[2]
        parents = _parent_domains(domain)
        return domain in self.domains or any(
            parent in self.domains or parent in self.subdomains_of for parent in parents
        )

    def __bool__(self) -> bool:
        return bool(self.addresses or self.domains or self.subdomains_of)


def _parent_domains(domain: str) -> list[str]:
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


@dataclass(frozen=True)
class FilterPolicy:
    """The admin's and user's filtering choices, from the config."""

    never_log: NeverLog = NeverLog()
    internal_domains: frozenset[str] = frozenset()
    log_internal: bool = False
    private_label: str | None = None
    share_label: str | None = None
    spam: SpamPolicy = field(default_factory=SpamPolicy)


Step = Callable[[Envelope, FilterPolicy], Skip | None]


def _label_key(label: str) -> str:
    """Gmail API ids (``CATEGORY_PROMOTIONS``) and Takeout names ("Category Promotions") alike."""
    return "_".join(label.strip().lstrip("\\").lower().replace("_", " ").split())


def _label_keys(envelope: Envelope) -> frozenset[str]:
    return frozenset(_label_key(label) for label in envelope.labels)


def _ours(envelope: Envelope, email: str, policy: FilterPolicy) -> bool:
    return email == envelope.mailbox or is_internal(email, policy.internal_domains)


def skip_private_label(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """The user's own veto comes first: nothing else may log a message they hid."""
    if policy.private_label and _label_key(policy.private_label) in _label_keys(envelope):
        return Skip("private_label", f"labelled {policy.private_label!r}")
    return None


def skip_not_shared(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """Opt-in mode: with a share label configured, only what the user labelled is logged."""
    if policy.share_label and _label_key(policy.share_label) not in _label_keys(envelope):
        return Skip("not_shared", f"not labelled {policy.share_label!r}")
    return None


_SPAM_OR_TRASH = frozenset(
    {"spam", "trash", "junk", "bin", "junk_e-mail", "junk_email", "deleted_items",
     "deleted_messages"}
)  # fmt: skip


_JUNK = frozenset({"spam", "junk", "junk_e-mail", "junk_email"})


def skip_spam_or_trash(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """Gmail's SPAM/TRASH (Takeout: "Spam", "Trash") and the usual IMAP folder names (the
    junk names only while ``[filters] junk_folders`` is on), then ``SPAM_STEPS``."""
    for label in sorted(envelope.labels):
        key = _label_key(label).rpartition("/")[2]
        if key in _SPAM_OR_TRASH and (policy.spam.junk_folders or key not in _JUNK):
            return Skip("spam_or_trash", f"labelled {label!r}")
    for step in SPAM_STEPS:
        skip = step(envelope, policy)
        if skip is not None:
            return skip
    return None


def skip_spam_folder(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """The ``$Junk`` keyword and junk folders named in other languages ("Courrier
    indésirable", "迷惑メール"), unless the user marked the message not junk."""
    if not policy.spam.junk_folders or not _judged(envelope):
        return None
    label = spam.junk_label(envelope.labels)
    return Skip("spam_folder", f"labelled {label!r}") if label is not None else None


def skip_spam_flagged(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """A receiving server's verdict: a spam flag, a score at or above the threshold,
    Microsoft's spam confidence level. Not for mail the user sent or marked not junk."""
    if not policy.spam.spam_headers or not _judged(envelope):
        return None
    signal = spam.server_verdict(envelope.headers, policy.spam)
    return Skip(signal.reason, signal.detail) if signal is not None else None


def skip_auth_failed(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """The From domain's DMARC failed, or SPF and DKIM both did: a spoofed sender. Only
    the topmost Authentication-Results header is read (``agent.pipeline.spam``)."""
    if not policy.spam.sender_authentication or not _judged(envelope):
        return None
    signal = spam.failed_authentication(envelope.headers, sender_domain(envelope))
    return Skip(signal.reason, signal.detail) if signal is not None else None


def _judged(envelope: Envelope) -> bool:
    return spam.judged(envelope.labels, envelope.direction == "outbound")


def sender_domain(envelope: Envelope) -> str:
    """The From address's domain, which DMARC speaks for; "" without a sender."""
    return envelope.sender.email.rpartition("@")[2] if envelope.sender else ""


SPAM_STEPS: tuple[Step, ...] = (skip_spam_folder, skip_spam_flagged, skip_auth_failed)
"""The spam and junk steps, strongest evidence first: the user's folder, a server's
verdict, the sender's failed authentication."""


def skip_chat(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """Gmail keeps chat transcripts as messages labelled CHAT (Takeout: "Chat")."""
    if "chat" in _label_keys(envelope):
        return Skip("chat", "a chat transcript")
    return None


def skip_never_log(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """Skip when every outside participant is on the list, or one of ours is.

    One listed outsider among others keeps the message (the pipeline then
    drops that participant and never makes a contact of them). An internal
    address on the list (``hr@example.com``) means that person's mail is
    never logged at all.
    """
    if not policy.never_log:
        return None
    emails = list(dict.fromkeys(address.email for address, _ in envelope.participants))
    external = [email for email in emails if not _ours(envelope, email, policy)]
    listed_internal = [
        email
        for email in emails
        if _ours(envelope, email, policy) and policy.never_log.matches(email)
    ]
    if listed_internal:
        return Skip("never_log", f"{listed_internal[0]} is on the never-log list")
    if external and all(policy.never_log.matches(email) for email in external):
        return Skip("never_log", "every outside participant is on the never-log list")
    return None


def skip_internal_only(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """Colleagues talking among themselves are not customer interactions, unless asked for.

    The mailbox owner counts as ours whatever their domain."""
    if policy.log_internal:
        return None
    if all(_ours(envelope, address.email, policy) for address, _ in envelope.participants):
        return Skip("internal_only", "no participant from outside")
    return None


_CALENDAR_SENDERS = frozenset({"calendar-notification@google.com"})
_CALENDAR_CONTENT_CLASS = "urn:content-classes:calendarmessage"


def skip_calendar_notification(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """Invitations, replies and cancellations sent by calendar systems.

    Recognized by a text/calendar part (any METHOD: REQUEST invitations are
    linked to meetings by the calendar sync, REPLY and CANCEL carry nothing
    more), Exchange's ``Content-Class`` for meeting messages, or Google
    Calendar as From or Sender. A subject such as "Accepted: ..." alone is
    not enough: people write those too.
    """
    if envelope.has_calendar_part:
        method = envelope.calendar_method or "unknown"
        return Skip("calendar_notification", f"text/calendar part, METHOD:{method}")
    if envelope.headers.get("content-class", "").lower() == _CALENDAR_CONTENT_CLASS:
        return Skip("calendar_notification", f"Content-Class: {_CALENDAR_CONTENT_CLASS}")
    senders = {envelope.sender.email} if envelope.sender else set()
    senders.update(address.email for address in addresses(envelope.headers.get("sender", "")))
    calendar = sorted(senders & _CALENDAR_SENDERS)
    if calendar:
        return Skip("calendar_notification", f"sent by {calendar[0]}")
    return None


def skip_auto_submitted(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """RFC 3834 Auto-Submitted other than ``no``, the X-Autoreply/X-Autorespond headers of
    vacation responders, and a null Return-Path (``<>``: bounces and RFC 3834 responses)."""
    auto_submitted = envelope.headers.get("auto-submitted", "")
    keyword = re.split(r"[\s;(]", auto_submitted.strip(), maxsplit=1)[0].lower()
    if keyword and keyword != "no":
        return Skip("automated_auto_submitted", f"Auto-Submitted: {auto_submitted}")
    for name in ("x-autoreply", "x-autorespond"):
        if name in envelope.headers:
            return Skip("automated_auto_submitted", f"{name}: {envelope.headers[name]}")
    if envelope.headers.get("return-path", "").replace(" ", "") == "<>":
        return Skip("automated_auto_submitted", "null Return-Path")
    return None


def skip_list(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """Mailing lists and newsletters (RFC 2369, RFC 2919); the value does not matter."""
    for name in ("list-id", "list-unsubscribe"):
        if name in envelope.headers:
            return Skip("automated_list", f"{name}: {envelope.headers[name]}")
    return None


_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})


def skip_bulk(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """``Precedence`` (RFC 2076) is discouraged but still what list servers and bulk senders set."""
    precedence = envelope.headers.get("precedence", "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return Skip("automated_bulk", f"Precedence: {precedence}")
    return None


def skip_automated_sender(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """The last resort for machines that set no header: see ``is_automated_address``."""
    if envelope.sender and is_automated_address(envelope.sender.email):
        return Skip("automated_sender", f"sent by {envelope.sender.email}")
    return None


_GMAIL_CATEGORIES = {
    "category_promotions": "gmail_category_promotions",
    "category_social": "gmail_category_social",
    "category_updates": "gmail_category_updates",
    "category_forums": "gmail_category_forums",
}


def skip_gmail_category(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """Gmail's tabs other than Primary, when the connector reports them as labels."""
    for label in sorted(envelope.labels):
        reason = _GMAIL_CATEGORIES.get(_label_key(label))
        if reason:
            return Skip(reason, f"labelled {label!r}")
    return None


CHAIN: tuple[Step, ...] = (
    skip_private_label,
    skip_not_shared,
    skip_spam_or_trash,
    skip_chat,
    skip_never_log,
    skip_internal_only,
    skip_calendar_notification,
    skip_auto_submitted,
    skip_list,
    skip_bulk,
    skip_automated_sender,
    skip_gmail_category,
)
"""The filter steps in the order ``apply_filters`` runs them (see the module docstring)."""


S = TypeVar("S")
P = TypeVar("P")


def first_reason(
    rules: Iterable[Callable[[S, P], Skip | None]], subject: S, policy: P
) -> Skip | None:
    """The first rule's reason not to log ``subject``, in order, or None to log it: how
    both the mail filters and the meeting rules decide."""
    return next((skip for rule in rules if (skip := rule(subject, policy)) is not None), None)


def apply_filters(envelope: Envelope, policy: FilterPolicy) -> Skip | None:
    """The first reason not to log ``envelope``, or None to log it."""
    return first_reason(CHAIN, envelope, policy)
