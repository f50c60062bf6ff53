"""The demo's history moved forward to the present, by whole weeks.

The sample company's mail and calendar were made once, for early 2025. Left
there, every relationship in the demo would be a year cold and every report
empty; moved so that the newest message is from this week (whole weeks, so a
Monday meeting stays a Monday), the figures, the cooling report and the
activity of "this week" show what they would for a real team. Only dates
move: the ``Date`` header and the mbox ``From`` line of each message, and
the date-times of the calendar's events; nothing else in the files changes.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

_DATE_HEADER = re.compile(rb"^Date: ([^\r\n]+)", re.MULTILINE)
_FROM_LINE = re.compile(rb"^From (\S+) ([A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4})$")
_ICS_DATES = re.compile(
    r"^(DTSTART|DTEND|DTSTAMP|LAST-MODIFIED|CREATED|RECURRENCE-ID|EXDATE|RDATE)([;:][^\r\n]*)$",
    re.MULTILINE,
)
_ICS_VALUE = re.compile(r"(\d{8})(T\d{6}Z?)?")
_UNTIL = re.compile(r"(UNTIL=)(\d{8})(T\d{6}Z?)?")
_ASCTIME = "%a %b %d %H:%M:%S %Y"


def weeks_to_now(data: Path, today: date) -> timedelta:
    """Whole weeks that bring the newest message of the demo's mailboxes into this week."""
    dates = [
        parsed
        for mbox in data.glob("*.mbox")
        for match in _DATE_HEADER.finditer(mbox.read_bytes())
        if (parsed := _parsed(match.group(1))) is not None
    ]
    if not dates:
        return timedelta(0)
    return timedelta(weeks=max(0, (today - max(dates).date()).days // 7))


def moved_copy(data: Path, target: Path, shift: timedelta) -> Path:
    """The demo data in ``target`` with every date ``shift`` later; ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for mbox in sorted(data.glob("*.mbox")):
        (target / mbox.name).write_bytes(_moved_mbox(mbox.read_bytes(), shift))
    for calendar in sorted(data.glob("*.ics")):
        text = calendar.read_text(encoding="utf-8")
        (target / calendar.name).write_text(_moved_calendar(text, shift), encoding="utf-8")
    return target


def _parsed(value: bytes) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value.decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else None


def _moved_mbox(raw: bytes, shift: timedelta) -> bytes:
    lines = raw.split(b"\n")
    in_headers = False
    for n, line in enumerate(lines):
        separator = _FROM_LINE.match(line)
        if separator is not None:
            when = datetime.strptime(separator.group(2).decode(), _ASCTIME) + shift
            lines[n] = b"From " + separator.group(1) + b" " + when.strftime(_ASCTIME).encode()
            in_headers = True
        elif in_headers and line.strip() == b"":
            in_headers = False
        elif in_headers and (header := _DATE_HEADER.match(line)) is not None:
            parsed = _parsed(header.group(1))
            if parsed is not None:
                lines[n] = b"Date: " + format_datetime(parsed + shift).encode()
    return b"\n".join(lines)


def _moved_calendar(text: str, shift: timedelta) -> str:
    """Event date-times moved; time zone definitions (their 1970 rules) left as they are."""
    parts = re.split(r"(BEGIN:VTIMEZONE.*?END:VTIMEZONE)", text, flags=re.DOTALL)
    for n in range(0, len(parts), 2):
        moved = _ICS_DATES.sub(lambda m: m.group(1) + _moved_values(m.group(2), shift), parts[n])
        parts[n] = _UNTIL.sub(lambda m: m.group(1) + _moved_value(m, shift, 2), moved)
    return "".join(parts)


def _moved_values(rest: str, shift: timedelta) -> str:
    params, _, values = rest.rpartition(":")
    return params + ":" + _ICS_VALUE.sub(lambda m: _moved_value(m, shift, 1), values)


def _moved_value(match: re.Match[str], shift: timedelta, group: int) -> str:
    day = datetime.strptime(match.group(group), "%Y%m%d") + shift
    return day.strftime("%Y%m%d") + (match.group(group + 1) or "")
