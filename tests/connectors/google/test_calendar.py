"""The Google Calendar connector against the fake Google server: the real client over real HTTP."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from agent.runtime.registry import build_connector
from config import parse_settings
from connectors.errors import AuthError, ConnectorError, CursorInvalid
from connectors.google.auth import CALENDAR_READONLY_SCOPE, GMAIL_READONLY_SCOPE
from connectors.google.calendar import ALL_OWNED, GoogleCalendarConnector, select_calendars
from connectors.google.calendar_cursor import SeriesState, merge, parse_cursor, pending_span
from connectors.records import Address, CalendarEvent, Cursor, Unreadable
from connectors.retry import RetryPolicy
from tests.support.fake_google.calendar import FakeCalendar, attendee, event_time
from tests.support.fake_google.oauth import write_service_account_key
from tests.support.fake_google.server import FakeGoogle, FaultPlan
from tests.support.google_connectors import (
    ALICE,
    NOW,
    SINCE,
    ZONE,
    CalendarRun,
    calendar_connector,
    meeting,
    sync_calendar,
    weekly,
)

TEAM = "team@group.calendar.google.com"
GENEROUS = RetryPolicy(max_retries=10_000, max_seconds=1e9)


def utc(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def alice(fake_google: FakeGoogle) -> FakeCalendar:
    return fake_google.add_calendar_user(ALICE, time_zone=ZONE)


# --------------------------------------------------------------------------- first sync


def test_first_sync_yields_single_events_and_every_occurrence_of_a_series(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    guests = [
        attendee("ann@acme.example", "accepted", name="Ann Lee"),
        attendee("bob@acme.example", "tentative"),
        attendee("cy@acme.example", "declined", optional=True),
        attendee("dee@acme.example"),
        attendee("boardroom@resource.calendar.google.com", "accepted", resource=True),
    ]
    intro = meeting(alice, utc(3, 4, 15), summary="Intro", guests=guests, location="Room 1")
    series = weekly(alice, utc(3, 3, 15))
    alice.cancel_instance(series, utc(3, 10, 14))
    alice.move_instance(series, utc(3, 17, 14), utc(3, 18, 16), utc(3, 18, 17))
    meeting(alice, utc(1, 5, 15), summary="before since", minutes=60 * 24 * 3 - 60 * 16)
    meeting(alice, datetime(2025, 12, 1, tzinfo=UTC), summary="long before since")

    run = sync_calendar(calendar_connector(fake_google, page_size=2))

    assert all(isinstance(item, CalendarEvent) for item in run.items)
    assert Counter(e.summary for e in run.events) == Counter(
        {"Intro": 1, "Acme weekly": 6, "before since": 1}
    )
    [first] = [e for e in run.events if e.summary == "Intro"]
    assert first.source_id == f"{ALICE}/{intro}@google.com/2026-03-04T15:00:00+00:00"
    assert (first.calendar, first.owner, first.location) == (ALICE, ALICE, "Room 1")
    assert first.organizer == Address(ALICE)
    statuses = {a.address.email: (a.response_status, a.is_resource) for a in first.attendees}
    assert statuses == {
        ALICE: ("accepted", False),
        "ann@acme.example": ("accepted", False),
        "bob@acme.example": ("tentative", False),
        "cy@acme.example": ("declined", False),
        "dee@acme.example": ("needs_action", False),
        "boardroom@resource.calendar.google.com": ("accepted", True),
    }
    occurrences = sorted(
        (e.original_start, e.start, e.status) for e in run.events if e.uid == f"{series}@google.com"
    )
    assert occurrences == [
        (utc(3, 3, 15), utc(3, 3, 15), "confirmed"),
        (utc(3, 10, 14), utc(3, 10, 14), "cancelled"),
        (utc(3, 17, 14), utc(3, 18, 16), "confirmed"),
        (utc(3, 24, 14), utc(3, 24, 14), "confirmed"),
        (utc(3, 31, 14), utc(3, 31, 14), "confirmed"),
        (utc(4, 7, 14), utc(4, 7, 14), "confirmed"),
    ]
    listed = fake_google.api_calls("events.list")
    assert {(c.param("singleEvents"), c.param("showDeleted")) for c in listed} == {
        ("false", "true")
    }
    assert {c.param("timeMin") for c in listed} == {SINCE.isoformat()}
    assert all(c.param("syncToken") is None for c in listed)


def test_an_instance_invited_to_alone_is_its_own_occurrence(fake_google: FakeGoogle) -> None:
    """Invited to one instance of someone else's series, a calendar holds the
    exception without its master."""
    bob = fake_google.add_calendar_user("bob@example.com", time_zone=ZONE)
    bob.insert(
        {
            "id": "abc_20260310T140000Z",
            "iCalUID": "abc@google.com",
            "recurringEventId": "abc",
            "originalStartTime": event_time(utc(3, 10, 14), ZONE),
            "start": event_time(utc(3, 11, 14), ZONE),
            "end": event_time(utc(3, 11, 15), ZONE),
            "summary": "Acme weekly (guest)",
            "organizer": {"email": "ann@acme.example"},
            "attendees": [attendee("bob@example.com", "accepted")],
        }
    )
    [event] = sync_calendar(calendar_connector(fake_google, account="bob@example.com")).events
    assert (event.uid, event.original_start, event.start, event.end) == (
        "abc@google.com",
        utc(3, 10, 14),
        utc(3, 11, 14),
        utc(3, 11, 15),
    )


def test_a_master_listed_pages_after_its_exceptions_still_gets_them(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    series = weekly(alice, utc(2, 10, 15), count=4)
    alice.cancel_instance(series, utc(2, 17, 15))
    alice.move_instance(series, utc(2, 24, 15), utc(2, 25, 15), utc(2, 25, 16))
    alice.update(series, summary="Acme weekly, listed last")

    run = sync_calendar(calendar_connector(fake_google, page_size=1))

    assert sorted((e.original_start, e.start, e.status) for e in run.events) == [
        (utc(2, 10, 15), utc(2, 10, 15), "confirmed"),
        (utc(2, 17, 15), utc(2, 17, 15), "cancelled"),
        (utc(2, 24, 15), utc(2, 25, 15), "confirmed"),
        (utc(3, 3, 15), utc(3, 3, 15), "confirmed"),
    ]


def test_time_blocks_that_are_not_meetings_are_left_out(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    for kind in ("outOfOffice", "focusTime", "workingLocation"):
        meeting(alice, utc(3, 5, 9), summary=kind, eventType=kind)
    meeting(alice, utc(3, 5, 15), summary="Acme call", eventType="default")
    assert [e.summary for e in sync_calendar(calendar_connector(fake_google)).events] == [
        "Acme call"
    ]


# --------------------------------------------------------------------------- calendars


ENTRIES: list[dict[str, Any]] = [
    {"id": ALICE, "primary": True, "accessRole": "owner"},
    {"id": TEAM, "accessRole": "owner", "dataOwner": ALICE},
    {
        "id": "old@group.calendar.google.com",
        "accessRole": "owner",
        "dataOwner": ALICE,
        "deleted": True,
    },
    {"id": "family@group.calendar.google.com", "accessRole": "owner", "dataOwner": "al@gmail.com"},
    {"id": "bob@example.com", "accessRole": "reader"},
    {"id": "sales@group.calendar.google.com", "accessRole": "writer", "dataOwner": ALICE},
]


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (["primary"], [ALICE]),
        (["primary", TEAM, ALICE], [ALICE, TEAM]),
        (["family@group.calendar.google.com"], ["family@group.calendar.google.com"]),
        (["not-listed@example.com"], ["not-listed@example.com"]),
        (ALL_OWNED, [ALICE, TEAM]),
    ],
    ids=["primary", "named-deduplicated", "shared-in-named", "not-listed", "all-owned"],
)
def test_calendars_to_sync(wanted: list[str] | str, expected: list[str]) -> None:
    assert select_calendars(ENTRIES, wanted, "Alice@Example.com") == expected


@pytest.mark.parametrize(
    ("stored", "listed", "expected"),
    [
        (None, {"id": "e", "status": "cancelled"}, {"id": "e", "status": "cancelled"}),
        (
            {"id": "e", "summary": "Acme", "location": "Room 1"},
            {"id": "e", "status": "cancelled"},
            {"id": "e", "summary": "Acme", "location": "Room 1", "status": "cancelled"},
        ),
        (
            {"id": "e", "summary": "Acme", "location": "Room 1"},
            {"id": "e", "summary": "Acme", "status": "confirmed", "colorId": "3"},
            {"id": "e", "summary": "Acme", "status": "confirmed"},
        ),
        (
            None,
            {"id": "e", "attendees": [{"email": "a@x", "self": True, "comment": "ok"}]},
            {"id": "e", "attendees": [{"email": "a@x"}]},
        ),
    ],
    ids=["unknown-deletion", "deletion-keeps-details", "update-replaces", "trimmed"],
)
def test_what_the_cursor_keeps_of_a_listed_event(
    stored: dict[str, Any] | None, listed: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert merge(stored, listed) == expected


@pytest.mark.parametrize(
    ("expanded_to", "span"),
    [
        (None, (SINCE, utc(6, 1))),
        (utc(5, 1), (utc(5, 1), utc(6, 1))),
        (utc(6, 1), None),
        (utc(7, 1), None),
        (datetime(2025, 6, 1, tzinfo=UTC), (SINCE, utc(6, 1))),
    ],
    ids=["changed", "window-moved-on", "up-to-date", "window-shrank", "since-moved-on"],
)
def test_what_a_series_still_needs_expanding_over(
    expanded_to: datetime | None, span: tuple[datetime, datetime] | None
) -> None:
    series = SeriesState(expanded_to=expanded_to.isoformat() if expanded_to else None)
    assert pending_span(series, (SINCE, utc(6, 1))) == span


def test_all_owned_leaves_out_calendars_shared_in_unless_named(fake_google: FakeGoogle) -> None:
    primary = fake_google.add_calendar_user(ALICE, time_zone=ZONE)
    team = fake_google.add_calendar(TEAM, owner=ALICE)
    family = fake_google.add_calendar("family@group.calendar.google.com", owner="al@gmail.com")
    fake_google.share_calendar(family.id, ALICE, "owner")
    for calendar in (primary, team, family):
        meeting(calendar, utc(3, 5, 15), summary=calendar.id)

    owned = sync_calendar(calendar_connector(fake_google, calendars=ALL_OWNED))
    named = sync_calendar(calendar_connector(fake_google, calendars=["primary", family.id]))

    assert sorted(e.calendar for e in owned.events) == sorted([ALICE, TEAM])
    assert sorted(e.calendar for e in named.events) == sorted([ALICE, family.id])


def test_a_named_calendar_that_cannot_be_read_fails_after_the_others(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    meeting(alice, utc(3, 5, 15))
    connector = calendar_connector(
        fake_google, calendars=["nobody@group.calendar.google.com", "primary"]
    )
    run = CalendarRun()
    with pytest.raises(ConnectorError, match=re.escape("nobody@group.calendar.google.com")):
        for batch in connector.fetch(None):
            run.items.extend(batch.items)
    assert [e.calendar for e in run.events] == [ALICE]


# --------------------------------------------------------------------------- incremental


def test_incremental_sync_after_an_added_a_moved_a_cancelled_instance_and_an_rsvp(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    series = weekly(alice, utc(3, 3, 15))
    connector = calendar_connector(fake_google)
    first = sync_calendar(connector)

    added = meeting(alice, utc(3, 6, 16), summary="Added")
    alice.move_instance(series, utc(3, 17, 14), utc(3, 17, 18), utc(3, 17, 19))
    alice.cancel_instance(series, utc(3, 24, 14))
    alice.respond(series, "ann@acme.example", "accepted")
    fake_google.reset_counters()
    stored = json.dumps(first.cursor)
    second = sync_calendar(connector, first.cursor)

    assert json.dumps(first.cursor) == stored, "fetch leaves the cursor it was given alone"
    assert all(c.param("syncToken") for c in fake_google.api_calls("events.list"))
    [new] = [e for e in second.events if e.summary == "Added"]
    assert new.uid == f"{added}@google.com"
    [moved] = second.at(utc(3, 17, 14))
    assert (moved.start, moved.end, moved.status) == (utc(3, 17, 18), utc(3, 17, 19), "confirmed")
    [cancelled] = second.at(utc(3, 24, 14))
    assert cancelled.status == "cancelled"
    answers = {
        e.original_start: _answer(e, "ann@acme.example") for e in second.events if e.uid != new.uid
    }
    assert set(answers.values()) == {"accepted"}
    assert sorted(answers) == [utc(3, 3, 15), utc(3, 10, 14)] + [
        utc(3, 17, 14) + timedelta(weeks=n) for n in range(4)
    ]

    alice.respond(series, "ann@acme.example", "accepted")
    third = sync_calendar(connector, second.cursor)
    assert third.events == [], "a change that changes no occurrence yields nothing"


def _answer(event: CalendarEvent, email: str) -> str:
    return next(a.response_status for a in event.attendees if a.address.email == email)


def test_a_changed_master_is_expanded_again_with_the_exceptions_kept_in_the_cursor(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    series = weekly(alice, utc(3, 3, 15))
    alice.move_instance(series, utc(3, 17, 14), utc(3, 18, 16), utc(3, 18, 17))
    alice.cancel_instance(series, utc(3, 24, 14))
    connector = calendar_connector(fake_google)
    first = sync_calendar(connector)

    alice.update(series, summary="Acme weekly, renamed")
    second = sync_calendar(connector, first.cursor)

    assert fake_google.api_calls("events.list")[-1].param("syncToken"), "no refetch of the series"
    by_start = {e.original_start: (e.start, e.status, e.summary) for e in second.events}
    renamed = "Acme weekly, renamed"
    assert by_start == {
        utc(3, 3, 15): (utc(3, 3, 15), "confirmed", renamed),
        utc(3, 10, 14): (utc(3, 10, 14), "confirmed", renamed),
        utc(3, 24, 14): (utc(3, 24, 14), "cancelled", renamed),
        utc(3, 31, 14): (utc(3, 31, 14), "confirmed", renamed),
        utc(4, 7, 14): (utc(4, 7, 14), "confirmed", renamed),
    }, "the moved instance keeps its own time and title, so it is not yielded again"


def test_a_series_cut_short_cancels_the_occurrences_it_no_longer_has(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    series = weekly(alice, utc(3, 3, 15), count=None)
    connector = calendar_connector(fake_google)
    first = sync_calendar(connector)
    assert len(first.events) == 13, "weekly from 3 March to the horizon, 31 May"

    alice.update(series, recurrence=["RRULE:FREQ=WEEKLY;UNTIL=20260320T000000Z"])
    second = sync_calendar(connector, first.cursor)

    assert {e.status for e in second.events} == {"cancelled"}
    assert sorted(e.original_start for e in second.events) == [
        utc(3, 24, 14) + timedelta(weeks=n) for n in range(10)
    ]
    assert all(e.summary == "Acme weekly" and e.attendees for e in second.events)


@pytest.mark.parametrize(
    ("start", "cancelled"),
    [(utc(3, 5, 15), True), (utc(3, 2, 9), False)],
    ids=["ahead-is-cancelled", "already-held-stays"],
)
def test_a_deleted_event_is_cancelled_only_if_it_has_not_started(
    fake_google: FakeGoogle, alice: FakeCalendar, start: datetime, cancelled: bool
) -> None:
    guest = [attendee("ann@acme.example", "accepted")]
    event_id = meeting(alice, start, guests=guest, minutes=60 * 24)
    connector = calendar_connector(fake_google)
    first = sync_calendar(connector)
    alice.delete(event_id)

    second = sync_calendar(connector, first.cursor)

    if not cancelled:
        assert second.events == []
        return
    [event] = second.events
    assert (event.status, event.original_start, event.summary) == ("cancelled", start, "Acme call")
    assert [a.address.email for a in event.attendees] == [ALICE, "ann@acme.example"]


def test_a_deleted_series_cancels_its_occurrences_still_ahead(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    series = weekly(alice, utc(2, 17, 15))
    connector = calendar_connector(fake_google)
    first = sync_calendar(connector)
    alice.delete(series)

    second = sync_calendar(connector, first.cursor)

    assert {e.status for e in second.events} == {"cancelled"}
    assert sorted(e.original_start for e in second.events) == [
        utc(3, 3, 15),
        utc(3, 10, 14),
        utc(3, 17, 14),
        utc(3, 24, 14),
    ]
    assert parse_cursor(second.cursor)[ALICE].series == {}


def test_the_window_moving_on_brings_new_occurrences_without_a_change(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    weekly(alice, utc(3, 3, 15), count=None)
    first = sync_calendar(calendar_connector(fake_google, horizon_days=30))
    assert max(e.original_start for e in first.events) == utc(3, 31, 14)

    fake_google.reset_counters()
    later = calendar_connector(fake_google, horizon_days=30, now=NOW + timedelta(days=14))
    second = sync_calendar(later, first.cursor)

    assert sorted(e.original_start for e in second.events) == [utc(4, 7, 14), utc(4, 14, 14)]
    assert len(fake_google.api_calls("events.list")) == 1


def test_an_incremental_sync_without_change_makes_one_events_list_call_per_calendar(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    team = fake_google.add_calendar(TEAM, owner=ALICE)
    family = fake_google.add_calendar("family@group.calendar.google.com", owner="al@gmail.com")
    fake_google.share_calendar(family.id, ALICE)
    for calendar in (alice, team, family):
        meeting(calendar, utc(3, 5, 15))
        weekly(calendar, utc(3, 3, 15), count=None)
    connector = calendar_connector(fake_google, calendars=["primary", TEAM, family.id], page_size=3)
    cursor = sync_calendar(connector).cursor
    fake_google.reset_counters()

    batches = list(connector.fetch(cursor))

    assert batches == []
    listed = fake_google.api_calls("events.list")
    assert sorted(unquote(c.path) for c in listed) == sorted(
        f"/calendar/v3/calendars/{cid}/events" for cid in (ALICE, TEAM, family.id)
    )
    assert all(c.param("syncToken") for c in listed)
    assert connector.units_spent() == {"calendarList.list": 1, "events.list": 3}


# --------------------------------------------------------------------------- 410


def test_an_expired_sync_token_lists_that_calendar_alone_in_full_again(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    team = fake_google.add_calendar(TEAM, owner=ALICE)
    kept = meeting(alice, utc(3, 5, 15))
    purged = meeting(alice, utc(3, 6, 15), summary="deleted while expired")
    weekly(alice, utc(3, 3, 15))
    meeting(team, utc(3, 5, 17), summary="team")
    connector = calendar_connector(fake_google, calendars=["primary", TEAM])
    first = sync_calendar(connector)

    alice.expire_sync_tokens()
    del alice.events[purged]
    team_added = meeting(team, utc(3, 9, 17), summary="team, added")
    fake_google.reset_counters()
    second = sync_calendar(connector, first.cursor)

    calls = [
        (unquote(c.path.split("/")[4]), c.param("syncToken") is not None, c.status)
        for c in fake_google.api_calls("events.list")
    ]
    assert calls == [(ALICE, True, 410), (ALICE, False, 200), (TEAM, True, 200)]
    summaries = Counter((e.summary, e.status) for e in second.events)
    assert summaries == Counter(
        {
            ("Acme call", "confirmed"): 1,
            ("deleted while expired", "cancelled"): 1,
            ("team, added", "confirmed"): 1,
        }
    ), "single events again, the purged one cancelled, no series occurrence: none changed"
    assert {e.uid for e in second.events} >= {f"{kept}@google.com", f"{team_added}@google.com"}
    third = sync_calendar(connector, second.cursor)
    assert third.events == []


@pytest.mark.parametrize("token", ["page_token", "sync_token"])
def test_a_refused_token_lists_again_from_the_first_page(
    fake_google: FakeGoogle, alice: FakeCalendar, token: str
) -> None:
    for day in range(3, 9):
        meeting(alice, utc(3, day, 15), summary=f"day {day}")
    connector = calendar_connector(fake_google, page_size=2)
    batches = list(connector.fetch(None))
    cursor = (batches[0] if token == "page_token" else batches[-1]).cursor
    cursor["calendars"][ALICE][token] = "bm90LWEtdG9rZW4"

    rest = sync_calendar(connector, cursor)

    assert {e.summary for e in rest.events} == {f"day {day}" for day in range(3, 9)}
    assert [c.status for c in fake_google.api_calls("events.list")].count(400) == 1


# --------------------------------------------------------------------------- errors, quota


def test_rate_limits_and_server_errors_are_retried_and_every_call_is_counted(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    for day in range(3, 13):
        meeting(alice, utc(3, day, 15), summary=f"day {day}")
    weekly(alice, utc(3, 3, 15))
    fake_google.faults = FaultPlan(rate=0.4, statuses=(429, 500, 503, 403), seed=2)
    connector = calendar_connector(fake_google, page_size=2, retry_policy=GENEROUS)

    run = sync_calendar(connector)

    assert len(run.events) == 16
    assert fake_google.faults.injected > 0 and connector.retries == fake_google.faults.injected
    assert connector.units_spent() == {
        "calendarList.list": fake_google.calls["calendarList.list"],
        "events.list": fake_google.calls["events.list"],
    }


@pytest.mark.parametrize(
    "break_it",
    ["revoke", "wrong-scope"],
    ids=["revoked-grant", "gmail-scope-only"],
)
def test_a_grant_that_does_not_work_is_an_auth_error(
    fake_google: FakeGoogle, alice: FakeCalendar, break_it: str
) -> None:
    scopes = (GMAIL_READONLY_SCOPE,) if break_it == "wrong-scope" else (CALENDAR_READONLY_SCOPE,)
    connector = calendar_connector(fake_google, scopes=scopes)
    if break_it == "revoke":
        for token in fake_google.refresh_tokens_of(ALICE):
            fake_google.revoke(token)
    with pytest.raises(AuthError) as caught:
        list(connector.fetch(None))
    assert "connectors auth alice-calendar" in caught.value.hint


def test_an_unreadable_event_is_quarantined_and_the_rest_go_on(
    fake_google: FakeGoogle, alice: FakeCalendar
) -> None:
    meeting(alice, utc(3, 5, 15))
    broken = alice.insert(
        {"summary": "broken", "start": {"dateTime": "next tuesday"}, "end": {"date": "?"}}
    )
    bad_series = alice.insert(
        {
            "summary": "bad series",
            "recurrence": ["RRULE:FREQ=WEEKLY"],
            "end": {"date": "2026-03-03"},
        }
    )

    run = sync_calendar(calendar_connector(fake_google))

    unreadable = {i.source_id for i in run.items if isinstance(i, Unreadable)}
    assert unreadable == {f"{ALICE}/{broken}", f"{ALICE}/{bad_series}"}
    assert [e.summary for e in run.events] == ["Acme call"]


@pytest.mark.parametrize(
    "cursor",
    [
        {"v": 2, "calendars": {}},
        {"v": 1},
        {"v": 1, "calendars": {ALICE: []}},
        {"v": 1, "calendars": {ALICE: {"sync_token": 5, "generation": 1}}},
        {
            "v": 1,
            "calendars": {
                ALICE: {
                    "generation": 1,
                    "singles": {},
                    "series": {
                        "m": {
                            "master": None,
                            "exceptions": {},
                            "seen": {"yesterday": "x"},
                            "generation": 1,
                        }
                    },
                }
            },
        },
    ],
    ids=["version", "no-calendars", "state-not-object", "token-not-text", "seen-not-iso"],
)
def test_a_cursor_this_version_did_not_write_is_cursor_invalid(cursor: Cursor) -> None:
    with pytest.raises(CursorInvalid):
        parse_cursor(cursor)


# --------------------------------------------------------------------------- config


def test_the_registry_builds_it_from_the_config_with_a_service_account(
    fake_google: FakeGoogle, alice: FakeCalendar, tmp_path: Path
) -> None:
    key = write_service_account_key(tmp_path / "sa.json", token_uri=fake_google.token_uri)
    fake_google.add_service_account(key.client_email, key.public_key, [CALENDAR_READONLY_SCOPE])
    meeting(alice, utc(3, 5, 15))
    settings = parse_settings(
        {
            "connectors": [
                {
                    "name": "alice-calendar",
                    "kind": "google_calendar",
                    "account": ALICE,
                    "auth": "service_account",
                    "key_file": "sa.json",
                    "calendars": "all-owned",
                    "horizon": "30d",
                    "since": "2026-02-01",
                    "api_endpoint": fake_google.url,
                }
            ]
        },
        None,
    )
    connector = build_connector(settings.connectors[0], settings, tmp_path)

    assert isinstance(connector, GoogleCalendarConnector)
    assert (connector.calendars, connector.horizon_days) == (ALL_OWNED, 30)
    assert connector.since == datetime(2026, 2, 1, tzinfo=UTC)
    assert [e.summary for e in sync_calendar(connector).events] == ["Acme call"]
    [grant] = [c for c in fake_google.log if c.api_method == "oauth2.token"]
    assert grant.status == 200


@pytest.mark.parametrize(
    "auth",
    [{"auth": "service_account"}, {"auth": "oauth"}],
    ids=["service-account-without-key-file", "oauth-without-grant"],
)
def test_the_registry_says_what_credentials_are_missing(
    tmp_path: Path, auth: dict[str, str]
) -> None:
    config = {"name": "c", "kind": "google_calendar", "account": ALICE, **auth}
    settings = parse_settings({"connectors": [config]}, None)
    with pytest.raises(AuthError) as caught:
        build_connector(settings.connectors[0], settings, tmp_path)
    assert caught.value.hint
