"""The envelope: what the pipeline needs to know about an email, read once from its headers.

Filters, matching and logging all work on an ``Envelope`` instead of the raw
message, so each of them is a pure function that tests can drive with a
handful of fields.

Keys that identify a message across mailboxes:

* ``dedupe_key``: the RFC 5322 Message-ID, normalized (angle brackets and
  whitespace removed, lower-cased). Without one, ``hash:`` and a SHA-256 of
  the sender, the date (ISO 8601, UTC), the subject and the sorted To and Cc
  addresses. Bcc is left out: only the sender's copy shows it, and the copies
  in the recipients' mailboxes must produce the same key.
* ``thread_key``: the provider's thread id when the connector has one
  (Gmail's thread id, Takeout's X-GM-THRID), else the root of the
  conversation: the first References id, else In-Reply-To, else the message
  itself.

Reply-To: an address in Reply-To that differs from every From address and is
not an automated address is added as a second ``from`` participant: replies
go to it, so it speaks for the sender's side (an assistant, a personal
mailbox). List and bulk mail, where Reply-To points at a list, is dropped by
the filters before this matters.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import parsedate_to_datetime
from types import MappingProxyType

from agent.mail.addresses import (
    Direction,
    Role,
    addresses,
    direction,
    is_automated_address,
    normalize_email,
)
from agent.mail.text import CALENDAR_TYPES, content_type, header_str, unfold
from config.limits import (
    MAX_ADDRESS_HEADER_CHARS,
    MAX_CALENDAR_SEARCH_PARTS,
    MAX_PARTICIPANTS,
    MAX_SUBJECT_CHARS,
    bounded_id,
    clip,
    out_of_range,
)
from connectors.errors import BadItem
from connectors.headers import SPAM_HEADERS
from connectors.records import Address, MailMessage

FILTER_HEADERS = (
    "list-unsubscribe",
    "list-id",
    "precedence",
    "auto-submitted",
    "x-auto-response-suppress",
    "x-autoreply",
    "x-autorespond",
    "return-path",
    "sender",
    "content-class",
    "content-type",
    "x-gmail-labels",
    *(name.lower() for name in SPAM_HEADERS),
)
"""Header names kept on the envelope, the only ones the filters read."""
_FILTER_HEADER_SET = frozenset(FILTER_HEADERS)

_CALENDAR_METHOD = re.compile(rb"^METHOD:[ \t]*([A-Za-z-]+)", re.MULTILINE)
_ANGLE_ID = re.compile(r"<([^<>]*)>")
_RFC5322_YEAR = re.compile(r"\b\d{1,2}\s+[A-Za-z]{3}[A-Za-z]*\.?\s+(\d+)\s+\d{1,2}:\d{2}")
"""The year of an RFC 5322 date (``7 Jun 91 09:12``); obsolete syntax allows two digits."""


@dataclass(frozen=True)
class Envelope:
    """The headers of one email, normalized for filtering, matching and logging.

    ``participants`` holds each (address, role) once, in header order: From
    (then Reply-To, see the module docstring), To, Cc, Bcc. ``calendar_method``
    is the iCalendar METHOD of the first calendar part (``REQUEST``,
    ``REPLY``...), when there is one and it says.
    """

    source_id: str
    mailbox: str
    message_id: str | None
    dedupe_key: str
    subject: str
    occurred_at: datetime
    sender: Address | None
    participants: tuple[tuple[Address, Role], ...]
    direction: Direction
    thread_key: str | None
    labels: frozenset[str] = frozenset()
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)
    has_calendar_part: bool = False
    calendar_method: str | None = None
    dropped_participants: int = 0
    """Addresses past ``config.limits.MAX_PARTICIPANTS``, not recorded."""
    fingerprint: str = ""
    """Sender, Date header, subject and To/Cc: what every copy of this message shares, and a
    different message reusing its Message-ID does not (``storage.ingest``)."""

    @property
    def recipients(self) -> tuple[Address, ...]:
        """To, Cc and Bcc addresses, each once."""
        return _unique(address for address, role in self.participants if role != "from")


def normalize_message_id(value: str) -> str | None:
    """The first message id in ``value``: angle brackets and whitespace removed, lower-cased,
    and hashed when it is too long to be a key (``config.limits.bounded_id``)."""
    match = _ANGLE_ID.search(value)
    candidate = match.group(1) if match else value
    normalized = "".join(candidate.split()).lower()
    return bounded_id(normalized) if normalized else None


def build_envelope(
    message: MailMessage, parsed: Message, internal_domains: Collection[str]
) -> Envelope:
    """Read the envelope of ``message`` (``parsed`` is ``parse_mime(message.raw)``).

    Raises ``BadItem`` only for a message nothing can be logged from: no
    sender and no recipient at all, no date from the headers nor the
    connector, a Date header whose year is not one (``0``, ``0000``: RFC
    5322 allows two digits or four, and the stdlib would make these 2000),
    or a date outside the range ``config.limits`` accepts. Such a message is
    quarantined with its date, never re-dated.
    """
    from_addresses = _header_addresses(parsed, "from") or _header_addresses(parsed, "sender")
    to = _header_addresses(parsed, "to")
    cc = _header_addresses(parsed, "cc")
    bcc = _header_addresses(parsed, "bcc")
    if not from_addresses and not (to or cc or bcc):
        raise BadItem(message.source_id, "no sender and no recipients")
    date_header = header_str(parsed, "Date")
    occurred_at = _dated(message, date_header)

    sender = from_addresses[0] if from_addresses else None
    replies_to = _extra_reply_to(_header_addresses(parsed, "reply-to"), from_addresses)
    participants = _participants(
        (from_addresses + replies_to, "from"), (to, "to"), (cc, "cc"), (bcc, "bcc")
    )
    dropped = max(0, len(participants) - MAX_PARTICIPANTS)
    mailbox = normalize_email(message.mailbox) or message.mailbox.strip().lower()
    subject = clip(" ".join(header_str(parsed, "Subject").split()), MAX_SUBJECT_CHARS)
    message_id = normalize_message_id(header_str(parsed, "Message-ID"))
    calendar_method = _calendar_part_method(parsed)
    return Envelope(
        source_id=message.source_id,
        mailbox=mailbox,
        message_id=message_id,
        dedupe_key=message_id or _content_hash(sender, occurred_at, subject, to + cc),
        fingerprint=_content_hash(sender, _occurred_at(date_header, None), subject, to + cc),
        subject=subject,
        occurred_at=occurred_at,
        sender=sender,
        participants=participants[:MAX_PARTICIPANTS],
        direction=direction(sender, _unique(to + cc + bcc), mailbox, internal_domains),
        thread_key=_thread_key(message.thread_id, parsed, message_id),
        labels=message.labels | _gmail_labels(header_str(parsed, "X-Gmail-Labels")),
        headers=MappingProxyType(_filter_headers(parsed)),
        has_calendar_part=calendar_method is not None,
        calendar_method=calendar_method or None,
        dropped_participants=dropped,
    )


def _header_addresses(parsed: Message, name: str) -> tuple[Address, ...]:
    """Addresses from every occurrence of a header, as written in the message.

    Read from ``raw_items`` rather than ``header_str``: that returns only the
    first of repeated headers, and the modern policy re-renders malformed
    address lists, losing addresses (``Mikel@Lindsaar <raasdnil@gmail.com>``
    becomes ``Mikel@Lindsaar``).
    """
    found: list[Address] = []
    for key, value in parsed.raw_items():
        if key.lower() == name:
            text = str(value)[:MAX_ADDRESS_HEADER_CHARS]
            found.extend(addresses(unfold(_undo_surrogates(text))))
    return _unique(found)


def _undo_surrogates(value: str) -> str:
    """8-bit header bytes arrive as surrogate escapes; read them as UTF-8, else Latin-1."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _unique(items: Iterable[Address]) -> tuple[Address, ...]:
    seen: set[str] = set()
    kept: list[Address] = []
    for address in items:
        if address.email not in seen:
            seen.add(address.email)
            kept.append(address)
    return tuple(kept)


