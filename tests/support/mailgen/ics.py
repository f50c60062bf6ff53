"""iCalendar text: escaping, line folding, UTC and Europe/London times, attendees.

Shared by the calendar file and the invitations mailed as ``text/calendar``,
so both write an event the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from tests.support.mailgen.people import LONDON, Person, time_zone

VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    "TZID:Europe/London",
    "X-LIC-LOCATION:Europe/London",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0000",
    "TZOFFSETTO:+0100",
    "TZNAME:BST",
    "DTSTART:19700329T010000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0000",
    "TZNAME:GMT",
    "DTSTART:19701025T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)
"""Written out rather than derived from tzdata, so the file never changes with a tz update."""


def ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def ics_param(value: str) -> str:
    return f'"{value}"' if any(c in value for c in ":;,") else value


def _ics_fold(line: str) -> str:
    """RFC 5545 folding: at most 75 octets a line, never inside a UTF-8 sequence."""
    data = line.encode()
    if len(data) <= 75:
        return line
    pieces: list[str] = []
    start, limit = 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        pieces.append(data[start:end].decode())
        start, limit = end, 74
    return "\r\n ".join(pieces)


def ics_lines(lines: Sequence[str], newline: str = "\r\n") -> bytes:
    return "".join(_ics_fold(line).replace("\r\n", newline) + newline for line in lines).encode()


def ics_utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def ics_local(when: datetime) -> str:
    return when.astimezone(time_zone(LONDON)).strftime("%Y%m%dT%H%M%S")


def ics_person(name: str, person: Person, params: Sequence[tuple[str, str]]) -> str:
    rendered = "".join(f";{k}={ics_param(v)}" for k, v in (*params, ("CN", person.name)))
    return f"{name}{rendered}:mailto:{person.email}"
