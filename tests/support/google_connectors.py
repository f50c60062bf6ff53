"""Gmail and Google Calendar connectors wired to the fake Google server, as tests build them.

Each connector gets a user grant the fake issued (a refresh token for the
OAuth client ``test-client``), the fake's URL as its API endpoint, and a
``sleep`` that returns at once, so retries cost no wall-clock time. The
calendar connector runs on a fixed clock (``NOW``) with a fixed backfill
window (``SINCE``) unless a test gives its own. ``meeting`` and ``weekly`` put
events on a fake calendar the way Alice's invitations look.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.oauth2.credentials import Credentials

from connectors.google.auth import CALENDAR_READONLY_SCOPE, gmail_scopes, user_credentials
from connectors.google.calendar import GoogleCalendarConnector
from connectors.google.gmail import GmailConnector, Mode
from connectors.records import CalendarEvent, Cursor, Item
from tests.support.fake_google.calendar import FakeCalendar, attendee, event_time
from tests.support.fake_google.server import FakeGoogle

ALICE = "alice@example.com"
ZONE = "America/New_York"
"""The time zone of Alice's calendar."""
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
"""The calendar connector's clock, unless a test moves it."""
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
"""The start of the calendar connector's backfill window."""


def no_sleep(_seconds: float) -> None:
    return None


def user_grant(fake_google: FakeGoogle, account: str, scopes: Sequence[str]) -> Credentials:
    """Credentials of ``account`` having consented to ``scopes`` at the fake."""
    info = {
        "refresh_token": fake_google.issue_refresh_token(account, scopes),
        "client_id": "test-client",
        "client_secret": "test-secret",
    }
    return user_credentials(info, scopes, token_uri=fake_google.token_uri)


def gmail_connector(
    fake_google: FakeGoogle,
    *,
    mode: Mode = "metadata",
    account: str = ALICE,
    name: str = "alice-gmail",
    **options: Any,
) -> GmailConnector:
    """A Gmail connector for ``account`` in ``mode``, with the scopes that mode needs."""
    credentials = user_grant(fake_google, account, gmail_scopes(mode))
    options.setdefault("sleep", no_sleep)
    return GmailConnector(
        name, account, credentials, mode=mode, api_endpoint=fake_google.url, **options
    )


def calendar_connector(
    fake_google: FakeGoogle,
    *,
    account: str = ALICE,
    scopes: Sequence[str] = (CALENDAR_READONLY_SCOPE,),
    now: datetime | Callable[[], datetime] = NOW,
    **options: Any,
) -> GoogleCalendarConnector:
    """A Google Calendar connector for ``account`` at ``now``, not paced by quota."""
    credentials = user_grant(fake_google, account, scopes)
    options.setdefault("sleep", no_sleep)
    options.setdefault("quota_rate", None)
    options.setdefault("since", SINCE)
    return GoogleCalendarConnector(
        f"{account.partition('@')[0]}-calendar",
        account,
        credentials,
        api_endpoint=fake_google.url,
        now=now if callable(now) else lambda: now,
        **options,
    )


@dataclass
class CalendarRun:
    """Everything one ``fetch`` of a calendar connector yielded."""

    items: list[Item] = field(default_factory=list)
    cursors: list[Cursor] = field(default_factory=list)

    @property
    def cursor(self) -> Cursor:
        return self.cursors[-1]

    @property
    def events(self) -> list[CalendarEvent]:
        return [i for i in self.items if isinstance(i, CalendarEvent)]

    def at(self, original_start: datetime) -> list[CalendarEvent]:
        return [e for e in self.events if e.original_start == original_start]


def sync_calendar(connector: GoogleCalendarConnector, cursor: Cursor | None = None) -> CalendarRun:
    run = CalendarRun()
    for batch in connector.fetch(cursor):
        run.items.extend(batch.items)
        run.cursors.append(batch.cursor)
    return run


def meeting(
    calendar: FakeCalendar,
    start: datetime,
    *,
    summary: str = "Acme call",
    minutes: int = 30,
    guests: Sequence[Mapping[str, Any]] = (),
    organizer: str = ALICE,
    zone: str = ZONE,
    **extra: Any,
) -> str:
    """A meeting on ``calendar`` organised by ``organizer``, who has accepted; its id."""
    return calendar.insert(
        {
            "summary": summary,
            "start": event_time(start, zone),
            "end": event_time(start + timedelta(minutes=minutes), zone),
            "organizer": {"email": organizer},
            "attendees": [attendee(organizer, "accepted", organizer=True), *guests],
            **extra,
        }
    )


def weekly(calendar: FakeCalendar, first: datetime, *, count: int | None = 6, **extra: Any) -> str:
    """An "Acme weekly" series of ``count`` meetings (None: endless) from ``first``; its id."""
    rule = "RRULE:FREQ=WEEKLY" + (f";COUNT={count}" if count else "")
    guests = [attendee("ann@acme.example", "needsAction", name="Ann Lee")]
    return meeting(
        calendar, first, summary="Acme weekly", guests=guests, recurrence=[rule], **extra
    )
