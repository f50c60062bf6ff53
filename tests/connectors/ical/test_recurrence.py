"""Recurrence expansion: which occurrences a series has, when, and with what identity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.ical.parts import parse_calendar, to_calendar_event
from connectors.ical.recurrence import (
    EARLIEST,
    expand,
    expand_google,
    expansion_window,
    google_calendar,
)
from connectors.records import CalendarEvent
from tests.support.paths import FIXTURES

WIDE = (EARLIEST, datetime(2040, 1, 1, tzinfo=UTC))

BERLIN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
END:VTIMEZONE
"""


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ics(*events: str, preamble: str = "") -> bytes:
    body = "".join(f"BEGIN:VEVENT\n{event.strip()}\nEND:VEVENT\n" for event in events)
    text = f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{preamble}{body}END:VCALENDAR\n"
    return text.replace("\n", "\r\n").encode()


def occurrences(
    data: bytes, window: tuple[datetime, datetime] = WIDE, **kwargs: Any
) -> list[CalendarEvent]:
    calendar = parse_calendar(data)
    return _events(expand(calendar, *window, **kwargs))


def _events(components: Iterable[Any]) -> list[CalendarEvent]:
    events = [
        to_calendar_event(component, calendar="cal", owner="me@example.com", source_prefix="cal")
        for component in components
    ]
    return sorted(events, key=lambda event: (event.original_start, event.uid))


def rows(events: Sequence[CalendarEvent]) -> list[tuple[datetime, datetime, str]]:
    return [(event.original_start, event.start, event.status) for event in events]


def weekly_meeting(tzid: str, first: str, moved: tuple[str, str], cancelled: str) -> list[str]:
    """A weekly meeting (six instances) with one instance moved and one cancelled."""
    zone = f'TZID="{tzid}"' if " " in tzid else f"TZID={tzid}"
    return [
        f"""UID:weekly@example.com
SUMMARY:Pipeline review
DTSTART;{zone}:{first}T100000
DTEND;{zone}:{first}T110000
RRULE:FREQ=WEEKLY;COUNT=6
SEQUENCE:1""",
        f"""UID:weekly@example.com
SUMMARY:Pipeline review (moved)
RECURRENCE-ID;{zone}:{moved[0]}T100000
DTSTART;{zone}:{moved[1]}
DTEND;{zone}:{moved[1][:9]}{int(moved[1][9:11]) + 1:02d}0000
SEQUENCE:2""",
        f"""UID:weekly@example.com
SUMMARY:Pipeline review
RECURRENCE-ID;{zone}:{cancelled}T100000
DTSTART;{zone}:{cancelled}T100000
DTEND;{zone}:{cancelled}T110000
STATUS:CANCELLED
SEQUENCE:2""",
    ]


BERLIN_EXPECTED = [
    (utc(2024, 3, 6, 9), utc(2024, 3, 6, 9), "confirmed"),
    (utc(2024, 3, 13, 9), utc(2024, 3, 13, 9), "confirmed"),
    (utc(2024, 3, 20, 9), utc(2024, 3, 20, 9), "confirmed"),
    (utc(2024, 3, 27, 9), utc(2024, 4, 2, 13), "confirmed"),
    (utc(2024, 4, 3, 8), utc(2024, 4, 3, 8), "confirmed"),
    (utc(2024, 4, 10, 8), utc(2024, 4, 10, 8), "cancelled"),
]
BERLIN = weekly_meeting("Europe/Berlin", "20240306", ("20240327", "20240402T150000"), "20240410")
NEW_YORK_EXPECTED = [
    (utc(2024, 2, 28, 15), utc(2024, 2, 28, 15), "confirmed"),
    (utc(2024, 3, 6, 15), utc(2024, 3, 14, 13), "confirmed"),
    (utc(2024, 3, 13, 14), utc(2024, 3, 13, 14), "confirmed"),
    (utc(2024, 3, 20, 14), utc(2024, 3, 20, 14), "cancelled"),
    (utc(2024, 3, 27, 14), utc(2024, 3, 27, 14), "confirmed"),
    (utc(2024, 4, 3, 14), utc(2024, 4, 3, 14), "confirmed"),
]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (ics(*BERLIN, preamble=BERLIN_VTIMEZONE), BERLIN_EXPECTED),
        (ics(*BERLIN), BERLIN_EXPECTED),
        (
            ics(
                *weekly_meeting(
                    "W. Europe Standard Time",
                    "20240306",
                    ("20240327", "20240402T150000"),
                    "20240410",
                )
            ),
            BERLIN_EXPECTED,
        ),
        (
            ics(
                *weekly_meeting(
                    "America/New_York", "20240228", ("20240306", "20240314T090000"), "20240320"
                )
            ),
            NEW_YORK_EXPECTED,
        ),
    ],
    ids=[
        "berlin-vtimezone",
        "berlin-iana-without-vtimezone",
        "berlin-windows-tzid",
        "new-york-iana-without-vtimezone",
    ],
)
def test_weekly_meeting_with_moved_and_cancelled_instances_across_dst(
    data: bytes, expected: list[tuple[datetime, datetime, str]]
) -> None:
    events = occurrences(data)

    assert rows(events) == expected
    assert {event.uid for event in events} == {"weekly@example.com"}
    assert all(
        event.end is not None and event.end - event.start == timedelta(hours=1) for event in events
    )


