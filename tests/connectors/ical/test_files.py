"""The ICS connector: what a VEVENT becomes, and what each fetch yields from a folder of files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import CursorInvalid, TransientError
from connectors.ical.files import IcsConnector
from connectors.ical.parts import parse_calendar, to_calendar_event
from connectors.records import (
    Address,
    Attendee,
    CalendarEvent,
    CalendarReply,
    Cursor,
    Item,
    SourceRemoved,
    Unreadable,
)
from tests.support.icsbuilder import LUNCH, MEETING, ics, write_ics
from tests.support.paths import FIXTURES

CORPUS_FILES = sorted(
    path.relative_to(FIXTURES).as_posix()
    for source in ("icalendar", "recurring-ical-events")
    for path in (FIXTURES / source).rglob("*.ics")
)
EXPECTED_BAD = {
    "icalendar/calendars/big_bad_calendar.ics",
    "icalendar/calendars/fuzz_testcase_0_char_in_component_name.ics",
    "icalendar/calendars/fuzz_testcase_invalid_month.ics",
    "icalendar/calendars/fuzz_testcase_vtimezone_lone_cr.ics",
    "icalendar/calendars/issue_104_broken_calendar.ics",
    "icalendar/calendars/pr_480_summary_with_colon.ics",
    "icalendar/calendars/small_bad_calendar.ics",
}
"""The corpus files that cannot be parsed. The corpus lists ten; two of them hold two
VCALENDAR blocks, which the connector reads as one calendar, and one
(parsing_error_in_UTC_offset.ics) holds only a time zone the parser refuses: it schedules
nothing, so there is nothing to log and nothing wrong."""

NOW = datetime(2024, 3, 1, 12, tzinfo=UTC)
SINCE = datetime(2024, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def connector(path: Path, **kwargs: Any) -> IcsConnector:
    settings: dict[str, Any] = {"since": SINCE, "now": lambda: NOW, **kwargs}
    return IcsConnector("team-calendars", path, "Me@Example.com", **settings)


def run(source: IcsConnector, cursor: Cursor | None) -> tuple[list[Item], Cursor | None]:
    """Every item of one fetch and the cursor it ends with; each cursor must survive JSON."""
    items: list[Item] = []
    for batch in source.fetch(cursor):
        assert json.loads(json.dumps(batch.cursor)) == batch.cursor
        items.extend(batch.items)
        cursor = batch.cursor
    return items, cursor


def events(items: list[Item]) -> list[CalendarEvent]:
    return [item for item in items if isinstance(item, CalendarEvent)]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_ics(tmp_path / "meeting.ics", ics(*MEETING))
    write_ics(tmp_path / "lunch.ics", ics(LUNCH))
    return tmp_path


def _event(lines: str, method: str = "") -> CalendarEvent:
    calendar = parse_calendar(ics(f"UID:one@example.com\nDTSTART:20240306T100000Z\n{lines}"))
    [vevent] = calendar.walk("VEVENT")
    return to_calendar_event(
        vevent, calendar="c", owner="me@example.com", source_prefix="c", method=method
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "ATTENDEE;CN=Bob Smith;PARTSTAT=ACCEPTED:mailto:Bob@Customer.COM",
            Attendee(Address("bob@customer.com", "Bob Smith"), "accepted"),
        ),
        (
            "ATTENDEE;PARTSTAT=NEEDS-ACTION:MAILTO:x@y.com",
            Attendee(Address("x@y.com"), "needs_action"),
        ),
        ("ATTENDEE;PARTSTAT=DECLINED:mailto:x@y.com", Attendee(Address("x@y.com"), "declined")),
        ("ATTENDEE;PARTSTAT=TENTATIVE:mailto:x@y.com", Attendee(Address("x@y.com"), "tentative")),
        ("ATTENDEE;PARTSTAT=DELEGATED:mailto:x@y.com", Attendee(Address("x@y.com"), "unknown")),
        ("ATTENDEE:mailto:x@y.com", Attendee(Address("x@y.com"), "unknown")),
        (
            "ATTENDEE;CUTYPE=ROOM;PARTSTAT=ACCEPTED:mailto:room@y.com",
            Attendee(Address("room@y.com"), "accepted", is_resource=True),
        ),
        (
            "ATTENDEE;CUTYPE=RESOURCE:mailto:projector@y.com",
            Attendee(Address("projector@y.com"), is_resource=True),
        ),
        ("ATTENDEE;CUTYPE=INDIVIDUAL:mailto:x@y.com", Attendee(Address("x@y.com"))),
        (
            "ATTENDEE;ROLE=OPT-PARTICIPANT:mailto:x@y.com",
            Attendee(Address("x@y.com"), optional=True),
        ),
        ('ATTENDEE;CN="Doe, Jane":mailto:jane@y.com', Attendee(Address("jane@y.com", "Doe, Jane"))),
        ("ATTENDEE:urn:uuid:00000000-0000-0000-0000-000000000000", None),
    ],
    ids=[
        "accepted-cn-lowercased",
        "needs-action-upper-mailto",
        "declined",
        "tentative",
        "delegated-unknown",
        "no-partstat",
        "room",
        "resource",
        "individual",
        "optional",
        "quoted-cn",
        "not-an-email",
    ],
)
def test_attendee_conversion(line: str, expected: Attendee | None) -> None:
    assert _event(line).attendees == (() if expected is None else (expected,))


@pytest.mark.parametrize(
    ("lines", "method", "expected"),
    [
        ("", "", ("confirmed", 0, None)),
        ("STATUS:TENTATIVE\nSEQUENCE:3", "", ("tentative", 3, None)),
        ("STATUS:CANCELLED", "", ("cancelled", 0, None)),
        ("STATUS:CONFIRMED", "CANCEL", ("cancelled", 0, None)),
        ("DTSTAMP:20240201T080000Z", "REQUEST", ("confirmed", 0, utc(2024, 2, 1, 8))),
        (
            "DTSTAMP:20240201T080000Z\nLAST-MODIFIED:20240105T100000Z",
            "",
            ("confirmed", 0, utc(2024, 1, 5, 10)),
        ),
        ("SEQUENCE:abc", "", ("confirmed", 0, None)),
    ],
    ids=[
        "defaults",
        "tentative",
        "cancelled",
        "method-cancel",
        "updated-from-dtstamp",
        "last-modified-wins",
        "broken-sequence",
    ],
)
def test_status_sequence_and_updated(
    lines: str, method: str, expected: tuple[str, int, datetime | None]
) -> None:
    event = _event(lines, method)

    assert (event.status, event.sequence, event.updated) == expected


def test_organizer_and_source_id() -> None:
    event = _event('ORGANIZER;CN="Doe, Jane":MAILTO:Jane@Example.COM\nSUMMARY:Kick-off')

    assert event.organizer == Address("jane@example.com", "Doe, Jane")
    assert event.source_id == "c/one@example.com/2024-03-06T10:00:00+00:00"
    assert (event.summary, event.end) == ("Kick-off", event.start)


def test_a_real_blackberry_invitation(tmp_path: Path) -> None:
    path = FIXTURES / "icalendar/calendars/property_params.ics"

    items, _ = run(connector(path, since=None), None)

    [event] = events(items)
    assert event.source_id == (
        "property_params.ics/XRIMCAL-628059586-522954492-9750559/2012-08-14T00:00:00+00:00"
    )
    assert (event.start, event.end) == (utc(2012, 8, 14), utc(2012, 8, 15))
    assert event.organizer == Address("rembrand@daxlab.com")
    assert [(a.address.email, a.response_status) for a in event.attendees] == [
        ("rembrand@xs4all.nl", "needs_action"),
        ("rembrand@daxlab.com", "needs_action"),
        ("rembspam@xs4all.nl", "needs_action"),
    ]
    assert (event.sequence, event.updated) == (2, datetime(2012, 8, 13, 15, 14, 58, tzinfo=UTC))
    assert (event.calendar, event.owner) == ("property_params.ics", "me@example.com")


@pytest.mark.parametrize("name", CORPUS_FILES, ids=CORPUS_FILES)
def test_every_corpus_file_parses_or_is_reported_bad(name: str) -> None:
    source = connector(FIXTURES / name, since=None, now=lambda: utc(2025, 1, 1))
    file_key = Path(name).name

    items, _ = run(source, None)
    unreadable = [item for item in items if isinstance(item, Unreadable)]
    if name in EXPECTED_BAD:
        assert [(item.source_id, bool(item.reason)) for item in unreadable] == [(file_key, True)]
        assert len(items) == 1
        return
    assert all(item.source_id.startswith(f"{file_key}/") for item in unreadable)
    found = events(items)
    assert len(found) + len(unreadable) == len(items)
    assert len({event.source_id for event in found}) == len(found)
    for event in found:
        assert event.source_id.startswith(f"{file_key}/{event.uid}/")
        assert event.start.tzinfo is UTC and event.original_start.tzinfo is UTC
        assert event.end is None or event.end.tzinfo is UTC


def test_bad_files_in_a_folder_are_reported_in_one_fetch_beside_the_good_ones() -> None:
    source = connector(FIXTURES / "icalendar", since=None, now=lambda: utc(2025, 1, 1))

    items, cursor = run(source, None)
    again, _ = run(source, cursor)

    reported = [item.source_id for item in items if isinstance(item, Unreadable)]
    files = [source_id for source_id in reported if source_id.endswith(".ics")]
    assert sorted(files) == sorted(name.removeprefix("icalendar/") for name in EXPECTED_BAD)
    assert all(".ics/" in source_id for source_id in set(reported) - set(files))
    assert len(events(items)) > 100
    assert again == []


def test_first_fetch_yields_every_occurrence_one_batch_per_file(folder: Path) -> None:
    batches = list(connector(folder).fetch(None))

    assert len(batches) == 2
    lunch, meeting = (events(list(batch.items)) for batch in batches)
    assert [e.source_id for e in lunch] == ["lunch.ics/lunch@example.com/2024-03-15T12:00:00+00:00"]
    assert [(e.original_start, e.start, e.status) for e in meeting] == [
        (utc(2024, 3, 6, 9), utc(2024, 3, 6, 9), "confirmed"),
        (utc(2024, 3, 13, 9), utc(2024, 3, 13, 9), "confirmed"),
        (utc(2024, 3, 20, 9), utc(2024, 3, 20, 9), "confirmed"),
        (utc(2024, 3, 27, 9), utc(2024, 4, 2, 13), "confirmed"),
        (utc(2024, 4, 3, 8), utc(2024, 4, 3, 8), "confirmed"),
        (utc(2024, 4, 10, 8), utc(2024, 4, 10, 8), "cancelled"),
    ]
    assert {(e.calendar, e.owner) for e in meeting} == {("meeting.ics", "me@example.com")}
    assert set(batches[-1].cursor["files"]) == {"lunch.ics", "meeting.ics"}


def test_second_fetch_of_unchanged_files_yields_nothing_and_reads_nothing(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    meeting = folder / "meeting.ics"
    stat = meeting.stat()
    meeting.write_bytes(b"X" * stat.st_size)
    os.utime(meeting, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    assert list(source.fetch(cursor)) == []
    assert list(connector(folder, now=lambda: NOW + timedelta(hours=11)).fetch(cursor)) == []


def test_a_sequence_bump_on_one_instance_yields_only_that_instance(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    moved = MEETING[1].replace("SEQUENCE:2", "SEQUENCE:3")
    write_ics(folder / "meeting.ics", ics(MEETING[0], moved, MEETING[2]))

    items, _ = run(source, cursor)

    assert [(e.original_start, e.start, e.sequence) for e in events(items)] == [
        (utc(2024, 3, 27, 9), utc(2024, 4, 2, 13), 3)
    ]
    assert len(items) == 1


def test_a_change_to_the_master_yields_its_occurrences_but_not_the_overrides(
    folder: Path,
) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    master = MEETING[0].replace("SEQUENCE:1", "SEQUENCE:4").replace("T080000Z", "T090000Z")
    write_ics(folder / "meeting.ics", ics(master, *MEETING[1:]))

    items, _ = run(source, cursor)

    assert [(e.original_start, e.sequence) for e in events(items)] == [
        (utc(2024, 3, 6, 9), 4),
        (utc(2024, 3, 13, 9), 4),
        (utc(2024, 3, 20, 9), 4),
        (utc(2024, 4, 3, 8), 4),
    ]


def test_an_rsvp_change_yields_the_occurrence_with_the_new_answer(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    cancelled = (
        MEETING[2]
        .replace("LAST-MODIFIED:20240203T080000Z", "LAST-MODIFIED:20240204T080000Z")
        .replace(
            "SUMMARY:Pipeline review",
            "SUMMARY:Pipeline review\nATTENDEE;PARTSTAT=DECLINED:mailto:bob@customer.com",
        )
    )
    write_ics(folder / "meeting.ics", ics(*MEETING[:2], cancelled))

    [event] = events(run(source, cursor)[0])

    assert [(a.address.email, a.response_status) for a in event.attendees] == [
        ("bob@customer.com", "declined")
    ]
    assert event.updated == utc(2024, 2, 4, 8)


def test_an_event_removed_from_a_file_yields_source_removed(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    dinner = LUNCH.replace("lunch@", "dinner@").replace("T12", "T19").replace("T13", "T20")
    write_ics(folder / "lunch.ics", ics(dinner))

    items, cursor = run(source, cursor)

    assert items == [
        events(items)[0],
        SourceRemoved("lunch.ics/lunch@example.com/2024-03-15T12:00:00+00:00"),
    ]
    assert events(items)[0].uid == "dinner@example.com"
    assert cursor is not None
    assert list(cursor["files"]["lunch.ics"]["events"]) == [
        "dinner@example.com/2024-03-15T19:00:00+00:00"
    ]


def test_an_exdate_added_removes_that_occurrence_only(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    master = MEETING[0] + "\nEXDATE;TZID=Europe/Berlin:20240313T100000"
    write_ics(folder / "meeting.ics", ics(master, *MEETING[1:]))

    items, _ = run(source, cursor)

    assert items == [SourceRemoved("meeting.ics/weekly@example.com/2024-03-13T09:00:00+00:00")]


def test_a_removed_file_yields_source_removed_for_all_its_occurrences(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    (folder / "meeting.ics").unlink()

    items, cursor = run(source, cursor)

    assert len(items) == 6
    assert all(isinstance(item, SourceRemoved) for item in items)
    assert cursor is not None
    assert set(cursor["files"]) == {"lunch.ics"}


def test_a_moving_horizon_yields_only_the_new_occurrences(tmp_path: Path) -> None:
    standup = """UID:standup@example.com
