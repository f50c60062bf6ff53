"""A user's primary calendar: single events, recurring series, their occurrences and exceptions.

From "event resource type" and "Get incremental changes to events in a
calendar view" (/graph/delta-query-events): a calendar view holds single
instances (``type: singleInstance``), occurrences and exceptions of a series
(``type: occurrence`` / ``exception`` with ``seriesMasterId`` and
``originalStart``), never the ``seriesMaster`` itself. ``iCalUId`` differs
for each occurrence of a series (event resource type: "This ID is different
for each occurrence in a recurring series"). ``attendees[].status.response``
is one of ``none``, ``organizer``, ``tentativelyAccepted``, ``accepted``,
``declined``, ``notResponded``.

Changes are test hooks: :meth:`Calendar.add_event` (with a
:class:`Recurrence` for a series), :meth:`Calendar.update_event`,
:meth:`Calendar.modify_occurrence` (makes an exception),
:meth:`Calendar.cancel_occurrence` (removes it, or with ``keep=True`` leaves
it with ``isCancelled: true`` as attendees see it until they remove it),
:meth:`Calendar.cancel_event`, :meth:`Calendar.delete_event`,
:meth:`Calendar.respond`. Each bumps a change counter; an instance's version
is the counter of the last change that touched it.

``calendarView/delta`` (event: delta): a round over the window given by
``startDateTime``/``endDateTime`` (encoded in the tokens); a later round gives
instances changed since, and ``@removed`` (reason ``deleted``) for instances
deleted and for instances outside the window that changed, as the docs warn.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.fake_graph.common import bad_request, event_time, graph_time, parse_time
from tests.support.fake_graph.mail import new_id

RESPONSES = frozenset(
    {"none", "organizer", "tentativelyAccepted", "accepted", "declined", "notResponded"}
)
_MAX_INSTANCES = 1000


@dataclass(frozen=True)
class Attendee:
    address: str
    name: str = ""
    response: str = "none"
    type: str = "required"

    def json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": {"response": self.response, "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": self.name or self.address, "address": self.address},
        }


@dataclass(frozen=True)
class Recurrence:
    """A daily or weekly pattern (every ``interval`` days/weeks from the
    first start), ending after ``count`` instances or at ``until``."""

    pattern: str = "weekly"
    interval: int = 1
    count: int | None = None
    until: datetime | None = None

    def starts(self, first: datetime) -> list[datetime]:
        step = timedelta(days=self.interval * (7 if self.pattern == "weekly" else 1))
        out: list[datetime] = []
        moment = first
        while len(out) < (self.count or _MAX_INSTANCES):
            if self.until is not None and moment > self.until:
                break
            out.append(moment)
            moment += step
        return out

    def json(self, first: datetime) -> dict[str, Any]:
        range_: dict[str, Any] = {
            "startDate": first.date().isoformat(),
            "recurrenceTimeZone": "UTC",
        }
        if self.count is not None:
            range_ |= {"type": "numbered", "numberOfOccurrences": self.count}
        elif self.until is not None:
            range_ |= {"type": "endDate", "endDate": self.until.date().isoformat()}
        else:
            range_ |= {"type": "noEnd"}
        pattern: dict[str, Any] = {"type": self.pattern, "interval": self.interval}
        if self.pattern == "weekly":
            pattern |= {"daysOfWeek": [first.strftime("%A").lower()], "firstDayOfWeek": "sunday"}
        return {"pattern": pattern, "range": range_}


@dataclass
class Override:
    """An exception: what differs in one occurrence."""

    seq: int
    subject: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    is_cancelled: bool = False
    attendees: tuple[Attendee, ...] | None = None


@dataclass
class Event:
    id: str
    ical_uid: str
    subject: str
    start: datetime
    end: datetime
    organizer: Attendee
    attendees: tuple[Attendee, ...]
    body: str
    location: str
    recurrence: Recurrence | None
    seq: int
    created: datetime
    modified: datetime
    is_cancelled: bool = False
    is_online: bool = False
    overrides: dict[datetime, Override] = field(default_factory=dict)
    removed: dict[datetime, int] = field(default_factory=dict)
    """Deleted occurrences by original start, with the change counter then."""


@dataclass(frozen=True)
class Instance:
    """One entry of a calendar view."""

    id: str
    type: str
    event: Event
    original_start: datetime | None
    start: datetime
    end: datetime
    subject: str
    is_cancelled: bool
    attendees: tuple[Attendee, ...]
    version: int


def _occurrence_id(master: Event, original: datetime) -> str:
    digest = hashlib.sha256(f"{master.id}|{original.isoformat()}".encode()).digest()
    return "AAMkADocc" + base64.urlsafe_b64encode(digest[:30]).decode()


class Calendar:
    def __init__(self, user_id: str, owner: Attendee, *, lock: threading.RLock) -> None:
        self.user_id = user_id
        self.owner = owner
        self.lock = lock
        self.seq = 0
        self.events: dict[str, Event] = {}
        self.tombstones: list[tuple[int, str]] = []
        """``(seq, instance_id)`` of instances gone for good."""

    def _bump(self) -> int:
        self.seq += 1
        return self.seq

    # -- test hooks

    def add_event(
        self,
        subject: str,
        start: datetime,
        end: datetime,
        *,
        attendees: Iterable[Attendee] = (),
        organizer: Attendee | None = None,
        body: str = "",
        location: str = "",
        recurrence: Recurrence | None = None,
        ical_uid: str | None = None,
        is_online: bool = False,
    ) -> Event:
        with self.lock:
            now = datetime.now(UTC)
            event = Event(
                id=new_id("AAMkAGev"),
                ical_uid=ical_uid
                or "040000008200E00074C5B7101A82E008"
                + hashlib.sha1(new_id().encode()).hexdigest().upper(),
                subject=subject,
                start=start.astimezone(UTC),
                end=end.astimezone(UTC),
                organizer=organizer or replace(self.owner, response="organizer"),
                attendees=tuple(attendees),
                body=body,
                location=location,
                recurrence=recurrence,
                seq=self._bump(),
                created=now,
                modified=now,
                is_online=is_online,
            )
            self.events[event.id] = event
            return event

    def update_event(self, event_id: str, **changes: Any) -> Event:
        """Change fields of an event or a whole series (``subject``, ``start``,
        ``end``, ``attendees``, ``body``, ``location``)."""
        with self.lock:
            event = self.events[event_id]
            for name, value in changes.items():
                if name == "attendees":
                    value = tuple(value)
                if not hasattr(event, name):
                    raise AttributeError(name)
                setattr(event, name, value)
            event.seq = self._bump()
            event.modified = datetime.now(UTC)
            return event

    def modify_occurrence(self, master_id: str, original_start: datetime, **changes: Any) -> str:
        """Turn one occurrence into an exception; returns its instance id."""
        with self.lock:
            master = self.events[master_id]
            original = self._original(master, original_start)
            current = master.overrides.get(original, Override(0))
            for name, value in changes.items():
                if name == "attendees":
                    value = tuple(value)
                setattr(current, name, value)
            current.seq = self._bump()
            master.overrides[original] = current
            return _occurrence_id(master, original)

    def cancel_occurrence(
        self, master_id: str, original_start: datetime, *, keep: bool = False
    ) -> str:
        """Cancel one occurrence: gone from the view (``@removed``), or with
        ``keep=True`` still there with ``isCancelled: true``."""
        with self.lock:
            master = self.events[master_id]
            original = self._original(master, original_start)
            if keep:
                subject = f"Canceled: {master.subject}"
                return self.modify_occurrence(
                    master_id, original, is_cancelled=True, subject=subject
                )
            seq = self._bump()
            master.removed[original] = seq
            master.overrides.pop(original, None)
            instance_id = _occurrence_id(master, original)
            self.tombstones.append((seq, instance_id))
            return instance_id

    def cancel_event(self, event_id: str, *, keep: bool = False) -> None:
        with self.lock:
            if not keep:
                self.delete_event(event_id)
                return
            event = self.events[event_id]
            event.is_cancelled = True
            event.subject = f"Canceled: {event.subject}"
            event.seq = self._bump()

    def delete_event(self, event_id: str) -> None:
        with self.lock:
            ids = [inst.id for inst in self._expand(self.events[event_id])]
            seq = self._bump()
            del self.events[event_id]
            self.tombstones.extend((seq, instance_id) for instance_id in ids)

    def respond(self, event_id: str, address: str, response: str) -> None:
        """An attendee's answer (``accepted``, ``declined``, ``tentativelyAccepted``...)."""
        if response not in RESPONSES:
            raise ValueError(response)
        with self.lock:
            event = self.events[event_id]
            event.attendees = tuple(
                replace(a, response=response) if a.address.lower() == address.lower() else a
                for a in event.attendees
            )
            event.seq = self._bump()

    def _original(self, master: Event, original_start: datetime) -> datetime:
        if master.recurrence is None:
            raise ValueError("not a series")
        moment = original_start.astimezone(UTC)
        if moment not in master.recurrence.starts(master.start):
            raise KeyError(f"no occurrence at {moment.isoformat()}")
        return moment

    # -- reading

    def _expand(self, event: Event) -> list[Instance]:
        if event.recurrence is None:
            return [
                Instance(
                    event.id,
                    "singleInstance",
                    event,
                    None,
                    event.start,
                    event.end,
                    event.subject,
                    event.is_cancelled,
                    event.attendees,
                    event.seq,
                )
            ]
        duration = event.end - event.start
        out: list[Instance] = []
        for original in event.recurrence.starts(event.start):
            if original in event.removed:
                continue
            override = event.overrides.get(original)
            if override is None:
                out.append(
                    Instance(
                        _occurrence_id(event, original),
                        "occurrence",
                        event,
                        original,
                        original,
                        original + duration,
                        event.subject,
                        event.is_cancelled,
                        event.attendees,
                        event.seq,
                    )
                )
                continue
            start = override.start or original
            out.append(
                Instance(
                    _occurrence_id(event, original),
                    "exception",
                    event,
                    original,
                    start,
                    override.end or (start + duration),
                    override.subject if override.subject is not None else event.subject,
                    override.is_cancelled or event.is_cancelled,
                    override.attendees if override.attendees is not None else event.attendees,
                    max(event.seq, override.seq),
                )
            )
        return out

    def instances(self) -> dict[str, Instance]:
        with self.lock:
            return {inst.id: inst for event in self.events.values() for inst in self._expand(event)}

    def view(self, start: datetime, end: datetime) -> list[Instance]:
        found = [i for i in self.instances().values() if i.start < end and i.end > start]
        return sorted(found, key=lambda i: (i.start, i.id))

    def delta_keys(
        self, start: datetime, end: datetime, since: int | None
    ) -> list[tuple[str, ...]]:
        if since is None:
            return [("live", inst.id) for inst in self.view(start, end)]
        keys: list[tuple[str, ...]] = []
        for inst in sorted(self.instances().values(), key=lambda i: (i.start, i.id)):
            if inst.version <= since:
                continue
            inside = inst.start < end and inst.end > start
            keys.append(("live", inst.id) if inside else ("removed", inst.id))
        keys.extend(("removed", instance_id) for seq, instance_id in self.tombstones if seq > since)
        return keys

    def instance_json(self, inst: Instance, *, basic: bool) -> dict[str, Any]:
        event = inst.event
        digest = hashlib.sha1(f"{inst.id}:{inst.version}".encode()).digest()
        change_key = base64.b64encode(digest[:15]).decode()
        own = next(
            (a for a in inst.attendees if a.address.lower() == self.owner.address.lower()), None
        )
        is_organizer = event.organizer.address.lower() == self.owner.address.lower()
        ical = event.ical_uid
        if inst.original_start is not None:
            ical = (
                hashlib.sha1(f"{event.ical_uid}|{inst.original_start.isoformat()}".encode())
                .hexdigest()
                .upper()
            )
            ical = "040000008200E00074C5B7101A82E008" + ical
        body: dict[str, Any] = {
            "@odata.type": "#microsoft.graph.event",
            "@odata.etag": f'W/"{change_key}"',
            "id": inst.id,
            "createdDateTime": graph_time(event.created),
            "lastModifiedDateTime": graph_time(event.modified),
            "changeKey": change_key,
            "categories": [],
            "transactionId": None,
            "originalStartTimeZone": "UTC",
            "originalEndTimeZone": "UTC",
            "iCalUId": ical,
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": True,
            "hasAttachments": False,
            "subject": inst.subject,
            "bodyPreview": " ".join(event.body.split())[:255],
            "importance": "normal",
            "sensitivity": "normal",
            "isAllDay": False,
            "isCancelled": inst.is_cancelled,
            "isOrganizer": is_organizer,
            "responseRequested": True,
            "seriesMasterId": event.id if inst.type != "singleInstance" else None,
            "showAs": "busy",
            "type": inst.type,
            "webLink": f"https://outlook.office365.com/owa/?itemid={inst.id}&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None,
            "isOnlineMeeting": event.is_online,
            "onlineMeetingProvider": "teamsForBusiness" if event.is_online else "unknown",
            "allowNewTimeProposals": True,
            "isDraft": False,
            "hideAttendees": False,
            "responseStatus": {
                "response": "organizer" if is_organizer else (own.response if own else "none"),
                "time": "0001-01-01T00:00:00Z",
            },
            "body": {"contentType": "html", "content": event.body},
            "start": {"dateTime": event_time(inst.start), "timeZone": "UTC"},
            "end": {"dateTime": event_time(inst.end), "timeZone": "UTC"},
            "location": {"displayName": event.location, "locationType": "default"},
            "locations": [{"displayName": event.location}] if event.location else [],
            "recurrence": None,
            "attendees": [a.json() for a in inst.attendees],
            "organizer": {
                "emailAddress": {
                    "name": event.organizer.name or event.organizer.address,
                    "address": event.organizer.address,
                }
            },
            "onlineMeeting": None,
        }
        if inst.original_start is not None:
            body["originalStart"] = graph_time(inst.original_start)
        if basic:
            for name in ("body", "bodyPreview"):
                body.pop(name)
        return body


def window(start_text: str | None, end_text: str | None) -> tuple[datetime, datetime]:
    """``startDateTime``/``endDateTime``, both required by a calendar view."""
    if not start_text or not end_text:
        raise bad_request(
            "This request requires a time window specified by the query string parameters "
            "StartDateTime and EndDateTime.",
            "ErrorInvalidParameter",
        )
    try:
        return parse_time(start_text), parse_time(end_text)
    except ValueError as error:
        raise bad_request(
            "The value of the parameter is invalid.", "ErrorInvalidParameter"
        ) from error
