"""A model check: incremental syncs end where a fresh full sync would, whatever changed between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.records import CalendarEvent, Cursor
from tests.support.fake_google.calendar import attendee, event_time
from tests.support.fake_google.server import FakeGoogle
from tests.support.google_connectors import ALICE, NOW, ZONE, calendar_connector, sync_calendar

FIRST = datetime(2026, 2, 3, 10, tzinfo=ZoneInfo(ZONE))
"""The series' first instance: four weeks before NOW, and before the DST change of 8 March."""
RESPONSES = ("needsAction", "accepted", "declined", "tentative")

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(-20, 60), st.integers(8, 17)),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("rsvp"), st.integers(0, 50), st.sampled_from(RESPONSES)),
        st.tuples(st.just("move"), st.integers(0, 14), st.integers(-30, 30)),
        st.tuples(st.just("cancel"), st.integers(0, 14)),
        st.tuples(st.just("rename"), st.sampled_from(["a", "b", "c"])),
        st.tuples(st.just("series rsvp"), st.sampled_from(RESPONSES)),
        st.tuples(st.just("cut"), st.integers(0, 14)),
        st.tuples(st.just("delete series")),
        st.tuples(st.just("expire")),
        st.tuples(st.just("wait"), st.integers(1, 20)),
        st.tuples(st.just("sync")),
    ),
    max_size=18,
)


def instance(week: int) -> datetime:
    """The original start of the series' instance ``week``, wall-clock time kept across DST."""
    return (FIRST + timedelta(weeks=week)).astimezone(UTC)


def content(event: CalendarEvent) -> tuple[Any, ...]:
    answers = sorted((a.address.email, a.response_status) for a in event.attendees)
    return event.start, event.end, event.status, event.summary, answers


class Calendar:
    """Alice's calendar with one open-ended weekly series, changed by the operations."""

    guests = (attendee(ALICE, "accepted", organizer=True), attendee("ann@acme.example"))

    def __init__(self, fake: FakeGoogle) -> None:
        self.fake = fake
        self.calendar = fake.add_calendar_user(ALICE, time_zone=ZONE)
        self.series = self.calendar.insert(
            {
                "summary": "weekly",
                "start": event_time(FIRST, ZONE),
                "end": event_time(FIRST + timedelta(hours=1), ZONE),
                "recurrence": ["RRULE:FREQ=WEEKLY"],
                "organizer": {"email": ALICE},
                "attendees": list(self.guests),
            }
        )
        self.singles: list[str] = []
        self.last_week: int | None = None
        self.series_alive = True
        self.now = NOW

    def change(self, name: str, *args: Any) -> None:
        """Apply one operation; one that makes no sense in the current state does nothing."""
        calendar = self.calendar
        live = [s for s in self.singles if calendar.events[s]["status"] != "cancelled"]
        week = args[0] if name in ("move", "cancel", "cut") else 0
        in_series = self.series_alive and (self.last_week is None or week <= self.last_week)
        if name == "add":
            start = self.now + timedelta(days=args[0], hours=args[1] - 12)
            self.singles.append(
                calendar.insert(
                    {
                        "summary": "single",
                        "start": event_time(start, ZONE),
                        "end": event_time(start + timedelta(minutes=45), ZONE),
                        "attendees": list(self.guests),
                    }
                )
            )
        elif name == "delete" and live:
            calendar.delete(live[args[0] % len(live)])
        elif name == "rsvp" and live:
            calendar.respond(live[args[0] % len(live)], "ann@acme.example", args[1])
        elif name == "move" and in_series:
            moved = instance(week) + timedelta(hours=args[1])
            calendar.move_instance(self.series, instance(week), moved, moved + timedelta(hours=1))
        elif name == "cancel" and in_series:
            calendar.cancel_instance(self.series, instance(week))
        elif name == "rename" and self.series_alive:
            calendar.update(self.series, summary=args[0])
        elif name == "series rsvp" and self.series_alive:
            calendar.respond(self.series, "ann@acme.example", args[0])
        elif name == "cut" and in_series:
            until = instance(week) + timedelta(minutes=1)
            rule = f"RRULE:FREQ=WEEKLY;UNTIL={until:%Y%m%dT%H%M%SZ}"
            calendar.update(self.series, recurrence=[rule])
            self.last_week = week
        elif name == "delete series" and self.series_alive:
            calendar.delete(self.series)
            self.series_alive = False
        elif name == "expire":
            calendar.expire_sync_tokens()
        elif name == "wait":
            self.now += timedelta(days=args[0])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations=OPERATIONS, page_size=st.integers(1, 4), batch_size=st.integers(1, 5))
def test_incremental_syncs_agree_with_a_fresh_full_sync(
    operations: list[tuple[Any, ...]], page_size: int, batch_size: int
) -> None:
    """Every occurrence a fresh full sync yields was yielded, last, with the same content;
    an occurrence yielded that a fresh sync lacks was deleted: it came out cancelled,
    or it had already started when it was deleted. Time passes too (``wait``), which
    moves the window on."""
    with FakeGoogle(seed=4) as fake:
        world = Calendar(fake)
        connector = calendar_connector(
            fake, page_size=page_size, batch_size=batch_size, now=lambda: world.now
        )
        replayed: dict[str, CalendarEvent] = {}

        def apply(cursor: Cursor | None) -> Cursor | None:
            run = sync_calendar(connector, cursor)
            replayed.update((event.source_id, event) for event in run.events)
            return run.cursor if run.cursors else cursor

        cursor = apply(None)
        for name, *args in operations:
            if name == "sync":
                cursor = apply(cursor)
            else:
                world.change(name, *args)
        apply(cursor)

        fresh = {
            e.source_id: e for e in sync_calendar(calendar_connector(fake, now=world.now)).events
        }
        for source_id, event in fresh.items():
            assert source_id in replayed, f"never yielded: {source_id}"
            assert content(replayed[source_id]) == content(event), source_id
        for source_id, event in replayed.items():
            if source_id not in fresh:
                assert event.status == "cancelled" or event.start < world.now, source_id
