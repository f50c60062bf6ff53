"""The Outlook calendar connector against the fake Graph server: MSAL and the connector
unchanged, over real HTTPS."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from config.limits import Limits
from connectors.errors import CursorInvalid
from connectors.ical.parts import parse_calendar, to_calendar_event
from connectors.ical.recurrence import expand
from connectors.microsoft.calendar import MicrosoftCalendarConnector, vevent
from connectors.records import Batch, CalendarEvent, Cursor, SourceRemoved
from tests.support.fake_graph import Attendee, Calendar, FakeGraph, Recurrence
from tests.support.fake_graph.calendar import Event
from tests.support.graph_connectors import ALICE, app_client

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
FIRST = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
WEEK = timedelta(weeks=1)
HORIZON_DAYS = 60
BOB = Attendee("bob@fabrikam.example", "Bob Stone", "accepted")
CAROL = Attendee("carol@fabrikam.example", "Carol Ames", "tentativelyAccepted")
DAN = Attendee("dan@northwind.example", "Dan Ray", "declined")
ERIN = Attendee("erin@northwind.example", "Erin Cole", "none", type="optional")
ROOM = Attendee("room-1@contoso.com", "Room 1", "accepted", type="resource")


class Clock:
    """The connector's ``now``, moved by the test."""

    def __init__(self, moment: datetime = NOW) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def calendar(graph: FakeGraph) -> Calendar:
    return graph.add_user(ALICE, "Alice Liddell").calendar


def connector(
    graph: FakeGraph, clock: Clock | None = None, **options: object
) -> MicrosoftCalendarConnector:
    return MicrosoftCalendarConnector(
        "alice-calendar",
        ALICE,
        app_client(graph),
        horizon_days=HORIZON_DAYS,
        now=clock or Clock(),
        **options,  # type: ignore[arg-type]
    )


def run(
    connector: MicrosoftCalendarConnector, cursor: Cursor | None
) -> tuple[list[Batch], Cursor | None]:
    """One fetch; every cursor it commits is versioned JSON."""
    batches = list(connector.fetch(cursor))
    for batch in batches:
        assert batch.cursor["v"] == 1
        assert json.loads(json.dumps(batch.cursor)) == batch.cursor
    return batches, (batches[-1].cursor if batches else cursor)


def events(batches: Iterable[Batch]) -> list[CalendarEvent]:
    return [item for batch in batches for item in batch.items if isinstance(item, CalendarEvent)]


def removed(batches: Iterable[Batch]) -> list[str]:
    return [i.source_id for b in batches for i in b.items if isinstance(i, SourceRemoved)]


def by_original_start(found: Iterable[CalendarEvent]) -> dict[datetime, CalendarEvent]:
    return {e.original_start: e for e in found}


def source_id(uid: str, original_start: datetime) -> str:
    return f"{ALICE}/{uid}/{original_start.astimezone(UTC).isoformat()}"


def weekly(calendar: Calendar, count: int = 4) -> Event:
    return calendar.add_event(
        "Weekly sync",
        FIRST,
        FIRST + timedelta(minutes=30),
        attendees=[BOB, CAROL, DAN, ERIN, ROOM],
        recurrence=Recurrence("weekly", count=count),
        location="Room 1",
    )


def lunch(calendar: Calendar, day: int = 3) -> Event:
    start = datetime(2026, 3, day, 12, 0, tzinfo=UTC)
    return calendar.add_event(
        "Lunch with Bob", start, start + timedelta(hours=1), attendees=[BOB], body="Menu"
    )