def test_each_occurrence_keeps_its_own_sequence() -> None:
    events = occurrences(ics(*BERLIN))

    assert [event.sequence for event in events] == [1, 1, 1, 2, 1, 2]
    assert [event.summary for event in events][3] == "Pipeline review (moved)"


def test_a_moved_instance_is_found_by_its_new_time_and_keeps_its_original_start() -> None:
    window = (utc(2024, 4, 2), utc(2024, 4, 3))

    events = occurrences(ics(*BERLIN), window)

    assert rows(events) == [(utc(2024, 3, 27, 9), utc(2024, 4, 2, 13), "confirmed")]


def test_exdate_leaves_the_instance_out() -> None:
    data = ics(
        """UID:exdate@example.com
DTSTART;TZID=Europe/Berlin:20240306T100000
DTEND;TZID=Europe/Berlin:20240306T110000
RRULE:FREQ=WEEKLY;COUNT=4
EXDATE;TZID=Europe/Berlin:20240313T100000"""
    )

    starts = [event.start for event in occurrences(data)]

    assert starts == [utc(2024, 3, 6, 9), utc(2024, 3, 20, 9), utc(2024, 3, 27, 9)]


def test_rdate_adds_an_instance() -> None:
    data = ics(
        """UID:rdate@example.com
DTSTART;TZID=Europe/Berlin:20240306T100000
DTEND;TZID=Europe/Berlin:20240306T110000
RRULE:FREQ=WEEKLY;COUNT=2
RDATE;TZID=Europe/Berlin:20240408T160000"""
    )

    events = occurrences(data)

    assert [event.start for event in events] == [
        utc(2024, 3, 6, 9),
        utc(2024, 3, 13, 9),
        utc(2024, 4, 8, 14),
    ]
    assert events[-1].original_start == utc(2024, 4, 8, 14)
    assert events[-1].end == utc(2024, 4, 8, 15)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            "UID:day@example.com\nDTSTART;VALUE=DATE:20240315\nDTEND;VALUE=DATE:20240316",
            [(utc(2024, 3, 15), utc(2024, 3, 16))],
        ),
        (
            "UID:offsite@example.com\nDTSTART;VALUE=DATE:20240315\nDTEND;VALUE=DATE:20240318",
            [(utc(2024, 3, 15), utc(2024, 3, 18))],
        ),
        (
            "UID:noend@example.com\nDTSTART;VALUE=DATE:20240315",
            [(utc(2024, 3, 15), utc(2024, 3, 16))],
        ),
        (
            "UID:yearly@example.com\nDTSTART;VALUE=DATE:20230315\nRRULE:FREQ=YEARLY;COUNT=2",
            [(utc(2023, 3, 15), utc(2023, 3, 16)), (utc(2024, 3, 15), utc(2024, 3, 16))],
        ),
    ],
    ids=["one-day", "three-days", "no-dtend", "recurring"],
)
def test_all_day_events_run_from_midnight_utc(
    event: str, expected: list[tuple[datetime, datetime]]
) -> None:
    events = occurrences(ics(event))

    assert [(e.start, e.end) for e in events] == expected
    assert [e.original_start for e in events] == [start for start, _ in expected]


