"""Calendar v3 as the fake serves it: calendar lists and events with sync tokens.

``calendarList.list`` (primary, owned and shared-in calendars) and
``events.list`` with ``singleEvents=false`` (masters with ``recurrence``,
exceptions with ``recurringEventId``/``originalStartTime``), paging, sync
tokens (with the parameters a sync token forbids refused), deleted events
rendered with their ids only, and 410 ``fullSyncRequired`` for an expired
token (:meth:`FakeCalendar.expire_sync_tokens`).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from tests.support.fake_google.api import (
    SCOPE_PREFIX,
    ApiError,
    ApiRequest,
    Handler,
    b64url_decode,
    bad_request,
    not_found,
    page_size,
)

if TYPE_CHECKING:
    from tests.support.fake_google.server import FakeGoogle

CALENDAR_UNITS: Mapping[str, int] = {"calendarList.list": 1, "events.list": 1}


class FakeCalendar:
    """One calendar's events and the order in which they last changed.

    Every change stamps the event with the next value of the calendar's
    change counter; a sync token is the counter's value when a listing
    started, so ``events.list(syncToken=t)`` returns what changed after ``t``.
    A deleted event stays, cancelled, and is rendered with its ids only, as
    Google guarantees no more; the fake keeps the rest to filter by time.
    """

    def __init__(
        self,
        calendar_id: str,
        *,
        summary: str,
        time_zone: str,
        data_owner: str | None,
        lock: threading.RLock,
        ids: Iterator[int],
    ) -> None:
        self.id = calendar_id
        self.summary = summary
        self.time_zone = time_zone
        self.data_owner = data_owner
        self.events: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, int] = {}
        self.seq = 0
        self.min_sync_seq = 0
        self._lock = lock
        self._ids = ids

    # -- changes

    def insert(self, resource: Mapping[str, Any]) -> str:
        """Add an event (a Google ``Event`` resource, ``id`` and ``iCalUID`` optional)."""
        with self._lock:
            event = {"status": "confirmed", "sequence": 0, **resource}
            event_id = str(event.setdefault("id", f"{next(self._ids):x}"))
            event.setdefault("iCalUID", f"{event_id}@google.com")
            self._store(event)
            return event_id

    def update(self, event_id: str, **fields: Any) -> None:
        """Change fields of an event (``None`` removes one); a new time bumps ``sequence``."""
        with self._lock:
            event = dict(self.events[event_id])
            if {"start", "end"} & set(fields):
                event["sequence"] = int(event.get("sequence", 0)) + 1
            for key, value in fields.items():
                if value is None:
                    event.pop(key, None)
                else:
                    event[key] = value
            self._store(event)

    def respond(self, event_id: str, email: str, response_status: str) -> None:
        """An attendee answers the invitation (for a master: to every instance of it)."""
        with self._lock:
            instances = [
                other_id
                for other_id, other in self.events.items()
                if other.get("recurringEventId") == event_id and other.get("status") != "cancelled"
            ]
            for changed in (event_id, *instances):
                attendees = [
                    {**a, "responseStatus": response_status} if a.get("email") == email else a
                    for a in self.events[changed].get("attendees", [])
                ]
                self.update(changed, attendees=attendees)

    def delete(self, event_id: str) -> None:
        """Delete an event (a whole series, for a master): it turns ``cancelled``."""
        with self._lock:
            self._store({**self.events[event_id], "status": "cancelled"})

    def cancel_instance(self, master_id: str, original_start: datetime) -> str:
        """Delete one instance of a series: a cancelled exception, ids only."""
        with self._lock:
            master = self.events[master_id]
            exception_id = _instance_id(master_id, original_start)
            self._store(
                {
                    "id": exception_id,
                    "iCalUID": master["iCalUID"],
                    "status": "cancelled",
                    "recurringEventId": master_id,
                    "originalStartTime": _instance_time(master, original_start),
                }
            )
            return exception_id

    def move_instance(
        self, master_id: str, original_start: datetime, start: datetime, end: datetime
    ) -> str:
        """Move one instance of a series: an exception with the master's details."""
        with self._lock:
            master = self.events[master_id]
            exception_id = _instance_id(master_id, original_start)
            zone = master["start"].get("timeZone")
            details = {
                k: v for k, v in master.items() if k not in ("id", "recurrence", "start", "end")
            }
            previous = self.events.get(exception_id, {})
            self._store(
                {
                    **details,
                    "id": exception_id,
                    "status": "confirmed",
                    "sequence": int(previous.get("sequence", master.get("sequence", 0))) + 1,
                    "recurringEventId": master_id,
                    "originalStartTime": _instance_time(master, original_start),
                    "start": event_time(start, zone),
                    "end": event_time(end, zone),
                }
            )
            return exception_id

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far now gets 410 Gone."""
        with self._lock:
            self.seq += 1
            self.min_sync_seq = self.seq

    def _store(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event["updated"] = _rfc3339(datetime.now(UTC))
        event["etag"] = f'"{self.seq}"'
        self.events[str(event["id"])] = event
        self.changed[str(event["id"])] = self.seq

    # -- reading

    def listing(
        self, after: int | None, upto: int, time_min: datetime | None, show_deleted: bool
    ) -> list[tuple[int, str]]:
        """``(change, id)`` of the events a listing holds, in listing order.

        ``after`` is the sync token's change (``None``: a full listing, which
        leaves out deleted events unless ``show_deleted``, and events over
        before ``time_min``; masters are always in).
        """
        keys = []
        for event_id, event in self.events.items():
            change = self.changed[event_id]
            if change > upto:
                continue
            if after is not None:
                if change > after:
                    keys.append((change, event_id))
                continue
            if event.get("status") == "cancelled" and not show_deleted:
                continue
            if time_min is not None and "recurrence" not in event:
                end = _event_end(event)
                if end is not None and end <= time_min:
                    continue
            keys.append((change, event_id))
        return sorted(keys)

    def render(self, event_id: str) -> dict[str, Any]:
        """The resource as ``events.list`` returns it."""
        event = self.events[event_id]
        if event.get("status") == "cancelled":
            kept = ("id", "status", "recurringEventId", "originalStartTime", "etag")
            return {"kind": "calendar#event", **{k: event[k] for k in kept if k in event}}
        return {"kind": "calendar#event", **event}


@dataclass(frozen=True)
class CalendarListEntry:
    calendar_id: str
    access_role: str
    primary: bool = False


def event_time(moment: datetime | date, time_zone: str | None = None) -> dict[str, str]:
    """An ``EventDateTime``: ``date`` for a date, else ``dateTime`` in ``time_zone``'s offset."""
    if not isinstance(moment, datetime):
        return {"date": moment.isoformat()}
    if time_zone:
        local = moment.astimezone(ZoneInfo(time_zone))
        return {"dateTime": local.isoformat(), "timeZone": time_zone}
    return {"dateTime": moment.isoformat()}


