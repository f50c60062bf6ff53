"""RSVPs kept: an attendee's answer (iTIP REPLY) updates the meeting it names, never a new one.

Each test runs on SQLite and PostgreSQL. The meeting is logged first, from an
invitation by mail or an .ics file; the REPLY then comes by mail or as a file,
through the real pipeline and sync pass, and the participant's
``response_status`` is read back. A REPLY that names no logged meeting writes
nothing and is counted as ``rsvp_without_meeting``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline.batch import plan_batch
from agent.pipeline.emails import plan_mail
from agent.pipeline.planned import Answered
from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import SyncResult, sync_connector
from config import parse_settings
from connectors.ical.files import IcsConnector
from connectors.ical.parts import MAX_REPLY_ANSWERS
from connectors.memory import MemoryConnector
from connectors.records import Item, MailMessage
from storage.db import session_factory
from storage.models import ContactEmail, Interaction, InteractionParticipant, SyncState
from storage.sync_state import counters_of
from tests.support.icsbuilder import ics, write_ics

OWNER = "alice@northwind.example"
UID = "weekly-acme@northwind.example"
MAILBOX = "alice-imap"
NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)

SERIES = f"""UID:{UID}
DTSTAMP:20260227T090000Z
DTSTART;TZID=Europe/London:20260302T100000
DTEND;TZID=Europe/London:20260302T103000
RRULE:FREQ=WEEKLY;COUNT=4
SUMMARY:Acme weekly
ORGANIZER;CN=Alice:mailto:{OWNER}
ATTENDEE;CN=Ann Lee;PARTSTAT=NEEDS-ACTION:mailto:ann@acme.example
ATTENDEE;CN=Bob Ray;PARTSTAT=ACCEPTED:mailto:bob@acme.example"""
"""Four Mondays of March 2026 at 10:00 London time (GMT then: 10:00 UTC)."""


def _policy(connector: str = MAILBOX, **extra: object) -> Policy:
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}, **extra}, None)
    return Policy.from_settings(settings, connector, OWNER)


def _mail(sender: str, to: str, message_id: str, method: str, calendar: bytes) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = f"{method.title()}: Acme weekly"
    message["Date"] = "Sat, 28 Feb 2026 09:00:00 +0000"
    message["Message-ID"] = message_id
    message.set_content("See the attached calendar.")
    message.add_attachment(calendar, maintype="text", subtype="calendar", params={"method": method})
    return bytes(message)


def _invitation() -> bytes:
    calendar = ics(SERIES, preamble="METHOD:REQUEST\n")
    return _mail(
        f"Alice <{OWNER}>", "ann@acme.example", "<invite-1@northwind.example>", "REQUEST", calendar
    )


def _reply_calendar(
    partstat: str,
    *,
    attendee: str = "ann@acme.example",
    stamp: str = "20260228T090000Z",
    uid: str = UID,
    recurrence_id: str = "",
    organizer: str = OWNER,
) -> bytes:
    occurrence = f"RECURRENCE-ID;TZID=Europe/London:{recurrence_id}\n" if recurrence_id else ""
    return ics(
        f"UID:{uid}\n{occurrence}DTSTAMP:{stamp}\nSEQUENCE:0\nSUMMARY:Acme weekly\n"
        "DTSTART;TZID=Europe/London:20260302T100000\n"
        f"ORGANIZER:mailto:{organizer}\n"
        f"ATTENDEE;CN=Someone;PARTSTAT={partstat}:mailto:{attendee}",
        preamble="METHOD:REPLY\n",
    )


def _reply(source_id: str, partstat: str, **calendar: str) -> MailMessage:
    attendee = calendar.get("attendee", "ann@acme.example")
    raw = _mail(
        attendee,
        OWNER,
        f"<{source_id}@acme.example>",
        "REPLY",
        _reply_calendar(partstat, **calendar),
    )
    return MailMessage(source_id, OWNER, raw)


def _sync(sessions: sessionmaker[Session], name: str, *items: Item) -> SyncResult:
    result = sync_connector(
        sessions, MemoryConnector(name, list(items)), _policy(name), kind="imap", full=True
    )
    assert result.status == "ok", result.error
    return result


def _answers(session: Session, email: str) -> dict[str, str | None]:
    """Occurrence (dedupe key's start) -> the answer ``email`` gave, for every logged one."""
    rows = session.execute(
        select(Interaction.dedupe_key, InteractionParticipant.response_status)
        .join(InteractionParticipant)
        .where(InteractionParticipant.email == email)
    )
    return {key.rsplit("/", 1)[1][:10]: status for key, status in rows}


def _state(session: Session) -> tuple[int, list[tuple[object, ...]]]:
    """Every interaction counted and every participant row: what a REPLY may change."""
    interactions = session.scalar(select(func.count()).select_from(Interaction)) or 0
    participants = session.execute(
        select(
            InteractionParticipant.interaction_id,
            InteractionParticipant.email,
            InteractionParticipant.role,
            InteractionParticipant.response_status,
            InteractionParticipant.responded_at,
            InteractionParticipant.contact_id,
        ).order_by(InteractionParticipant.id)
    ).all()
    return interactions, [tuple(row) for row in participants]


def _skipped(session: Session, connector: str) -> dict[str, int]:
    return counters_of(session.get(SyncState, connector)).skipped


ALL = ["2026-03-02", "2026-03-09", "2026-03-16", "2026-03-23"]


def _logged(engine: Engine) -> sessionmaker[Session]:
    sessions = session_factory(engine)
    result = _sync(sessions, MAILBOX, MailMessage("uid-invite", OWNER, _invitation()))
    assert result.logged == 1
    with sessions() as session:
        assert _answers(session, "ann@acme.example") == dict.fromkeys(ALL, "needs_action")
    return sessions


def test_a_declining_reply_updates_every_occurrence_and_logs_nothing_new(engine: Engine) -> None:
    sessions = _logged(engine)
    with sessions() as session:
        interactions_before = session.scalar(select(func.count()).select_from(Interaction))

    result = _sync(sessions, MAILBOX, _reply("uid-reply", "DECLINED"))

    assert result.logged == 0 and result.skipped == {"calendar_notification": 1}
    with sessions() as session:
        assert _answers(session, "ann@acme.example") == dict.fromkeys(ALL, "declined")
        assert _answers(session, "bob@acme.example") == dict.fromkeys(ALL, "accepted")
        assert session.scalar(select(func.count()).select_from(Interaction)) == interactions_before
        assert session.scalar(select(func.count()).where(Interaction.kind == "email")) == 0
        assert "rsvp_without_meeting" not in _skipped(session, MAILBOX)


def test_an_invitation_and_its_reply_in_one_batch_keep_the_answer(engine: Engine) -> None:
    sessions = session_factory(engine)

    _sync(
        sessions,
        MAILBOX,
        _reply("uid-reply", "DECLINED"),
        MailMessage("uid-invite", OWNER, _invitation()),
        _reply("uid-again", "DECLINED"),
    )

    with sessions() as session:
        assert _answers(session, "ann@acme.example") == dict.fromkeys(ALL, "declined")
        # a batch's meetings are written before its answers look for them
        assert "rsvp_without_meeting" not in _skipped(session, MAILBOX)


def test_a_reply_for_one_occurrence_changes_only_that_one(engine: Engine) -> None:
    sessions = _logged(engine)

    _sync(sessions, MAILBOX, _reply("uid-reply", "DECLINED", recurrence_id="20260309T100000"))

    with sessions() as session:
        assert _answers(session, "ann@acme.example") == {
            **dict.fromkeys(ALL, "needs_action"),
            "2026-03-09": "declined",
        }


def test_a_reply_naming_no_logged_meeting_is_skipped_and_writes_nothing(engine: Engine) -> None:
    sessions = _logged(engine)
    with sessions() as session:
        before = _state(session)

    _sync(
        sessions,
        MAILBOX,
        _reply("uid-unknown", "DECLINED", uid="unknown@northwind.example"),
        _reply("uid-other-organizer", "DECLINED", organizer="mallory@evil.example"),
        _reply("uid-no-occurrence", "DECLINED", recurrence_id="20260310T100000"),
    )

    with sessions() as session:
        assert _state(session) == before
        assert _skipped(session, MAILBOX) == {"calendar_notification": 3, "rsvp_without_meeting": 3}


def test_the_same_reply_twice_leaves_the_same_state(engine: Engine) -> None:
    sessions = _logged(engine)
    reply = _reply("uid-reply", "DECLINED")
    _sync(sessions, MAILBOX, reply)
    with sessions() as session:
        once = _state(session)

    _sync(sessions, MAILBOX, reply)  # a full resync reads it again
    _sync(sessions, "bob-imap", reply)  # and another agent holds a copy

    with sessions() as session:
        assert _state(session) == once


def test_an_older_reply_after_a_newer_one_does_not_win(engine: Engine) -> None:
    sessions = _logged(engine)

    _sync(sessions, MAILBOX, _reply("uid-new", "ACCEPTED", stamp="20260301T090000Z"))
    _sync(sessions, "bob-imap", _reply("uid-old", "DECLINED", stamp="20260228T090000Z"))
    # nor does the invitation, stamped before either answer, read again by another agent
    _sync(sessions, "carol-imap", MailMessage("uid-invite", OWNER, _invitation()))

    with sessions() as session:
        assert _answers(session, "ann@acme.example") == dict.fromkeys(ALL, "accepted")


def test_newer_and_older_replies_in_one_batch_keep_the_newer(engine: Engine) -> None:
    sessions = _logged(engine)

    _sync(
        sessions,
        MAILBOX,
        _reply("uid-new", "TENTATIVE", stamp="20260301T090000Z"),
        _reply("uid-old", "DECLINED", stamp="20260228T090000Z"),
    )

    with sessions() as session:
        assert _answers(session, "ann@acme.example") == dict.fromkeys(ALL, "tentative")


def test_an_uninvited_attendee_who_answers_is_a_participant_but_no_contact(
    engine: Engine,
) -> None:
    sessions = _logged(engine)

    _sync(sessions, MAILBOX, _reply("uid-reply", "ACCEPTED", attendee="carol@acme.example"))

    with sessions() as session:
        assert _answers(session, "carol@acme.example") == dict.fromkeys(ALL, "accepted")
        emails = set(session.scalars(select(ContactEmail.email)))
    assert "carol@acme.example" not in emails


def test_a_reply_file_updates_the_meeting_from_the_calendar_file(
    engine: Engine, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    folder = tmp_path / "calendar"
    write_ics(folder / "acme.ics", ics(SERIES))
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def sync() -> SyncResult:
        connector = IcsConnector("cal", folder, OWNER, since=since, now=lambda: NOW)
        result = sync_connector(sessions, connector, _policy("cal"), kind="ics")
        assert result.status == "ok", result.error
        return result

    assert sync().logged == 4
    write_ics(
        folder / "ann-reply.ics", _reply_calendar("DECLINED", recurrence_id="20260316T100000")
    )
    write_ics(folder / "stray-reply.ics", _reply_calendar("DECLINED", uid="gone@northwind.example"))
    result = sync()
    sync()  # nothing changed: the answers are not read again

    assert result.logged == 0
    with sessions() as session:
        assert _answers(session, "ann@acme.example") == {
            **dict.fromkeys(ALL, "needs_action"),
            "2026-03-16": "declined",
        }
        assert session.scalar(select(func.count()).select_from(Interaction)) == 4
        assert _skipped(session, "cal") == {"rsvp_without_meeting": 1}


def test_a_reply_by_mail_carries_its_answers_and_is_bounded() -> None:
    attendees = "\n".join(
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:p{n}@acme.example" for n in range(MAX_REPLY_ANSWERS + 5)
    )
    calendar = ics(
        f"UID:{UID}\nDTSTAMP:20260228T090000Z\nORGANIZER:mailto:{OWNER}\n{attendees}",
        preamble="METHOD:REPLY\n",
    )
    message = MailMessage(
        "uid-many", OWNER, _mail("p0@acme.example", OWNER, "<many@acme.example>", "REPLY", calendar)
    )

    outcome = plan_mail(message, _policy())
    plan = plan_batch([message], _policy())

    assert isinstance(outcome, Answered) and outcome.reason == "calendar_notification"
    assert len(outcome.responses) == MAX_REPLY_ANSWERS
    assert {r.recurrence_id for r in outcome.responses} == {None}
    assert [(n.reason, n.source_id) for n in plan.limited] == [("replies_capped", "uid-many")]
    assert len(plan.write.responses) == MAX_REPLY_ANSWERS and plan.write.interactions == []


def test_a_reply_from_a_never_log_address_changes_nothing() -> None:
    policy = _policy(privacy={"never_log": ["ann@acme.example"]})

    plan = plan_batch([_reply("uid-reply", "DECLINED")], policy)

    assert plan.write.responses == [] and plan.write.interactions == []
