"""`forget`, `privacy apply`, `contacts merge` and `companies merge/list`, as an admin runs them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from agent.cli.privacy import listed_target, ours_predicate
from agent.pipeline.filters import NeverLog
from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.memory import MemoryConnector
from connectors.records import MailMessage
from storage.db import session_factory, transaction
from storage.erase import erase
from storage.models import (
    CONTRACT_TABLES,
    AuditLog,
    CompanyDomain,
    Contact,
    ContactEmail,
    Interaction,
)
from tests.support.cli import run_cli
from tests.support.mailbuilder import message

ME = "alice@northwind.example"
CONFIG = """\
[agent]
internal_domains = ["northwind.example"]
[privacy]
never_log = [{never_log}]
"""
SETTINGS = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
MAIL = [
    ("offer", ME, ["Ann Lee <ann@acme.example>"], []),
    ("reply", "Ann Lee <ann@acme.example>", [ME], ["Bob Stone <bob@acme.example>"]),
    ("weekend", ME, ["Ann Lee <annlee@gmail.com>"], []),
    ("loan", ME, ["Tess Teller <tess@mybank.example>"], []),
    ("corp", ME, ["Carl <carl@acme-corp.example>"], []),
]


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """The mail above, logged by the real pipeline."""
    factory = session_factory(engine)
    items = [
        MailMessage(
            key,
            ME,
            message(
                sender=sender,
                to=to,
                cc=cc,
                subject=key,
                message_id=f"<{key}@x>",
                date=START + timedelta(days=n),
            ),
        )
        for n, (key, sender, to, cc) in enumerate(MAIL)
    ]
    policy = Policy.from_settings(SETTINGS, "alice-mail", ME)
    result = sync_connector(factory, MemoryConnector("alice-mail", items), policy, kind="t")
    assert result.logged == len(MAIL)
    yield factory


@pytest.fixture
def admin(tmp_path: Path, db_url: str) -> Iterator[tuple[Path, dict[str, str]]]:
    """A config folder that lists the bank, and the database of the test."""
    (tmp_path / "crm-sync.toml").write_text(CONFIG.format(never_log='"*@mybank.example"'))
    yield tmp_path, {"CRM_SYNC_DATABASE_URL": db_url}


def _counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return {
            t: int(session.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
            for t in sorted(CONTRACT_TABLES)
        }


def _audit_text(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        rows = session.scalars(select(AuditLog)).all()
        return json.dumps([(r.actor, r.entity, r.before, r.after) for r in rows])


def _subjects(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(s or "" for s in session.scalars(select(Interaction.subject)))


def test_forget_from_a_script_needs_yes_and_then_erases(
    sessions: sessionmaker[Session], admin: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = admin
    before = _counts(sessions)
    refused = run_cli("forget", "ann@acme.example", cwd=cwd, env=env, input="")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert _counts(sessions) == before

    done = run_cli("forget", "Ann@Acme.example", "--yes", "--json", cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts["applied"] is True
    assert (counts["contacts"], counts["emails"], counts["interactions_deleted"]) == (1, 1, 1)
    assert counts["interactions_trimmed"] == 1  # the reply keeps Bob
    assert _subjects(sessions) == ["corp", "loan", "reply", "weekend"]
    with sessions() as session:
        emails = set(session.scalars(select(ContactEmail.email)))
    assert "ann@acme.example" not in emails and "annlee@gmail.com" in emails  # another contact
    assert "ann@acme.example" not in _audit_text(sessions)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_forget_on_a_terminal_shows_the_counts_and_asks(
    sessions: sessionmaker[Session], admin: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = admin
    before = _counts(sessions)

    declined, output = _on_terminal(["forget", "ann@acme.example"], cwd, env, answer="n")
    assert declined == 1, output
    assert "contacts: 1" in output and "interactions deleted: 1" in output
    assert "aborted" in output
    assert _counts(sessions) == before

    accepted, output = _on_terminal(["forget", "ann@acme.example"], cwd, env, answer="y")
    assert accepted == 0, output
    assert "erased: contacts: 1" in output
    again = run_cli("forget", "ann@acme.example", "--yes", cwd=cwd, env=env)
    assert again.returncode == 0, again.stderr
    assert "nothing logged for ann@acme.example" in again.stdout
    not_an_address = run_cli("forget", "not-an-address", "--yes", cwd=cwd, env=env)
    assert not_an_address.returncode == 2
    assert "not an email address" in not_an_address.stderr


def test_privacy_apply_dry_run_then_apply(
    sessions: sessionmaker[Session], admin: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = admin
    before = _counts(sessions)
    dry = run_cli("privacy", "apply", "--dry-run", cwd=cwd, env=env)
    assert dry.returncode == 0, dry.stderr
    assert "would erase: contacts: 1" in dry.stdout
    assert "interactions deleted: 1" in dry.stdout and "companies: 1" in dry.stdout
    assert _counts(sessions) == before

    applied = run_cli("privacy", "apply", "--as", "dpo", cwd=cwd, env=env)
    assert applied.returncode == 0, applied.stderr
    assert "erased: contacts: 1" in applied.stdout
    assert _subjects(sessions) == ["corp", "offer", "reply", "weekend"]
    with sessions() as session:
        assert (
            session.scalar(select(func.count()).where(CompanyDomain.domain == "mybank.example"))
            == 0
        )
        actors = set(session.scalars(select(AuditLog.actor).where(AuditLog.action == "never_log")))
    assert actors == {"user:dpo"}
    audit_text = _audit_text(sessions)
    assert "mybank" not in audit_text and "tess" not in audit_text.lower()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_privacy_apply_again_finds_nothing_and_a_bad_pattern_is_a_config_error(
    sessions: sessionmaker[Session], admin: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = admin
    listed = NeverLog.from_patterns(["*@mybank.example"])
    ours = ours_predicate(SETTINGS)
    with transaction(sessions) as session:
        erase(session, listed_target(session, listed), ours, actor="u", action="never_log")
    after = _counts(sessions)
    again = run_cli("privacy", "apply", "--json", cwd=cwd, env=env)
    assert again.returncode == 0, again.stderr
    assert not any(v for k, v in json.loads(again.stdout).items() if k != "applied")
    assert _counts(sessions) == after

    (cwd / "crm-sync.toml").write_text(CONFIG.format(never_log='"bad pattern@@"'))
    bad = run_cli("privacy", "apply", cwd=cwd, env=env)
    assert bad.returncode == 2
    assert "privacy.never_log" in bad.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_merge_commands(
    sessions: sessionmaker[Session], admin: tuple[Path, dict[str, str]]
) -> None:
    cwd, env = admin
    merged = run_cli("contacts", "merge", "ann@acme.example", "annlee@gmail.com", cwd=cwd, env=env)
    assert merged.returncode == 0, merged.stderr
    assert "merged contact" in merged.stdout
    with sessions() as session:
        owners = set(
            session.scalars(
                select(ContactEmail.contact_id).where(
                    ContactEmail.email.in_(["ann@acme.example", "annlee@gmail.com"])
                )
            )
        )
    assert len(owners) == 1
    unknown = run_cli(
        "contacts", "merge", "ann@acme.example", "x@nowhere.example", cwd=cwd, env=env
    )
    assert unknown.returncode == 1 and "no contact with the address" in unknown.stderr

    companies = run_cli(
        "companies", "merge", "acme.example", "acme-corp.example", "--json", cwd=cwd, env=env
    )
    assert companies.returncode == 0, companies.stderr
    assert json.loads(companies.stdout)["moved"] == {"contacts": 1, "domains": 1}
    listed = run_cli("companies", "list", "--json", cwd=cwd, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: (sorted(r["domains"]), r["contacts"]) for r in json.loads(listed.stdout)}
    assert rows == {
        "Acme": (["acme-corp.example", "acme.example"], 2),  # Ann and Carl; Bob was only cc'd
        "Mybank": (["mybank.example"], 1),
    }
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 3


def _on_terminal(args: list[str], cwd: Path, env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin, answering its question with ``answer``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRM_SYNC_")}
    environment.update(env, COLUMNS="200")
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent", *args],
            cwd=cwd,
            env=environment,
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        os.write(leader, f"{answer}\n".encode())
        output, _ = process.communicate(timeout=120)
    finally:
        os.close(follower)
        os.close(leader)
    return process.returncode, output
