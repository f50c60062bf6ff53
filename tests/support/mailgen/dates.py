"""Time in the generated data: the fixed "now", threads spread over the window, office hours.

Nothing reads the clock, so a seed gives the same bytes on any day. The
weekday and month names live here because templates and every client's
attribution line need them in English, French and German.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tests.support.mailgen.people import LONDON, time_zone
from tests.support.mailgen.threads import Thread

BASE_DATE = datetime(2025, 6, 27, 17, 0, tzinfo=UTC)
"""The fixed "now" of all generated data: mail lies in the ``days`` before it."""

DEFAULT_DAYS = 120
_THREAD_CAP = timedelta(days=10)
"""The longest a thread runs; a short window caps it at a tenth of the window instead."""

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
WEEKDAYS_DE = (
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
    "Sonntag",
)
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
MONTHS_DE = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)


def thread_start(index: int, jitter: float, threads: int, base: datetime, days: int) -> datetime:
    """Threads spread evenly over the window, so the mailbox fills it whatever its size."""
    cap = thread_cap(days)
    span = timedelta(days=days) - cap - timedelta(days=1)
    return base - timedelta(days=days) + span * ((index + jitter) / threads)


def thread_cap(days: int) -> timedelta:
    return min(_THREAD_CAP, timedelta(days=days) / 10)


def office_hours(raw: datetime) -> datetime:
    """Squeeze a moment into 08:00-18:30 London on a weekday; it moves by at most 30 hours."""
    local = raw.astimezone(time_zone(LONDON))
    day = local.date()
    if day.weekday() == 5:
        day -= timedelta(days=1)
    elif day.weekday() == 6:
        day += timedelta(days=1)
    fraction = (local.hour * 3600 + local.minute * 60 + local.second) / 86400
    moment = datetime(day.year, day.month, day.day, tzinfo=time_zone(LONDON))
    moment += timedelta(seconds=int(8 * 3600 + fraction * 10.5 * 3600))
    return moment.astimezone(UTC)


def schedule(thread: Thread, start: datetime, cap: timedelta) -> list[datetime]:
    total = sum((s.delay for s in thread.steps), timedelta(0))
    scale = min(1.0, cap / total) if total else 1.0
    dates: list[datetime] = []
    when = start.replace(microsecond=0)
    for j, step in enumerate(thread.steps):
        if j:
            when = max(when + timedelta(seconds=1), (when + step.delay * scale))
            when = when.replace(microsecond=0)
        dates.append(when)
    return dates


def weekday_after(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day
