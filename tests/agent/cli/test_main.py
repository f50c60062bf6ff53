"""The admin's first steps, through the real entry point on both databases: no config, no
database yet, a database that is not the one meant, a secret not set."""

from __future__ import annotations

import json
import stat
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

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
from tests.support.cli import run_cli, run_in_process, upgrade_database, write_config
from tests.support.commands import ARGUMENTS, COMMANDS
from tests.support.mailbuilder import message, write_mbox
from tests.support.servers import PG_ADMIN_URL
from tests.support.tcp_proxy import running_proxy


def test_init_upgrade_status(tmp_path: Path, db_url: str) -> None:
    env = {"CRM_SYNC_DATABASE_URL": db_url}
    init = run_cli("init", cwd=tmp_path, env=env)
    assert init.returncode == 0, init.stderr
    assert (tmp_path / "crm-sync.toml").exists()

    before = run_cli("status", cwd=tmp_path, env=env)
    assert before.returncode == 2
    assert "run `crm-sync db upgrade`" in before.stderr

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
    write_config(tmp_path)
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


# -- no config file ----------------------------------------------------------------------------


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(w) for w in COMMANDS])
def test_every_command_but_init_needs_a_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    words: tuple[str, ...],
) -> None:
    (tmp_path / "mail.mbox").write_text("")
    (tmp_path / "people.csv").write_text("email,display_name\nann@acme.example,Ann Lee\n")
    (tmp_path / "key.json").write_text(
        json.dumps({"type": "service_account", "client_email": "sa@x.example", "private_key": "k"})
    )
    ran = run_in_process(
        *words, *ARGUMENTS.get(words, []), cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert ran.code == 2, ran.stdout + ran.stderr
    assert ran.stderr == (
        "config error: configuration\n  no config file: none named with --config or "
        "$CRM_SYNC_CONFIG, and no ./crm-sync.toml here; run `crm-sync init` to write one\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key.json", "mail.mbox", "people.csv"]


def test_without_a_config_help_version_and_init_work(tmp_path: Path) -> None:
    for args in (["--help"], ["status", "--help"], ["--version"]):
        shown = run_cli(*args, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
    assert not list(tmp_path.iterdir())
    status = run_cli("status", cwd=tmp_path)
    assert (status.returncode, status.stdout) == (2, "")
    assert "run `crm-sync init` to write one" in status.stderr
    assert run_cli("init", cwd=tmp_path).returncode == 0
    assert (tmp_path / "crm-sync.toml").exists()


# -- the database: made by `db upgrade` only, never in a folder that is not there -------------


@pytest.mark.parametrize(
    ("where", "env"),
    [("database.url", {}), ("$CRM_SYNC_DATABASE_URL", {"CRM_SYNC_DATABASE_URL": "SET"})],
    ids=["in-the-file", "in-the-variable"],
)
def test_a_sqlite_folder_that_is_not_there_is_a_config_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
    env: dict[str, str],
) -> None:
    missing = tmp_path / "mistyped" / "data"
    url = f"sqlite:///{missing / 'crm.db'}"
    write_config(tmp_path, url)
    env = {name: url for name in env}
    for command in (["db", "upgrade"], ["status"], ["contacts", "list"]):
        ran = run_in_process(
            *command, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys, env=env
        )
        assert ran.code == 2, ran.stderr
        assert (
            f"{where}: the folder {missing} of the SQLite database crm.db does not exist "
            "(correct the path, or create the folder)"
        ) in ran.stderr
    assert not (tmp_path / "mistyped").exists()


def test_db_upgrade_creates_the_database_and_every_command_before_it_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "data" / "crm.db"
    database.parent.mkdir()
    mbox = write_mbox(tmp_path / "carol.mbox", [])
    write_config(
        tmp_path,
        "sqlite:///data/crm.db",
        f'[[connectors]]\nname = "carol"\nkind = "mbox"\naccount = "carol@example.com"\n'
        f'path = "{mbox}"\n',
    )
    before = [
        ["status"], ["contacts", "list"], ["sync"], ["run", "--once"], ["verify", "carol"],
        ["db", "vacuum"], ["forget", "ann@acme.example", "--yes"], ["connectors", "list"],
        ["import", "mbox", str(mbox), "--mailbox", "carol@example.com"],
    ]  # fmt: skip
    for command in before:
        ran = run_in_process(*command, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert (ran.code, ran.stderr) == (
            2,
            f"error: the SQLite database {database} does not exist: run `crm-sync db upgrade` "
            f"to create it, or correct [database] url in crm-sync.toml if the path is wrong\n",
        ), command
    assert list(database.parent.iterdir()) == []

    upgraded = run_cli("db", "upgrade", cwd=tmp_path, umask=0o022)
    assert upgraded.returncode == 0, upgraded.stderr
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert run_cli("status", "--json", cwd=tmp_path).returncode == 0


def test_a_postgresql_database_without_tables_names_db_upgrade(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, pg_url)
    shown = make_url(pg_url).render_as_string(hide_password=True)
    for command in (["status"], ["contacts", "list"], ["companies", "list"]):
        ran = run_in_process(*command, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert (ran.code, ran.stderr) == (
            2,
            f"error: the database {shown} holds no crm-sync tables: run `crm-sync db upgrade` "
            "to create them\n",
        ), command
    postgres = pg_url.replace("postgresql+psycopg://", "postgres://", 1)
    ran = run_in_process(
        "db", "upgrade", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
        env={"CRM_SYNC_DATABASE_URL": postgres},
    )  # fmt: skip
    assert ran.code == 0, ran.stderr
    assert f"revision {head_revision()}" in ran.stdout


def _closed_port() -> int:
    with running_proxy("127.0.0.1", 9) as gone:
        return gone.port


def test_a_database_error_of_the_config_exits_2_and_an_outage_1(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server = make_url(PG_ADMIN_URL)
    cases = [
        (server.set(database="crm_sync_no_such_db"), 2, "crm_sync_no_such_db does not exist"),
        (server.set(username="crm_sync_no_such_role"), 2, "has no role crm_sync_no_such_role"),
        (server.set(port=_closed_port()), 1, "(connection refused): is PostgreSQL running?"),
    ]  # fmt: skip
    write_config(tmp_path)
    for url, code, what in cases:
        env = {"CRM_SYNC_DATABASE_URL": url.render_as_string(hide_password=False)}
        ran = run_in_process(
            "status", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys, env=env
        )
        assert ran.code == code, ran.stderr
        assert what in ran.stderr and "check $CRM_SYNC_DATABASE_URL" in ran.stderr
        assert len(ran.stderr.splitlines()) == 1


# -- a secret not set: that connector fails, nothing else ------------------------------------


def test_an_unset_secret_fails_only_its_connector(tmp_path: Path) -> None:
    mbox = write_mbox(
        tmp_path / "carol.mbox",
        [message(sender="carol@example.com", to=["Ann Lee <ann@acme.example>"], subject="Hi")],
    )
    write_config(
        tmp_path,
        body=(
            f'[[connectors]]\nname = "carol"\nkind = "mbox"\naccount = "carol@example.com"\n'
            f'path = "{mbox}"\n\n'
            '[[connectors]]\nname = "bob-imap"\nkind = "imap"\naccount = "bob@example.com"\n'
            'host = "127.0.0.1"\nport = 9\npassword = "${BOB_IMAP_PASSWORD}"\n'
        ),
    )
    upgrade_database(tmp_path)
    unset = (
        "crm-sync.toml: connectors[1].password uses ${BOB_IMAP_PASSWORD}, an environment "
        "variable not set where the agent runs"
    )

    once = run_cli("run", "--once", cwd=tmp_path)
    assert once.returncode == 1
    assert f"bob-imap: failing: {unset}" in once.stderr
    synced = run_cli("sync", "--connector", "bob-imap", cwd=tmp_path)
    assert synced.returncode == 1

    listed = run_cli("contacts", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert [row["name"] for row in json.loads(listed.stdout)] == ["Ann Lee"]
    status = run_cli("status", "--json", cwd=tmp_path)
    assert status.returncode == 1, status.stderr
    rows = {row["connector"]: row for row in json.loads(status.stdout)}
    assert rows["carol"]["state"] in ("ok", "lagging")
    assert (rows["bob-imap"]["state"], rows["bob-imap"]["last_error"]) == ("failing", unset)
