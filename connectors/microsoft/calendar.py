"""Outlook calendar connector (kind ``microsoft_calendar``): a primary calendar through Graph.

Terms. A *calendar view* is what a calendar holds within a window
(``startDateTime`` to ``endDateTime``): single events (``type:
singleInstance``) and the *occurrences* and *exceptions* (changed
occurrences) of recurring series, each of those with ``seriesMasterId`` and
``originalStart``, the start the series gave it; never a series master. A
*delta round* over a calendar view ("Get incremental changes to events in a
calendar view") is a chain of pages linked by ``@odata.nextLink`` that ends
with an ``@odata.deltaLink``. The round's first request fixes its window,
which every link carries; the next round, from the delta link, returns the
instances changed since and ``@removed`` entries (an id and nothing else)
for instances that left the view: deleted, cancelled by their organizer, or
changed and now outside the window.

Identity. An occurrence is its meeting's iCalendar UID plus its original
start, as for Google Calendar and ICS files, so the same meeting on several
calendars is one interaction; its source id is ``<account>/<UID>/<original
start, UTC ISO>``, which a moved occurrence keeps. Graph's ``iCalUId`` is the
UID of a single event and of a series master, but "different for each
occurrence in a recurring series" (event resource type): the UID of an
occurrence or exception is its series master's ``iCalUId``, asked for once
per series (``GET /events/{seriesMasterId}``, in JSON batches) and kept in
the cursor. An instance whose master the calendar cannot show keeps its own
``iCalUId``. A single event's original start is its start, so moving it
gives it a new source id, and the old one is removed. A draft (a meeting not
sent yet) is no meeting. An event that cannot be read becomes ``Unreadable``
with source id ``<account>/<event id>``.

Removals. An ``@removed`` entry names the instance by ``id`` alone, so the
cursor keeps, by event id, the source id each instance was yielded under:
only for instances that have not started, since a meeting deleted after it
took place stays logged (as with Google Calendar), and only for those not
cancelled, since a cancellation is already logged and outlives the entry.
Since ``@removed`` also stands for an instance moved out of the window,
every removed instance the cursor knows is asked for (JSON batches of ``GET
/events/{id}``): one Graph no longer has (404) becomes ``SourceRemoved``
under the kept source id, one still there is yielded as it now is. The map
holds at most ``limits.occurrences_per_sync`` instances, the soonest first;
the deletion of one left out goes unreported, which costs nothing but a
meeting still logged. An occurrence the organizer cancelled that stays on an
attendee's calendar (``isCancelled``) is a ``CalendarEvent`` with status
``cancelled``, as Google's cancelled instances are.

Window. From ``since`` (without it, midnight UTC ``DEFAULT_BACKFILL_DAYS``
before the round starts) to ``horizon_days`` ahead, ending at midnight UTC
(``recurrence.expansion_window``). A round's window never changes; once a
round is complete, the next fetch starts a new one over a new window when
less than half the horizon is left ahead of now, or when ``since`` reaches
back before the round's start (a ``since`` given as an age moves on by
itself, which is no reason to list the calendar again). The new round yields
the window's instances again under the same source ids, which the agent's
idempotent writes absorb.

Cursor, version 1, committed with each page::

    {"v": 1, "window": [start ISO, end ISO], "link": "<nextLink or deltaLink>",
     "complete": bool,       # link is a deltaLink: the round is over
     "first": bool,          # the round is a first round (no changes, all of the window)
     "generation": int,      # counts first rounds
     "yielded": {event id: [source id, start ISO, generation]},
     "series": {master id: [UID, generation]}}

When a first round completes, the instances the map holds inside its window
that it did not list (deleted while no round ran, or while a delta link
expired) are asked for as removed ones are, and the series it did not list
are forgotten.

410. A delta link Graph no longer holds (410, or the codes
``syncStateNotFound``, ``syncStateInvalid``, ``resyncRequired``) starts a
first round; it yields what it finds under the same source ids, so nothing
is logged twice. With nothing new, a fetch is one request. Throttling and
retries are the client's (:mod:`connectors.microsoft.graph`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from icalendar import Event, vCalAddress

from config.limits import DEFAULT, Limits
from connectors.errors import ConnectorError, CursorInvalid
from connectors.ical.parts import to_calendar_event
from connectors.ical.recurrence import DEFAULT_HORIZON_DAYS, expansion_window
from connectors.microsoft.graph import GraphClient, GraphConnector, Part
from connectors.records import Batch, CalendarEvent, Cursor, Item, SourceRemoved, Unreadable

log = logging.getLogger(__name__)

KIND = "microsoft_calendar"
CURSOR_VERSION = 1
DEFAULT_BACKFILL_DAYS = 90
"""How far back a round reaches without ``since``: a quarter of history, as far as
the default horizon reaches ahead."""
PAGE_SIZE = 100
"""``Prefer: odata.maxpagesize``: instances per delta page (Graph may send fewer)."""

Window = tuple[datetime, datetime]

_PARTSTAT: Mapping[str, str] = {
    "accepted": "ACCEPTED",
    "declined": "DECLINED",
    "tentativelyAccepted": "TENTATIVE",
    "notResponded": "NEEDS-ACTION",
    "none": "NEEDS-ACTION",
    "organizer": "ACCEPTED",
}
"""Graph's ``status.response`` of an attendee as iCalendar PARTSTAT (``none``: no answer
yet; ``organizer``: the organizer listed among attendees, who holds the meeting);
anything else is unknown."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class CalendarState:
    """The cursor as the connector works on it (module docstring)."""

    window: Window | None = None
    link: str | None = None
    complete: bool = False
    first: bool = False
    generation: int = 0
    yielded: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    """Event id -> (source id, start ISO, generation of the round that last listed it)."""
    series: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Series master id -> (UID, generation of the round that last listed an instance)."""

    def to_json(self) -> Cursor:
        return {
            "v": CURSOR_VERSION,
            "window": None if self.window is None else [t.isoformat() for t in self.window],
            "link": self.link,
            "complete": self.complete,
            "first": self.first,
            "generation": self.generation,
            "yielded": {k: list(v) for k, v in self.yielded.items()},
            "series": {k: list(v) for k, v in self.series.items()},
        }

    def prune(self, now: datetime, cap: int) -> None:
        """Forget instances that have started; keep at most ``cap`` instances (the
        soonest) and ``cap`` series (the last learnt)."""
        kept = sorted(
            ((k, v) for k, v in self.yielded.items() if datetime.fromisoformat(v[1]) >= now),
            key=lambda kv: kv[1][1],
        )
        if len(kept) > cap:
            log.warning("calendar cursor: %d instances kept of %d", cap, len(kept))
        self.yielded = dict(kept[:cap])
        if len(self.series) > cap:
            self.series = dict(list(self.series.items())[-cap:])


def parse_cursor(cursor: Cursor | None) -> CalendarState:
    """The state in a cursor this connector wrote; CursorInvalid for any other."""
    if cursor is None:
        return CalendarState()
    if not isinstance(cursor, Mapping) or cursor.get("v") != CURSOR_VERSION:
        raise _invalid(f"not a version-{CURSOR_VERSION} {KIND} cursor")
    try:
        window = cursor["window"]
        link = cursor["link"]
        state = CalendarState(
            window=None if window is None else _window(window),
            link=link,
            complete=_flag(cursor["complete"]),
            first=_flag(cursor["first"]),
            generation=_count(cursor["generation"]),
            yielded={
                str(k): (_text(v[0]), _time_text(v[1]), _count(v[2]))
                for k, v in _mapping(cursor["yielded"]).items()
            },
            series={
                str(k): (_text(v[0]), _count(v[1])) for k, v in _mapping(cursor["series"]).items()
            },
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise _invalid(f"malformed: {exc!r}") from exc
    if link is not None and not (isinstance(link, str) and link.startswith("https://")):
        raise _invalid("the link is not an https URL")
    if (link is None) != (window is None):
        raise _invalid("a link without a window, or a window without a link")
    return state


class MicrosoftCalendarConnector(GraphConnector):
    """Occurrences in a user's primary Outlook calendar by calendar view delta (module docstring).

    ``since`` (aware) is the window's start, ``horizon_days`` how far ahead
    it ends; ``now`` is injectable so tests can place the window.
    """

    kind = KIND

    def __init__(
        self,
        name: str,
        account: str,
        client: GraphClient,
        *,
        since: datetime | None = None,
        horizon_days: int = DEFAULT_HORIZON_DAYS,
        limits: Limits = DEFAULT,
        page_size: int = PAGE_SIZE,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        if horizon_days < 1 or page_size < 1:
            raise ValueError("horizon_days and page_size must be positive")
        super().__init__(name, account, client)
        self.since = since
        self.horizon_days = horizon_days
        self.limits = limits
        self.page_size = page_size
        self._now = now

    def __repr__(self) -> str:
        return f"MicrosoftCalendarConnector({self.name!r}, {self.account})"

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        state = parse_cursor(cursor)
        self.client.start_run()
        now = self._now()
        now = now if now.tzinfo else now.replace(tzinfo=UTC)
        fresh = state.link is None or (state.complete and self._window_moved(state, now))
        if fresh:
            self._start_round(state, now)
        yield from self._round(state, now, fresh=fresh)

    def window(self, now: datetime) -> Window:
        """The window a round starting at ``now`` covers."""
        start = self.since
        if start is None:
            backfill = (now - timedelta(days=DEFAULT_BACKFILL_DAYS)).date()
            start = datetime.combine(backfill, time(), tzinfo=UTC)
        return expansion_window(start, now, self.horizon_days)

    # ----------------------------------------------------------------- rounds

    def _window_moved(self, state: CalendarState, now: datetime) -> bool:
        """Whether a new round is due (module docstring, "Window")."""
        if state.window is None:
            return True
        start, end = state.window
        if self.since is not None and self.since < start:
            return True
        return end - now < timedelta(days=self.horizon_days) / 2

    def _start_round(self, state: CalendarState, now: datetime) -> None:
        """A first round over the window as of ``now``. A first round that never completed
        keeps its generation: what it listed need not be asked for again."""
        if not (state.first and not state.complete):
            state.generation += 1
        state.window = self.window(now)
        state.link = self._first_url(state.window)
        state.complete = False
        state.first = True

    def _round(self, state: CalendarState, now: datetime, *, fresh: bool) -> Iterator[Batch]:
        while True:
            url = state.link
            assert url is not None
            try:
                page = self.client.get(url, headers=self._prefer(paged=True))
            except CursorInvalid as exc:
                if fresh:
                    raise
                log.warning(
                    "%s: Graph no longer holds the calendar's delta state (%s); a new round "
                    "starts, and what it yields again replaces what was logged",
                    self.name,
                    exc,
                )
                self._start_round(state, now)
                fresh = True
                continue
            following = page.get("@odata.nextLink") or page.get("@odata.deltaLink")
            if not isinstance(following, str):
                raise ConnectorError(f"{self.name}: a delta page without a next or delta link")
            items = self._changes(state, page.get("value") or [], now)
            state.link = following
            state.complete = "@odata.nextLink" not in page
            if state.complete and state.first:
                items += self._sweep(state, now)
                state.first = False
            state.prune(now, self.limits.occurrences_per_sync)
            yield Batch(items, state.to_json())
            if state.complete:
                return
            fresh = False

    def _first_url(self, window: Window) -> str:
        start, end = (t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in window)
        return f"{self._user()}/calendarView/delta?startDateTime={start}&endDateTime={end}"

    def _sweep(self, state: CalendarState, now: datetime) -> list[Item]:
        """After a first round: instances kept inside its window that it did not list are
        asked for; series it did not list are forgotten."""
        assert state.window is not None
        start, end = state.window
        unlisted = [
            event_id
            for event_id, (_, begins, generation) in state.yielded.items()
            if generation < state.generation and start <= datetime.fromisoformat(begins) < end
        ]
        items = self._apply(state, [], unlisted, now)
        state.series = {k: v for k, v in state.series.items() if v[1] >= state.generation}
        return items

    # ----------------------------------------------------------------- changes

    def _changes(self, state: CalendarState, entries: Sequence[Any], now: datetime) -> list[Item]:
        items: list[Item] = []
        live: list[Mapping[str, Any]] = []
        removed: list[str] = []
        for entry in entries:
            event_id = entry.get("id") if isinstance(entry, Mapping) else None
            if not isinstance(event_id, str) or not event_id:
                items.append(Unreadable(f"{self.account}/?", f"an event without an id: {entry!r}"))
            elif "@removed" in entry:
                removed.append(event_id)
            elif entry.get("type") == "seriesMaster":
                continue  # a calendar view holds instances; a master is no meeting of its own
            else:
                live.append(entry)
        return items + self._apply(state, live, removed, now)

    def _apply(
        self,
        state: CalendarState,
        live: Sequence[Mapping[str, Any]],
        removed: Sequence[str],
        now: datetime,
    ) -> list[Item]:
        """Items for instances listed (``live``) and for instances that left the view
        (``removed``): those the cursor knows are asked for, and yielded as they are now
        or removed."""
        items: list[Item] = []
        found, gone = self._ask_for([i for i in dict.fromkeys(removed) if i in state.yielded])
        for event_id in gone:
            source_id, begins, _ = state.yielded.pop(event_id)
            if datetime.fromisoformat(begins) >= now:
                items.append(SourceRemoved(source_id))
        instances = [*live, *found]
        self._learn_series(state, instances)
        for entry in instances:
            items += self._instance(state, entry, now)
        return items

    def _instance(
        self, state: CalendarState, entry: Mapping[str, Any], now: datetime
    ) -> list[Item]:
        event_id = str(entry["id"])
        known = state.yielded.pop(event_id, None)
        items: list[Item] = []
        if entry.get("isDraft"):
            event: CalendarEvent | None = None
        else:
            try:
                event = self._event(entry, self._uid(state, entry))
            except Exception as exc:  # one odd event must not stop the calendar
                if known is not None:
                    state.yielded[event_id] = known
                reason = f"unreadable event: {type(exc).__name__}: {exc}"
                return [Unreadable(f"{self.account}/{event_id}", reason)]
        replaced = known is not None and (event is None or known[0] != event.source_id)
        if replaced and known is not None and datetime.fromisoformat(known[1]) >= now:
            items.append(SourceRemoved(known[0]))
        if event is None:
            return items
        if event.status != "cancelled" and event.start >= now:
            state.yielded[event_id] = (event.source_id, event.start.isoformat(), state.generation)
        items.append(event)
        return items

    def _ask_for(self, ids: Sequence[str]) -> tuple[list[Mapping[str, Any]], list[str]]:
        """The instances Graph still has, and the ids of those it has not (404). An id
        Graph answers otherwise is left as it was."""
        if not ids:
            return [], []
        parts = [
            Part(str(n), f"{self._user()}/events/{quote(i, safe='')}", self._prefer())
            for n, i in enumerate(ids)
        ]
        found: list[Mapping[str, Any]] = []
        gone: list[str] = []
        for part_id, answer in sorted(self.client.batch(parts).items(), key=lambda a: int(a[0])):
            event_id = ids[int(part_id)]
            if answer.status == 404:
                gone.append(event_id)
            elif answer.status < 300 and isinstance(answer.body, Mapping):
                found.append({**answer.body, "id": answer.body.get("id") or event_id})
            else:
                log.warning("%s: event %s: Graph answered %s", self.name, event_id, answer.status)
        return found, gone

    def _learn_series(self, state: CalendarState, instances: Sequence[Mapping[str, Any]]) -> None:
        """The UIDs of the series ``instances`` belong to: asked for once, then kept."""
        masters = {
            str(e["seriesMasterId"]) for e in instances if isinstance(e.get("seriesMasterId"), str)
        }
        unknown = sorted(m for m in masters if m not in state.series)
        parts = [
            Part(str(n), f"{self._user()}/events/{quote(m, safe='')}?$select=iCalUId")
            for n, m in enumerate(unknown)
        ]
        answers = self.client.batch(parts) if parts else {}
        for part_id, answer in answers.items():
            uid = answer.body.get("iCalUId") if isinstance(answer.body, Mapping) else None
            if answer.status < 300 and isinstance(uid, str) and uid:
                state.series[unknown[int(part_id)]] = (uid, state.generation)
        for master in masters:
            if master in state.series:
                state.series[master] = (state.series[master][0], state.generation)

    def _uid(self, state: CalendarState, entry: Mapping[str, Any]) -> str:
        master = entry.get("seriesMasterId")
        if isinstance(master, str) and master in state.series:
            return state.series[master][0]
        uid = entry.get("iCalUId")
        if not isinstance(uid, str) or not uid.strip():
            raise ValueError("an event without an iCalUId")
        return uid

    def _event(self, entry: Mapping[str, Any], uid: str) -> CalendarEvent:
        return to_calendar_event(
            vevent(entry, uid),
            calendar=self.account,
            owner=self.account,
            source_prefix=self.account,
        )

    def _prefer(self, *, paged: bool = False) -> dict[str, str]:
        prefer = 'outlook.timezone="UTC", IdType="ImmutableId"'
        if paged:
            prefer += f", odata.maxpagesize={self.page_size}"
        return {"Prefer": prefer}


# --------------------------------------------------------------------------- events


def vevent(entry: Mapping[str, Any], uid: str) -> Event:
    """A Graph event instance as the VEVENT of one occurrence, so that
    :func:`connectors.ical.parts.to_calendar_event` reads it as it reads every
    other calendar (addresses, relays, response statuses, rooms).

    An all-day event's times are midnight in its own zone, which ``outlook.timezone``
    shifts to UTC: they are rounded to the nearest midnight, and become dates.
    """
    all_day = bool(entry.get("isAllDay"))
    start = _moment(entry.get("start"))
    if start is None:
        raise ValueError("an event without a start")
    end = _moment(entry.get("end"))
    component = Event()
    component.add("UID", uid)
    component.add("DTSTART", _day(start) if all_day else start)
    if end is not None:
        component.add("DTEND", _day(end) if all_day else end)
    original = _instant(entry.get("originalStart"))
    if original is not None and entry.get("type") in ("occurrence", "exception"):
        component.add("RECURRENCE-ID", _day(original) if all_day else original)
    for key, name in (("subject", "SUMMARY"), ("location", "LOCATION")):
        text = _display(entry.get(key))
        if text:
            component.add(name, text)
    description = _description(entry)
    if description:
        component.add("DESCRIPTION", description)
    component.add("STATUS", "CANCELLED" if entry.get("isCancelled") else "CONFIRMED")
    modified = _instant(entry.get("lastModifiedDateTime"))
    if modified is not None:
        component.add("LAST-MODIFIED", modified)
    organizer = _address(entry.get("organizer"))
    if organizer is not None:
        component.add("ORGANIZER", organizer)
    for attendee in entry.get("attendees") or ():
        value = _attendee(attendee)
        if value is not None:
            component.add("ATTENDEE", value)
    return component


def _attendee(attendee: Any) -> vCalAddress | None:
    value = _address(attendee)
    if value is None:
        return None
    status = attendee.get("status") if isinstance(attendee.get("status"), Mapping) else {}
    value.params["PARTSTAT"] = _PARTSTAT.get(str(status.get("response") or ""), "X-UNKNOWN")
    kind = str(attendee.get("type") or "").lower()
    value.params["ROLE"] = "OPT-PARTICIPANT" if kind == "optional" else "REQ-PARTICIPANT"
    if kind == "resource":
        value.params["CUTYPE"] = "RESOURCE"
    return value


def _address(recipient: Any) -> vCalAddress | None:
    """A Graph ``recipient`` (``{"emailAddress": {"address", "name"}}``) as a calendar user."""
    if not isinstance(recipient, Mapping):
        return None
    person = recipient.get("emailAddress")
    if not isinstance(person, Mapping):
        return None
    email = str(person.get("address") or "").strip()
    if not email:
        return None
    value = vCalAddress(f"mailto:{email}")
    name = str(person.get("name") or "").strip()
    if name and name.lower() != email.lower():
        value.params["CN"] = name
    return value


def _display(value: Any) -> str:
    """A text property, or a ``location``'s ``displayName``."""
    if isinstance(value, Mapping):
        value = value.get("displayName")
    return str(value or "").strip()


