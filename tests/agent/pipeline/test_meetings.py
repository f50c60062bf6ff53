"""Meetings from an .ics file through the pipeline: one interaction per occurrence."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from agent.pipeline.batch import plan_batch
from agent.pipeline.filters import Skip
from agent.pipeline.meetings import plan_meeting
from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.ical.files import IcsConnector
from connectors.records import Address, Attendee, CalendarEvent
from storage.db import session_factory
from storage.models import (
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    InteractionSource,
)

NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)

CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//crm-sync tests//EN
BEGIN:VEVENT
UID:weekly-acme@northwind.example
DTSTART;TZID=Europe/London:20260302T100000
DTEND;TZID=Europe/London:20260302T103000
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Acme weekly
ORGANIZER;CN=Alice:mailto:alice@northwind.example
ATTENDEE;CN=Ann Lee;PARTSTAT=ACCEPTED:mailto:ann@acme.example
ATTENDEE;CN=Boardroom;CUTYPE=ROOM;PARTSTAT=ACCEPTED:mailto:room1@northwind.example
ATTENDEE;CN=Zed;PARTSTAT=DECLINED:mailto:zed@acme.example
END:VEVENT
BEGIN:VEVENT
UID:weekly-acme@northwind.example
RECURRENCE-ID;TZID=Europe/London:20260309T100000
DTSTART;TZID=Europe/London:20260309T100000
DTEND;TZID=Europe/London:20260309T103000
STATUS:CANCELLED
SUMMARY:Acme weekly
ORGANIZER;CN=Alice:mailto:alice@northwind.example
ATTENDEE;CN=Ann Lee;PARTSTAT=ACCEPTED:mailto:ann@acme.example
END:VEVENT
BEGIN:VEVENT
UID:standup@northwind.example
DTSTART:20260305T090000Z
DTEND:20260305T091500Z
SUMMARY:Standup
ORGANIZER:mailto:alice@northwind.example
ATTENDEE;PARTSTAT=ACCEPTED:mailto:dan@northwind.example
END:VEVENT
END:VCALENDAR
"""


def _sync(engine: Engine, path: Path, name: str, owner: str) -> None:
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    connector = IcsConnector(
        name, path, owner, since=datetime(2026, 1, 1, tzinfo=timezone.utc), now=lambda: NOW
    )
    result = sync_connector(
        session_factory(engine), connector, Policy.from_settings(settings, name, owner), kind="ics"
    )
    assert result.status == "ok", result.error


