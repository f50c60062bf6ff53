"""Google Calendar connector (kind ``google_calendar``): chosen calendars through Calendar API v3.

Terms. An *event* is an ``Event`` resource, identified by ``id`` within its
calendar; ``iCalUID`` is its RFC 5545 UID, the same on every attendee's
calendar. With ``singleEvents=false`` a recurring meeting comes as a
*master* (with ``recurrence``: RRULE, RDATE, EXDATE lines) and *exceptions*
(with ``recurringEventId``, the master's id, and ``originalStartTime``, the
start the series gave the instance); a cancelled exception is a deleted
instance, any other cancelled event a deletion, and Google guarantees only
the ids of cancelled events. A *sync token* (``nextSyncToken``, on a
listing's last page) makes ``events.list`` return only what changed since;
it forbids ``timeMin``/``timeMax``, so the server cannot window an
open-ended series, and it expires (HTTP 410).

Calendars. ``calendarList.list`` runs at the start of every fetch.
``calendars`` is a list of ids, ``"primary"`` standing for the account's
primary calendar (recorded under its real id), or ``"all-owned"``: the
primary calendar and every secondary one whose ``dataOwner`` is the account.
Calendars shared in from other accounts are synced only when named. A named
calendar the account cannot read fails the fetch with a ConnectorError that
names it, once the other calendars are synced.

Listing. Each calendar is listed with ``singleEvents=false`` and
``showDeleted=true`` (without it a first listing leaves out cancelled
exceptions, and the instances they delete would look scheduled): in full at
first, bounded by ``timeMin=since``, then from the last listing's sync token.
Each page is one Batch. Single events are yielded as they come; recurring
series are expanded with ``connectors.ical.recurrence.expand_google`` once the
listing is complete, so a master and its exceptions on different pages give
each occurrence once.

What the cursor keeps, and why. An incremental listing returns only what
changed: a master without its unchanged exceptions, a cancelled exception or
a deleted event with nothing but ids. So the cursor keeps every recurring
series (master and exceptions, cut to the fields the CRM reads) and every
single event that has not ended. A deleted master or single event is merged
over the stored one, keeping its details; a cancelled exception replaces the
stored one, as the master supplies its details (unless the calendar lacks
the master); any other resource replaces what was stored. A touched series
is expanded again from what is stored. Per series the cursor also keeps a fingerprint of each
occurrence not yet started and how far the series was expanded. Expanding
again yields only occurrences whose fingerprint changed; one that
disappeared (a series cut short, every instance moved) comes out cancelled;
when the window's end moves on (daily) only the new days are expanded.

The window runs from ``since`` to ``horizon_days`` ahead, in whole days
(``recurrence.expansion_window``), and bounds the expansion of series. Single
events are yielded whatever their date after ``since``.

Cancellations. A cancelled instance of a series is a CalendarEvent with
status ``cancelled``, past or future. A deleted single event or series
cancels only what has not started yet: a meeting deleted after it took place
stays logged as it was.

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

410. An expired sync token is ``CursorInvalid`` for that calendar alone: it is
listed in full again, keeping what the cursor stores, while the others go on
from their tokens. The resync yields its single events again (the same source
ids, so idempotent writes duplicate nothing) but only the occurrences of
series that changed. Whatever is stored with an older ``generation`` than the
completed full listing was not in it, so it was deleted and purged while the
token was expired, and is treated as deleted. A page token the server
refuses restarts that listing from its first page.

Errors and quota as in the Gmail connector (both build on
:class:`connectors.google.service.GoogleApiClient`): calls are retried per
:mod:`connectors.google.errors`, and :class:`~connectors.google.quota.QuotaMeter`
counts requests (``units_spent``) and paces them. An event that cannot be
read becomes :class:`~connectors.records.Unreadable` with source id
``"<calendar id>/<event id>"``. A connector object owns one ``httplib2.Http``,
which is not thread-safe: use it from one thread at a time.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import google.auth.credentials

from config.limits import DEFAULT, Limits
from connectors.errors import ConnectorError, CursorInvalid
from connectors.google.errors import RetryPolicy
from connectors.google.quota import CALENDAR_RATE, CALENDAR_UNITS
from connectors.google.service import GoogleApiClient
from connectors.ical.bounded_rules import ExpansionBudget
from connectors.ical.parts import to_calendar_event, to_utc
from connectors.ical.recurrence import (
    DEFAULT_HORIZON_DAYS,
    expand_google,
    expansion_window,
    google_calendar,
)
from connectors.records import Batch, CalendarEvent, Cursor, Item, Limited, Unreadable

log = logging.getLogger(__name__)

KIND = "google_calendar"
ALL_OWNED = "all-owned"
DEFAULT_API_ENDPOINT = "https://www.googleapis.com/"
CURSOR_VERSION = 1
MAX_PAGE_SIZE = 2500
NOT_MEETINGS = frozenset({"outOfOffice", "focusTime", "workingLocation", "birthday"})
"""Event types that block time but never bring people together."""

Calendars = Sequence[str] | Literal["all-owned"]
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


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- cursor


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
        end = _instant(event.get("end"), self.time_zone)
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


# --------------------------------------------------------------------------- pure helpers


def select_calendars(
    entries: Sequence[Mapping[str, Any]], wanted: Calendars, account: str
) -> list[str]:
    """The ids of the calendars to sync, from ``calendarList.list``'s entries.

    Named calendars are kept in their order whether or not the list holds
    them (``events.list`` then says whether the account may read them);
    ``"primary"`` becomes the primary entry's id. ``"all-owned"`` is the
    primary calendar, then the secondary ones whose data owner is the account.
    """
    live = [e for e in entries if e.get("id") and not e.get("deleted")]
    primary = next((str(e["id"]) for e in live if e.get("primary")), None)
    if wanted == ALL_OWNED:
        owner = account.strip().lower()
        owned = sorted(
            str(e["id"])
            for e in live
            if not e.get("primary")
            and e.get("accessRole") == "owner"
            and str(e.get("dataOwner", "")).strip().lower() == owner
        )
        return ([primary] if primary else []) + owned
    named = [primary or name if name == "primary" else name for name in wanted]
    return list(dict.fromkeys(named))


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


def _instant(value: Any, zone: str | None) -> datetime | None:
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


# --------------------------------------------------------------------------- connector


class _CalendarMissing(ConnectorError):
    """``events.list`` says the calendar does not exist for this account (404/410)."""


@dataclass
class _Run:
    """One calendar's part of one fetch."""

    calendar: str
    state: CalendarState
    window: Window
    now: datetime