def _description(entry: Mapping[str, Any]) -> str:
    """The body when it is text; else the text preview Graph derives from an HTML body."""
    body = entry.get("body")
    if isinstance(body, Mapping) and str(body.get("contentType", "")).lower() == "text":
        return str(body.get("content") or "")
    return str(entry.get("bodyPreview") or "")


def _moment(value: Any) -> datetime | None:
    """A ``dateTimeTimeZone`` as aware UTC. ``outlook.timezone="UTC"`` asks for UTC; a
    zone other than an IANA name makes the event unreadable rather than misplaced."""
    if not isinstance(value, Mapping) or not value.get("dateTime"):
        return None
    moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
    zone = str(value.get("timeZone") or "UTC")
    if moment.tzinfo is None and zone.upper() != "UTC":
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _instant(value: Any) -> datetime | None:
    """A ``DateTimeOffset`` (ISO 8601, UTC with ``Z``) as aware UTC."""
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _day(moment: datetime) -> date:
    return (moment + timedelta(hours=12)).date()


# --------------------------------------------------------------------------- cursor parts


def _invalid(problem: str) -> CursorInvalid:
    return CursorInvalid(f"{KIND} cursor: {problem}")


def _window(value: Any) -> Window:
    start, end = (datetime.fromisoformat(_time_text(v)) for v in value)
    return start, end


def _time_text(value: Any) -> str:
    if not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is None:
        raise ValueError(f"not an ISO time with an offset: {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def _count(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a flag: {value!r}")
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"not an object: {value!r}")
    return value
