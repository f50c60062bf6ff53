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

What the cursor keeps, and why: :mod:`connectors.google.calendar_cursor`.
Expanding a series again yields only occurrences whose fingerprint changed;
one that disappeared (a series cut short, every instance moved) comes out
cancelled; when the window's end moves on (daily) only the new days are
expanded.

The window runs from ``since`` to ``horizon_days`` ahead, in whole days
(``recurrence.expansion_window``), and bounds the expansion of series. Single
events are yielded whatever their date after ``since``.

Cancellations. A cancelled instance of a series is a CalendarEvent with
status ``cancelled``, past or future. A deleted single event or series
cancels only what has not started yet: a meeting deleted after it took place
stays logged as it was.

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
counts requests (``units_spent()``) and paces them. An event that cannot be
read becomes :class:`~connectors.records.Unreadable` with source id
``"<calendar id>/<event id>"``. A connector object owns one ``httplib2.Http``,
which is not thread-safe: use it from one thread at a time.
"""

from __future__ import annotations

import copy
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import google.auth.credentials

from config.limits import DEFAULT, Limits
from connectors.errors import ConnectorError, CursorInvalid
from connectors.google.calendar_cursor import (
    CURSOR_VERSION,
    CalendarState,
    Resource,
    SeriesState,
    SingleState,
    Window,
    fingerprint,
    instant,
    merge,
    parse_cursor,
    pending_span,
)
from connectors.google.quota import CALENDAR_RATE, CALENDAR_UNITS
from connectors.google.service import GoogleApiClient
from connectors.ical.bounded_rules import ExpansionBudget
from connectors.ical.parts import to_calendar_event
from connectors.ical.recurrence import (
    DEFAULT_HORIZON_DAYS,
    expand_google,
    expansion_window,
    google_calendar,
)
from connectors.records import Batch, CalendarEvent, Cursor, Item, Limited, Unreadable
from connectors.retry import RetryPolicy

log = logging.getLogger(__name__)

KIND = "google_calendar"
ALL_OWNED = "all-owned"
DEFAULT_API_ENDPOINT = "https://www.googleapis.com/"
MAX_PAGE_SIZE = 2500
NOT_MEETINGS = frozenset({"outOfOffice", "focusTime", "workingLocation", "birthday"})
"""Event types that block time but never bring people together."""

Calendars = Sequence[str] | Literal["all-owned"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
        """The occurrences over ``span`` that changed since last yielded, and those gone.

        A series capped by the expansion budget yields a ``Limited`` instead of
        the occurrences gone: not every occurrence was looked at, so none of
        the unseen ones is known to be gone.
        """
        series.expanded_to = span[1].isoformat()
        deleted = series.deleted
        already = set(self._budget.capped)
        try:
            produced = self._occurrences(run, series, span)
        except Exception as exc:  # as in _apply: one series, not the calendar
            reason = f"recurring event cannot be expanded: {type(exc).__name__}: {exc}"
            return [Unreadable(f"{run.calendar}/{master_id}", reason)]
        capped = [r for uid, r in self._budget.capped.items() if uid not in already]
        if deleted:
            produced = _cancelled_from(produced, run.now)
        items: list[Item] = [
            event for key, event in produced.items() if series.seen.get(key) != fingerprint(event)
        ]
        if capped:
            items.append(Limited(f"{run.calendar}/{master_id}", "series_capped", capped[0]))
        else:
            items += self._gone_in_span(run, series, produced, span)
        series.remember(produced, span, run.now)
        if deleted or series.nothing_to_expand:
            del run.state.series[master_id]
        return items

    def _gone_in_span(
        self,
        run: _Run,
        series: SeriesState,
        produced: Mapping[str, CalendarEvent],
        span: Window,
    ) -> list[Item]:
        """Occurrences yielded before within ``span`` that the expansion no longer
        produces, and that were not moved elsewhere: cancelled."""
        start, end = span
        moved = self._moved_instances(run, series)
        gone = (
            self._gone(run, series, key)
            for key in series.seen
            if key not in produced
            and key not in moved
            and start <= datetime.fromisoformat(key) < end
        )
        return [event for event in gone if event is not None]

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
            original = instant(exception.get("originalStartTime"), run.state.time_zone)
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
        first, last = instant(master.get("start"), zone), instant(master.get("end"), zone)
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


def _cancelled_from(
    produced: Mapping[str, CalendarEvent], now: datetime
) -> dict[str, CalendarEvent]:
    """A deleted series' occurrences: those not yet started, cancelled; the past stays."""
    return {
        key: replace(event, status="cancelled")
        for key, event in produced.items()
        if event.start >= now
    }


def _orphan_master(exception: Mapping[str, Any]) -> Resource:
    """A one-instance master for an exception whose master this calendar lacks."""
    original = exception["originalStartTime"]
    return {
        "id": exception.get("recurringEventId"),
        "iCalUID": exception.get("iCalUID"),
        "start": original,
        "end": original,
    }