@pytest.mark.parametrize(
    ("path", "count", "first", "last"),
    [
        (
            "recurring-ical-events/calendars/issue_107_omitting_last_event.ics",
            23,
            utc(2023, 1, 5, 18),
            utc(2023, 6, 8, 17),
        ),
        (
            "icalendar/calendars/issue_836_do_not_quote_tzid.ics",
            1,
            utc(2024, 10, 28, 21),
            utc(2024, 10, 28, 21),
        ),
        (
            "icalendar/calendars/timezone_same_start.ics",
            1,
            utc(2017, 2, 24, 20),
            utc(2017, 2, 24, 20),
        ),
        (
            "icalendar/calendars/timezone_same_start_and_offset.ics",
            1,
            utc(2017, 2, 24, 3),
            utc(2017, 2, 24, 3),
        ),
    ],
    ids=["pacific-weekly-until", "eastern", "pacific-quoted", "tokyo"],
)
def test_windows_tzids_from_real_exchange_files(
    path: str, count: int, first: datetime, last: datetime
) -> None:
    events = occurrences((FIXTURES / path).read_bytes())

    assert len(events) == count
    assert (events[0].start, events[-1].start) == (first, last)


def test_cancelled_override_from_thunderbird_comes_out_cancelled() -> None:
    data = (FIXTURES / "recurring-ical-events/calendars/issue_18_cancel_status.ics").read_bytes()

    events = occurrences(data)

    assert [(e.start, e.status, e.sequence) for e in events] == [
        (utc(2020, 1, 28, 21), "confirmed", 1),
        (utc(2020, 1, 29, 21), "cancelled", 2),
        (utc(2020, 1, 30, 21), "confirmed", 1),
    ]


def test_this_and_future_override_keeps_each_occurrence_its_own_identity() -> None:
    data = (FIXTURES / "recurring-ical-events/calendars/issue_75_range_parameter.ics").read_bytes()

    events = occurrences(data, (utc(2024, 9, 12), utc(2024, 9, 24)))

    assert rows(events) == [
        (utc(2024, 9, 13, 12), utc(2024, 9, 13, 9), "confirmed"),
        (utc(2024, 9, 14, 9), utc(2024, 9, 14, 6), "confirmed"),
        (utc(2024, 9, 15, 12), utc(2024, 9, 15, 17), "confirmed"),
        (utc(2024, 9, 17, 12), utc(2024, 9, 17, 9), "confirmed"),
        (utc(2024, 9, 19, 12), utc(2024, 9, 19, 9), "confirmed"),
        (utc(2024, 9, 21, 12), utc(2024, 9, 22, 14, 22), "confirmed"),
    ]


def test_a_series_that_cannot_be_expanded_is_reported_and_the_others_stay() -> None:
    data = ics(
        "UID:broken@example.com\nDTSTART:20240306T100000Z\nRRULE:FREQ=FORTNIGHTLY",
        "UID:fine@example.com\nDTSTART:20240306T100000Z",
    )
    reported: list[str] = []

    events = occurrences(data, on_bad_series=lambda uid, error: reported.append(uid))

    assert [event.uid for event in events] == ["fine@example.com"]
    assert reported == ["broken@example.com"]


def test_events_without_a_start_are_not_meetings() -> None:
    data = ics(
        "UID:todo-like@example.com\nSUMMARY:no start",
        "UID:fine@example.com\nDTSTART:20240306T100000Z",
    )

    assert [event.uid for event in occurrences(data)] == ["fine@example.com"]


def test_an_event_without_uid_gets_the_same_one_every_time() -> None:
    data = ics("SUMMARY:Lunch\nDTSTART:20240306T120000Z\nRRULE:FREQ=DAILY;COUNT=3")

    first, second = occurrences(data), occurrences(data)

    assert len({event.uid for event in first}) == 1
    assert [event.source_id for event in first] == [event.source_id for event in second]
    assert first[0].uid.startswith("no-uid-")


def test_occurrences_outside_the_window_are_left_out() -> None:
    events = occurrences(ics(*BERLIN), (utc(2024, 3, 13, 9, 30), utc(2024, 4, 3, 8)))

    assert [event.original_start for event in events] == [
        utc(2024, 3, 13, 9),
        utc(2024, 3, 20, 9),
        utc(2024, 3, 27, 9),
    ]


