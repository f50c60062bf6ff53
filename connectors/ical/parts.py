"""iCalendar to CRM: what one VEVENT occurrence means as a ``CalendarEvent``.

Shared by every source that speaks iCalendar: ICS files, Google Calendar
(whose JSON events are rebuilt as VEVENTs so they expand the same way) and
``text/calendar`` parts of invitations that arrive by mail. The conversion
reads one occurrence as produced by ``connectors.ical.recurrence.expand``: its
DTSTART and DTEND are the occurrence's own, its RECURRENCE-ID is the start
the series originally gave it.

Times come out as aware UTC datetimes. An all-day event (a DATE, not a
DATE-TIME) becomes midnight UTC of its date, and a floating time (no TZID,
no ``Z``) is read as UTC: neither names a zone, and UTC keeps the result
independent of the machine the agent runs on.

Addresses are normalized only locally (``mailto:`` stripped, lower-cased,
display name from ``CN``); the agent normalizes them again with the rest.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from icalendar import Calendar, Component
from icalendar.prop import vDDDTypes

from config.limits import MAX_NAME_CHARS, MAX_REPLY_ANSWERS, bounded_id, clip
from connectors.records import Address, Attendee, CalendarEvent, CalendarReply, ResponseStatus

EventStatus = Literal["confirmed", "tentative", "cancelled"]

_RESPONSES: Mapping[str, ResponseStatus] = {
    "NEEDS-ACTION": "needs_action",
    "ACCEPTED": "accepted",
    "DECLINED": "declined",
    "TENTATIVE": "tentative",
}
_STATUSES: Mapping[str, EventStatus] = {
    "CONFIRMED": "confirmed",
    "TENTATIVE": "tentative",
    "CANCELLED": "cancelled",
}
_RESOURCE_TYPES = frozenset({"ROOM", "RESOURCE"})
_RELAY_DOMAINS = frozenset({"imip.me.com", "group.calendar.google.com"})
_RELAY_SUFFIXES = (".imip.me.com",)
_RELAY_ADDRESSES = frozenset({"noreply@email.apple.com", "no-reply@email.apple.com"})
"""Calendar relays: addresses that stand for someone (see ``address``)."""
_DATE_VALUE = re.compile(rb";VALUE=DATE(?=[;:]|$)", re.IGNORECASE)


def parse_calendar(data: bytes) -> Calendar:
    """Read the bytes of a .ics file or a ``text/calendar`` part as one calendar.

    Several VCALENDAR blocks in one file (concatenated exports) are merged, so
    an override in one block still finds its series in another; the first
    block's calendar properties (X-WR-TIMEZONE among them) apply to all. Raises
    ``ValueError`` when no complete VCALENDAR is there: a file caught half
    written must read as broken, not as empty, or every meeting in it would
    look deleted.

    The parser builds every VTIMEZONE as it reads it, and refuses some that
    RFC 5545 readers accept (``_calendars``); a zone it cannot build never
    costs a file that schedules nothing.
    """
    calendars = _calendars(data)
    if not calendars:
        raise ValueError("no complete VCALENDAR block")
    if len(calendars) == 1:
        return calendars[0]
    merged = Calendar()
    merged.update(calendars[0])
    for calendar in calendars:
        merged.subcomponents.extend(calendar.subcomponents)
    return merged


def _calendars(data: bytes) -> list[Calendar]:
    """The file's VCALENDAR blocks, read again with repaired time zones when they fail.

    ``RDATE;VALUE=DATE`` inside a VTIMEZONE (a transition on a date, read as
    its midnight) makes the parser raise; such RDATEs are rewritten as
    date-times and the file read again. A file still refused for its zones
    while it holds no VEVENT (a time-zone-only export) reads as the empty
    calendar it is: there is nothing in it to log, and nothing is wrong with
    the calendar the user cares about. A file without a complete VCALENDAR
    stays an error, as ``parse_calendar`` says why.
    """
    try:
        return list(Calendar.from_ical(data, multiple=True))
    except Exception:
        if b"VTIMEZONE" not in data.upper():
            raise
    repaired = _repair_zones(data)
    try:
        return list(Calendar.from_ical(repaired, multiple=True))
    except Exception:
        upper = repaired.upper()
        if b"BEGIN:VEVENT" in upper or b"END:VCALENDAR" not in upper:
            raise
    empty = Calendar()
    empty.add("VERSION", "2.0")
    return [empty]


def _repair_zones(data: bytes) -> bytes:
    """``data`` unfolded, each VTIMEZONE ``RDATE;VALUE=DATE:d1,d2`` as ``RDATE:d1T000000,...``."""
    lines = re.sub(rb"\r?\n[ \t]", b"", data).splitlines()
    depth = 0
    out: list[bytes] = []
    for line in lines:
        upper = line.upper()
        if upper.startswith(b"BEGIN:VTIMEZONE"):
            depth += 1
        elif upper.startswith(b"END:VTIMEZONE"):
            depth = max(0, depth - 1)
        elif depth and upper.startswith(b"RDATE;") and _DATE_VALUE.search(upper):
            head, _, values = line.partition(b":")
            head = _DATE_VALUE.sub(b"", head)
            line = head + b":" + b",".join(v.strip() + b"T000000" for v in values.split(b","))
        out.append(line)
    return b"\r\n".join(out) + b"\r\n"


def stable_uid(component: Component) -> str:
    """The component's UID or, when it has none, one derived from its start and summary.

    RFC 5545 requires a UID but some generators omit it; the fallback stays the
    same from one read of the file to the next, so the meeting is not taken for
    a new one each time. A UID longer than ``config.limits.MAX_ID_CHARS`` is
    replaced by its hash, which still names the same meeting everywhere.
    """
    uid = str(component.get("UID", "")).strip()
    if uid:
        return bounded_id(uid)
    start = component.get("DTSTART")
    seed = "\n".join(
        (
            start.to_ical().decode() if isinstance(start, vDDDTypes) else "",
            _text(component, "SUMMARY"),
        )
    )
    return "no-uid-" + hashlib.sha256(seed.encode()).hexdigest()[:24]


def to_calendar_event(
    occurrence: Component,
    *,
    calendar: str,
    owner: str,
    source_prefix: str,
    method: str = "",
) -> CalendarEvent:
    """The CRM's record of one expanded occurrence.

    ``source_id`` is ``f"{source_prefix}/{uid}/{original start, ISO}"``: stable
    for as long as the source holds the occurrence, whatever else changes
    about it. ``method`` is the calendar's METHOD; ``CANCEL`` (an organizer
    withdrawing an invitation) makes the occurrence cancelled whatever its
    STATUS says.
    """
    start_value = occurrence.get("DTSTART")
    if not isinstance(start_value, vDDDTypes) or not isinstance(start_value.dt, date):
        raise ValueError("an occurrence needs a DTSTART date or date-time")
    uid = stable_uid(occurrence)
    start = to_utc(start_value.dt)
    original_start = _moment(occurrence, "RECURRENCE-ID") or start
    status = _STATUSES.get(_text(occurrence, "STATUS").upper(), "confirmed")
    if method.upper() == "CANCEL":
        status = "cancelled"
    return CalendarEvent(
        source_id=f"{source_prefix}/{uid}/{original_start.isoformat()}",
        calendar=calendar,
        owner=owner,
        uid=uid,
        original_start=original_start,
        start=start,
        end=_end(occurrence, start_value.dt),
        summary=_text(occurrence, "SUMMARY"),
        description=_text(occurrence, "DESCRIPTION"),
        location=_text(occurrence, "LOCATION"),
        status=status,
        organizer=address(_first(occurrence.get("ORGANIZER"))),
        attendees=_attendees(occurrence.get("ATTENDEE")),
        sequence=_sequence(occurrence.get("SEQUENCE")),
        updated=_moment(occurrence, "LAST-MODIFIED") or _moment(occurrence, "DTSTAMP"),
    )


def calendar_replies(
    calendar: Component, *, source_prefix: str, stamp: datetime | None = None
) -> tuple[list[CalendarReply], int]:
    """The answers an iTIP REPLY carries, at most ``MAX_REPLY_ANSWERS``, and how many more.

    Each VEVENT names its meeting by UID and, for one occurrence, by
    RECURRENCE-ID (read as ``to_calendar_event`` reads it, so the two agree on
    an occurrence's original start); each ATTENDEE in it is one answer.
    ``stamp`` stands in for a missing DTSTAMP (an email's date). A VEVENT
    without a UID names no meeting and is left out: a derived UID would
    never match one.
    """
    found: list[CalendarReply] = []
    more = 0
    for component in calendar.walk("VEVENT"):
        if not str(component.get("UID", "")).strip():
            continue
        uid = stable_uid(component)
        recurrence_id = _moment(component, "RECURRENCE-ID")
        for attendee in _attendees(component.get("ATTENDEE")):
            if len(found) >= MAX_REPLY_ANSWERS:
                more += 1
                continue
            occurrence = recurrence_id.isoformat() if recurrence_id else "series"
            found.append(
                CalendarReply(
                    source_id=f"{source_prefix}/{uid}/{occurrence}",
                    uid=uid,
                    recurrence_id=recurrence_id,
                    attendee=attendee,
                    organizer=address(_first(component.get("ORGANIZER"))),
                    stamp=_moment(component, "DTSTAMP") or stamp,
                    sequence=_sequence(component.get("SEQUENCE")),
                )
            )
    return found, more


def to_utc(value: date) -> datetime:
    """An aware UTC datetime: dates at midnight UTC, floating times read as UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def address(value: Any) -> Address | None:
    """An ORGANIZER or ATTENDEE value as an ``Address``; ``None`` when it holds no email.

    A relay stands in for the person on some servers: iCloud invites from
    ``...@imip.me.com`` or ``noreply@email.apple.com``, Exchange wraps an
    address as ``IMCEASMTP-bob+40acme.example@...`` (or an X.500 name as
    ``IMCEAEX-...``), a Google group calendar organizes as its calendar id.
    A relay would become a contact nobody can write to, so the person is
    taken from where the data says who it is: the ``EMAIL`` parameter (RFC
    7986), the wrapped address, then ``SENT-BY`` (who acted for the relay);
    ``None`` when nothing says.
    """
    email = _email(value)
    if email is None:
        return None
    params = getattr(value, "params", {})
    if _is_relay(email):
        email = _behind_relay(email, params)
        if email is None:
            return None
    return Address(email=email, name=clip(str(params.get("CN", "")).strip(), MAX_NAME_CHARS))


def _email(value: Any) -> str | None:
    """The address a calendar-user value holds, lower-cased, ``mailto:`` and quotes off."""
    if value is None:
        return None
    text = str(value).strip().strip('"')
    if text.lower().startswith("mailto:"):
        text = text[len("mailto:") :]
    email = text.strip().lower()
    return email if "@" in email and " " not in email else None


def _is_relay(email: str) -> bool:
    local, _, domain = email.rpartition("@")
    return (
        domain in _RELAY_DOMAINS
        or domain.endswith(_RELAY_SUFFIXES)
        or email in _RELAY_ADDRESSES
        or local.startswith(("imceasmtp-", "imceaex-"))
    )


def _behind_relay(relay: str, params: Mapping[str, Any]) -> str | None:
    """The person a relay address stands for, where the data says; see ``address``."""
    candidates = [
        _email(params.get("EMAIL")),
        _unwrap_exchange(relay),
        _email(params.get("SENT-BY")),
    ]
    return next((c for c in candidates if c is not None and not _is_relay(c)), None)


def _unwrap_exchange(email: str) -> str | None:
    """``imceasmtp-bob+40acme.example@host`` is bob@acme.example (``+XX``: a hex byte)."""
    local = email.rpartition("@")[0]
    if not local.startswith("imceasmtp-"):
        return None
    wrapped = re.sub(
        r"\+([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), local[len("imceasmtp-") :]
    )
    return wrapped if wrapped.count("@") == 1 else None


def response_status(partstat: str) -> ResponseStatus:
    """PARTSTAT as the CRM's response status; DELEGATED and the rest are ``unknown``."""
    return _RESPONSES.get(partstat.strip().upper(), "unknown")


def _attendees(values: Any) -> tuple[Attendee, ...]:
    attendees: dict[str, Attendee] = {}
    for value in _all(values):
        person = address(value)
        if person is None or person.email in attendees:
            continue
        params = getattr(value, "params", {})
        attendees[person.email] = Attendee(
            address=person,
            response_status=response_status(str(params.get("PARTSTAT", ""))),
            is_resource=str(params.get("CUTYPE", "")).upper() in _RESOURCE_TYPES,
            optional=str(params.get("ROLE", "")).upper() == "OPT-PARTICIPANT",
        )
    return tuple(attendees.values())


def _end(occurrence: Component, start: date) -> datetime:
    """DTEND, else DTSTART plus DURATION, else RFC 5545's default: a day, or no time at all."""
    end = _moment(occurrence, "DTEND")
    if end is not None:
        return end
    duration = getattr(_first(occurrence.get("DURATION")), "dt", None)
    if isinstance(duration, timedelta):
        return to_utc(start) + duration
    if isinstance(start, datetime):
        return to_utc(start)
    return to_utc(start) + timedelta(days=1)


def _moment(component: Component, name: str) -> datetime | None:
    value = getattr(_first(component.get(name)), "dt", None)
    return to_utc(value) if isinstance(value, date) else None


def _sequence(value: Any) -> int:
    try:
        return int(_first(value))
    except (TypeError, ValueError):
        return 0


def _text(component: Component, name: str) -> str:
    """The property's text; of several (one per LANGUAGE), the one meant for everybody.

    A multi-language event repeats SUMMARY, DESCRIPTION or LOCATION with a
    LANGUAGE parameter each; the one without LANGUAGE is the event's own, and
    when every one has a LANGUAGE the first stands for the others.
    """
    values = _all(component.get(name))
    if not values:
        return ""
    plain = [v for v in values if not getattr(v, "params", {}).get("LANGUAGE")]
    return str((plain or values)[0])


def _first(value: Any) -> Any:
    values = _all(value)
    return values[0] if values else None


def _all(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