DTSTART;TZID=Europe/Berlin:20240304T093000
DTEND;TZID=Europe/Berlin:20240304T094500
RRULE:FREQ=WEEKLY;BYDAY=MO"""
    write_ics(tmp_path / "standup.ics", ics(standup))
    first, cursor = run(connector(tmp_path), None)
    later = connector(tmp_path, now=lambda: NOW + timedelta(days=7))

    items, _ = run(later, cursor)

    assert max(e.start for e in events(first)) == utc(2024, 5, 27, 7, 30)
    assert [e.start for e in events(items)] == [utc(2024, 6, 3, 7, 30)]
    assert len(items) == 1


def test_a_big_file_comes_in_batches_and_a_fetch_stopped_midway_resumes(folder: Path) -> None:
    (folder / "lunch.ics").unlink()
    source = connector(folder, batch_size=4)

    batches = list(source.fetch(None))
    rest, _ = run(source, batches[0].cursor)

    assert [len(batch.items) for batch in batches] == [4, 2]
    assert "mtime_ns" not in batches[0].cursor["files"]["meeting.ics"]
    assert "mtime_ns" in batches[1].cursor["files"]["meeting.ics"]
    assert rest == list(batches[1].items)


def test_a_file_gone_bad_keeps_its_occurrences_and_is_reported_once(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    whole = ics(*MEETING)
    write_ics(folder / "meeting.ics", whole[: len(whole) // 2])

    yielded, cursor = run(source, cursor)
    again, cursor = run(source, cursor)

    assert yielded == [
        Unreadable(
            "meeting.ics",
            "the file cannot be read as a calendar: ValueError: no complete VCALENDAR block",
        )
    ]
    assert again == []
    assert cursor is not None
    assert len(cursor["files"]["meeting.ics"]["events"]) == 6


def test_a_fixed_file_yields_only_what_changed_while_it_was_broken(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    write_ics(folder / "meeting.ics", b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n")
    _, cursor = run(source, cursor)
    moved = MEETING[1].replace("SEQUENCE:2", "SEQUENCE:3")
    write_ics(folder / "meeting.ics", ics(MEETING[0], moved, MEETING[2]))

    items, _ = run(source, cursor)

    assert [(e.original_start, e.sequence) for e in events(items)] == [(utc(2024, 3, 27, 9), 3)]


def test_a_series_that_can_no_longer_be_expanded_keeps_its_occurrences(folder: Path) -> None:
    source = connector(folder)
    _, cursor = run(source, None)
    broken = MEETING[0].replace("FREQ=WEEKLY", "FREQ=FORTNIGHTLY")
    write_ics(folder / "meeting.ics", ics(broken, *MEETING[1:], LUNCH.replace("lunch@", "tea@")))

    items, cursor = run(source, cursor)

    assert [(type(item).__name__, getattr(item, "uid", "")) for item in items] == [
        ("CalendarEvent", "tea@example.com"),
        ("Unreadable", ""),
    ]
    assert items[1].source_id == "meeting.ics/weekly@example.com"
    assert "cannot be read" in getattr(items[1], "reason", "")
    assert cursor is not None
    assert len(cursor["files"]["meeting.ics"]["events"]) == 7


def test_fresh_files_are_read_again_but_yield_nothing_new(tmp_path: Path) -> None:
    (tmp_path / "lunch.ics").write_bytes(ics(LUNCH))
    source = connector(tmp_path)

    first, cursor = run(source, None)
    second = list(source.fetch(cursor))

    assert len(first) == 1
    assert cursor is not None
    assert "mtime_ns" not in cursor["files"]["lunch.ics"]
    assert second == []


def test_only_visible_ics_files_are_read_and_keyed_by_relative_path(tmp_path: Path) -> None:
    write_ics(tmp_path / "team" / "lunch.ics", ics(LUNCH))
    write_ics(tmp_path / ".trash" / "old.ics", ics(LUNCH))
    write_ics(tmp_path / ".hidden.ics", ics(LUNCH))
    write_ics(tmp_path / "notes.txt", ics(LUNCH))
    write_ics(tmp_path / "UPPER.ICS", ics(LUNCH.replace("lunch@", "upper@")))

    items, _ = run(connector(tmp_path), None)

    assert sorted(event.calendar for event in events(items)) == ["UPPER.ICS", "team/lunch.ics"]


def test_a_missing_path_is_transient_and_removes_nothing(tmp_path: Path) -> None:
    with pytest.raises(TransientError):
        list(connector(tmp_path / "unmounted").fetch({"v": 1, "files": {}}))


@pytest.mark.parametrize(
    "cursor",
    [
        {"v": 2, "files": {}},
        {"v": 1},
        {"v": 1, "files": {"a.ics": "x"}},
        {"v": 1, "files": {"a.ics": {"events": []}}},
    ],
    ids=["other-version", "no-files", "entry-not-object", "events-not-object"],
)
def test_a_cursor_this_version_cannot_read_is_invalid(folder: Path, cursor: Cursor) -> None:
    with pytest.raises(CursorInvalid):
        list(connector(folder).fetch(cursor))


ZONE_WITH_DATE_RDATE = """BEGIN:VTIMEZONE
TZID:Custom/Zone
BEGIN:STANDARD
TZNAME:CET
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
DTSTART:19701025T030000
RDATE;VALUE=DATE:19711031,19721029
END:STANDARD
END:VTIMEZONE
"""


def test_a_time_zone_only_file_with_a_date_rdate_is_nothing_to_log(tmp_path: Path) -> None:
    write_ics(tmp_path / "zones.ics", ics(preamble=ZONE_WITH_DATE_RDATE))

    items, cursor = run(connector(tmp_path), None)

    assert items == []
    assert cursor is not None and "error" not in cursor["files"]["zones.ics"]


def test_an_event_in_a_zone_with_a_date_rdate_is_read_in_that_zone(tmp_path: Path) -> None:
    event = "UID:z@example.com\nDTSTART;TZID=Custom/Zone:20240305T100000\nSUMMARY:In zone"
    write_ics(tmp_path / "zoned.ics", ics(event, preamble=ZONE_WITH_DATE_RDATE))

    items, _ = run(connector(tmp_path), None)

    assert [(type(i).__name__, getattr(i, "start", None)) for i in items] == [
        ("CalendarEvent", utc(2024, 3, 5, 9))
    ]


@pytest.mark.parametrize("sequence", ["SEQUENCE:abc", "SEQUENCE:-3", "SEQUENCE:1.5"])
def test_a_malformed_sequence_counts_as_zero(tmp_path: Path, sequence: str) -> None:
    event = f"UID:s@example.com\nDTSTART:20240305T100000Z\n{sequence}\nSUMMARY:Kept"
    write_ics(tmp_path / "seq.ics", ics(event, "UID:t@example.com\nDTSTART:20240306T100000Z"))

    items, _ = run(connector(tmp_path), None)

    assert [(e.uid, e.sequence, e.summary) for e in events(items)] == [
        ("s@example.com", 0, "Kept"),
        ("t@example.com", 0, ""),
    ]
    assert len(items) == 2


def test_every_vevent_of_a_file_is_read_even_under_one_uid(tmp_path: Path) -> None:
    first = "UID:same@example.com\nDTSTART:20240305T100000Z\nSUMMARY:First"
    second = "UID:same@example.com\nDTSTART:20240312T100000Z\nSUMMARY:Second"
    older = "UID:same@example.com\nDTSTART:20240305T100000Z\nSEQUENCE:0\nSUMMARY:Old"
    newer = "UID:same@example.com\nDTSTART:20240305T100000Z\nSEQUENCE:4\nSUMMARY:New"
    other = "UID:other@example.com\nDTSTART:20240306T100000Z\nSUMMARY:Other"
    write_ics(tmp_path / "a.ics", ics(first, other, second))
    write_ics(tmp_path / "b.ics", ics(older, newer))

    items, _ = run(connector(tmp_path), None)

    assert [(e.calendar, e.summary) for e in events(items)] == [
        ("a.ics", "First"),
        ("a.ics", "Other"),
        ("a.ics", "Second"),
        ("b.ics", "New"),
    ]


def test_one_broken_occurrence_costs_its_series_a_report_not_the_file(tmp_path: Path) -> None:
    bad = "UID:bad@example.com\nDTSTART:20240305T100000Z\nDURATION:P999999999999999999W"
    good = "UID:good@example.com\nDTSTART:20240306T100000Z"
    write_ics(tmp_path / "mixed.ics", ics(bad, good))

    items, _ = run(connector(tmp_path), None)

    assert [e.uid for e in events(items)] == ["good@example.com"]
    [report] = [item for item in items if isinstance(item, Unreadable)]
    assert report.source_id == "mixed.ics/bad@example.com"
    assert report.reason.startswith("this meeting cannot be read: ")


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("SUMMARY;LANGUAGE=de:Treffen\nSUMMARY:Meeting", "Meeting"),
        ("SUMMARY:Meeting\nSUMMARY;LANGUAGE=de:Treffen", "Meeting"),
        ("SUMMARY;LANGUAGE=fr:Réunion\nSUMMARY;LANGUAGE=de:Treffen", "Réunion"),
    ],
)
def test_of_several_summaries_the_one_without_a_language_is_used(lines: str, expected: str) -> None:
    assert _event(lines).summary == expected


def test_a_reply_file_yields_its_answers_once_and_takes_nothing_when_gone(tmp_path: Path) -> None:
    reply = """UID:weekly@example.com
RECURRENCE-ID;TZID=Europe/Berlin:20240313T100000
DTSTAMP:20240302T080000Z
SEQUENCE:1
ORGANIZER:mailto:me@example.com
ATTENDEE;CN=Bob;PARTSTAT=DECLINED:mailto:Bob@Customer.com"""
    write_ics(tmp_path / "bob-reply.ics", ics(reply, preamble="METHOD:REPLY\n"))

    items, cursor = run(connector(tmp_path), None)
    later, cursor = run(connector(tmp_path, now=lambda: NOW + timedelta(days=7)), cursor)
    (tmp_path / "bob-reply.ics").unlink()
    gone, _ = run(connector(tmp_path), cursor)

    assert items == [
        CalendarReply(
            source_id="bob-reply.ics/weekly@example.com/2024-03-13T09:00:00+00:00",
            uid="weekly@example.com",
            recurrence_id=utc(2024, 3, 13, 9),
            attendee=Attendee(Address("bob@customer.com", "Bob"), "declined"),
            organizer=Address("me@example.com"),
            stamp=utc(2024, 3, 2, 8),
            sequence=1,
        )
    ]
    assert later == []  # answers are not read against the window
    assert gone == []  # the answer was given: nothing to remove
