"""Recurrence rules a stranger wrote, made safe to expand (``config.limits``).

An invitation is a few lines of text, but its RRULE decides how much work
the expansion does: ``FREQ=SECONDLY`` with no end is tens of millions of
occurrences in a 90-day window, and a rule whose filters match no day at
all (``BYMONTH=2;BYMONTHDAY=30``) makes ``dateutil`` scan every day up to
the year 9999 -- it checks UNTIL only on dates that match, so an UNTIL does
not stop it. The expansion library materialises each rule's dates in the
window as a list, so neither can be interrupted from outside.

So each RRULE is looked at before the library sees it:

1. **Does it ever match?** The same rule is run from the same position in the
   Gregorian calendar's 400-year cycle near the year 9200, asking for one
   date. The cycle repeats weekdays and leap years exactly, so a rule that
   finds nothing there in 400 to 800 years finds nothing anywhere; the probe
   costs at most that many years of the rule's periods (under a second), and
   a rule that fails it is not expanded.
2. **Is it cheap as it stands?** Its periods from DTSTART to the window's end
   (or its UNTIL), times the candidates each period can produce, within
   ``recurrence_steps``: it is left as it is.
3. **Otherwise** its dates are walked lazily, counting the periods passed, up
   to the window's end. Where the walk passes ``recurrence_steps`` periods,
   the rule gets an UNTIL there (and loses its COUNT, which the UNTIL then
   covers). Where more than ``occurrences_per_series`` dates fall in the
   window, the series is expanded from the first of its newest that many:
   for a meeting that recurs for years, the recent ones are what a CRM
   needs. Either way the series is reported as cut.

The walk works on wall-clock times, as ``dateutil`` does; the UNTIL written
back has the type RFC 5545 asks for (a DATE, a floating or a UTC time).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from functools import reduce

from dateutil.rrule import rrule, rrulestr
from icalendar import vRecur

from config.limits import DEFAULT, Limits

_PERIOD_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}
"""The shortest length of each period, so that counts derived from them are upper bounds."""

_CANDIDATE_PARTS = (
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
)
_CYCLE_YEARS = 400
_PROBE_BEFORE = 9600
"""Probes start in the cycle that ends before this year, so they run 400 to 800 years."""


class NoDates(ValueError):
    """The rule matches no date at all: there is nothing to expand."""


@dataclass(frozen=True)
class Bounded:
    """A rule ready for the expansion library.

    ``since`` (aware UTC), when set, is where the series' expansion starts
    instead of the window's start: only its newest occurrences are kept.
    ``cut`` says why the series was shortened, if it was.
    """

    rule: vRecur
    cut: str | None = None
    since: datetime | None = None


@dataclass
class ExpansionBudget:
    """What one pass (a calendar sync, or one invitation) may still expand.

    Shared by every ``expand`` call of the pass; ``capped`` maps each series
    that was cut or left out for a bound to the first reason found.
    """

    limits: Limits = DEFAULT
    left: int = -1
    capped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.left < 0:
            self.left = self.limits.occurrences_per_sync

    def note(self, uid: str, reason: str) -> None:
        self.capped.setdefault(uid, reason)


def bound_rule(
    rule: vRecur, start: date, window: tuple[datetime, datetime], limits: Limits
) -> Bounded:
    """``rule`` as it may be expanded from DTSTART ``start`` over ``window`` (aware UTC).

    Raises :class:`NoDates` for a rule that never matches, and ``ValueError``
    for one ``dateutil`` cannot read.
    """
    wall_start, zone = _wall(start)
    parts = {name.upper(): list(values) for name, values in rule.items()}
    count = parts.pop("COUNT", None)
    until = parts.pop("UNTIL", None)
    text = vRecur(parts).to_ical().decode("ascii")  # type: ignore[no-untyped-call]
    base = rrulestr(text, dtstart=wall_start)
    assert isinstance(base, rrule)
    if not list(base.replace(dtstart=_probe_start(wall_start), count=1)):
        raise NoDates("the rule matches no date")
    window_start, window_end = (_wall_of(moment, zone) for moment in window)
    end = min(window_end, _wall_of(until[0], zone)) if until else window_end
    if _cost(parts, wall_start, end) <= min(limits.recurrence_steps, limits.occurrences_per_series):
        return Bounded(rule)
    walk = _Walk(limits, _period(parts), wall_start, window_start, end)
    walk.run(base.replace(count=int(str(count[0]))) if count else base)
    bounded = rule
    if walk.stopped is not None:
        bounded = vRecur(parts)
        bounded["UNTIL"] = [_typed(walk.last or wall_start, start, zone)]
    since = None
    if walk.in_window > limits.occurrences_per_series:
        since = _aware(walk.newest[0], zone)
    cuts = [
        reason
        for reason in (
            walk.stopped,
            f"only its newest {limits.occurrences_per_series} occurrences" if since else None,
        )
        if reason
    ]
    return Bounded(bounded, "; ".join(cuts) or None, since)


class _Walk:
    """The rule's dates walked lazily to the window's end, within ``recurrence_steps`` periods.

    Afterwards: ``last`` is the last date reached, ``stopped`` why the walk
    ended before the window did (None when it did not), ``in_window`` how
    many dates fell in the window, and ``newest`` the latest of them, up to
    ``occurrences_per_series``.
    """

    def __init__(
        self, limits: Limits, period: float, start: datetime, window_start: datetime, end: datetime
    ) -> None:
        self.limits, self.period = limits, period
        self.start, self.window_start, self.end = start, window_start, end
        self.last: datetime | None = None
        self.stopped: str | None = None
        self.in_window = 0
        self.newest: deque[datetime] = deque(maxlen=limits.occurrences_per_series)

    def run(self, dates: rrule) -> None:
        steps, previous = 0, self.start
        for moment in dates:
            if moment > self.end:
                return
            steps += max(1, int((moment - previous).total_seconds() // self.period))
            previous = moment
            if steps > self.limits.recurrence_steps:
                self.stopped = f"its rule needs more than {self.limits.recurrence_steps} steps"
                return
            if moment >= self.window_start:
                self.in_window += 1
                self.newest.append(moment)
            self.last = moment


def _cost(parts: dict[str, list[object]], start: datetime, end: datetime) -> float:
    """An upper bound on the dates ``dateutil`` looks at between ``start`` and ``end``."""
    periods = max(0.0, (end - start).total_seconds()) / _period(parts)
    candidates = reduce(
        lambda total, name: total * max(1, len(parts.get(name, ()))), _CANDIDATE_PARTS, 1
    )
    return math.ceil(periods + 1) * candidates


def _period(parts: dict[str, list[object]]) -> float:
    """The shortest time one step of the rule (its FREQ times its INTERVAL) can cover."""
    frequency = str(parts.get("FREQ", ["DAILY"])[0]).upper()
    interval = max(1, int(str(parts.get("INTERVAL", [1])[0])))
    return float(_PERIOD_SECONDS.get(frequency, 1) * interval)


def _probe_start(start: datetime) -> datetime:
    """``start`` moved by whole 400-year cycles to just before :data:`_PROBE_BEFORE`."""
    cycles = (_PROBE_BEFORE - 1 - start.year) // _CYCLE_YEARS
    return start.replace(year=start.year + cycles * _CYCLE_YEARS)


def _wall(start: date) -> tuple[datetime, tzinfo | None]:
    """DTSTART as the naive wall-clock time ``dateutil`` iterates in, and its zone."""
    if isinstance(start, datetime):
        return start.replace(tzinfo=None), start.tzinfo
    return datetime(start.year, start.month, start.day), None


def _wall_of(moment: date, zone: tzinfo | None) -> datetime:
    """A window bound or an UNTIL on the same naive wall clock as DTSTART (floating = UTC)."""
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(zone or UTC).replace(tzinfo=None)


def _aware(moment: datetime, zone: tzinfo | None) -> datetime:
    """A wall-clock time of the series back as an aware UTC instant (floating = UTC)."""
    return moment.replace(tzinfo=zone or UTC).astimezone(UTC)


def _typed(moment: datetime, start: date, zone: tzinfo | None) -> date:
    """An UNTIL of the type RFC 5545 requires for this DTSTART."""
    if not isinstance(start, datetime):
        return moment.date()
    if zone is None:
        return moment
    return moment.replace(tzinfo=zone).astimezone(UTC)
