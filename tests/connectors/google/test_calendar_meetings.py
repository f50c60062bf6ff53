"""Google Calendar meetings through the sync loop into a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import SyncResult, sync_connector
from config import parse_settings
from connectors.google.auth import CALENDAR_READONLY_SCOPE, user_credentials
from connectors.google.calendar import GoogleCalendarConnector
from storage.db import session_factory
from storage.models import Interaction, InteractionParticipant, InteractionSource, SyncState
from tests.support.fake_google.calendar import FakeCalendar, attendee, event_time
from tests.support.fake_google.server import FakeGoogle

ALICE = "alice@northwind.example"
DAN = "dan@northwind.example"
ANN = "ann@acme.example"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
LONDON = "Europe/London"


def utc(month: int, day: int, hour: int = 0) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def connector(fake_google: FakeGoogle, account: str, **options: Any) -> GoogleCalendarConnector:
    scopes = [CALENDAR_READONLY_SCOPE]
    info = {
        "refresh_token": fake_google.issue_refresh_token(account, scopes),
        "client_id": "test-client",
        "client_secret": "test-secret",
    }
    return GoogleCalendarConnector(
        f"{account.partition('@')[0]}-calendar",
        account,
        user_credentials(info, scopes, token_uri=fake_google.token_uri),
        since=SINCE,
        api_endpoint=fake_google.url,
        now=lambda: NOW,
        quota_rate=None,
        sleep=lambda _s: None,
        **options,
    )


def run(engine: Engine, calendar: GoogleCalendarConnector) -> SyncResult:
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    policy = Policy.from_settings(settings, calendar.name, calendar.account)
    result = sync_connector(session_factory(engine), calendar, policy, kind="google_calendar")
    assert result.status == "ok", result.error
    return result


def acme_meeting(
    calendar: FakeCalendar, start: datetime, *, ann: str = "needsAction", **extra: Any
) -> str:
    return calendar.insert(
        {
            "iCalUID": extra.pop("uid", None) or f"{start:%m%d%H}-acme@northwind.example",
            "summary": "Acme review",
            "start": event_time(start, LONDON),
            "end": event_time(start + timedelta(hours=1), LONDON),
            "organizer": {"email": ALICE, "displayName": "Alice"},
            "attendees": [
                attendee(ALICE, "accepted", organizer=True),
                attendee(DAN, "accepted"),
                attendee(ANN, ann, name="Ann Lee"),
                attendee("room-1@resource.calendar.google.com", "accepted", resource=True),
            ],
            **extra,
        }
    )


def meetings(session: Session) -> list[Interaction]:
    return list(
        session.scalars(
            select(Interaction)
            .where(Interaction.kind == "meeting")
            .order_by(Interaction.occurred_at)
        )
    )


def answer(session: Session, email: str) -> list[str | None]:
    return list(
        session.scalars(
            select(InteractionParticipant.response_status).where(
                InteractionParticipant.email == email, InteractionParticipant.role == "attendee"
            )
        )
    )


def test_an_rsvp_change_updates_the_participant(engine: Engine, fake_google: FakeGoogle) -> None:
    alice = fake_google.add_calendar_user(ALICE, time_zone=LONDON)
    event_id = acme_meeting(alice, utc(3, 5, 10))
    calendar = connector(fake_google, ALICE)
    run(engine, calendar)
    sessions = session_factory(engine)
    with sessions() as session:
        assert answer(session, ANN) == ["needs_action"]

    alice.respond(event_id, ANN, "accepted")
    result = run(engine, calendar)

    assert result.items == 1 and result.interactions_created == 0
    with sessions() as session:
        assert answer(session, ANN) == ["accepted"]
        participants = session.scalars(select(InteractionParticipant.email)).all()
        assert "room-1@resource.calendar.google.com" not in participants
        state = session.get(SyncState, calendar.name)
        assert state is not None and state.counters["last_run"]["quota_units"] == {
            "calendarList.list": 1,
            "events.list": 1,
        }


def test_a_meeting_on_several_attendees_calendars_is_logged_once(
    engine: Engine, fake_google: FakeGoogle
) -> None:
    alice = fake_google.add_calendar_user(ALICE, time_zone=LONDON)
    dan = fake_google.add_calendar_user(DAN, time_zone=LONDON)
    for calendar in (alice, dan):
        acme_meeting(calendar, utc(3, 5, 10), uid="review@northwind.example")
        acme_meeting(
            calendar,
            utc(3, 9, 10),
            uid="weekly@northwind.example",
            recurrence=["RRULE:FREQ=WEEKLY;COUNT=3"],
        )

    for account in (ALICE, DAN):
        run(engine, connector(fake_google, account))

    with session_factory(engine)() as session:
        keys = [m.dedupe_key for m in meetings(session)]
        assert keys == [
            "review@northwind.example/2026-03-05T10:00:00+00:00",
            "weekly@northwind.example/2026-03-09T10:00:00+00:00",
            "weekly@northwind.example/2026-03-16T10:00:00+00:00",
            "weekly@northwind.example/2026-03-23T10:00:00+00:00",
        ]
        sources = session.execute(
            select(InteractionSource.interaction_id, func.count()).group_by(
                InteractionSource.interaction_id
            )
        ).all()
        assert sorted(count for _id, count in sources) == [2, 2, 2, 2]


def test_a_weekly_meeting_across_a_dst_change_with_a_moved_and_a_cancelled_instance(
    engine: Engine, fake_google: FakeGoogle
) -> None:
    """London's clocks go forward on 29 March 2026: 10:00 there is 10:00 UTC before, 09:00 after."""
    alice = fake_google.add_calendar_user(ALICE, time_zone=LONDON)
    series = acme_meeting(alice, utc(3, 16, 10), recurrence=["RRULE:FREQ=WEEKLY;COUNT=5"])
    alice.cancel_instance(series, utc(3, 23, 10))
    alice.move_instance(series, utc(4, 6, 9), utc(4, 7, 13), utc(4, 7, 14))

    run(engine, connector(fake_google, ALICE))

    with session_factory(engine)() as session:
        logged = [
            (m.dedupe_key.rsplit("/", 1)[1], m.occurred_at.replace(tzinfo=UTC), m.status)
            for m in meetings(session)
        ]
    assert logged == [
        ("2026-03-16T10:00:00+00:00", utc(3, 16, 10), "active"),
        ("2026-03-23T10:00:00+00:00", utc(3, 23, 10), "cancelled"),
        ("2026-03-30T09:00:00+00:00", utc(3, 30, 9), "active"),
        ("2026-04-06T09:00:00+00:00", utc(4, 7, 13), "active"),
        ("2026-04-13T09:00:00+00:00", utc(4, 13, 9), "active"),
    ]


def test_an_expired_sync_token_resyncs_without_duplicate_interactions(
    engine: Engine, fake_google: FakeGoogle
) -> None:
    alice = fake_google.add_calendar_user(ALICE, time_zone=LONDON)
    acme_meeting(alice, utc(3, 5, 10))
    acme_meeting(alice, utc(3, 9, 10), recurrence=["RRULE:FREQ=WEEKLY;COUNT=4"])
    calendar = connector(fake_google, ALICE)
    run(engine, calendar)
    sessions = session_factory(engine)
    with sessions() as session:
        before = session.scalar(select(func.count()).select_from(Interaction))
        sources = session.scalar(select(func.count()).select_from(InteractionSource))
    assert (before, sources) == (5, 5)

    alice.expire_sync_tokens()
    acme_meeting(alice, utc(3, 6, 10))
    fake_google.reset_counters()
    result = run(engine, calendar)

    assert [c.status for c in fake_google.api_calls("events.list")] == [410, 200]
    assert result.interactions_created == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 6
        assert session.scalar(select(func.count()).select_from(InteractionSource)) == 6
