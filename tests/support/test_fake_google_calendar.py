"""The fake server's Calendar routes keep Google's rules: checked over raw HTTP."""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from tests.support.fake_google.calendar import FakeCalendar, event_time
from tests.support.fake_google.gmail import GMAIL_METADATA
from tests.support.fake_google.server import FakeGoogle, FaultPlan

ALICE = "alice@example.com"
CALENDAR_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
EVENTS_READONLY = "https://www.googleapis.com/auth/calendar.events.readonly"
START = datetime(2026, 3, 5, 15, tzinfo=UTC)


@pytest.fixture
def alice(fake_google: FakeGoogle) -> FakeCalendar:
    return fake_google.add_calendar_user(ALICE, time_zone="Europe/Paris")


def get(
    fake_google: FakeGoogle, path: str, scope: str = CALENDAR_READONLY, **params: Any
) -> tuple[int, dict[str, Any]]:
    token = fake_google.issue_access_token(ALICE, [scope])
    parts = urlsplit(fake_google.url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        connection.request("GET", f"{path}?{query}", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def events(
    fake_google: FakeGoogle, calendar: str = "primary", **params: Any
) -> tuple[int, dict[str, Any]]:
    return get(fake_google, f"/calendar/v3/calendars/{quote(calendar, safe='')}/events", **params)


def add(calendar: FakeCalendar, start: datetime = START, **extra: Any) -> str:
    return calendar.insert(
        {
            "summary": "Acme",
            "start": event_time(start, "Europe/Paris"),
            "end": event_time(start + timedelta(hours=1), "Europe/Paris"),
            **extra,
        }
    )


def test_calendar_list_names_the_primary_and_the_data_owner_of_others(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    fake_google.add_calendar("team@group.calendar.google.com", owner=ALICE, summary="Team")
    fake_google.add_calendar("family@group.calendar.google.com", owner="al@gmail.com")
    fake_google.share_calendar("family@group.calendar.google.com", ALICE, "writer")
    status, page = get(fake_google, "/calendar/v3/users/me/calendarList", maxResults=2)
    assert status == 200 and "nextSyncToken" not in page
    status, rest = get(
        fake_google, "/calendar/v3/users/me/calendarList", pageToken=page["nextPageToken"]
    )
    entries = {e["id"]: e for e in page["items"] + rest["items"]}
    assert entries[ALICE]["primary"] is True and "dataOwner" not in entries[ALICE]
    assert entries["team@group.calendar.google.com"]["dataOwner"] == ALICE
    assert entries["family@group.calendar.google.com"]["accessRole"] == "writer"
    assert "nextSyncToken" in rest


def test_a_sync_token_forbids_time_bounds_and_expires_with_410(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    add(alice)
    _status, first = events(fake_google, timeMin="2026-01-01T00:00:00Z")
    token = first["nextSyncToken"]

    status, error = events(fake_google, syncToken=token, timeMin="2026-01-01T00:00:00Z")
    assert status == 400 and error["error"]["errors"][0]["reason"] == "invalid"
    status, error = events(fake_google, syncToken=token, showDeleted="false")
    assert status == 400

    alice.expire_sync_tokens()
    status, gone = events(fake_google, syncToken=token)
    assert status == 410
    assert gone["error"]["errors"][0] == {
        "message": "Sync token is no longer valid, a full sync is required.",
        "domain": "calendar",
        "reason": "fullSyncRequired",
    }
    status, fresh = events(fake_google)
    assert status == 200 and events(fake_google, syncToken=fresh["nextSyncToken"])[0] == 200


def test_changes_come_once_across_pages_and_deletions_only_with_their_ids(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    ids = [add(alice, START + timedelta(days=n)) for n in range(5)]
    master = add(alice, recurrence=["RRULE:FREQ=DAILY;COUNT=3"])
    token = events(fake_google)[1]["nextSyncToken"]
    alice.delete(ids[0])
    alice.cancel_instance(master, START + timedelta(days=1))
    alice.update(ids[1], summary="renamed")

    seen: list[dict[str, Any]] = []
    page_token = None
    while True:
        _status, page = events(fake_google, syncToken=token, pageToken=page_token, maxResults=2)
        seen += page["items"]
        page_token = page.get("nextPageToken")
        if page_token is None:
            assert "nextSyncToken" in page
            break
        assert "nextSyncToken" not in page
    assert [e["id"] for e in seen] == [ids[0], f"{master}_20260306T150000Z", ids[1]]
    assert set(seen[0]) == {"kind", "id", "status", "etag"}
    assert seen[1]["recurringEventId"] == master and seen[1]["status"] == "cancelled"
    assert seen[1]["originalStartTime"] == {
        "dateTime": "2026-03-06T16:00:00+01:00",
        "timeZone": "Europe/Paris",
    }
    assert seen[2]["summary"] == "renamed"


def test_a_full_listing_leaves_out_deletions_unless_asked_and_ends_before_time_min(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    old = add(alice, START - timedelta(days=60))
    deleted = add(alice)
    kept = add(alice, START + timedelta(days=1))
    alice.delete(deleted)
    listed = {e["id"] for e in events(fake_google, timeMin="2026-02-01T00:00:00Z")[1]["items"]}
    with_deleted = {e["id"] for e in events(fake_google, showDeleted="true")[1]["items"]}
    assert listed == {kept}
    assert with_deleted == {old, deleted, kept}


@pytest.mark.parametrize(
    ("path_calendar", "scope", "params", "status"),
    [
        ("primary", GMAIL_METADATA, {}, 403),
        ("primary", EVENTS_READONLY, {}, 200),
        ("someone@example.com", CALENDAR_READONLY, {}, 404),
        ("primary", CALENDAR_READONLY, {"singleEvents": "true"}, 400),
        ("primary", CALENDAR_READONLY, {"maxResults": "2501"}, 400),
        ("primary", CALENDAR_READONLY, {"syncToken": "bm9wZQ"}, 400),
    ],
    ids=["gmail-scope", "events-scope", "not-shared", "single-events", "page-too-big", "bad-token"],
)
def test_refusals(
    fake_google: FakeGoogle,
    alice: FakeCalendar,
    path_calendar: str,
    scope: str,
    params: dict[str, str],
    status: int,
) -> None:
    path = f"/calendar/v3/calendars/{quote(path_calendar, safe='')}/events"
    assert get(fake_google, path, scope, **params)[0] == status


def test_faults_are_injected_per_api_method(fake_google: FakeGoogle, alice: FakeCalendar) -> None:
    fake_google.faults = FaultPlan(methods=frozenset({"events.list"}))
    fake_google.faults.forced.extend([503, 0])
    assert get(fake_google, "/calendar/v3/users/me/calendarList")[0] == 200
    assert [events(fake_google)[0], events(fake_google)[0]] == [503, 200]
    assert fake_google.units == {"calendarList.list": 1, "events.list": 2}
