"""The small traps an admin met: counts in the wrong number, a verify that called a right
command wrong, conflict hints that did not run as printed, and addresses cut at 80 columns.

Each runs the command a person would, in a subprocess, with a config file.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine

from agent.cli.contacts import _print_outcome
from storage import audit, edits
from storage.db import make_engine, session_factory, transaction, upgrade
from storage.ingest import BatchWrite, Fact, NewContact, write_batch
from storage.models import Company, CompanyDomain, Conflict, Contact, ContactEmail
from tests.support.cli import run_cli
from tests.support.icsbuilder import ics, write_ics
from tests.support.mailbuilder import message, write_mbox

ME = "alice@northwind.io"
ANN = "ann@acme.io"


def _config(folder: Path, connectors: str = "") -> Path:
    config = folder / "crm-sync.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///crm.db"\n\n'
        '[agent]\ninternal_domains = ["northwind.io"]\n\n' + connectors
    )
    return config


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """The database the config in ``tmp_path`` names, at the current schema."""
    _config(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


# -------------------------------------------------------------------- singular and plural


def _mbox_connector(folder: Path, recipients: list[str]) -> str:
    mail = [
        message(sender=ME, to=[r], message_id=f"<m{n}@northwind.io>")
        for n, r in enumerate(recipients)
    ]
    mbox = write_mbox(folder / "sent.mbox", mail)
    return f'[[connectors]]\nname = "alice"\nkind = "mbox"\naccount = "{ME}"\npath = "{mbox}"\n'


@pytest.mark.parametrize(
    ("recipients", "dry_run", "real_run"),
    [
        ([ANN], "  would create 1 contact:", "  created 1 contact and 1 company"),
        (
            [ANN, "bo@globex.io"],
            "  would create 2 contacts:",
            "  created 2 contacts and 2 companies",
        ),
    ],
    ids=["one", "two"],
)
def test_the_sync_summary_counts_in_the_right_number(
    tmp_path: Path, engine: Engine, recipients: list[str], dry_run: str, real_run: str
) -> None:
    _config(tmp_path, _mbox_connector(tmp_path, recipients))
    dry = run_cli("sync", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry_run in dry.stdout.splitlines()
    done = run_cli("sync", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert real_run in done.stdout.splitlines()


# ------------------------------------------------------------------------------ verify


def test_verify_says_in_one_line_that_a_calendar_cannot_be_verified(
    tmp_path: Path, engine: Engine
) -> None:
    calendar = tmp_path / "team.ics"
    write_ics(calendar, ics())
    _config(
        tmp_path,
        f'[[connectors]]\nname = "team-cal"\nkind = "ics"\naccount = "{ME}"\npath = "{calendar}"\n',
    )
    result = run_cli("verify", "team-cal", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "team-cal (ics) cannot be verified: its provider gives no inventory; "
        "`crm-sync status` shows its health"
    ]
    as_json = json.loads(run_cli("verify", "team-cal", "--json", cwd=tmp_path).stdout)
    assert as_json == {
        "connector": "team-cal",
        "kind": "ics",
        "verifiable": False,
        "reason": "its provider gives no inventory",
    }
    helped = run_cli("verify", "--help", cwd=tmp_path)
    assert "exits with status 0" in " ".join(helped.stdout.split())


# --------------------------------------------------------------------------- conflicts


def _agent_saw_ann(engine: Engine) -> None:
    fact = Fact(ANN, "title", "Engineer", "alice", datetime(2025, 1, 1, tzinfo=timezone.utc))
    with transaction(session_factory(engine)) as session:
        write_batch(
            session,
            BatchWrite(new_contacts=[NewContact(ANN, "acme.io", "Acme")], facts=[fact]),
            propagate_deletes=False,
            actor=audit.connector("alice"),
        )


def _open_conflict(engine: Engine, field: str, first: str, second: str) -> edits.EditOutcome:
    """Carol and Bob edit ``field`` from the same version; Bob's write comes second."""
    sessions = session_factory(engine)
    with sessions() as session:
        carol_saw, bob_saw = edits.snapshot(session, ANN), edits.snapshot(session, ANN)
    edits.set_fields(sessions, ANN, {field: first}, user="carol", base=carol_saw)
    return edits.set_fields(sessions, ANN, {field: second}, user="bob", base=bob_saw)


def _printed_commands(text: str) -> list[str]:
    return re.findall(r"`(crm-sync [^`]+)`", text)


def _run_printed(command: str, cwd: Path) -> None:
    words = shlex.split(command)
    assert words[0] == "crm-sync"
    result = run_cli(*words[1:], cwd=cwd)
    assert result.returncode == 0, f"{command}: {result.stderr}"


def _status(engine: Engine, conflict_id: int) -> tuple[str, str | None]:
    with session_factory(engine)() as session:
        conflict = session.get(Conflict, conflict_id)
        assert conflict is not None
        return conflict.status, conflict.resolution