def _extra_reply_to(
    reply_to: tuple[Address, ...], from_addresses: tuple[Address, ...]
) -> tuple[Address, ...]:
    senders = {address.email for address in from_addresses}
    return tuple(
        address
        for address in reply_to
        if address.email not in senders and not is_automated_address(address.email)
    )


def _participants(
    *groups: tuple[tuple[Address, ...], Role],
) -> tuple[tuple[Address, Role], ...]:
    seen: set[tuple[str, Role]] = set()
    kept: list[tuple[Address, Role]] = []
    for group, role in groups:
        for address in group:
            if (address.email, role) not in seen:
                seen.add((address.email, role))
                kept.append((address, role))
    return tuple(kept)


def _occurred_at(date_header: str, internal_date: datetime | None) -> datetime | None:
    """The Date header in UTC; the connector's internal date when the header is unusable.

    A date without a zone (``-0000``, or none given) is taken as UTC.
    """
    parsed: datetime | None = None
    if date_header.strip():
        try:
            parsed = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed = None
    chosen = parsed or internal_date
    if chosen is None:
        return None
    if chosen.tzinfo is None:
        chosen = chosen.replace(tzinfo=UTC)
    return chosen.astimezone(UTC)


def _dated(message: MailMessage, date_header: str) -> datetime:
    """When ``message`` was written; ``BadItem`` when no date can be trusted.

    A year the stdlib would read as 19xx or 20xx (``0``, ``0000``) is
    quarantined, never re-dated.
    """
    written = _written_year(date_header)
    if written is not None and (len(written) == 1 or (len(written) > 2 and int(written) < 1000)):
        raise BadItem(message.source_id, f"Date header year {written!r} is not a year")
    occurred_at = _occurred_at(date_header, message.internal_date)
    if occurred_at is None:
        raise BadItem(message.source_id, "no usable Date header")
    strange = out_of_range(occurred_at)
    if strange is not None:
        raise BadItem(message.source_id, strange)
    return occurred_at


