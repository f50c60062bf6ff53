"""The Google Calendar connector's cursor: what it keeps of each calendar, and why.

An incremental listing returns only what
changed: a master without its unchanged exceptions, a cancelled exception or
a deleted event with nothing but ids. So the cursor keeps every recurring
series (master and exceptions, cut to the fields the CRM reads) and every
single event that has not ended. A deleted master or single event is merged
over the stored one, keeping its details; a cancelled exception replaces the
stored one, as the master supplies its details (unless the calendar lacks
the master); any other resource replaces what was stored. A touched series
is expanded again from what is stored. Per series the cursor also keeps a
fingerprint of each occurrence not yet started and how far the series was
expanded. Expanding
again yields only occurrences whose fingerprint changed; one that
disappeared (a series cut short, every instance moved) comes out cancelled;
when the window's end moves on (daily) only the new days are expanded.

Cursor, version 1::

    {"v": 1, "calendars": {calendar_id: {
        "sync_token": str | null,   # token of the last complete listing
        "page_token": str | null,   # next page of the listing in progress
        "time_min": ISO | null,     # since, as the full listing used it
        "time_zone": str | null,    # the calendar's, for series that name none
        "generation": int,          # counts full listings
        "singles": {event_id: {"event": {...}, "generation": int}},
        "series": {master_id: {
            "master": {...} | null, "exceptions": {event_id: {...}},
            "seen": {original start ISO: fingerprint},
            "expanded_to": ISO | null,   # null: changed, expand the whole window
            "generation": int}},
    }}}

``generation`` counts full listings: whatever is stored with an older one
than the last completed full listing was not in it (see
:mod:`connectors.google.calendar` on 410). Resources are kept cut to the
fields the CRM reads (:func:`trim`).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.errors import CursorInvalid
from connectors.ical.parts import to_utc
from connectors.records import CalendarEvent, Cursor

CURSOR_VERSION = 1

Window = tuple[datetime, datetime]
Resource = dict[str, Any]

_KEPT_FIELDS = (
    "id",
    "iCalUID",
    "status",
    "summary",
    "description",
    "location",
    "start",
    "end",
    "recurrence",
    "recurringEventId",
    "originalStartTime",
    "sequence",
    "updated",
)
_PERSON_FIELDS = ("email", "displayName")
_ATTENDEE_FIELDS = ("email", "displayName", "responseStatus", "optional", "resource")


@dataclass
class SeriesState:
    """A recurring series as last listed, and what was yielded of it."""

    master: Resource | None = None
    exceptions: dict[str, Resource] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)
    expanded_to: str | None = None
    generation: int = 0

    def touch(self, generation: int) -> None:
        """Listed again: expand the whole window, and it survives the sweep."""
        self.expanded_to = None
        self.generation = generation

    @property
    def deleted(self) -> bool:
        """The whole series was deleted (its master is cancelled)."""
        return self.master is not None and self.master.get("status") == "cancelled"

    @property
    def nothing_to_expand(self) -> bool:
        """No master, and no exception with a start of its own: nothing left to keep."""
        return self.master is None and not any("start" in e for e in self.exceptions.values())

    def remember(self, produced: Mapping[str, CalendarEvent], span: Window, now: datetime) -> None:
        """After an expansion over ``span``: the fingerprints of its occurrences not yet
        started replace what was seen inside the span; what lies outside stays."""
        start, end = span
        kept = {
            key: value
            for key, value in self.seen.items()
            if not start <= datetime.fromisoformat(key) < end
        }
        kept.update(
            (key, fingerprint(event))
            for key, event in produced.items()
            if event.original_start >= now
        )
        self.seen = kept


@dataclass
class SingleState:
    """A single event that has not ended, kept to report its deletion."""

    event: Resource
    generation: int


@dataclass
class CalendarState:
    """One calendar's part of the cursor (see the module docstring)."""

    sync_token: str | None = None
    page_token: str | None = None
    time_min: str | None = None
    time_zone: str | None = None
    generation: int = 0
    singles: dict[str, SingleState] = field(default_factory=dict)
    series: dict[str, SeriesState] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "sync_token": self.sync_token,
            "page_token": self.page_token,
            "time_min": self.time_min,
            "time_zone": self.time_zone,
            "generation": self.generation,
            "singles": {
                event_id: {"event": single.event, "generation": single.generation}
                for event_id, single in self.singles.items()
            },
            "series": {
                master_id: {
                    "master": series.master,
                    "exceptions": series.exceptions,
                    "seen": series.seen,
                    "expanded_to": series.expanded_to,
                    "generation": series.generation,
                }
                for master_id, series in self.series.items()
            },
        }

    @classmethod
    def from_json(cls, value: Any) -> CalendarState:
        """Raises CursorInvalid for anything this version did not write."""
        if not isinstance(value, Mapping):
            raise _invalid("a calendar's state is not an object")
        state = cls(
            sync_token=_optional_text(value, "sync_token"),
            page_token=_optional_text(value, "page_token"),
            time_min=_optional_time(value, "time_min"),
            time_zone=_optional_text(value, "time_zone"),
            generation=_count(value, "generation"),
        )
        for event_id, single in _objects(value, "singles").items():
            event = single.get("event")
            if not isinstance(event, dict):
                raise _invalid(f"single event {event_id!r} is malformed")
            state.singles[event_id] = SingleState(event, _count(single, "generation"))
        for master_id, series in _objects(value, "series").items():
            master = series.get("master")
            seen = series.get("seen")
            if master is not None and not isinstance(master, dict):
                raise _invalid(f"the master of series {master_id!r} is malformed")
            if not isinstance(seen, dict) or not all(
                isinstance(v, str) and _is_time(k) for k, v in seen.items()
            ):
                raise _invalid(f"the occurrences seen of series {master_id!r} are malformed")
            state.series[master_id] = SeriesState(
                master=master,
                exceptions=_objects(series, "exceptions"),
                seen=dict(seen),
                expanded_to=_optional_time(series, "expanded_to"),
                generation=_count(series, "generation"),
            )
        return state

    def restart(self) -> None:
        """Make the next listing a full one; what is stored stays, to be swept after it."""
        self.sync_token = None
        self.page_token = None

    def prune(self, now: datetime) -> None:
        """Forget single events that have ended, occurrences that have started, and
        lone instances (series whose master the calendar lacks) that are over; an
        exception still waiting for its master, later in a listing, stays."""
        for event_id, single in list(self.singles.items()):
            if not self._ends_after(single.event, now):
                del self.singles[event_id]
        for master_id, series in list(self.series.items()):
            series.seen = {k: v for k, v in series.seen.items() if datetime.fromisoformat(k) >= now}
            lone = series.master is None and series.expanded_to is not None
            if lone and not any(self._ends_after(e, now) for e in series.exceptions.values()):
                del self.series[master_id]

    def _ends_after(self, event: Mapping[str, Any], now: datetime) -> bool:
        end = instant(event.get("end"), self.time_zone)
        return end is not None and end >= now


