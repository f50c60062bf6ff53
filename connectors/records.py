"""Normalized records: the one vocabulary that connectors and the agent share.

A connector turns a remote mailbox or calendar into these records and nothing
else; the agent never sees a provider's own types. Mail travels as the raw
RFC 5322 bytes the connector obtained (a whole message, or its header and a
truncated first text part), because one parser in the agent then serves every
source and a malformed message is quarantined in one place.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Cursor = dict[str, Any]
"""A connector's position, JSON-serialisable; durable once committed."""


@dataclass(frozen=True, order=True)
class Address:
    """One participant: a normalized address (lower-case, IDNA domain) and a display name."""

    email: str
    name: str = ""


@dataclass(frozen=True)
class MailMessage:
    """An email as a connector obtained it.

    ``source_id`` is the provider's stable id within ``connector`` (a Gmail
    message id, ``folder/uidvalidity/uid`` for IMAP, a file offset key for
    mbox); ``mailbox`` is the address of the mailbox owner, which decides the
    direction of the mail. ``raw`` may be truncated (``truncated = True``):
    connectors fetch only what the CRM needs.
    """

    source_id: str
    mailbox: str
    raw: bytes
    labels: frozenset[str] = frozenset()
    thread_id: str | None = None
    internal_date: datetime | None = None
    truncated: bool = False


ResponseStatus = Literal["needs_action", "accepted", "declined", "tentative", "unknown"]


@dataclass(frozen=True)
class Attendee:
    """A meeting participant with the answer they gave to the invitation."""

    address: Address
    response_status: ResponseStatus = "unknown"
    is_resource: bool = False
    optional: bool = False


@dataclass(frozen=True)
class CalendarEvent:
    """One occurrence of a meeting, already expanded from its recurrence rule.

    ``uid`` and ``original_start`` identify the occurrence across calendars
    (iCalendar UID plus RECURRENCE-ID), so the same meeting on five
    attendees' calendars is one interaction. ``start`` differs from
    ``original_start`` when the occurrence was moved.
    """

    source_id: str
    calendar: str
    owner: str
    uid: str
    original_start: datetime
    start: datetime
    end: datetime | None
    summary: str = ""
    description: str = ""
    location: str = ""
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    organizer: Address | None = None
    attendees: tuple[Attendee, ...] = ()
    sequence: int = 0
    updated: datetime | None = None


@dataclass(frozen=True)
class CalendarReply:
    """One attendee's answer to a meeting (iTIP METHOD:REPLY), never a meeting of its own.

    It names the meeting by ``uid`` and, for one occurrence, ``recurrence_id``
    (None: every occurrence of the series); ``organizer`` tells a reused UID
    from the meeting it names. ``stamp`` is the reply's DTSTAMP, which orders
    answers: an older one never replaces a newer one (``storage.ingest``).
    """

    source_id: str
    uid: str
    recurrence_id: datetime | None
    attendee: Attendee
    organizer: Address | None = None
    stamp: datetime | None = None
    sequence: int = 0


@dataclass(frozen=True)
class SourceRemoved:
    """The provider no longer holds ``source_id`` in the synced scope (deleted or relabelled)."""

    source_id: str


@dataclass(frozen=True)
class Unreadable:
    """An item the connector could not turn into a record; the agent quarantines it.

    Yielded in the batch whose cursor moves past it, so the quarantine entry
    and the cursor commit together and the sync goes on.
    """

    source_id: str
    reason: str


@dataclass(frozen=True)
class Limited:
    """Something taken in only up to a bound of ``config.limits`` (a recurring series cut
    short): what was within the bound is logged; the agent counts the rest under ``reason``
    (a short key such as ``series_capped``) and logs ``detail``. Never quarantined.
    """

    source_id: str
    reason: str
    detail: str


Item = MailMessage | CalendarEvent | CalendarReply | SourceRemoved | Unreadable | Limited


@dataclass(frozen=True)
class Batch:
    """Items and the cursor that covers them: both commit in one transaction."""

    items: Sequence[Item]
    cursor: Cursor = field(default_factory=dict)


class Connector(Protocol):
    """A source of changes since a cursor. ``fetch(None)`` means a full sync."""

    name: str

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]: ...
