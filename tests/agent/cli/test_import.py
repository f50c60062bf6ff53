"""`crm-sync import mbox` and `crm-sync sync --dry-run`, as an admin runs them."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from storage.db import make_engine
from storage.models import CONTRACT_TABLES
from tests.support.cli import run_cli, upgrade_database, write_config
from tests.support.mailbuilder import message, write_mbox

ME = "alice@northwind.example"
MAIL = [
    message(sender=ME, to=["Ann Lee <ann@acme.example>"], message_id="<a1@x>", subject="Offer"),
    message(sender="Ann Lee <ann@acme.example>", to=[ME], message_id="<a2@x>", subject="Re: Offer"),
    message(
        sender="news@shop.example", to=[ME], headers={"Precedence": "bulk"}, message_id="<n@x>"
    ),
]


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with engine.connect() as connection:
        counts = {
            t: int(connection.execute(text(f"SELECT count(*) FROM {t}")).scalar() or 0)
            for t in sorted(CONTRACT_TABLES)
        }
    engine.dispose()
    return counts


def test_a_second_import_of_the_same_mbox_adds_nothing(tmp_path: Path, db_url: str) -> None:
    mbox = write_mbox(tmp_path / "takeout.mbox", MAIL)
    env = {"CRM_SYNC_DATABASE_URL": db_url}
    write_config(tmp_path)
    upgrade_database(tmp_path, env=env)
    first = run_cli("import", "mbox", str(mbox), "--mailbox", ME, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "logged 2 (2 new)" in first.stdout
    assert "automated_bulk" in first.stdout
    before = _counts(db_url)
    assert before["interactions"] == 2 and before["contacts"] == 1

    second = run_cli("import", "mbox", str(mbox), "--mailbox", ME, cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert _counts(db_url) == before

    listed = json.loads(run_cli("contacts", "list", "--json", cwd=tmp_path, env=env).stdout)
    assert [(c["name"], c["interactions"]) for c in listed] == [("Ann Lee", 2)]


def test_sync_dry_run_shows_what_would_happen_and_writes_nothing(tmp_path: Path) -> None:
    mbox = write_mbox(tmp_path / "mail.mbox", MAIL)
    (tmp_path / "crm-sync.toml").write_text(
        '[agent]\ninternal_domains = ["northwind.example"]\n'
        f'[[connectors]]\nname = "alice"\nkind = "mbox"\naccount = "{ME}"\npath = "{mbox}"\n'
    )
    upgrade_database(tmp_path)
    result = run_cli("sync", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "would log 2" in result.stdout
    assert "ann@acme.example" in result.stdout
    assert "automated_bulk" in result.stdout
    assert _counts(f"sqlite:///{tmp_path / 'crm-sync.db'}")["interactions"] == 0

    unknown = run_cli("sync", "--connector", "bob", cwd=tmp_path)
    assert unknown.returncode == 2 and "no connector named bob" in unknown.stderr

    done = run_cli("sync", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    skipped = json.loads(run_cli("status", "--skipped", "--json", cwd=tmp_path).stdout)
    assert skipped == [
        {"connector": "alice", "outcome": "skipped", "reason": "automated_bulk", "count": 1}
    ]


def test_sync_waits_its_turn_while_another_agent_holds_the_connector(tmp_path: Path) -> None:
    from datetime import timedelta

    from storage import leases
    from storage.db import session_factory, upgrade

    mbox = write_mbox(tmp_path / "mail.mbox", MAIL)
    (tmp_path / "crm-sync.toml").write_text(
        '[agent]\ninternal_domains = ["northwind.example"]\n'
        f'[[connectors]]\nname = "alice"\nkind = "mbox"\naccount = "{ME}"\npath = "{mbox}"\n'
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'crm-sync.db'}")
    upgrade(engine)
    sessions = session_factory(engine)
    lease = leases.claim(sessions, "alice", "other-agent", timedelta(minutes=5))
    assert isinstance(lease, leases.Lease)

    refused = run_cli("sync", cwd=tmp_path)
    assert refused.returncode == 1
    assert "held by other-agent" in refused.stdout + refused.stderr
    assert _counts(f"sqlite:///{tmp_path / 'crm-sync.db'}")["interactions"] == 0

    leases.release(sessions, lease)
    engine.dispose()
    done = run_cli("sync", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    status = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert status[0]["lease_owner"] is None