def parse_cursor(cursor: Cursor | None) -> dict[str, CalendarState]:
    """Calendar id -> state; CursorInvalid for a cursor this version did not write."""
    if cursor is None:
        return {}
    if not isinstance(cursor, Mapping) or cursor.get("v") != CURSOR_VERSION:
        raise _invalid(f"not a version-{CURSOR_VERSION} Google Calendar cursor")
    calendars = cursor.get("calendars")
    if not isinstance(calendars, Mapping):
        raise _invalid("the cursor has no calendars")
    return {
        str(key): CalendarState.from_json(copy.deepcopy(value)) for key, value in calendars.items()
    }


def _invalid(problem: str) -> CursorInvalid:
    return CursorInvalid(f"Google Calendar cursor: {problem}")


def _optional_text(value: Mapping[str, Any], key: str) -> str | None:
    text = value.get(key)
    if text is not None and not isinstance(text, str):
        raise _invalid(f"{key} is not a string")
    return text


def _optional_time(value: Mapping[str, Any], key: str) -> str | None:
    text = _optional_text(value, key)
    if text is not None and not _is_time(text):
        raise _invalid(f"{key} is not an ISO time with an offset")
    return text


def _is_time(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is not None
    except ValueError:
        return False


def _count(value: Mapping[str, Any], key: str) -> int:
    number = value.get(key)
    if not isinstance(number, int) or isinstance(number, bool):
        raise _invalid(f"{key} is not a number")
    return number


def _objects(value: Mapping[str, Any], key: str) -> dict[str, dict[str, Any]]:
    found = value.get(key)
    if not isinstance(found, dict) or not all(isinstance(v, dict) for v in found.values()):
        raise _invalid(f"{key} is malformed")
    return found


# --------------------------------------------------------------------------- resources


def trim(resource: Mapping[str, Any]) -> Resource:
    """The fields of an ``Event`` the CRM reads, which is all the cursor keeps of it."""
    kept = {key: resource[key] for key in _KEPT_FIELDS if key in resource}
    organizer = resource.get("organizer")
    if isinstance(organizer, Mapping):
        kept["organizer"] = {k: organizer[k] for k in _PERSON_FIELDS if k in organizer}
    attendees = resource.get("attendees")
    if isinstance(attendees, list):
        kept["attendees"] = [
            {k: a[k] for k in _ATTENDEE_FIELDS if k in a}
            for a in attendees
            if isinstance(a, Mapping)
        ]
    return kept


def merge(stored: Resource | None, resource: Mapping[str, Any]) -> Resource:
    """A newly listed resource over the stored one.

    A cancelled resource may carry only its ids, so it is laid over what was
    stored; any other resource is complete and replaces it (a field it lacks
    was removed).
    """
    trimmed = trim(resource)
    if stored is not None and trimmed.get("status") == "cancelled":
        return {**stored, **trimmed}
    return trimmed


def fingerprint(event: CalendarEvent) -> str:
    """A digest of what the CRM reads of an occurrence: equal digests need no second write."""
    content = (
        event.uid,
        event.start.isoformat(),
        event.end.isoformat() if event.end else None,
        event.status,
        event.summary,
        event.description,
        event.location,
        event.organizer,
        event.attendees,
    )
    return hashlib.sha256(repr(content).encode("utf-8")).hexdigest()[:16]


def pending_span(series: SeriesState, window: Window) -> Window | None:
    """What of the window a series still needs expanding over; ``None`` when nothing."""
    start, end = window
    if series.expanded_to is None:
        return window
    done = datetime.fromisoformat(series.expanded_to)
    if done >= end:
        return None
    return max(done, start), end


def instant(value: Any, zone: str | None) -> datetime | None:
    """An ``EventDateTime`` as an aware UTC datetime (a date at midnight UTC, as
    ``calendar_parts.to_utc`` puts it); ``None`` when it is not one."""
    if not isinstance(value, Mapping):
        return None
    try:
        if "dateTime" in value:
            moment = datetime.fromisoformat(str(value["dateTime"]))
            if moment.tzinfo is None:
                return _instant_in(moment, value.get("timeZone") or zone)
            return to_utc(moment)
        if "date" in value:
            return to_utc(date.fromisoformat(str(value["date"])))
    except ValueError:
        return None
    return None


def _instant_in(moment: datetime, zone: Any) -> datetime:
    try:
        return to_utc(moment.replace(tzinfo=ZoneInfo(str(zone)))) if zone else to_utc(moment)
    except (ZoneInfoNotFoundError, ValueError):
        return to_utc(moment)