def test_every_conflict_hint_is_a_command_that_runs_as_printed(
    tmp_path: Path, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    _agent_saw_ann(engine)
    title = _open_conflict(engine, "title", "CTO", "VP").conflicts[0].id
    phone = _open_conflict(engine, "phone", "+1 555 0100", "+1 555 0199")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    shown = run_cli("--config", "../crm-sync.toml", "contacts", "show", ANN, cwd=elsewhere)
    assert shown.returncode == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if f"conflict {title}:" in line)
    keep, take = _printed_commands(line)
    assert keep == f"crm-sync --config ../crm-sync.toml conflicts resolve {title} --keep manual"
    assert take == f"crm-sync --config ../crm-sync.toml conflicts resolve {title} --keep latest"
    assert "keeps 'CTO'" in line and "takes 'VP'" in line
    _run_printed(take, elsewhere)
    assert _status(engine, title) == ("resolved", "keep latest")

    _print_outcome(phone, None, dry_run=False, quiet_unchanged=False)
    set_line = capsys.readouterr().out
    keep, _ = _printed_commands(set_line)
    assert keep == f"crm-sync conflicts resolve {phone.conflicts[0].id} --keep manual"
    _run_printed(keep, tmp_path)
    assert _status(engine, phone.conflicts[0].id) == ("resolved", "keep manual")

    third = _open_conflict(engine, "title", "CEO", "Founder").conflicts[0].id
    listed = run_cli("conflicts", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    hint = listed.stdout.splitlines()[-1]
    assert hint.startswith(f"to decide conflict {third}: `crm-sync conflicts resolve {third} ")
    _run_printed(_printed_commands(hint)[1], tmp_path)
    assert _status(engine, third) == ("resolved", "keep latest")
    assert run_cli("conflicts", "list", cwd=tmp_path).stdout.strip() == "no open conflicts"


# ---------------------------------------------------------------------------- contacts

LONG = "margaret.featherstonehaugh-ashby@international-logistics.io"
MARGARET = "Margaret Featherstonehaugh-Ashby"


def _seed_people(engine: Engine, margarets: str = LONG) -> dict[str, int]:
    """Four people: two Ann Lees, and Margaret at ``margarets`` address (and another)."""
    people = [
        ("Ann Lee", [ANN], "Acme", "acme.io", "CTO", 1),
        ("Ann Leeds", ["ann@globex.io"], "Globex", "globex.io", None, 2),
        (MARGARET, [margarets, "mfa@il.io"], "International Logistics",
         "international-logistics.io", "Head of Procurement and Vendor Relations", 3),
        ("Bob Roe", ["bob@initech.io"], None, None, None, 4),
    ]  # fmt: skip
    ids: dict[str, int] = {}
    with session_factory(engine)() as session, session.begin():
        for name, emails, company, domain, title, days in people:
            contact = Contact(
                display_name=name,
                title=title,
                last_contacted_at=datetime(2026, 3, 1, tzinfo=timezone.utc) - timedelta(days=days),
            )
            if company:
                contact.company = Company(name=company, domains=[CompanyDomain(domain=domain)])
            contact.emails.extend(ContactEmail(email=e) for e in emails)
            session.add(contact)
            session.flush()
            ids[name] = contact.id
    return ids


@pytest.mark.parametrize(
    ("columns", "long_address", "shown"),
    [
        (80, False, ["id", "name", "address", "company", "last contacted"]),
        (80, True, ["id", "name", "address"]),
        (200, True, ["id", "name", "address", "company", "last contacted", "interactions",
                     "title"]),
    ],
    ids=["80-columns", "80-columns-and-a-very-long-address", "200-columns"],
)  # fmt: skip
def test_contacts_list_fits_the_terminal_and_never_cuts_an_address(
    tmp_path: Path, engine: Engine, columns: int, long_address: bool, shown: list[str]
) -> None:
    ids = _seed_people(engine, LONG if long_address else "mfa@international-logistics.io")
    listed = run_cli("contacts", "list", cwd=tmp_path, env={"COLUMNS": str(columns)})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert all(len(line.rstrip()) <= columns for line in lines), listed.stdout
    assert re.split(r"\s{2,}", lines[0].strip()) == shown
    rows = {line.split()[0]: line for line in lines[1:] if line.split()[0].isdigit()}
    assert rows.keys() == {str(i) for i in ids.values()}
    for name, address in (("Ann Lee", ANN), ("Bob Roe", "bob@initech.io"), (MARGARET, LONG)):
        if address == LONG and not long_address:
            address = "mfa@international-logistics.io"
        assert f"  {address}" in rows[str(ids[name])], listed.stdout
    if columns == 200:
        assert MARGARET in rows[str(ids[MARGARET])]
        assert "Head of Procurement and Vendor Relations" in rows[str(ids[MARGARET])]
    print(f"\n--- contacts list at {columns} columns\n{listed.stdout}")


def test_contacts_show_takes_an_address_an_id_or_a_name(tmp_path: Path, engine: Engine) -> None:
    ids = _seed_people(engine)
    margaret = ids[MARGARET]
    for ref in (LONG, "MFA@il.io", str(margaret), f"#{margaret}", "featherstonehaugh"):
        shown = run_cli("contacts", "show", ref, "--json", cwd=tmp_path)
        assert shown.returncode == 0, (ref, shown.stderr)
        assert json.loads(shown.stdout)["id"] == margaret, ref

    exact = run_cli("contacts", "show", "ann lee", "--json", cwd=tmp_path)
    assert json.loads(exact.stdout)["id"] == ids["Ann Lee"], "an exact name beats a longer one"

    several = run_cli("contacts", "show", "Ann", cwd=tmp_path)
    assert several.returncode == 1
    first, *candidates = several.stderr.splitlines()
    assert first == (
        f"error: 2 contacts are named like 'Ann'; give one's id: "
        f"`crm-sync contacts show {ids['Ann Lee']}`"
    )
    assert [c.split()[0] for c in candidates] == [str(ids["Ann Lee"]), str(ids["Ann Leeds"])]
    assert "ann@globex.io" in candidates[1] and "Globex" in candidates[1]

    for ref, expected in (
        ("nobody@acme.io", "error: no contact with the address nobody@acme.io"),
        ("9999", "error: no contact with the id 9999"),
        ("Zed", "error: no contact is named like 'Zed'"),
    ):
        missing = run_cli("contacts", "show", ref, cwd=tmp_path)
        assert missing.returncode == 1 and missing.stderr.startswith(expected), missing.stderr