def test_first_sync_maps_singles_series_exceptions_and_responses(
    graph: FakeGraph, calendar: Calendar
) -> None:
    series = weekly(calendar)
    single = lunch(calendar)
    moved = FIRST + WEEK
    calendar.modify_occurrence(series.id, moved, start=moved + timedelta(hours=1))
    calendar.cancel_occurrence(series.id, FIRST + 2 * WEEK)
    calendar.cancel_occurrence(series.id, FIRST + 3 * WEEK, keep=True)

    batches, _ = run(connector(graph, page_size=2), None)

    found = events(batches)
    assert Counter(e.source_id for e in found).most_common(1)[0][1] == 1
    meetings = {e.uid for e in found}
    assert meetings == {series.ical_uid, single.ical_uid}
    occurrences = by_original_start(e for e in found if e.uid == series.ical_uid)
    assert set(occurrences) == {FIRST, moved, FIRST + 3 * WEEK}
    for original, occurrence in occurrences.items():
        assert occurrence.source_id == source_id(series.ical_uid, original)
    assert occurrences[moved].start == moved + timedelta(hours=1)
    assert occurrences[moved].end == moved + timedelta(hours=1, minutes=30)
    assert occurrences[FIRST].status == "confirmed"
    assert occurrences[FIRST + 3 * WEEK].status == "cancelled"

    first = occurrences[FIRST]
    assert first.summary == "Weekly sync" and first.location == "Room 1"
    assert first.organizer is not None and first.organizer.email == ALICE
    assert first.calendar == ALICE and first.owner == ALICE
    answers = {a.address.email: a for a in first.attendees}
    assert {email: a.response_status for email, a in answers.items()} == {
        BOB.address: "accepted",
        CAROL.address: "tentative",
        DAN.address: "declined",
        ERIN.address: "needs_action",
        ROOM.address: "accepted",
    }
    assert answers[ROOM.address].is_resource and not answers[BOB.address].is_resource
    assert answers[ERIN.address].optional and not answers[BOB.address].optional
    assert answers[BOB.address].address.name == "Bob Stone"

    (meal,) = [e for e in found if e.uid == single.ical_uid]
    assert meal.original_start == meal.start == single.start
    assert meal.source_id == source_id(single.ical_uid, single.start)
    assert meal.description == "Menu"
    assert len(batches) == 2  # three instances and the meal, two a page


def test_an_occurrence_has_the_dedupe_key_an_ics_export_of_the_meeting_gives(
    graph: FakeGraph, calendar: Calendar
) -> None:
    series = weekly(calendar)
    moved = FIRST + WEEK
    calendar.modify_occurrence(series.id, moved, start=moved + timedelta(hours=2))
    stamp = "%Y%m%dT%H%M%SZ"
    ics = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "BEGIN:VEVENT",
            f"UID:{series.ical_uid}",
            f"DTSTART:{FIRST:{stamp}}",
            f"DTEND:{FIRST + timedelta(minutes=30):{stamp}}",
            "RRULE:FREQ=WEEKLY;COUNT=4",
            "SUMMARY:Weekly sync",
            "END:VEVENT",
            "BEGIN:VEVENT",
            f"UID:{series.ical_uid}",
            f"RECURRENCE-ID:{moved:{stamp}}",
            f"DTSTART:{moved + timedelta(hours=2):{stamp}}",
            f"DTEND:{moved + timedelta(hours=2, minutes=30):{stamp}}",
            "SUMMARY:Weekly sync",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    ).encode()
    exported = [
        to_calendar_event(v, calendar="ics", owner=ALICE, source_prefix="ics")
        for v in expand(parse_calendar(ics), NOW, NOW + timedelta(days=HORIZON_DAYS))
    ]

    batches, _ = run(connector(graph), None)

    def keys(found: Iterable[CalendarEvent]) -> set[tuple[str, datetime, datetime]]:
        return {(e.uid, e.original_start, e.start) for e in found}

    assert keys(events(batches)) == keys(exported)


def test_series_uids_are_asked_for_once(graph: FakeGraph, calendar: Calendar) -> None:
    weekly(calendar, count=6)
    source = connector(graph, page_size=2)
    _, cursor = run(source, None)
    assert len(graph.calls("events.get", in_batch=True)) == 1
    weekly(calendar)
    graph.reset_log()
    batches, _ = run(source, cursor)
    assert len(graph.calls("events.get", in_batch=True)) == 1  # the new series only
    assert len(events(batches)) == 4