def attendee(
    email: str, response_status: str = "needsAction", *, name: str = "", **extra: Any
) -> dict[str, Any]:
    """An entry of ``Event.attendees`` (``resource=True``, ``optional=True``, ``self=True``...)."""
    entry: dict[str, Any] = {"email": email, "responseStatus": response_status, **extra}
    if name:
        entry["displayName"] = name
    return entry


def _instance_id(master_id: str, original_start: datetime) -> str:
    return f"{master_id}_{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _instance_time(master: Mapping[str, Any], original_start: datetime) -> dict[str, str]:
    return event_time(original_start, master.get("start", {}).get("timeZone"))


def _event_end(event: Mapping[str, Any]) -> datetime | None:
    value = event.get("end") or event.get("originalStartTime")
    if not isinstance(value, Mapping):
        return None
    try:
        if "dateTime" in value:
            moment = datetime.fromisoformat(str(value["dateTime"]))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if "date" in value:
            day = date.fromisoformat(str(value["date"]))
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
    except ValueError:
        return None
    return None


def _rfc3339(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_CALENDAR_EVENT_SCOPES = frozenset(
    SCOPE_PREFIX + s
    for s in ("calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly")
)
_CALENDAR_LIST_SCOPES = frozenset(
    SCOPE_PREFIX + s
    for s in (
        "calendar",
        "calendar.readonly",
        "calendar.calendarlist",
        "calendar.calendarlist.readonly",
    )
)
_SYNC_TOKEN_EXCLUSIVE = (
    "timeMin",
    "timeMax",
    "updatedMin",
    "q",
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)


def calendar_routes(fake: FakeGoogle) -> list[tuple[str, str, str, Handler]]:
    api = _CalendarApi(fake)
    base = "/calendar/v3"
    return [
        ("GET", base + "/users/me/calendarList", "calendarList.list", api.list_calendars),
        ("GET", base + "/calendars/{calendarId}/events", "events.list", api.list_events),
    ]


class _CalendarApi:
    """Calendar v3's ``calendarList.list`` and ``events.list`` (``singleEvents=false``)."""

    def __init__(self, fake: FakeGoogle) -> None:
        self._fake = fake

    def list_calendars(self, request: ApiRequest) -> Mapping[str, Any]:
        _need_scope(request, _CALENDAR_LIST_SCOPES)
        entries = self._fake.calendar_lists.get(request.grant.account.lower())
        if entries is None:
            raise not_found()
        size = page_size(request, default=100, largest=250)
        offset = int(_decode_json_token(request.param("pageToken")).get("offset", 0))
        page = entries[offset : offset + size]
        result: dict[str, Any] = {
            "kind": "calendar#calendarList",
            "items": [self._entry(e) for e in page],
        }
        if offset + size < len(entries):
            result["nextPageToken"] = _encode_json_token({"offset": offset + size})
        else:
            result["nextSyncToken"] = _encode_json_token({"list": len(entries)})
        return result

    def _entry(self, entry: CalendarListEntry) -> dict[str, Any]:
        calendar = self._fake.calendars[entry.calendar_id]
        result: dict[str, Any] = {
            "kind": "calendar#calendarListEntry",
            "id": calendar.id,
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "accessRole": entry.access_role,
        }
        if entry.primary:
            result["primary"] = True
        elif calendar.data_owner:
            result["dataOwner"] = calendar.data_owner
        return result

    def list_events(self, request: ApiRequest) -> Mapping[str, Any]:
        _need_scope(request, _CALENDAR_EVENT_SCOPES)
        calendar = self._calendar(request)
        if request.param("singleEvents", "false") == "true":
            raise bad_request("The fake serves singleEvents=false only.")
        sync_token = request.param("syncToken")
        if sync_token is not None:
            clashing = [name for name in _SYNC_TOKEN_EXCLUSIVE if request.param(name)]
            if clashing or request.param("showDeleted") == "false":
                raise bad_request(
                    "Sync token cannot be used with other request restrictions.", reason="invalid"
                )
        size = page_size(request, default=250, largest=2500)
        page_token = request.param("pageToken")
        if page_token:
            position = _decode_json_token(page_token)
            if position.get("calendar") != calendar.id:
                raise bad_request("Invalid page token.", reason="invalid")
        else:
            position = {
                "calendar": calendar.id,
                "after": self._sync_position(calendar, sync_token),
                "upto": calendar.seq,
                "timeMin": request.param("timeMin"),
                "deleted": request.param("showDeleted") == "true",
                "last": None,
            }
        time_min = _parse_rfc3339(position["timeMin"]) if position["timeMin"] else None
        keys = calendar.listing(position["after"], position["upto"], time_min, position["deleted"])
        last = tuple(position["last"]) if position["last"] else None
        remaining = [key for key in keys if last is None or key > last]
        page = remaining[:size]
        result: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "accessRole": self._access_role(request, calendar),
            "items": [calendar.render(event_id) for _change, event_id in page],
        }
        if len(remaining) > size:
            result["nextPageToken"] = _encode_json_token({**position, "last": list(page[-1])})
        else:
            result["nextSyncToken"] = _encode_json_token(
                {"calendar": calendar.id, "seq": position["upto"]}
            )
        return result

    def _calendar(self, request: ApiRequest) -> FakeCalendar:
        wanted = unquote(request.args["calendarId"])
        account = request.grant.account.lower()
        for entry in self._fake.calendar_lists.get(account, []):
            if entry.calendar_id == wanted or (wanted == "primary" and entry.primary):
                return self._fake.calendars[entry.calendar_id]
        raise not_found()

    def _access_role(self, request: ApiRequest, calendar: FakeCalendar) -> str:
        entries = self._fake.calendar_lists.get(request.grant.account.lower(), [])
        return next((e.access_role for e in entries if e.calendar_id == calendar.id), "reader")

    @staticmethod
    def _sync_position(calendar: FakeCalendar, token: str | None) -> int | None:
        if token is None:
            return None
        position = _decode_json_token(token)
        seq = position.get("seq")
        if position.get("calendar") != calendar.id or not isinstance(seq, int):
            raise bad_request("Invalid sync token.", reason="invalid")
        if seq < calendar.min_sync_seq:
            raise ApiError(
                410,
                "fullSyncRequired",
                "Sync token is no longer valid, a full sync is required.",
                domain="calendar",
                status_text="GONE",
            )
        return seq


def _need_scope(request: ApiRequest, accepted: frozenset[str]) -> None:
    if not request.grant.scopes & accepted:
        raise ApiError(
            403, "insufficientPermissions", "Request had insufficient authentication scopes."
        )


def _encode_json_token(value: Mapping[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_json_token(token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        value = json.loads(b64url_decode(token))
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Invalid token.", reason="invalid") from None
    if not isinstance(value, dict):
        raise bad_request("Invalid token.", reason="invalid")
    return value


def _parse_rfc3339(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Bad Request: timeMin {text!r}", reason="badRequest") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