@pytest.mark.parametrize(
    ("since", "now", "days", "expected"),
    [
        (None, utc(2024, 3, 1, 12), 90, (EARLIEST, utc(2024, 5, 30))),
        (utc(2024, 1, 1), utc(2024, 3, 1, 0), 90, (utc(2024, 1, 1), utc(2024, 5, 30))),
        (utc(2024, 1, 1), utc(2024, 3, 1, 23, 59), 90, (utc(2024, 1, 1), utc(2024, 5, 30))),
        (datetime(2024, 1, 1), utc(2024, 3, 1), 7, (utc(2024, 1, 1), utc(2024, 3, 8))),
        (utc(2025, 1, 1), utc(2024, 3, 1), 7, (utc(2025, 1, 1), utc(2025, 1, 1))),
    ],
    ids=[
        "no-since",
        "midnight",
        "same-day-same-window",
        "naive-since-is-utc",
        "since-after-horizon",
    ],
)
def test_expansion_window(
    since: datetime | None, now: datetime, days: int, expected: tuple[datetime, datetime]
) -> None:
    assert expansion_window(since, now, days) == expected


GOOGLE_MASTER: dict[str, Any] = {
    "id": "abc123",
    "iCalUID": "weekly@example.com",
    "status": "confirmed",
    "summary": "Pipeline review",
    "description": "Numbers first",
    "location": "Room 4",
    "sequence": 1,
    "updated": "2024-02-20T08:00:00.000Z",
    "organizer": {"email": "Alice@Example.com", "displayName": "Alice"},
    "attendees": [
        {"email": "alice@example.com", "displayName": "Alice", "responseStatus": "accepted"},
        {"email": "bob@customer.com", "displayName": "Bob", "responseStatus": "needsAction"},
        {"email": "carol@customer.com", "responseStatus": "declined", "optional": True},
        {"email": "room4@resource.example.com", "resource": True, "responseStatus": "accepted"},
    ],
    "start": {"dateTime": "2024-03-06T10:00:00+01:00", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2024-03-06T11:00:00+01:00", "timeZone": "Europe/Berlin"},
    "recurrence": [
        "RRULE:FREQ=WEEKLY;UNTIL=20240417T080000Z",
        "EXDATE;TZID=Europe/Berlin:20240313T100000",
    ],
}
GOOGLE_EXCEPTIONS: list[dict[str, Any]] = [
    {
        **{k: v for k, v in GOOGLE_MASTER.items() if k not in ("recurrence",)},
        "id": "abc123_20240327T090000Z",
        "recurringEventId": "abc123",
        "originalStartTime": {"dateTime": "2024-03-27T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "start": {"dateTime": "2024-04-02T15:00:00+02:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2024-04-02T16:00:00+02:00", "timeZone": "Europe/Berlin"},
        "summary": "Pipeline review (moved)",
        "sequence": 2,
        "updated": "2024-02-25T08:00:00.000Z",
    },
    {
        "id": "abc123_20240410T080000Z",
        "recurringEventId": "abc123",
        "originalStartTime": {"dateTime": "2024-04-10T10:00:00+02:00", "timeZone": "Europe/Berlin"},
        "status": "cancelled",
    },
    {
        "id": "other_20240320T090000Z",
        "recurringEventId": "other",
        "originalStartTime": {"dateTime": "2024-03-20T10:00:00+01:00", "timeZone": "Europe/Berlin"},
        "status": "cancelled",
    },
]
PEOPLE = """ORGANIZER;CN=Alice:mailto:alice@example.com
ATTENDEE;CN=Alice;PARTSTAT=ACCEPTED:mailto:alice@example.com
ATTENDEE;CN=Bob;PARTSTAT=NEEDS-ACTION:mailto:bob@customer.com
ATTENDEE;PARTSTAT=DECLINED;ROLE=OPT-PARTICIPANT:mailto:carol@customer.com
ATTENDEE;PARTSTAT=ACCEPTED;CUTYPE=ROOM:mailto:room4@resource.example.com
DESCRIPTION:Numbers first
LOCATION:Room 4"""
EQUIVALENT_ICS = ics(
    f"""UID:weekly@example.com
SUMMARY:Pipeline review
DTSTART;TZID=Europe/Berlin:20240306T100000
DTEND;TZID=Europe/Berlin:20240306T110000
RRULE:FREQ=WEEKLY;UNTIL=20240417T080000Z
EXDATE;TZID=Europe/Berlin:20240313T100000
SEQUENCE:1
LAST-MODIFIED:20240220T080000Z
{PEOPLE}""",
    f"""UID:weekly@example.com
SUMMARY:Pipeline review (moved)
RECURRENCE-ID;TZID=Europe/Berlin:20240327T100000
DTSTART;TZID=Europe/Berlin:20240402T150000
DTEND;TZID=Europe/Berlin:20240402T160000
SEQUENCE:2
LAST-MODIFIED:20240225T080000Z
{PEOPLE}""",
    f"""UID:weekly@example.com
SUMMARY:Pipeline review
RECURRENCE-ID;TZID=Europe/Berlin:20240410T100000
DTSTART;TZID=Europe/Berlin:20240410T100000
DTEND;TZID=Europe/Berlin:20240410T110000
STATUS:CANCELLED
SEQUENCE:1
LAST-MODIFIED:20240220T080000Z
{PEOPLE}""",
)


def test_expand_google_gives_the_same_occurrences_as_the_equivalent_ics() -> None:
    window = (utc(2024, 3, 1), utc(2024, 6, 1))

    from_google = _events(expand_google(GOOGLE_MASTER, GOOGLE_EXCEPTIONS, *window))
    from_ics = occurrences(EQUIVALENT_ICS, window)

    assert from_google == from_ics
    assert rows(from_google) == [
        (utc(2024, 3, 6, 9), utc(2024, 3, 6, 9), "confirmed"),
        (utc(2024, 3, 20, 9), utc(2024, 3, 20, 9), "confirmed"),
        (utc(2024, 3, 27, 9), utc(2024, 4, 2, 13), "confirmed"),
        (utc(2024, 4, 3, 8), utc(2024, 4, 3, 8), "confirmed"),
        (utc(2024, 4, 10, 8), utc(2024, 4, 10, 8), "cancelled"),
        (utc(2024, 4, 17, 8), utc(2024, 4, 17, 8), "confirmed"),
    ]
    room = from_google[0].attendees[-1]
    assert (room.address.email, room.is_resource) == ("room4@resource.example.com", True)


def test_expand_google_all_day_series_uses_the_calendar_zone_fallback() -> None:
    master = {
        "id": "offsite",
        "iCalUID": "offsite@google.com",
        "start": {"date": "2024-03-04"},
        "end": {"date": "2024-03-05"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=2", "X-UNKNOWN:ignored"],
    }

    events = _events(expand_google(master, [], utc(2024, 3, 1), utc(2024, 4, 1)))

    assert [(e.start, e.end) for e in events] == [
        (utc(2024, 3, 4), utc(2024, 3, 5)),
        (utc(2024, 3, 11), utc(2024, 3, 12)),
    ]


def test_google_master_in_the_calendar_zone_follows_its_dst() -> None:
    master = {
        "id": "standup",
        "start": {"dateTime": "2024-03-07T09:00:00-05:00"},
        "end": {"dateTime": "2024-03-07T09:15:00-05:00"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=5"],
    }

    events = _events(expand_google(master, [], *WIDE, time_zone="America/New_York"))

    assert [event.start.hour for event in events] == [14, 14, 14, 13, 13]
    assert {event.uid for event in events} == {"standup"}


def test_google_master_without_start_is_refused() -> None:
    with pytest.raises(ValueError, match="no start"):
        google_calendar({"id": "x"}, [])


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]


@settings(max_examples=40, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    first=st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
    hour=st.integers(min_value=4, max_value=23),
    minute=st.sampled_from([0, 15, 30, 45]),
    count=st.integers(min_value=1, max_value=60),
)
def test_weekly_series_keep_their_wall_clock_time_through_every_dst_change(
    zone: str, first: date, hour: int, minute: int, count: int
) -> None:
    """Hours from 04:00 on: no DST change of these zones skips or repeats them."""
    local = f"{first:%Y%m%d}T{hour:02d}{minute:02d}00"
    data = ics(f"UID:p@example.com\nDTSTART;TZID={zone}:{local}\nRRULE:FREQ=WEEKLY;COUNT={count}")

    events = occurrences(data)

    tz = ZoneInfo(zone)
    assert len(events) == count
    for index, event in enumerate(events):
        wall = event.start.astimezone(tz)
        assert (wall.date(), wall.hour, wall.minute) == (
            first + timedelta(weeks=index),
            hour,
            minute,
        )
        assert event.original_start == event.start