def test_meetings_are_logged_per_occurrence_once_across_calendars(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "alice.ics"
    path.write_text(CALENDAR)
    _sync(engine, path, "alice-cal", "alice@northwind.example")
    copy = tmp_path / "ann-copy.ics"
    copy.write_text(CALENDAR)
    _sync(engine, copy, "dan-cal", "dan@northwind.example")

    sessions = session_factory(engine)
    with sessions() as session:
        meetings = session.scalars(
            select(Interaction)
            .where(Interaction.kind == "meeting")
            .order_by(Interaction.occurred_at)
        ).all()
        # 4 weekly occurrences; the internal standup is not logged
        assert [m.occurred_at.date().isoformat() for m in meetings] == [
            "2026-03-02",
            "2026-03-09",
            "2026-03-16",
            "2026-03-23",
        ]
        assert [m.status for m in meetings] == ["active", "cancelled", "active", "active"]
        # London is UTC+0 until the clocks change on 29 March
        assert meetings[0].occurred_at.hour == 10
        sources = session.scalars(select(InteractionSource.connector)).all()
        assert sorted(set(sources)) == ["alice-cal", "dan-cal"] and len(sources) == 8
        emails = {
            (p.email, p.role, p.response_status)
            for p in session.scalars(
                select(InteractionParticipant).where(
                    InteractionParticipant.interaction_id == meetings[0].id
                )
            )
        }
        assert emails == {
            ("alice@northwind.example", "organizer", None),
            ("ann@acme.example", "attendee", "accepted"),
            ("zed@acme.example", "attendee", "declined"),
        }
        assert set(session.scalars(select(ContactEmail.email))) == {"ann@acme.example"}
        ann = session.scalar(select(Contact).join(ContactEmail))
        assert ann is not None
        assert ann.last_contacted_at == datetime(2026, 3, 23, 10, 0, tzinfo=timezone.utc)


INVITATION = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//crm-sync tests//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:weekly-acme@northwind.example
DTSTART;TZID=Europe/London:20260302T100000
DTEND;TZID=Europe/London:20260302T103000
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Acme weekly
ORGANIZER;CN=Alice:mailto:alice@northwind.example
ATTENDEE;CN=Ann Lee;PARTSTAT=NEEDS-ACTION:mailto:ann@acme.example
END:VEVENT
END:VCALENDAR
"""


def _invitation_mail() -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "Alice <alice@northwind.example>"
    message["To"] = "Ann Lee <ann@acme.example>"
    message["Subject"] = "Invitation: Acme weekly"
    message["Date"] = "Fri, 27 Feb 2026 09:00:00 +0000"
    message["Message-ID"] = "<invite-1@northwind.example>"
    message.set_content("You are invited.")
    message.add_attachment(
        INVITATION.encode(), maintype="text", subtype="calendar", params={"method": "REQUEST"}
    )
    return bytes(message)


def test_an_invitation_by_mail_logs_the_meetings_when_no_calendar_is_synced(
    engine: Engine,
) -> None:
    from connectors.memory import MemoryConnector
    from connectors.records import MailMessage

    owner = "alice@northwind.example"
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    mail = MemoryConnector("alice-imap", [MailMessage("uid-1", owner, _invitation_mail())])
    result = sync_connector(
        session_factory(engine),
        mail,
        Policy.from_settings(settings, "alice-imap", owner),
        kind="imap",
    )
    assert result.status == "ok" and result.logged == 1
    with session_factory(engine)() as session:
        keys = session.scalars(
            select(Interaction.dedupe_key).where(Interaction.kind == "meeting")
        ).all()
    assert len(keys) == 4
    assert all(k.startswith("weekly-acme@northwind.example/2026-03-") for k in keys)


def test_an_invitation_is_left_to_the_owners_synced_calendar(tmp_path: Path) -> None:
    from agent.pipeline.emails import plan_mail
    from agent.pipeline.filters import Skip
    from connectors.records import MailMessage

    owner = "alice@northwind.example"
    settings = parse_settings(
        {
            "agent": {"internal_domains": ["northwind.example"]},
            "connectors": [{"name": "cal", "kind": "ics", "account": owner, "path": str(tmp_path)}],
        },
        None,
    )
    outcome = plan_mail(
        MailMessage("uid-1", owner, _invitation_mail()),
        Policy.from_settings(settings, "alice-imap", owner),
    )
    assert isinstance(outcome, Skip) and outcome.reason == "calendar_notification"


def test_a_newer_revision_of_a_meeting_updates_it_and_a_stale_one_never_does(
    engine: Engine,
) -> None:
    from dataclasses import replace

    from connectors.memory import MemoryConnector
    from connectors.records import Address, Attendee, CalendarEvent

    owner = "alice@northwind.example"
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    start = datetime(2026, 4, 7, 10, tzinfo=timezone.utc)
    planned = CalendarEvent(
        source_id="cal/review/1",
        calendar="primary",
        owner=owner,
        uid="review@acme.example",
        original_start=start,
        start=start,
        end=start.replace(hour=11),
        summary="Quarterly review",
        organizer=Address(owner, "Alice"),
        attendees=(Attendee(Address("ann@acme.example", "Ann"), "accepted"),),
        updated=datetime(2026, 3, 1, tzinfo=timezone.utc),
    )
    moved = replace(
        planned,
        start=start.replace(hour=14),
        end=start.replace(hour=15),
        updated=datetime(2026, 3, 5, tzinfo=timezone.utc),
    )
    cancelled = replace(
        moved, status="cancelled", updated=datetime(2026, 3, 9, tzinfo=timezone.utc)
    )
    sessions = session_factory(engine)

    def sync(name: str, *events: CalendarEvent) -> None:
        connector = MemoryConnector(name, list(events))
        policy = Policy.from_settings(settings, name, owner)
        assert sync_connector(sessions, connector, policy, kind="ics").status == "ok"

    def stored() -> tuple[str, int]:
        with sessions() as session:
            meeting = session.scalar(select(Interaction))
            assert meeting is not None
            return meeting.status, meeting.occurred_at.hour

    sync("a", planned)
    assert stored() == ("active", 10)
    sync("b", moved)
    assert stored() == ("active", 14)
    sync("c", cancelled)
    assert stored() == ("cancelled", 14)
    sync("d", planned)  # an attendee's stale copy arrives last
    assert stored() == ("cancelled", 14)


def _occurrence(organizer: str | None, *attendees: tuple[str, bool]) -> CalendarEvent:
    start = datetime(2026, 4, 7, 10, tzinfo=timezone.utc)
    return CalendarEvent(
        source_id="cal/slot/1",
        calendar="primary",
        owner="alice@northwind.example",
        uid="slot@northwind.example",
        original_start=start,
        start=start,
        end=start.replace(hour=11),
        summary="Blocked",
        organizer=Address(organizer) if organizer else None,
        attendees=tuple(
            Attendee(Address(email), "accepted", is_resource=resource)
            for email, resource in attendees
        ),
    )


def _meeting_policy(**agent: object) -> Policy:
    settings = parse_settings(
        {
            "agent": {"internal_domains": ["northwind.example"], **agent},
            "privacy": {"never_log": ["*@mybank.example"]},
        },
        None,
    )
    return Policy.from_settings(settings, "cal", "alice@northwind.example")


@pytest.mark.parametrize("log_internal", [False, True])
def test_a_meeting_without_organizer_or_attendees_is_skipped_as_no_participants(
    log_internal: bool,
) -> None:
    outcome = plan_meeting(_occurrence(None), _meeting_policy(log_internal=log_internal))
    assert isinstance(outcome, Skip) and outcome.reason == "no_participants"


def test_a_meeting_whose_every_attendee_is_a_resource_is_skipped_as_no_participants() -> None:
    event = _occurrence(
        None, ("room1@northwind.example", True), ("projector@resources.example", True)
    )
    outcome = plan_meeting(event, _meeting_policy())
    assert isinstance(outcome, Skip) and outcome.reason == "no_participants"
    plan = plan_batch([event], _meeting_policy())
    assert dict(plan.skipped) == {"no_participants": 1} and plan.logged == 0


@pytest.mark.parametrize(
    ("organizer", "attendees", "reason"),
    [
        ("alice@northwind.example", [("room1@northwind.example", True)], "no_participants"),
        ("alice@northwind.example", [("dan@northwind.example", False)], "internal_only"),
        (None, [("s@mybank.example", False), ("room1@northwind.example", True)], "never_log"),
        ("alice@northwind.example", [("s@mybank.example", False)], "never_log"),
    ],
)
def test_a_meeting_with_participants_keeps_its_reason(
    organizer: str | None, attendees: list[tuple[str, bool]], reason: str
) -> None:
    outcome = plan_meeting(_occurrence(organizer, *attendees), _meeting_policy())
    assert isinstance(outcome, Skip) and outcome.reason == reason
