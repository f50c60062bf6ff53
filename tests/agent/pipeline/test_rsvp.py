"""RSVPs: declines are kept on the record, answers (iTIP REPLY) are never meetings, and an
organizer behind a relay is the person the data names."""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from agent.pipeline.emails import plan_mail
from agent.pipeline.filters import Skip
from agent.pipeline.meetings import plan_meeting
from agent.pipeline.planned import Planned
from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.ical.files import IcsConnector
from connectors.ical.parts import parse_calendar, to_calendar_event
from connectors.memory import MemoryConnector
from connectors.records import Address, Attendee, CalendarEvent, CalendarReply, MailMessage
from storage.db import session_factory
from storage.models import Contact, ContactEmail, Interaction, InteractionParticipant
from tests.support.icsbuilder import ics, write_ics

OWNER = "alice@northwind.example"
START = datetime(2026, 3, 2, 10, tzinfo=timezone.utc)


def _policy(connector: str = "cal", **agent: object) -> Policy:
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"], **agent}}, None)
    return Policy.from_settings(settings, connector, OWNER)


def _event(
    *attendees: Attendee, organizer: str | None = OWNER, start: datetime = START
) -> CalendarEvent:
    return CalendarEvent(
        source_id=f"cal/review/{start.isoformat()}",
        calendar="primary",
        owner=OWNER,
        uid="review@northwind.example",
        original_start=start,
        start=start,
        end=start.replace(hour=11),
        summary="Review",
        organizer=Address(organizer) if organizer else None,
        attendees=attendees,
    )


def _accepted(email: str) -> Attendee:
    return Attendee(Address(email), "accepted")


def _declined(email: str) -> Attendee:
    return Attendee(Address(email), "declined")


def test_a_declined_outsider_is_a_participant_with_the_answer_but_no_contact() -> None:
    outcome = plan_meeting(
        _event(_accepted("ann@acme.example"), _declined("zed@acme.example")), _policy()
    )

    assert isinstance(outcome, Planned)
    assert {(p.email, p.role, p.response_status) for p in outcome.record.participants} == {
        (OWNER, "organizer", None),
        ("ann@acme.example", "attendee", "accepted"),
        ("zed@acme.example", "attendee", "declined"),
    }
    assert [c.email for c in outcome.new_contacts] == ["ann@acme.example"]
    assert outcome.record.direction == "outbound"


def test_declines_alone_are_no_meeting_and_no_contact() -> None:
    outcome = plan_meeting(
        _event(_declined("zed@acme.example"), organizer=None), _policy(log_internal=True)
    )

    assert isinstance(outcome, Skip) and outcome.reason == "no_participants"


@pytest.mark.parametrize("log_internal", [False, True])
def test_a_meeting_of_the_owner_alone_is_no_participants(log_internal: bool) -> None:
    alone = _event()
    with_self = _event(_accepted(OWNER))
    with_room = _event(Attendee(Address("room@northwind.example"), "accepted", is_resource=True))
    declined = _event(_declined("zed@acme.example"))

    for event in (alone, with_self, with_room, declined):
        outcome = plan_meeting(event, _policy(log_internal=log_internal))
        assert isinstance(outcome, Skip) and outcome.reason == "no_participants", event


def test_a_decline_is_stored_and_never_makes_a_contact_nor_a_last_contact(engine: Engine) -> None:
    earlier = START.replace(month=2)
    sessions = session_factory(engine)
    meetings = {
        "cal-feb": _event(_accepted("zed@acme.example"), start=earlier),
        "cal-mar": _event(_accepted("ann@acme.example"), _declined("zed@acme.example")),
    }
    for name, event in meetings.items():
        result = sync_connector(sessions, MemoryConnector(name, [event]), _policy(name), kind="ics")
        assert result.status == "ok", result.error

    with sessions() as session:
        rows = {
            (p.email, p.response_status)
            for p in session.scalars(
                select(InteractionParticipant)
                .join(Interaction)
                .where(Interaction.dedupe_key == f"review@northwind.example/{START.isoformat()}")
            )
        }
        zed = session.scalar(
            select(Contact).join(ContactEmail).where(ContactEmail.email == "zed@acme.example")
        )
        emails = set(session.scalars(select(ContactEmail.email)))
    assert rows == {
        (OWNER, None),
        ("ann@acme.example", "accepted"),
        ("zed@acme.example", "declined"),
    }
    assert emails == {"ann@acme.example", "zed@acme.example"}  # zed from the earlier meeting
    assert zed is not None and zed.last_contacted_at == earlier


