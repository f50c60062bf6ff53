"""Recurrence expansion: the one way every calendar source turns series into occurrences.

Terms (RFC 5545). A *series* is the VEVENTs that share a UID: the *master*,
whose RRULE, RDATE and EXDATE generate instances, and *overrides*, each with
a RECURRENCE-ID naming the original start of the instance it replaces. An
*occurrence* is one instance: its RECURRENCE-ID is the start the series gave
it (the meeting's identity across calendars, with the UID), its DTSTART the
start it actually has (they differ when the instance was moved).

The expansion is the ``recurring-ical-events`` library's (RRULE, RDATE,
EXDATE, overrides, VTIMEZONE and IANA or Windows TZIDs, X-WR-TIMEZONE).
This module adds what the CRM needs on top:

- An override with STATUS:CANCELLED comes out as an occurrence with that
  status, so the agent can mark the meeting cancelled; an instance removed by
  EXDATE does not exist at all.
- Each occurrence carries its own SEQUENCE. The library stamps the series'
  highest on every occurrence, which would make a change to one instance look
  like a change to all of them.
- Under RANGE=THISANDFUTURE each shifted occurrence keeps its own
  RECURRENCE-ID (the library gives them all the override's, which would
  collapse them into one meeting).
- A VEVENT without a usable DTSTART is not a scheduled meeting and is left
  out; one without a UID gets a stable one (``calendar_parts.stable_uid``).
- Every VEVENT of a file counts: two with one UID and no RECURRENCE-ID that
  start at different times are two meetings, not one hiding the other. A
  SEQUENCE that is not a whole number counts as 0 and an empty ``RRULE:`` as
  none, where the library would give up on the series.
- A series that cannot be expanded is reported to ``on_bad_series`` and left
  out, so one broken meeting does not hide the others in its calendar.
- Every expansion is bounded (``connectors.ical.bounded_rules``, ``config.limits``):
  each RRULE is checked and, where it would cost too much, cut before the
  library sees it; a series yields at most ``occurrences_per_series``
  occurrences and a pass at most ``occurrences_per_sync``. Series cut or left
  out for a bound are recorded in the pass's ``ExpansionBudget``.

Google Calendar's JSON events take the same path: ``expand_google`` rebuilds
a master and its exceptions as VEVENTs and expands them here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import recurring_ical_events
from icalendar import Calendar, Component, Event, vCalAddress
from icalendar.prop import vDDDTypes
from recurring_ical_events import EventAdapter, Occurrence, SelectComponents, Series

from connectors.ical.bounded_rules import ExpansionBudget, NoDates, bound_rule
from connectors.ical.parts import stable_uid

DEFAULT_HORIZON_DAYS = 90
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""Where a window without ``since`` starts: before any meeting a CRM cares about."""

BadSeries = Callable[[str, Exception], None]
"""Told the UID of a series that could not be expanded, and why."""

_log = logging.getLogger(__name__)

_RECURRENCE_PROPERTIES = ("RRULE", "EXRULE", "RDATE", "EXDATE")
_GOOGLE_PARTSTAT = {
    "needsAction": "NEEDS-ACTION",
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentative": "TENTATIVE",
}
_GOOGLE_TEXT = (("summary", "SUMMARY"), ("description", "DESCRIPTION"), ("location", "LOCATION"))
_MASTER_ONLY = frozenset(
    {"id", "recurrence", "start", "end", "originalStartTime", "recurringEventId"}
)


def expansion_window(
    since: datetime | None, now: datetime, horizon_days: int = DEFAULT_HORIZON_DAYS
) -> tuple[datetime, datetime]:
    """The span to expand over: from ``since`` to ``horizon_days`` ahead of ``now``.

    The end is rounded down to midnight UTC, so the window moves once a day
    and a connector can tell "same window" from "moved window" and skip a
    source that has not changed within a day.
    """
    start = EARLIEST if since is None else _aware(since)
    horizon = _aware(now) + timedelta(days=horizon_days)
    end = datetime.combine(horizon.date(), time(), tzinfo=UTC)
    return start, max(start, end)