def test_incremental_after_a_new_event_a_changed_response_and_a_deleted_event(
    graph: FakeGraph, calendar: Calendar
) -> None:
    series = weekly(calendar)
    single = lunch(calendar)
    source = connector(graph)
    first, cursor = run(source, None)
    before = {e.source_id for e in events(first)}

    added = lunch(calendar, day=10)
    calendar.respond(series.id, BOB.address, "declined")
    calendar.delete_event(single.id)
    batches, cursor = run(source, cursor)

    found = events(batches)
    assert Counter(e.source_id for e in found).most_common(1)[0][1] == 1
    assert {e.uid for e in found} == {series.ical_uid, added.ical_uid}
    again = [e for e in found if e.uid == series.ical_uid]
    assert {e.source_id for e in again} <= before and len(again) == 4
    for occurrence in again:
        answers = {a.address.email: a.response_status for a in occurrence.attendees}
        assert answers[BOB.address] == "declined"
    assert removed(batches) == [source_id(single.ical_uid, single.start)]

    graph.reset_log()
    idle, _ = run(source, cursor)
    assert events(idle) == [] and removed(idle) == []


def test_cancelled_occurrences_keep_the_ids_they_were_yielded_under(
    graph: FakeGraph, calendar: Calendar
) -> None:
    series = weekly(calendar)
    source = connector(graph)
    _, cursor = run(source, None)

    calendar.cancel_occurrence(series.id, FIRST + WEEK)
    calendar.cancel_occurrence(series.id, FIRST + 2 * WEEK, keep=True)
    batches, cursor = run(source, cursor)

    assert removed(batches) == [source_id(series.ical_uid, FIRST + WEEK)]
    (cancelled,) = events(batches)
    assert cancelled.source_id == source_id(series.ical_uid, FIRST + 2 * WEEK)
    assert cancelled.status == "cancelled"

    calendar.cancel_occurrence(series.id, FIRST + 2 * WEEK)  # the attendee removes it
    batches, _ = run(source, cursor)
    assert events(batches) == [] and removed(batches) == []


def test_a_meeting_deleted_after_it_took_place_stays_logged(
    graph: FakeGraph, calendar: Calendar
) -> None:
    single = lunch(calendar, day=3)
    clock = Clock()
    source = connector(graph, clock)
    _, cursor = run(source, None)
    clock.moment = single.end + timedelta(hours=1)
    calendar.delete_event(single.id)
    batches, _ = run(source, cursor)
    assert events(batches) == [] and removed(batches) == []


def test_an_occurrence_moved_out_of_the_window_is_yielded_not_removed(
    graph: FakeGraph, calendar: Calendar
) -> None:
    series = weekly(calendar)
    source = connector(graph)
    _, cursor = run(source, None)
    far = NOW + timedelta(days=HORIZON_DAYS + 30)
    calendar.modify_occurrence(series.id, FIRST + WEEK, start=far)

    batches, _ = run(source, cursor)

    assert removed(batches) == []
    (moved,) = events(batches)
    assert moved.source_id == source_id(series.ical_uid, FIRST + WEEK)
    assert moved.start == far


def test_a_single_event_moved_to_another_start_replaces_its_source(
    graph: FakeGraph, calendar: Calendar
) -> None:
    single = lunch(calendar)
    source = connector(graph)
    _, cursor = run(source, None)
    before = single.start
    later = before + timedelta(days=1)
    calendar.update_event(single.id, start=later, end=later + timedelta(hours=1))

    batches, _ = run(source, cursor)

    assert removed(batches) == [source_id(single.ical_uid, before)]
    assert [e.source_id for e in events(batches)] == [source_id(single.ical_uid, later)]


