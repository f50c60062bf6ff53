"""The demo's history moved to the present: dates only, by whole weeks."""

from __future__ import annotations

import mailbox
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from icalendar import Calendar

from agent.cli.demo import demo_data
from agent.cli.demo_clock import moved_copy, weeks_to_now


def _dates(path: Path) -> list[str | None]:
    return [m["Date"] for m in mailbox.mbox(path)]


def test_the_newest_message_lands_in_this_week_and_weekdays_stay(tmp_path: Path) -> None:
    today = date(2026, 12, 5)
    shift = weeks_to_now(demo_data(), today)
    assert shift.days % 7 == 0
    moved = moved_copy(demo_data(), tmp_path / "moved", shift)
    before = {p.name: _dates(p) for p in demo_data().glob("*.mbox")}
    after = {p.name: _dates(p) for p in moved.glob("*.mbox")}
    assert before.keys() == after.keys() and len(before) == 3
    newest = None
    for name, dates in before.items():
        assert len(after[name]) == len(dates)
        for old, new in zip(dates, after[name], strict=True):
            try:
                old_at = parsedate_to_datetime(old) if old else None
            except ValueError:
                old_at = None
            if old_at is None or old_at.tzinfo is None:
                assert new == old  # an unusable date stays unusable: still quarantined
                continue
            new_at = parsedate_to_datetime(new)
            assert new_at - old_at == shift and new_at.weekday() == old_at.weekday()
            newest = max(newest or new_at, new_at)
    assert newest is not None and timedelta(0) <= today - newest.date() < timedelta(days=7)
    for name in before:  # nothing but dates changed
        old_lines = (demo_data() / name).read_bytes().split(b"\n")
        new_lines = (moved / name).read_bytes().split(b"\n")
        changed = [o for o, n in zip(old_lines, new_lines, strict=True) if o != n]
        assert all(line.startswith((b"Date: ", b"From ")) for line in changed)


def test_the_calendar_moves_its_events_but_not_its_time_zone_rules(tmp_path: Path) -> None:
    shift = timedelta(weeks=80)
    moved = moved_copy(demo_data(), tmp_path / "moved", shift)
    old = Calendar.from_ical((demo_data() / "calendar.ics").read_text())
    new = Calendar.from_ical((moved / "calendar.ics").read_text())
    old_events, new_events = old.walk("VEVENT"), new.walk("VEVENT")
    assert len(old_events) == len(new_events) > 0
    for before, after in zip(old_events, new_events, strict=True):
        assert after.decoded("DTSTART") - before.decoded("DTSTART") == shift
        if "RRULE" in before and "UNTIL" in before["RRULE"]:
            assert after["RRULE"]["UNTIL"][0] - before["RRULE"]["UNTIL"][0] == shift
    zones = [c.to_ical() for c in old.walk("VTIMEZONE")]
    assert zones and zones == [c.to_ical() for c in new.walk("VTIMEZONE")]
