"""The admin's first steps, through the real entry point on both databases."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Engine

from storage.db import head_revision, make_engine, session_factory, upgrade
from storage.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    SyncState,
)
from tests.support.cli import run_cli


def test_init_upgrade_status(tmp_path: Path, db_url: str) -> None:
    env = {"CRM_SYNC_DATABASE_URL": db_url}
    init = run_cli("init", cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "crm-sync.toml").exists()

    before = run_cli("status", cwd=tmp_path, env=env)
    assert before.returncode == 1
    assert "crm-sync db upgrade" in before.stderr

    upgraded = run_cli("db", "upgrade", cwd=tmp_path, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"revision {head_revision()}" in upgraded.stdout

    status = run_cli("status", "--json", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == []


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    assert run_cli("init", cwd=tmp_path).returncode == 0
    again = run_cli("init", cwd=tmp_path)
    assert again.returncode == 2
    assert "exists" in again.stderr
    assert run_cli("init", "--force", cwd=tmp_path).returncode == 0


def _seed(engine: Engine) -> None:
    sessions = session_factory(engine)
    with sessions() as session, session.begin():
        acme = Company(name="Acme", domains=[CompanyDomain(domain="acme.example")])
        ann = Contact(display_name="Ann Lee", title="CTO", company=acme)
        ann.emails.append(ContactEmail(email="ann@acme.example"))
        bob = Contact(display_name="Bob Roe")
        bob.emails.append(ContactEmail(email="bob@gmail.com"))
        session.add_all([ann, bob])
        session.flush()
        for day, subject in ((3, "Pricing"), (9, "Contract draft")):
            interaction = Interaction(
                kind="email",
                dedupe_key=f"{subject}@acme.example",
                occurred_at=datetime(2026, 3, day, tzinfo=timezone.utc),
                subject=subject,
                summary=f"About {subject.lower()}",
                direction="inbound",
            )
            interaction.participants.append(
                InteractionParticipant(contact_id=ann.id, email="ann@acme.example", role="from")
            )
            session.add(interaction)
        ann.last_contacted_at = datetime(2026, 3, 9, tzinfo=timezone.utc)
        session.add(
            SyncState(
                connector="ann-mail",
                kind="mbox",
                status="ok",
                last_success_at=datetime(2026, 3, 9, tzinfo=timezone.utc),
                counters={"items": 2},
            )
        )


def test_contacts_list_and_show(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    _seed(engine)
    engine.dispose()
    env = {"CRM_SYNC_DATABASE_URL": db_url}

    listed = run_cli("contacts", "list", "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == ["Ann Lee", "Bob Roe"]
    assert rows[0]["interactions"] == 2 and rows[0]["company"] == "Acme"

    only_acme = json.loads(
        run_cli(
            "contacts", "list", "--company", "ACME.example", "--json", cwd=tmp_path, env=env
        ).stdout
    )
    assert [r["name"] for r in only_acme] == ["Ann Lee"]

    shown = run_cli("contacts", "show", "Ann@Acme.example", "--json", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["emails"] == ["ann@acme.example"]
    assert [i["subject"] for i in record["timeline"]] == ["Contract draft", "Pricing"]

    folded = run_cli(
        "contacts", "show", "B.o.b+crm@GoogleMail.com", "--json", cwd=tmp_path, env=env
    )
    assert json.loads(folded.stdout)["emails"] == ["bob@gmail.com"]

    table = run_cli("contacts", "show", "ann@acme.example", cwd=tmp_path, env=env)
    assert "Contract draft" in table.stdout

    missing = run_cli("contacts", "show", "nobody@acme.example", cwd=tmp_path, env=env)
    assert missing.returncode == 1
    assert "no contact" in missing.stderr

    status = json.loads(run_cli("status", "--json", cwd=tmp_path, env=env).stdout)
    assert [(s["connector"], s["state"], s["items"]) for s in status] == [
        ("ann-mail", "removed", 2)
    ]