def test_an_expired_delta_link_starts_a_new_round_with_the_same_ids(
    graph: FakeGraph, calendar: Calendar
) -> None:
    series = weekly(calendar)
    single = lunch(calendar)
    kept = lunch(calendar, day=4)
    source = connector(graph, page_size=3)
    first, cursor = run(source, None)
    ids = Counter(e.source_id for e in events(first))

    graph.expire_delta_tokens(ALICE, resource="events")
    calendar.delete_event(single.id)  # while no round runs: no @removed ever says so
    batches, cursor = run(source, cursor)

    again = Counter(e.source_id for e in events(batches))
    gone = source_id(single.ical_uid, single.start)
    assert again == ids - Counter([gone])
    assert removed(batches) == [gone]
    assert {series.ical_uid, kept.ical_uid} == {e.uid for e in events(batches)}
    assert graph.calls("events.delta", status=410)

    graph.reset_log()
    idle, _ = run(source, cursor)
    assert events(idle) == [] and len(graph.calls()) == 1


def test_an_expired_link_in_the_middle_of_a_first_round_starts_it_over(
    graph: FakeGraph, calendar: Calendar
) -> None:
    for day in range(2, 12):
        lunch(calendar, day=day)
    source = connector(graph, page_size=4)
    first = next(iter(source.fetch(None)))  # the run stops after its first page
    graph.expire_delta_tokens(ALICE, resource="events")

    batches, _ = run(source, first.cursor)

    assert len(events(batches)) == 10
    assert Counter(e.source_id for e in events(batches)).most_common(1)[0][1] == 1
    assert removed(batches) == []


def test_throttling_at_a_fifth_of_calls_still_yields_every_occurrence_once(
    graph: FakeGraph, calendar: Calendar
) -> None:
    expected: set[str] = set()
    for n in range(8):
        series = calendar.add_event(
            f"Series {n}",
            FIRST + timedelta(hours=n),
            FIRST + timedelta(hours=n, minutes=30),
            attendees=[BOB],
            recurrence=Recurrence("weekly", count=5),
        )
        expected |= {
            source_id(series.ical_uid, FIRST + timedelta(hours=n) + k * WEEK) for k in range(5)
        }
    for day in range(2, 22):
        single = lunch(calendar, day=day)
        expected.add(source_id(single.ical_uid, single.start))
    graph.throttle(0.2, retry_after=0, seed=5)
    source = connector(graph, page_size=7)

    batches, cursor = run(source, None)

    assert Counter(e.source_id for e in events(batches)) == Counter(expected)
    assert graph.calls(status=429) or graph.calls(status=503)
    assert source.retries > 0
    assert source.units_spent()["requests"] > len(batches)

    graph.throttle(0.0)
    graph.reset_log()
    idle, _ = run(source, cursor)
    assert events(idle) == []
    assert [c.endpoint for c in graph.calls()] == ["events.delta"]


def test_an_idle_incremental_sync_is_one_request(graph: FakeGraph, calendar: Calendar) -> None:
    weekly(calendar)
    lunch(calendar)
    source = connector(graph)
    _, cursor = run(source, None)
    graph.reset_log()

    batches, after = run(source, cursor)

    assert [c.endpoint for c in graph.calls()] == ["events.delta"]
    assert "deltatoken" in graph.calls()[0].params
    assert [b.items for b in batches] == [[]]
    assert after is not None and after != cursor
    assert source.units_spent() == {"requests": 1}