REPLY = """METHOD:REPLY
"""


def _reply_calendar() -> bytes:
    return ics(
        "UID:review@northwind.example\nDTSTART:20260302T100000Z\nSEQUENCE:0\n"
        "ORGANIZER:mailto:alice@northwind.example\n"
        "ATTENDEE;PARTSTAT=DECLINED:mailto:zed@acme.example",
        preamble=REPLY,
    )


def test_a_reply_file_is_never_a_meeting(tmp_path: Path) -> None:
    write_ics(tmp_path / "reply.ics", _reply_calendar())
    source = IcsConnector(
        "cal",
        tmp_path,
        OWNER,
        since=datetime(2026, 1, 1, tzinfo=timezone.utc),
        now=lambda: START,
    )

    items = [item for batch in source.fetch(None) for item in batch.items]

    # the answer, to record on its meeting (tests/agent/pipeline/test_rsvp_replies.py)
    assert [(type(item), item.source_id) for item in items] == [
        (CalendarReply, "reply.ics/review@northwind.example/series")
    ]


def test_a_reply_by_mail_is_skipped_never_logged_as_a_meeting() -> None:
    message = EmailMessage()
    message["From"] = "Zed <zed@acme.example>"
    message["To"] = OWNER
    message["Subject"] = "Declined: Review"
    message["Date"] = "Fri, 27 Feb 2026 09:00:00 +0000"
    message["Message-ID"] = "<reply-1@acme.example>"
    message.set_content("Zed has declined.")
    message.add_attachment(
        _reply_calendar(), maintype="text", subtype="calendar", params={"method": "REPLY"}
    )

    outcome = plan_mail(MailMessage("uid-1", OWNER, bytes(message)), _policy())

    assert isinstance(outcome, Skip) and outcome.reason == "calendar_notification"
    assert "REPLY" in outcome.detail


def _organizer(line: str) -> Address | None:
    calendar = parse_calendar(ics(f"UID:x@y\nDTSTART:20260302T100000Z\n{line}"))
    [vevent] = calendar.walk("VEVENT")
    event = to_calendar_event(vevent, calendar="c", owner=OWNER, source_prefix="c")
    return event.organizer


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "ORGANIZER;CN=John Doe;EMAIL=john@icloud.com:mailto:2_abcdef@imip.me.com",
            Address("john@icloud.com", "John Doe"),
        ),
        ("ORGANIZER;CN=John Doe:mailto:2_abcdef@imip.me.com", None),
        (
            'ORGANIZER;CN=Jo;SENT-BY="mailto:jo@acme.example":mailto:noreply@email.apple.com',
            Address("jo@acme.example", "Jo"),
        ),
        (
            'ORGANIZER;CN=Team;SENT-BY="mailto:ann@acme.example":'
            "mailto:c_123@group.calendar.google.com",
            Address("ann@acme.example", "Team"),
        ),
        (
            "ORGANIZER;CN=Bob:mailto:IMCEASMTP-bob+40acme+2Eexample@exchange.northwind.example",
            Address("bob@acme.example", "Bob"),
        ),
        (
            'ORGANIZER;CN=Boss;SENT-BY="mailto:pa@acme.example":mailto:boss@acme.example',
            Address("boss@acme.example", "Boss"),
        ),
        ("ORGANIZER;CN=Ext:invalid:nomail", None),
    ],
    ids=[
        "icloud-email",
        "icloud-unknown",
        "apple-sent-by",
        "google-group",
        "exchange",
        "sent-by",
        "no-address",
    ],
)
def test_an_organizer_behind_a_relay_is_the_person(line: str, expected: Address | None) -> None:
    assert _organizer(line) == expected
