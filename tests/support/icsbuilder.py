"""Small iCalendar files for tests: VEVENT text wrapped in a VCALENDAR, written as an editor would.

``MEETING`` and ``LUNCH`` are a folder's worth of meetings that exercise what
a calendar source must get right: a weekly series in Europe/Berlin across
the change to summer time, one instance moved (its original start stays its
identity) and one cancelled, beside a single event in UTC.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

_PAST_NS = 1_600_000_000 * 10**9
_ticks = itertools.count(1)


def ics(*events: str, preamble: str = "") -> bytes:
    """A VCALENDAR holding ``events`` (VEVENT bodies, LF-separated), with CRLF line ends."""
    body = "".join(f"BEGIN:VEVENT\n{event.strip()}\nEND:VEVENT\n" for event in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{preamble}{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def write_ics(path: Path, data: bytes) -> None:
    """Write with an mtime in the past, a little later at each call, as an editor would.

    A file modified within the last two seconds is re-read by the connector (its
    mtime could still change unseen), so a test's files are dated in the past.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = _PAST_NS + next(_ticks) * 10**9
    os.utime(path, ns=(stamp, stamp))


MEETING = [
    """UID:weekly@example.com
SUMMARY:Pipeline review
ORGANIZER;CN=Me:mailto:me@example.com
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION:mailto:bob@customer.com
DTSTART;TZID=Europe/Berlin:20240306T100000
DTEND;TZID=Europe/Berlin:20240306T110000
RRULE:FREQ=WEEKLY;COUNT=6
SEQUENCE:1
LAST-MODIFIED:20240201T080000Z""",
    """UID:weekly@example.com
SUMMARY:Pipeline review (moved)
RECURRENCE-ID;TZID=Europe/Berlin:20240327T100000
DTSTART;TZID=Europe/Berlin:20240402T150000
DTEND;TZID=Europe/Berlin:20240402T160000
SEQUENCE:2
LAST-MODIFIED:20240202T080000Z""",
    """UID:weekly@example.com
SUMMARY:Pipeline review
RECURRENCE-ID;TZID=Europe/Berlin:20240410T100000
DTSTART;TZID=Europe/Berlin:20240410T100000
DTEND;TZID=Europe/Berlin:20240410T110000
STATUS:CANCELLED
SEQUENCE:2
LAST-MODIFIED:20240203T080000Z""",
]
"""Six Wednesdays at 10:00 Berlin time from 6 March 2024; the 27 March one moved to
2 April, the 10 April one cancelled."""
LUNCH = """UID:lunch@example.com
SUMMARY:Lunch with Bob
DTSTART:20240315T120000Z
DTEND:20240315T130000Z
DTSTAMP:20240201T080000Z"""
