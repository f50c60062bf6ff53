"""Verify and invitations: an invitation email is logged as the meetings it announces, under
their ids, and verify says so instead of "missing" or "logged but no longer there"."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine

from agent.pipeline.policy import Policy
from agent.runtime.reconcile import derived_from, verify_connector
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.mbox import MboxConnector
from storage.db import session_factory
from tests.support.cli import run_cli, upgrade_database, write_config
from tests.support.mailbuilder import message, write_mbox

ME = "alice@northwind.example"
SETTINGS = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
POLICY = Policy.from_settings(SETTINGS, "alice-mail", ME)

INVITATION = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//crm-sync tests//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:weekly-acme@acme.example
DTSTART:20260302T100000Z
DTEND:20260302T103000Z
RRULE:FREQ=WEEKLY;COUNT=3
SUMMARY:Acme weekly
ORGANIZER;CN=Ann Lee:mailto:ann@acme.example
ATTENDEE;CN=Alice;PARTSTAT=NEEDS-ACTION:mailto:alice@northwind.example
END:VEVENT
END:VCALENDAR
"""


def _invitation() -> bytes:
    mail = EmailMessage()
    mail["From"] = "Ann Lee <ann@acme.example>"
    mail["To"] = ME
    mail["Subject"] = "Invitation: Acme weekly"
    mail["Date"] = "Fri, 27 Feb 2026 09:00:00 +0000"
    mail["Message-ID"] = "<invite-1@acme.example>"
    mail.set_content("You are invited.")
    mail.add_attachment(
        INVITATION.encode(), maintype="text", subtype="calendar", params={"method": "REQUEST"}
    )
    return bytes(mail)


def _mailbox(tmp_path: Path) -> Path:
    customer = message(
        sender="Bob <bob@acme.example>",
        to=[ME],
        subject="Order",
        message_id="<order-1@acme.example>",
    )
    return write_mbox(tmp_path / "a.mbox", [customer, _invitation()])


def test_an_invitation_logged_as_its_meetings_is_accounted_for(
    engine: Engine, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    connector = MboxConnector("alice-mail", _mailbox(tmp_path), ME)
    result = sync_connector(sessions, connector, POLICY, kind="mbox")
    assert result.status == "ok", result.error

    report = verify_connector(sessions, connector, POLICY)

    assert (report.held, report.logged, report.announced, report.extra) == (2, 1, 1, 0)
    assert report.missing == [] and report.unexplained == 0


def test_verify_on_the_command_line_names_the_invitation(tmp_path: Path) -> None:
    mbox = _mailbox(tmp_path)
    write_config(
        tmp_path,
        body='[agent]\ninternal_domains = ["northwind.example"]\n'
        f'[[connectors]]\nname = "alice-mail"\nkind = "mbox"\naccount = "{ME}"\npath = "{mbox}"\n',
    )
    upgrade_database(tmp_path)
    assert run_cli("sync", cwd=tmp_path).returncode == 0

    shown = run_cli("verify", "alice-mail", cwd=tmp_path)
    as_json = json.loads(run_cli("verify", "alice-mail", "--json", cwd=tmp_path).stdout)

    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "1 invitation logged as the meetings announced" in " ".join(shown.stdout.split())
    assert "no longer there" not in shown.stdout
    assert (as_json["announced"], as_json["extra"], as_json["unexplained"]) == (1, 0, 0)


def test_derived_ids_are_found_by_every_slash() -> None:
    held = {"INBOX/7/12", "m1"}
    logged = {
        "INBOX/7/12/uid/with/slash@x/2026-03-02T10:00:00+00:00",
        "m1/u@x/2026-03-02T10:00:00+00:00",
        "INBOX/7/120/u@x/2026",
        "m10/u@x/2026",
    }

    assert derived_from(logged, held) == {
        "INBOX/7/12/uid/with/slash@x/2026-03-02T10:00:00+00:00": "INBOX/7/12",
        "m1/u@x/2026-03-02T10:00:00+00:00": "m1",
    }