class GoogleCalendarConnector(GoogleApiClient):
    """Occurrences of meetings in chosen Google calendars since a cursor (see the module docstring).

    ``since`` (aware) bounds the first listing and the window's start;
    ``horizon_days`` its end. ``api_endpoint`` defaults to Google's. The retry
    budget and the quota rate (requests per second; ``None`` counts without
    pacing) apply per run; ``sleep``, ``clock``, ``rand`` and ``now`` are
    injectable so tests run fast and deterministically.
    """

    kind = KIND

    def __init__(
        self,
        name: str,
        account: str,
        credentials: google.auth.credentials.Credentials,
        *,
        calendars: Calendars = ("primary",),
        since: datetime | None = None,
        horizon_days: int = DEFAULT_HORIZON_DAYS,
        api_endpoint: str | None = None,
        quota_rate: float | None = CALENDAR_RATE,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        now: Callable[[], datetime] = _utc_now,
        timeout: float = 60.0,
        page_size: int = 250,
        batch_size: int = 500,
        limits: Limits = DEFAULT,
    ) -> None:
        if calendars != ALL_OWNED and (isinstance(calendars, str) or not calendars):
            raise ValueError(f"calendars must be a list of ids or {ALL_OWNED!r}")
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be within 1..{MAX_PAGE_SIZE}")
        if horizon_days < 1 or batch_size < 1:
            raise ValueError("horizon_days and batch_size must be positive")
        super().__init__(
            name,
            credentials,
            api="calendar",
            version="v3",
            api_endpoint=api_endpoint or DEFAULT_API_ENDPOINT,
            units=CALENDAR_UNITS,
            quota_rate=quota_rate,
            retry_policy=retry_policy,
            sleep=sleep,
            clock=clock,
            rand=rand,
            timeout=timeout,
        )
        self.account = account.strip().lower()
        self.calendars: Calendars = calendars if calendars == ALL_OWNED else tuple(calendars)
        self.since = since
        self.horizon_days = horizon_days
        self._now = now
        self._page_size = page_size
        self._batch_size = batch_size
        self._states: dict[str, CalendarState] = {}
        self._last_cursor: Cursor | None = None
        self._fetch_now = _utc_now()
        self._limits = limits
        self._budget = ExpansionBudget(limits)

    def __repr__(self) -> str:
        return f"GoogleCalendarConnector(name={self.name!r}, account={self.account!r})"

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of changed occurrences since ``cursor``; ``None`` means a full sync."""
        known = parse_cursor(cursor)
        self._start_run()
        now = self._now()
        self._fetch_now = now if now.tzinfo else now.replace(tzinfo=UTC)
        window = expansion_window(self.since, self._fetch_now, self.horizon_days)
        calendar_ids = self._calendar_ids()
        self._states = {cid: known.get(cid) or CalendarState() for cid in calendar_ids}
        self._last_cursor = None if cursor is None else self._cursor()
        self._budget = ExpansionBudget(self._limits)
        missing: list[str] = []
        for calendar_id in calendar_ids:
            run = _Run(calendar_id, self._states[calendar_id], window, self._fetch_now)
            try:
                yield from self._sync_calendar(run)
            except _CalendarMissing as exc:
                log.warning("google calendar %s: %s: %s", self.name, calendar_id, exc)
                missing.append(calendar_id)
        if missing:
            raise ConnectorError(
                f"calendar {', '.join(missing)} not found, or not shared with {self.account}"
            )

    # -- one calendar

    def _sync_calendar(self, run: _Run) -> Iterator[Batch]:
        state = run.state
        if self._since_moved_back(state):
            state.restart()
        try:
            yield from self._list(run)
        except CursorInvalid as exc:
            if state.sync_token is None:
                raise
            log.warning(
                "google calendar %s: %s: %s; listing it in full again", self.name, run.calendar, exc
            )
            state.restart()
            yield from self._list(run)
        yield from self._expand_pending(run)

    def _since_moved_back(self, state: CalendarState) -> bool:
        """Whether ``since`` now reaches back before what the full listing covered."""
        if state.sync_token is None and state.page_token is None:
            return False
        if state.time_min is None:
            return False
        return self.since is None or self.since < datetime.fromisoformat(state.time_min)

    def _list(self, run: _Run) -> Iterator[Batch]:
        """One listing, page by page: in full without a sync token, else the changes."""
        state = run.state
        full = state.sync_token is None
        if full and state.page_token is None:
            state.generation += 1
            state.time_min = self.since.isoformat() if self.since else None
        while True:
            response = self._events_page(run.calendar, state, full)
            state.time_zone = response.get("timeZone") or state.time_zone
            items = self._apply(run, response.get("items") or [])
            next_page = response.get("nextPageToken")
            if next_page:
                state.page_token = str(next_page)
            else:
                sync_token = response.get("nextSyncToken")
                if not sync_token:
                    raise ConnectorError(f"calendar {run.calendar}: last page without a sync token")
                state.page_token = None
                state.sync_token = str(sync_token)
                if full:
                    items += self._sweep(run)
            batch = self._batch(items)
            if batch is not None:
                yield batch
            if not next_page:
                return

    def _events_page(self, calendar_id: str, state: CalendarState, full: bool) -> dict[str, Any]:
        """One ``events.list`` page. A page token the server refuses (a 400 on a resumed
        cursor) restarts the listing from its first page; a sync token it refuses is
        CursorInvalid, as an expired one is."""
        while True:
            request = (
                self._service_object()
                .events()
                .list(
                    calendarId=calendar_id,
                    singleEvents=False,
                    showDeleted=True,
                    maxResults=self._page_size,
                    pageToken=state.page_token,
                    syncToken=None if full else state.sync_token,
                    timeMin=state.time_min if full else None,
                )
            )
            try:
                return self._execute("events.list", request, missing=_CalendarMissing)
            except ConnectorError as exc:
                if type(exc) is not ConnectorError:
                    raise
                if not state.page_token:
                    if full:
                        raise
                    raise CursorInvalid(f"the sync token was refused: {exc}") from exc
                log.warning(
                    "google calendar %s: %s refused the page token (%s); listing again",
                    self.name,
                    calendar_id,
                    exc,
                )
                state.page_token = None
                if full:
                    state.generation += 1

    def _apply(self, run: _Run, resources: Sequence[Any]) -> list[Item]:
        """Take one page's events into the state; the single events to yield now."""
        items: list[Item] = []
        for resource in resources:
            event_id = resource.get("id") if isinstance(resource, Mapping) else None
            if not isinstance(event_id, str) or not event_id:
                reason = f"an event without an id: {resource!r}"
                items.append(Unreadable(f"{run.calendar}/?", reason))
                continue
            try:
                items += self._apply_one(run, event_id, resource)
            except Exception as exc:  # one odd event must not stop its calendar
                reason = f"unreadable event: {type(exc).__name__}: {exc}"
                items.append(Unreadable(f"{run.calendar}/{event_id}", reason))
        return items

    def _apply_one(self, run: _Run, event_id: str, resource: Mapping[str, Any]) -> list[Item]:
        state = run.state
        if resource.get("eventType") in NOT_MEETINGS:
            return []
        master_id = resource.get("recurringEventId")
        if master_id:
            series = state.series.setdefault(str(master_id), SeriesState())
            lone = series.exceptions.get(event_id) if series.master is None else None
            series.exceptions[event_id] = merge(lone, resource)
            series.touch(state.generation)
            return []
        if "recurrence" in resource or event_id in state.series:
            series = state.series.setdefault(event_id, SeriesState())
            series.master = merge(series.master, resource)
            series.touch(state.generation)
            state.singles.pop(event_id, None)
            return []
        known = state.singles.pop(event_id, None)
        event = merge(known.event if known else None, resource)
        cancelled = event.get("status") == "cancelled"
        if cancelled and "start" not in event:
            return []
        occurrence = self._single(run, event)
        if not cancelled and occurrence.end is not None and occurrence.end >= run.now:
            state.singles[event_id] = SingleState(event, state.generation)
        if cancelled and occurrence.start < run.now:
            return []
        if (occurrence.end or occurrence.start) <= run.window[0]:
            return []
        return [occurrence]

    def _sweep(self, run: _Run) -> list[Item]:
        """After a full listing: whatever it did not hold was deleted."""
        state = run.state
        items: list[Item] = []
        for event_id, single in list(state.singles.items()):
            if single.generation >= state.generation:
                continue
            del state.singles[event_id]
            try:
                occurrence = self._single(run, {**single.event, "status": "cancelled"})
            except Exception as exc:  # as in _apply: it was readable once; say why not now
                items.append(Unreadable(f"{run.calendar}/{event_id}", f"{exc!r}"))
                continue
            if occurrence.start >= run.now:
                items.append(occurrence)
        for master_id, series in list(state.series.items()):
            if series.generation >= state.generation:
                continue
            if series.master is None:
                del state.series[master_id]
            else:
                series.master = {**series.master, "status": "cancelled"}
                series.expanded_to = None
        return items

    # -- series

    def _expand_pending(self, run: _Run) -> Iterator[Batch]:
        """Expand every series that changed, or whose window grew; batches of occurrences."""
        items: list[Item] = []
        for master_id in sorted(run.state.series):
            series = run.state.series[master_id]
            span = pending_span(series, run.window)
            if span is None:
                continue
            items += self._expand_series(run, master_id, series, span)
            if len(items) >= self._batch_size:
                batch = self._batch(items)
                items = []
                if batch is not None:
                    yield batch
        batch = self._batch(items)
        if batch is not None:
            yield batch

    def _expand_series(
        self, run: _Run, master_id: str, series: SeriesState, span: Window
    ) -> list[Item]:
        """The occurrences over ``span`` that changed since last yielded, and those gone."""
        start, end = span
        series.expanded_to = end.isoformat()
        deleted = series.master is not None and series.master.get("status") == "cancelled"
        already = set(self._budget.capped)
        try:
            produced = self._occurrences(run, series, span)
        except Exception as exc:  # as in _apply: one series, not the calendar
            reason = f"recurring event cannot be expanded: {type(exc).__name__}: {exc}"
            return [Unreadable(f"{run.calendar}/{master_id}", reason)]
        capped = [r for uid, r in self._budget.capped.items() if uid not in already]
        if deleted:
            produced = {
                key: replace(event, status="cancelled")
                for key, event in produced.items()
                if event.start >= run.now
            }
        items: list[Item] = [
            event for key, event in produced.items() if series.seen.get(key) != fingerprint(event)
        ]
        if capped:
            # Not every occurrence was looked at: none of the unseen ones is gone.
            items.append(Limited(f"{run.calendar}/{master_id}", "series_capped", capped[0]))
        moved = self._moved_instances(run, series)
        for key in series.seen:
            if key in produced or key in moved or capped:
                continue
            if start <= datetime.fromisoformat(key) < end:
                gone = self._gone(run, series, key)
                if gone is not None:
                    items.append(gone)
        kept = {
            key: value
            for key, value in series.seen.items()
            if not start <= datetime.fromisoformat(key) < end
        }
        kept.update(
            (key, fingerprint(event))
            for key, event in produced.items()
            if event.original_start >= run.now
        )
        series.seen = kept
        orphans_only = series.master is None and not any(
            "start" in e for e in series.exceptions.values()
        )
        if deleted or orphans_only:
            del run.state.series[master_id]
        return items

    def _occurrences(
        self, run: _Run, series: SeriesState, span: Window
    ) -> dict[str, CalendarEvent]:
        """Original start (ISO) -> occurrence. Without a master (an instance the account
        was invited to alone), each exception is its own series."""
        failures: list[Exception] = []
        if series.master is not None:
            parts = [(series.master, list(series.exceptions.values()))]
        else:
            parts = [(_orphan_master(e), [e]) for e in series.exceptions.values() if "start" in e]
        found: dict[str, CalendarEvent] = {}
        for master, exceptions in parts:
            for vevent in expand_google(
                master,
                exceptions,
                *span,
                time_zone=run.state.time_zone,
                on_bad_series=lambda _uid, error: failures.append(error),
                budget=self._budget,
            ):
                event = self._to_event(run, vevent)
                found[event.original_start.isoformat()] = event
        if failures:
            raise failures[0]
        return found

    def _moved_instances(self, run: _Run, series: SeriesState) -> set[str]:
        """Original starts of instances that still take place elsewhere (moved, maybe
        out of the span): absent from an expansion, but not gone."""
        moved = set()
        for exception in series.exceptions.values():
            if exception.get("status") == "cancelled":
                continue
            original = _instant(exception.get("originalStartTime"), run.state.time_zone)
            if original is not None:
                moved.add(original.isoformat())
        return moved

    def _gone(self, run: _Run, series: SeriesState, key: str) -> CalendarEvent | None:
        """A cancelled occurrence at original start ``key``, with the master's details."""
        master = series.master
        if master is None:
            return None
        zone = run.state.time_zone
        start = datetime.fromisoformat(key)
        first, last = _instant(master.get("start"), zone), _instant(master.get("end"), zone)
        duration = last - first if first is not None and last is not None else timedelta()
        event = {
            **{k: v for k, v in master.items() if k != "recurrence"},
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + duration).isoformat()},
            "status": "cancelled",
        }
        try:
            return self._single(run, event)
        except Exception:  # the master was expanded a moment ago; this cannot fail alone
            log.exception("google calendar %s: cannot cancel %s", self.name, key)
            return None

    def _single(self, run: _Run, event: Mapping[str, Any]) -> CalendarEvent:
        calendar = google_calendar(event, [], time_zone=run.state.time_zone)
        return self._to_event(run, calendar.walk("VEVENT")[0])

    def _to_event(self, run: _Run, vevent: Any) -> CalendarEvent:
        return to_calendar_event(
            vevent, calendar=run.calendar, owner=self.account, source_prefix=run.calendar
        )

    # -- calendars, batches

    def _calendar_ids(self) -> list[str]:
        entries: list[Mapping[str, Any]] = []
        page_token: str | None = None
        while True:
            request = (
                self._service_object()
                .calendarList()
                .list(maxResults=250, pageToken=page_token, showHidden=True)
            )
            response = self._execute("calendarList.list", request)
            entries += [e for e in response.get("items") or () if isinstance(e, Mapping)]
            page_token = response.get("nextPageToken") or None
            if page_token is None:
                return select_calendars(entries, self.calendars, self.account)

    def _cursor(self) -> Cursor:
        for state in self._states.values():
            state.prune(self._fetch_now)
        calendars = {cid: state.to_json() for cid, state in self._states.items()}
        return {"v": CURSOR_VERSION, "calendars": copy.deepcopy(calendars)}

    def _batch(self, items: Sequence[Item]) -> Batch | None:
        """A batch of ``items`` with the cursor as it now stands; ``None`` when neither
        items nor cursor changed."""
        cursor = self._cursor()
        if not items and cursor == self._last_cursor:
            return None
        self._last_cursor = cursor
        return Batch(list(items), cursor)


def _orphan_master(exception: Mapping[str, Any]) -> Resource:
    """A one-instance master for an exception whose master this calendar lacks."""
    original = exception["originalStartTime"]
    return {
        "id": exception.get("recurringEventId"),
        "iCalUID": exception.get("iCalUID"),
        "start": original,
        "end": original,
    }
