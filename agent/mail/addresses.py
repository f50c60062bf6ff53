"""Participant matching: the pure rules that turn header text into comparable identities.

Shared by mail and calendar, so that an address written ``"Bob" <Bob.Smith@GoogleMail.com>``
in a header and ``bobsmith@gmail.com`` on a meeting invitation land on the same
contact. Nothing here touches the database; the repository layer looks up what
these functions produce.

Normalization of an address:

* strip, lower-case (local parts are case-sensitive in theory, never in practice);
* the domain is IDNA-encoded (UTS 46, IDNA 2008) so ``mächine.example`` and
  ``xn--mchine-bua.example`` are one domain;
* Gmail folding for ``gmail.com``/``googlemail.com`` only, where Google itself
  ignores dots and ``+tag``: ``B.O.B+crm@googlemail.com`` is ``bob@gmail.com``.
  Other providers give dots meaning, so only ``+tag`` can be stripped there,
  and only on request.

A company is the *registrable domain* (one label below the public suffix, by
the Public Suffix List, private section included so ``shop.myshopify.com`` is
its own company), unless the provider is a free-mail service.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.utils import getaddresses
from importlib import resources
from typing import Literal

import idna
from nameparser import HumanName
from publicsuffixlist import PublicSuffixList

from config.limits import MAX_ADDRESS_CHARS, MAX_NAME_CHARS, clip
from connectors.records import Address

Role = Literal["from", "to", "cc", "bcc"]
"""A mail participant's role. Reply-To addresses are reported as ``from``: they
speak for the sender's side (an assistant, a personal address); see
``agent.mail.envelope``."""

Direction = Literal["inbound", "outbound", "internal"]

_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_BAD_LOCAL_CHARS = re.compile(r'[\s<>()\[\]\\,;:"@\x00-\x1f\x7f\ufffd]')


def normalize_email(value: str, *, strip_plus_tags: bool = False) -> str | None:
    """The comparable form of an address, or None when ``value`` is not one.

    Quoted local parts, IP-literal domains and single-label domains are
    refused: none of them identifies a person a CRM can write to. Misplaced
    dots in the local part (``first..last``, ``name.``) are accepted: some
    providers handed such addresses out, and their owners still write to us.
    """
    text = value.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    local, at, domain_part = text.rpartition("@")
    if not at or not local.strip(".") or _BAD_LOCAL_CHARS.search(local):
        return None
    domain = normalize_domain(domain_part)
    if domain is None:
        return None
    local = local.lower()
    if domain in _GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    elif strip_plus_tags:
        local = local.split("+", 1)[0]
    if not local:
        return None
    address = f"{local}@{domain}"
    return address if len(address) <= MAX_ADDRESS_CHARS else None


@functools.lru_cache(maxsize=4096)
def normalize_domain(value: str) -> str | None:
    """A domain lower-cased and IDNA-encoded, trailing dot removed; None when it is not a
    host name with at least two labels."""
    domain = value.strip().rstrip(".").lower()
    if not domain:
        return None
    if not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except UnicodeError:
            try:
                domain = domain.encode("idna").decode("ascii")
            except UnicodeError:
                return None
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253 or labels[-1].isdigit():
        return None
    return domain if all(_LABEL.match(label) for label in labels) else None


@functools.lru_cache(maxsize=8192)
def addresses(header_value: str) -> tuple[Address, ...]:
    """Every usable address in one header value, first occurrence kept.

    Takes the header as written (RFC 2047 encoded words and all): decoding
    before splitting would turn ``=?utf-8?b?...?=`` hiding ``"Doe, John"`` into
    a comma that splits one address in two. Cached: a mailbox repeats the
    same few header values (the owner's own address above all), and the
    stdlib's address parser is slow.
    """
    seen: set[str] = set()
    found: list[Address] = []
    for name, raw_email in getaddresses([header_value]):
        email = normalize_email(raw_email)
        if email is None or email in seen:
            continue
        seen.add(email)
        found.append(Address(email=email, name=_clean_display_name(name, raw_email)))
    return tuple(found)


def _clean_display_name(name: str, raw_email: str) -> str:
    if "=?" in name:
        with contextlib.suppress(HeaderParseError, ValueError, LookupError, UnicodeError):
            name = str(make_header(decode_header(name)))
    cleaned = " ".join(name.split()).strip("\"' ")
    return "" if cleaned.lower() == raw_email.strip().lower() else clip(cleaned, MAX_NAME_CHARS)


@functools.cache
def _public_suffix_list() -> PublicSuffixList:
    return PublicSuffixList()


@functools.lru_cache(maxsize=4096)
def registrable_domain(domain: str) -> str:
    """The domain one label below its public suffix (``www.airbnb.co.uk`` -> ``airbnb.co.uk``).

    A domain that is itself a public suffix, or has no known suffix, is
    returned as it is (lower-case, IDNA-encoded where possible).
    """
    plain = normalize_domain(domain) or domain.strip().rstrip(".").lower()
    found = _public_suffix_list().privatesuffix(plain)
    return found if isinstance(found, str) else plain


def _has_registrable_domain(domain: str) -> bool:
    return isinstance(_public_suffix_list().privatesuffix(domain), str)


@dataclass(frozen=True)
class FreeMail:
    """Mail providers whose addresses say nothing about an employer.

    ``domains`` match themselves and their sub-domains; ``names`` come from
    ``name.*`` patterns and match a registrable domain under any public
    suffix (``yahoo`` matches ``yahoo.co.uk``). ``exceptions`` are domains an
    admin removed although a pattern still covers them.
    """

    domains: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()
    exceptions: frozenset[str] = frozenset()

    def is_free(self, domain: str) -> bool:
        """Whether ``domain`` (or an address's domain) belongs to a free-mail provider."""
        plain = normalize_domain(domain.rpartition("@")[2])
        if plain is None:
            return False
        registrable = registrable_domain(plain)
        if registrable in self.exceptions or plain in self.exceptions:
            return False
        if any(parent in self.domains for parent in _self_and_parents(plain)):
            return True
        return registrable.split(".", 1)[0] in self.names and _has_registrable_domain(plain)


def _self_and_parents(domain: str) -> Iterable[str]:
    labels = domain.split(".")
    return (".".join(labels[i:]) for i in range(len(labels) - 1))


def load_free_mail(extra: Iterable[str] = (), remove: Iterable[str] = ()) -> FreeMail:
    """The shipped free-mail list with an admin's additions and removals.

    Raises ValueError naming the first pattern that is neither a domain nor ``name.*``.
    """
    domains, names = _shipped_free_mail()
    extra_domains, extra_names = _parse_free_mail_patterns(extra)
    removed_domains, removed_names = _parse_free_mail_patterns(remove)
    return FreeMail(
        domains=(domains | extra_domains) - removed_domains,
        names=(names | extra_names) - removed_names,
        exceptions=removed_domains - extra_domains,
    )


@functools.cache
def _shipped_free_mail() -> tuple[frozenset[str], frozenset[str]]:
    text = resources.files("agent.mail").joinpath("data/free_mail.txt").read_text(encoding="utf-8")
    return _parse_free_mail_patterns(text.splitlines())


def _parse_free_mail_patterns(lines: Iterable[str]) -> tuple[frozenset[str], frozenset[str]]:
    domains: set[str] = set()
    names: set[str] = set()
    for line in lines:
        pattern = line.split("#", 1)[0].strip().lower()
        if not pattern:
            continue
        if pattern.endswith(".*"):
            name = normalize_domain(pattern[:-2] + ".invalid")
            if name is None or name.count(".") != 1:
                raise ValueError(f"not a free-mail pattern: {line.strip()!r}")
            names.add(name.split(".", 1)[0])
            continue
        domain = normalize_domain(pattern)
        if domain is None:
            raise ValueError(f"not a free-mail pattern: {line.strip()!r}")
        domains.add(domain)
    return frozenset(domains), frozenset(names)


def company_domain(email: str, free_mail: FreeMail) -> str | None:
    """The company an address belongs to, by domain; None for free-mail and unusable domains."""
    normalized = normalize_email(email)
    if normalized is None:
        return None
    domain = normalized.rpartition("@")[2]
    if not _has_registrable_domain(domain) or free_mail.is_free(domain):
        return None
    return registrable_domain(domain)


def is_internal(email: str, internal_domains: Collection[str]) -> bool:
    """Whether the address is at one of ``internal_domains`` or a sub-domain of one."""
    domain = normalize_domain(email.rpartition("@")[2])
    if domain is None:
        return False
    for candidate in internal_domains:
        internal = normalize_domain(candidate)
        if internal is not None and (domain == internal or domain.endswith("." + internal)):
            return True
    return False


def direction(
    sender: Address | None,
    recipients: Sequence[Address],
    mailbox: str,
    internal_domains: Collection[str],
) -> Direction:
    """Which way a message went, from the team's side.

    The mailbox owner counts as internal even when their domain is not listed
    (a salesperson syncing a personal address). Outbound: our side sent it to
    at least one outsider. Internal: nobody outside took part. Inbound:
    everything else, including mail without a usable sender (who sent it is
    unknown, so it is not known to be ours).
    """

    def ours(address: Address) -> bool:
        return address.email == mailbox or is_internal(address.email, internal_domains)

    if sender is None or not ours(sender):
        return "inbound"
    return "internal" if all(map(ours, recipients)) else "outbound"


_NO_REPLY = ("noreply", "donotreply", "dontreply")
_AUTOMATED_LOCAL = frozenset(
    {"mailerdaemon", "postmaster", "notify", "autoreply", "autoresponder", *_NO_REPLY}
)
_AUTOMATED_TOKENS = frozenset(
    {"bounce", "bounces", "notification", "notifications", "newsletter", "newsletters"}
)
_AUTOMATED_DOMAIN_LABELS = frozenset({"noreply", "no-reply", "bounce", "bounces"})
_LOCAL_SEPARATORS = re.compile(r"[._=-]+")


def is_automated_address(email: str) -> bool:
    """Whether an address is one that machines send from and no person reads.

    Matched on the local part, separators ignored: no-reply in every spelling
    (also as a prefix or suffix: ``noreply-dmarc``, ``calendar-noreply``),
    mailer-daemon, postmaster, notify, auto-reply; and words that only appear in
    machine addresses: bounce(s) (``listname-bounces``, VERP and SRS forms),
    notification(s), newsletter(s). Domains with a ``noreply`` or ``bounces``
    label count too (``users.noreply.github.com``). Left out on purpose:
    ``alerts``, ``info``, ``support``, ``sales``, ``hello`` — role addresses
    that people answer from.
    """
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if not local:
        return False
    compact = _LOCAL_SEPARATORS.sub("", local)
    if compact in _AUTOMATED_LOCAL or compact.startswith(_NO_REPLY) or compact.endswith(_NO_REPLY):
        return True
    if any(token in _AUTOMATED_TOKENS for token in _LOCAL_SEPARATORS.split(local)):
        return True
    return any(label in _AUTOMATED_DOMAIN_LABELS for label in domain.split("."))


_NOT_A_PERSON = frozenset(
    {
        "account", "accounting", "accounts", "admin", "administrator", "alerts", "billing",
        "careers", "community", "company", "contact", "corp", "corporation", "customer",
        "customers", "daemon", "delivery", "department", "desk", "dept", "enquiries", "feedback",
        "finance", "gmbh", "group", "hello", "help", "helpdesk", "hr", "inc", "info",
        "inquiries", "invoice", "invoices", "jobs", "legal", "limited", "llc", "ltd",
        "mailer", "marketing", "news", "newsletter", "noreply", "no-reply", "notification",
        "notifications", "office", "operations", "orders", "partners", "payments", "plc",
        "postmaster", "press", "reception", "recruiting", "sales", "security", "service",
        "services", "shop", "store", "subscriptions", "subsystem", "support", "system",
        "team", "the", "updates", "via", "webmaster",
    }
)  # fmt: skip
_TOKEN_SPLIT = re.compile(r"[\s,()\[\]<>/|&+:;\"'!?]+")
_AFFILIATION = re.compile(r"\s+(?:\||-|–|—|@)\s+.*$")


@functools.lru_cache(maxsize=8192)
def split_name(display_name: str) -> tuple[str, str]:
    """First and last name from a display name, or ("", "") when it is not clearly a person.

    Conservative on purpose: a wrong first name on a contact is worse than
    none (the display name itself is kept anyway). Refused: addresses used as
    names, anything with digits, role and company words ("Support Team",
    "Acme GmbH"), single all-capital words ("SALES") and scripts without
    letter case, whose name order cannot be guessed. "Last, First", titles
    and suffixes are understood; an affiliation after `` | `` or `` - `` is
    dropped; all-capital or all-lower-case names are re-capitalized.
    """
    name = _AFFILIATION.sub("", " ".join(display_name.split())).strip("\"' ")
    if not name or "@" in name or any(char.isdigit() for char in name):
        return ("", "")
    tokens = [token.strip(".") for token in _TOKEN_SPLIT.split(name.lower()) if token.strip(".")]
    if not tokens or any(token in _NOT_A_PERSON for token in tokens):
        return ("", "")
    if not any(char.isupper() or char.islower() for char in name if char.isalpha()):
        return ("", "")
    if len(tokens) == 1 and name.isupper():
        return ("", "")
    parsed = HumanName(name)
    parsed.capitalize()
    first, last = str(parsed.first).strip(), str(parsed.last).strip()
    return (first, last) if first or last else ("", "")