def expand(
    calendar: Calendar,
    start: datetime,
    end: datetime,
    *,
    on_bad_series: BadSeries | None = None,
    budget: ExpansionBudget | None = None,
    max_series: int | None = None,
) -> Iterator[Event]:
    """Every occurrence of every VEVENT in ``calendar`` that overlaps ``[start, end)``.

    Each comes out as a VEVENT of its own, ready for
    ``calendar_parts.to_calendar_event``: DTSTART and DTEND the occurrence's,
    RECURRENCE-ID its original start (DTSTART for a single event), SEQUENCE
    that of the component it came from. The order is not defined.

    ``budget`` is the pass's (a new one, with the default limits, when not
    given); series past ``max_series`` are left out and recorded in it.
    """
    report = on_bad_series or _log_bad_series
    budget = budget if budget is not None else ExpansionBudget()
    span = (_aware(start), _aware(end))
    selector = _Events(report, span, budget)
    query = recurring_ical_events.of(calendar, components=[selector])
    per_series = budget.limits.occurrences_per_series
    for index, series in enumerate(query.series):
        uid = str(series.uid)
        if max_series is not None and index >= max_series:
            budget.note(uid, f"more than {max_series} recurring series in one calendar")
            continue
        if budget.left <= 0:
            spent = budget.limits.occurrences_per_sync
            budget.note(uid, f"the pass expanded {spent} occurrences already")
            continue
        cap = min(per_series, budget.left)
        since = selector.since.get(uid)
        series_span = (max(span[0], since), span[1]) if since is not None else span
        try:
            found = [
                occurrence.as_component(False)
                for occurrence in islice(series.between(*series_span), cap + 1)
            ]
        except Exception as error:  # a library failure on one series must not stop the rest
            report(uid, error)
            continue
        if len(found) > cap:
            found = found[:cap]
            budget.note(uid, f"logged up to {cap} occurrences")
        budget.left -= len(found)
        yield from found


def expand_google(
    master: Mapping[str, Any],
    exceptions: Sequence[Mapping[str, Any]],
    window_start: datetime,
    window_end: datetime,
    *,
    time_zone: str | None = None,
    on_bad_series: BadSeries | None = None,
    budget: ExpansionBudget | None = None,
) -> Iterator[Event]:
    """``expand`` for a Google Calendar master event and its exceptions (``singleEvents=false``).

    Exceptions belong to the master by ``recurringEventId`` and replace the
    instance named by ``originalStartTime``; others are ignored. A cancelled
    exception (Google sends only its ids) becomes a cancelled occurrence with
    the master's details. ``time_zone`` is the calendar's zone (``events.list``
    returns it), used when the master's start names none.
    """
    yield from expand(
        google_calendar(master, exceptions, time_zone=time_zone),
        window_start,
        window_end,
        on_bad_series=on_bad_series,
        budget=budget,
    )


def google_calendar(
    master: Mapping[str, Any],
    exceptions: Sequence[Mapping[str, Any]],
    *,
    time_zone: str | None = None,
) -> Calendar:
    """A Google master event and its exceptions as the VCALENDAR an export would hold.

    Raises ``ValueError`` when the master has no start.
    """
    if "start" not in master:
        raise ValueError(f"Google event {master.get('id')!r} has no start")
    zone = master["start"].get("timeZone") or time_zone
    uid = str(master.get("iCalUID") or master.get("id") or "")
    start = _google_time(master["start"], zone)
    end = _google_time(master["end"], zone) if "end" in master else None
    calendar = Calendar()
    calendar.add("PRODID", "-//crm-sync//Google Calendar events//EN")
    calendar.add("VERSION", "2.0")
    vevent = _google_vevent(master, uid, start, end)
    for name, value in _recurrence(master.get("recurrence", ())).items():
        vevent[name] = value
    calendar.add_component(vevent)
    duration = end - start if end is not None else None
    details = {key: value for key, value in master.items() if key not in _MASTER_ONLY}
    for exception in exceptions:
        if exception.get("recurringEventId") != master.get("id"):
            continue
        if "originalStartTime" not in exception:
            continue
        calendar.add_component(_google_override({**details, **exception}, uid, zone, duration))
    return calendar


class _Occurrence(Occurrence):  # type: ignore[misc]
    """An occurrence that keeps its own SEQUENCE and, under THISANDFUTURE, its own identity."""

    def __init__(self, adapter: Any, start: Any = None, end: Any = None) -> None:
        super().__init__(adapter, start, end, sequence=adapter.sequence)
        self._this_and_future: bool = adapter.this_and_future
        self._shift: timedelta = adapter.move_recurrences_by

    def as_component(self, keep_recurrence_attributes: bool) -> Event:
        component: Event = super().as_component(keep_recurrence_attributes)
        if self._this_and_future:
            component["RECURRENCE-ID"] = vDDDTypes(self.start - self._shift)
        return component