def test_the_window_moves_on_once_half_the_horizon_has_passed(
    graph: FakeGraph, calendar: Calendar
) -> None:
    series = weekly(calendar, count=12)
    clock = Clock()
    source = connector(graph, clock)
    first, cursor = run(source, None)
    in_window = {e.original_start for e in events(first)}
    assert max(in_window) < NOW + timedelta(days=HORIZON_DAYS)
    assert len(in_window) < 12

    clock.moment = NOW + timedelta(days=HORIZON_DAYS // 2 - 2)
    graph.reset_log()
    still, cursor = run(source, cursor)
    assert "deltatoken" in graph.calls("events.delta")[0].params and events(still) == []

    clock.moment = NOW + timedelta(days=HORIZON_DAYS // 2 + 2)
    graph.reset_log()
    moved, _ = run(source, cursor)
    round_start = graph.calls("events.delta")[0].params
    assert "startdatetime" in round_start and "deltatoken" not in round_start
    later = by_original_start(events(moved))
    assert set(later) > {s for s in in_window if s >= clock.moment}
    assert max(later) > max(in_window)
    for original, occurrence in later.items():
        assert occurrence.source_id == source_id(series.ical_uid, original)
    assert removed(moved) == []


def test_since_bounds_the_window_and_reaching_further_back_lists_it_again(
    graph: FakeGraph, calendar: Calendar
) -> None:
    old = calendar.add_event("Old", NOW - timedelta(days=200), NOW - timedelta(days=199))
    recent = calendar.add_event("Recent", NOW - timedelta(days=20), NOW - timedelta(days=19))
    batches, cursor = run(connector(graph), None)
    assert [e.uid for e in events(batches)] == [recent.ical_uid]

    later, cursor = run(connector(graph, since=NOW - timedelta(days=30)), cursor)
    assert events(later) == []

    since = NOW - timedelta(days=365)
    batches, _ = run(connector(graph, since=since), cursor)
    assert sorted(e.uid for e in events(batches)) == sorted([old.ical_uid, recent.ical_uid])
    assert graph.calls("events.delta")[-1].params["startdatetime"].startswith("2025-03-01")


def test_an_all_day_event_is_a_day_whatever_zone_it_was_shifted_from() -> None:
    entry: dict[str, Any] = {
        "id": "AAMkAGday",
        "iCalUId": "040000008200E00074C5B7101A82E008DAY",
        "type": "singleInstance",
        "isAllDay": True,
        "subject": "Offsite",
        "start": {"dateTime": "2026-03-04T23:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-05T23:00:00.0000000", "timeZone": "UTC"},
        "organizer": {"emailAddress": {"name": "Bob", "address": "Bob@Fabrikam.example"}},
        "attendees": [],
    }
    event = to_calendar_event(
        vevent(entry, entry["iCalUId"]), calendar=ALICE, owner=ALICE, source_prefix=ALICE
    )
    assert event.start == datetime(2026, 3, 5, tzinfo=UTC)
    assert event.end == datetime(2026, 3, 6, tzinfo=UTC)
    assert event.organizer is not None and event.organizer.email == "bob@fabrikam.example"


def test_the_cursor_keeps_at_most_the_limit_of_instances(
    graph: FakeGraph, calendar: Calendar
) -> None:
    weekly(calendar, count=8)
    limits = Limits(occurrences_per_sync=3)
    batches, cursor = run(connector(graph, limits=limits), None)
    assert len(events(batches)) == 8
    assert cursor is not None and len(cursor["yielded"]) == 3


@pytest.mark.parametrize(
    "cursor",
    [
        {"v": 1, "folders": {"inbox": "https://graph.microsoft.com/v1.0/x"}},
        {"v": 2, "window": None, "link": None},
        {"historyId": "123"},
        {
            "v": 1,
            "window": ["2026-01-01T00:00:00+00:00", "2026-05-01T00:00:00+00:00"],
            "link": "http://graph.microsoft.com/v1.0/users/x/calendarView/delta",
            "complete": True,
            "first": False,
            "generation": 1,
            "yielded": {},
            "series": {},
        },
    ],
    ids=["mail cursor", "other version", "gmail cursor", "plain http link"],
)
def test_a_cursor_it_did_not_write_is_invalid(
    graph: FakeGraph, calendar: Calendar, cursor: Cursor
) -> None:
    with pytest.raises(CursorInvalid):
        next(iter(connector(graph).fetch(cursor)))
    assert graph.calls("events.delta") == []