def _written_year(date_header: str) -> str | None:
    """The year as the Date header writes it, when it has RFC 5322's shape."""
    match = _RFC5322_YEAR.search(date_header)
    return match.group(1) if match else None


def _content_hash(
    sender: Address | None,
    occurred_at: datetime | None,
    subject: str,
    recipients: Iterable[Address],
) -> str:
    fields = [
        sender.email if sender else "",
        occurred_at.astimezone(UTC).isoformat() if occurred_at else "",
        subject,
        sorted({address.email for address in recipients}),
    ]
    payload = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return "hash:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _thread_key(thread_id: str | None, parsed: Message, message_id: str | None) -> str | None:
    if thread_id and thread_id.strip():
        return bounded_id(thread_id.strip())
    for header in ("References", "In-Reply-To"):
        root = normalize_message_id(header_str(parsed, header))
        if root:
            return root
    return message_id


def _gmail_labels(value: str) -> frozenset[str]:
    """Takeout's X-Gmail-Labels: comma-separated, labels with commas in double quotes."""
    if not value.strip():
        return frozenset()
    row = next(csv.reader([unfold(value)], skipinitialspace=True), [])
    return frozenset(label.strip() for label in row if label.strip())


def _filter_headers(parsed: Message) -> dict[str, str]:
    """The filter headers in one pass over the raw headers; only encoded or 8-bit values
    go through the full decoder."""
    kept: dict[str, str] = {}
    for key, raw in parsed.raw_items():
        name = key.lower()
        if name not in _FILTER_HEADER_SET or name in kept:
            continue
        text = str(raw)
        if "=?" in text or not text.isascii():
            text = header_str(parsed, name)
        value = " ".join(text.split())
        if value:
            kept[name] = value
    return kept


def _calendar_part_method(parsed: Message) -> str | None:
    """The METHOD of the first calendar part; "" for a calendar part that does not say; None
    without one. Only the first parts are looked at: calendar parts sit near the top, and some
    broken messages nest without end."""
    try:
        for index, part in enumerate(parsed.walk()):
            if index >= MAX_CALENDAR_SEARCH_PARTS:
                break
            if content_type(part) in CALENDAR_TYPES:
                return _method_of(part)
    except (RecursionError, LookupError, ValueError):
        return None
    return None


def _method_of(part: Message) -> str:
    param = part.get_param("method")
    if isinstance(param, str) and param.strip():
        return param.strip().upper()
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        match = _CALENDAR_METHOD.search(payload)
        if match:
            return match.group(1).decode("ascii").upper()
    return ""