class _Series(Series):  # type: ignore[misc]
    def occurrence(self, adapter: Any, start: Any = None, end: Any = None) -> _Occurrence:
        return _Occurrence(adapter, start, end)


class _Events(SelectComponents):  # type: ignore[misc]
    """VEVENTs grouped into series by UID, each series built on its own."""

    def __init__(
        self, on_bad_series: BadSeries, span: tuple[datetime, datetime], budget: ExpansionBudget
    ) -> None:
        self._on_bad_series = on_bad_series
        self._span = span
        self._budget = budget
        self.since: dict[str, datetime] = {}
        """UID -> where a series with more occurrences than it may have starts."""

    @staticmethod
    def component_name() -> str:
        return "VEVENT"

    def collect_series_from(self, source: Component, suppress_errors: Any) -> list[Series]:
        """Every schedulable VEVENT in a series: by UID, and apart for each master of its own.

        Two VEVENTs with one UID and no RECURRENCE-ID are two versions of a
        meeting when they start at the same time (the highest SEQUENCE wins,
        as the library decides), and two meetings when they do not: a file
        that reuses a UID (exports stitched together, generators that reuse
        one) must not lose every VEVENT but one. Overrides go with the UID's
        first master.
        """
        groups: dict[tuple[str, int], list[EventAdapter]] = defaultdict(list)
        masters: dict[str, list[str]] = defaultdict(list)
        for component in source.walk("VEVENT"):
            if not _schedulable(component):
                continue
            uid = stable_uid(component)
            try:
                bounded = self._bounded(uid, _normalized(component, uid))
            except ValueError as error:
                self._on_bad_series(uid, error)
                continue
            groups[(uid, _master_index(masters[uid], bounded))].append(EventAdapter(bounded))
        collected: list[Series] = []
        for (uid, _), adapters in groups.items():
            try:
                collected.append(_Series(adapters))
            except Exception as error:  # as in expand: one series, not the calendar
                self._on_bad_series(uid, error)
        return collected

    def _bounded(self, uid: str, component: Component) -> Component:
        """The component with each RRULE as ``bound_rule`` allows; cuts are recorded.

        A rule that matches no date leaves the event as its first occurrence
        (RFC 5545 counts DTSTART as one) rather than hiding the meeting.
        """
        rules = component.get("RRULE")
        if rules is None:
            return component
        start = component.decoded("DTSTART")
        if not isinstance(start, date):
            return component
        kept = []
        for rule in rules if isinstance(rules, list) else [rules]:
            try:
                bounded = bound_rule(rule, start, self._span, self._budget.limits)
            except NoDates:
                self._budget.note(uid, "its rule matches no date; first occurrence only")
                continue
            if bounded.cut is not None:
                self._budget.note(uid, f"cut: {bounded.cut}")
            if bounded.since is not None:
                self.since[uid] = min(self.since.get(uid, bounded.since), bounded.since)
            kept.append(bounded.rule)
        if kept == (rules if isinstance(rules, list) else [rules]):
            return component
        copy = component.copy()
        del copy["RRULE"]
        for rule in kept:
            copy.add("RRULE", rule)
        return copy


def _schedulable(component: Component) -> bool:
    start = component.get("DTSTART")
    return isinstance(start, vDDDTypes) and isinstance(start.dt, date)


def _normalized(component: Component, uid: str) -> Component:
    """The component carrying ``uid`` (its ``stable_uid``) as its UID, as every copy must,
    and one whole-number SEQUENCE.

    A SEQUENCE that is not a number (or is there twice) would make the
    library's comparison of versions raise and cost the whole series; it
    counts as 0, the value RFC 5545 gives a component without one. An empty
    ``RRULE:`` (some holiday feeds write one on every single event) repeats
    nothing and is dropped, where the library would refuse the event.
    """
    sequence = component.get("SEQUENCE")
    sequence_ok = sequence is None or (isinstance(sequence, int) and sequence >= 0)
    rules = _all(component.get("RRULE"))
    rules_ok = all(rules)
    if str(component.get("UID", "")).strip() == uid and sequence_ok and rules_ok:
        return component
    copy = component.copy()
    copy.pop("UID", None)
    copy.add("UID", uid)
    if not sequence_ok:
        copy.pop("SEQUENCE", None)
        copy.add("SEQUENCE", _sequence_number(sequence))
    if not rules_ok:
        copy.pop("RRULE", None)
        for rule in filter(None, rules):
            copy.add("RRULE", rule)
    return copy


def _all(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _sequence_number(value: Any) -> int:
    """The first usable whole number among the values of SEQUENCE, else 0."""
    for one in value if isinstance(value, list) else [value]:
        try:
            number = int(str(one).strip())
        except ValueError:
            continue
        if number >= 0:
            return number
    return 0


def _master_index(starts: list[str], component: Component) -> int:
    """Which of the UID's series ``component`` belongs to: 0 for an override, else the
    index of the master with the same DTSTART, a new one for a master starting elsewhere."""
    if "RECURRENCE-ID" in component:
        return 0
    start = component["DTSTART"]
    value = start.to_ical()
    text = value.decode() if isinstance(value, bytes) else str(value)
    key = f"{start.params.get('TZID', '')}|{text}"
    if key not in starts:
        starts.append(key)
    return starts.index(key)


def _log_bad_series(uid: str, error: Exception) -> None:
    _log.warning("left out series %s, which cannot be expanded: %r", uid, error)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _recurrence(lines: Sequence[str]) -> dict[str, Any]:
    """Google's ``recurrence`` strings, parsed as the properties of a VEVENT would be."""
    kept = [
        line.strip()
        for line in lines
        if "\r" not in line
        and "\n" not in line
        and line.split(":", 1)[0].split(";", 1)[0].strip().upper() in _RECURRENCE_PROPERTIES
    ]
    text = "".join(f"{line}\r\n" for line in ["BEGIN:VEVENT", *kept, "END:VEVENT"])
    parsed = Event.from_ical(text)
    return {name: parsed[name] for name in _RECURRENCE_PROPERTIES if name in parsed}


def _google_override(
    event: Mapping[str, Any], uid: str, zone: str | None, duration: timedelta | None
) -> Event:
    original = _google_time(event["originalStartTime"], zone)
    if "start" in event:
        start = _google_time(event["start"], zone)
        end = _google_time(event["end"], zone) if "end" in event else None
    else:
        start = original
        end = start + duration if duration is not None else None
    vevent = _google_vevent(event, uid, start, end)
    vevent.add("RECURRENCE-ID", original)
    return vevent


def _google_vevent(event: Mapping[str, Any], uid: str, start: date, end: date | None) -> Event:
    vevent = Event()
    vevent.add("UID", uid)
    vevent.add("DTSTART", start)
    if end is not None:
        vevent.add("DTEND", end)
    for key, name in _GOOGLE_TEXT:
        if event.get(key):
            vevent.add(name, str(event[key]))
    if event.get("status"):
        vevent.add("STATUS", str(event["status"]).upper())
    if "sequence" in event:
        vevent.add("SEQUENCE", int(event["sequence"]))
    if event.get("updated"):
        vevent.add("LAST-MODIFIED", datetime.fromisoformat(event["updated"]).astimezone(UTC))
    organizer = event.get("organizer") or {}
    if organizer.get("email"):
        vevent.add("ORGANIZER", _google_address(organizer))
    for attendee in event.get("attendees", ()):
        if attendee.get("email"):
            vevent.add("ATTENDEE", _google_attendee(attendee))
    return vevent


def _google_attendee(attendee: Mapping[str, Any]) -> vCalAddress:
    value = _google_address(attendee)
    value.params["PARTSTAT"] = _GOOGLE_PARTSTAT.get(attendee.get("responseStatus", ""), "X-UNKNOWN")
    value.params["ROLE"] = "OPT-PARTICIPANT" if attendee.get("optional") else "REQ-PARTICIPANT"
    if attendee.get("resource"):
        value.params["CUTYPE"] = "RESOURCE"
    return value


def _google_address(person: Mapping[str, Any]) -> vCalAddress:
    value = vCalAddress(f"mailto:{person['email']}")
    if person.get("displayName"):
        value.params["CN"] = str(person["displayName"])
    return value


def _google_time(value: Mapping[str, Any], zone: str | None) -> date:
    """An ``EventDateTime``: a ``date`` for all-day, else a datetime in its zone."""
    if "dateTime" not in value:
        return date.fromisoformat(value["date"])
    moment = datetime.fromisoformat(value["dateTime"])
    where = _zone(value.get("timeZone") or zone)
    if where is None:
        return _aware(moment)
    return moment.astimezone(where) if moment.tzinfo else moment.replace(tzinfo=where)


def _zone(name: str | None) -> tzinfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
