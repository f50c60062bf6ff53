"""`contacts set/import/history` and `conflicts list/resolve`, as people run them.

Each ``crm-sync`` run is a fresh process (over a second of imports), so the
flows are few and long; the API tests in test_edits.py cover the rules on
both databases.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from storage import audit, edits
from storage.db import make_engine, session_factory, transaction, upgrade
from storage.ingest import BatchWrite, Fact, NewContact, write_batch
from storage.models import Contact
from tests.support.cli import run_cli, write_config

ANN = "ann@acme.example"
EARLIER = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _seed(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    upgrade(engine)
    agent_saw(engine, Fact(ANN, "title", "Engineer", "alice-mail", EARLIER), create=True)
    yield engine
    engine.dispose()


@pytest.fixture
def seeded(db_url: str) -> Iterator[Engine]:
    """Ann, created by the agent with the title it saw, on each database."""
    yield from _seed(db_url)


@pytest.fixture
def seeded_sqlite(sqlite_url: str) -> Iterator[Engine]:
    yield from _seed(sqlite_url)


def agent_saw(engine: Engine, fact: Fact, *, create: bool = False) -> None:
    new = [NewContact(ANN, "acme.example", "Acme")] if create else []
    with transaction(session_factory(engine)) as session:
        write_batch(
            session,
            BatchWrite(new_contacts=new, facts=[fact]),
            propagate_deletes=False,
            actor=audit.connector("alice-mail"),
        )


def crm(engine: Engine, *args: str, user: str = "carol") -> subprocess.CompletedProcess[str]:
    """``crm-sync ARGS`` on ``engine``'s database, as ``user``, with a minimal config file."""
    url = engine.url.render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory() as cwd:
        write_config(Path(cwd), url)
        return run_cli(*args, cwd=Path(cwd), env={"USER": user})


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def contact(engine: Engine, email: str = ANN) -> Contact:
    with session_factory(engine)() as session:
        snap = edits.snapshot(session, email)
        assert snap is not None
        found = session.get(Contact, snap.contact_id)
        assert found is not None
        if found.company is not None:
            found.company.domains  # noqa: B018 -- loaded for use after the session
        return found


def test_set_clear_history_and_show(seeded: Engine) -> None:
    values = ["title=CTO", "phone=+1 555 0100", "company=www.globex.example", "extra.tier=gold"]
    done = crm(seeded, "contacts", "set", "Ann@Acme.example", *values)
    assert done.returncode == 0, done.stderr
    assert "title: 'Engineer' -> 'CTO'" in done.stdout
    held = contact(seeded)
    assert (held.title, held.phone, held.extra) == ("CTO", "+1 555 0100", {"tier": "gold"})
    assert held.company is not None and held.company.domain == "globex.example"

    cleared = crm(seeded, "contacts", "set", ANN, "phone=", "--as", "dana")
    assert cleared.returncode == 0, cleared.stderr
    assert "phone: '+1 555 0100' -> (empty)" in cleared.stdout

    newer = datetime.now(timezone.utc) + timedelta(minutes=5)
    agent_saw(seeded, Fact(ANN, "title", "Chief Technology Officer", "alice-mail", newer))

    history = as_json(crm(seeded, "contacts", "history", ANN, "--json"))
    changes = [(a["actor"], a["action"], a["before"], a["after"]) for a in history["audit"]]
    assert changes[0][:2] == ("connector:alice-mail", "create")
    assert {
        ("user:carol", "update", ("title", "Engineer"), ("title", "CTO")),
        ("user:carol", "update", ("company", "acme.example"), ("company", "globex.example")),
        ("user:dana", "update", ("phone", "+1 555 0100"), ("phone", None)),
    } <= {(a, b, *c.items(), *d.items()) for a, b, c, d in changes if b == "update"}
    facts = {(o["field"], o["value"], o["source"], o["manual"]) for o in history["observations"]}
    assert {
        ("title", "Engineer", "alice-mail", False),
        ("title", "Chief Technology Officer", "alice-mail", False),
        ("title", "CTO", "carol", True),
        ("phone", "", "dana", True),
    } <= facts

    shown = as_json(crm(seeded, "contacts", "show", ANN, "--json"))
    assert (shown["title"], shown["company_domain"], shown["phone"]) == (
        "CTO",
        "globex.example",
        None,
    )
    assert {"title", "phone", "company", "extra.tier"} <= set(shown["manual"])
    assert [(s["field"], s["current"], s["value"]) for s in shown["suggestions"]] == [
        ("title", "CTO", "Chief Technology Officer")
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([ANN, "shoe_size=9"], 2, "shoe_size: unknown field"),
        ([ANN, "birthday=soon"], 2, "birthday: 'soon' is not an ISO date"),
        ([ANN, "title"], 2, "expected FIELD=VALUE"),
        (["zed@acme.example", "title=x"], 1, "no contact with the address zed@acme.example"),
    ],
    ids=["unknown-field", "bad-value", "no-equals", "unknown-contact"],
)
def test_set_refuses_what_it_cannot_do(
    seeded_sqlite: Engine, args: list[str], code: int, message: str
) -> None:
    refused = crm(seeded_sqlite, "contacts", "set", *args)
    assert refused.returncode == code, refused.stderr
    assert message in refused.stderr
    assert contact(seeded_sqlite).title == "Engineer"


PEOPLE = (
    "email,title,company,extra.tier,birthday\n"
    "Ann@Acme.example,CTO,,gold,\n"
    "zoe@globex.example,Head of Sales,,,1990-05-17\n"
)


def test_import_with_a_dry_run_first(seeded_sqlite: Engine, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE)

    dry = crm(seeded_sqlite, "contacts", "import", str(people), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "title: 'Engineer' -> 'CTO'" in dry.stdout
    assert "zoe@globex.example (new contact)" in dry.stdout
    assert "would create 1, would update 1" in dry.stdout
    assert contact(seeded_sqlite).title == "Engineer"
    with session_factory(seeded_sqlite)() as session:
        assert edits.snapshot(session, "zoe@globex.example") is None

    done = crm(seeded_sqlite, "contacts", "import", str(people))
    assert done.returncode == 0, done.stderr
    assert "created 1, updated 1, 0 unchanged, 0 conflicts" in done.stdout
    zoe = contact(seeded_sqlite, "zoe@globex.example")
    assert zoe.company is not None
    assert (zoe.title, str(zoe.birthday), zoe.company.domain) == (
        "Head of Sales",
        "1990-05-17",
        "globex.example",
    )
    with session_factory(seeded_sqlite)() as session:
        trail = [(a.actor, a.action) for a in audit.history(session, "contact", zoe.id)]
    assert trail[0] == ("user:carol", "create")

    again = crm(seeded_sqlite, "contacts", "import", str(people))
    assert "created 0, updated 0, 2 unchanged" in again.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("email,title,shoe_size,hat\nann@acme.example,CTO,9,\n", "unknown columns: shoe_size, hat"),
        ("email,birthday\nann@acme.example,soon\n", "line 2: birthday: 'soon' is not an ISO date"),
        ("email,title\nann@acme.example,a\nANN@acme.example,b\n", "line 3: ann@acme.example again"),
    ],
    ids=["unknown-columns", "bad-cell", "repeated-address"],
)
def test_import_refuses_a_bad_file_with_exit_2(
    seeded_sqlite: Engine, tmp_path: Path, content: str, message: str
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(content)
    refused = crm(seeded_sqlite, "contacts", "import", str(people))
    assert refused.returncode == 2
    assert message in refused.stderr
    assert contact(seeded_sqlite).title == "Engineer"


def open_conflict(engine: Engine, field: str, carol: str, bob: str) -> int:
    """Carol and Bob edit ``field`` from the same version; Bob's write comes second."""
    sessions = session_factory(engine)
    with sessions() as session:
        carol_saw, bob_saw = edits.snapshot(session, ANN), edits.snapshot(session, ANN)
    edits.set_fields(sessions, ANN, {field: carol}, user="carol", base=carol_saw)
    outcome = edits.set_fields(sessions, ANN, {field: bob}, user="bob", base=bob_saw)
    return outcome.conflicts[0].id


def test_conflicts_list_and_resolve(seeded: Engine) -> None:
    conflict_id = open_conflict(seeded, "title", "CTO", "VP")

    (listed,) = as_json(crm(seeded, "conflicts", "list", "--json"))
    assert (listed["id"], listed["contact"], listed["field"], listed["base"]) == (
        conflict_id,
        ANN,
        "title",
        "Engineer",
    )
    assert (listed["manual"], listed["manual_by"], listed["latest"], listed["latest_by"]) == (
        "CTO",
        "carol",
        "VP",
        "bob",
    )
    shown = as_json(crm(seeded, "contacts", "show", ANN, "--json"))
    assert [c["id"] for c in shown["conflicts"]] == [conflict_id]

    usage = crm(seeded, "conflicts", "resolve", str(conflict_id))
    assert usage.returncode == 2 and "exactly one of" in usage.stderr

    done = crm(seeded, "conflicts", "resolve", str(conflict_id), "--keep", "latest", user="dana")
    assert done.returncode == 0, done.stderr
    assert "title: 'CTO' -> 'VP'" in done.stdout
    assert contact(seeded).title == "VP"

    again = crm(seeded, "conflicts", "resolve", str(conflict_id), "--value", "x")
    assert again.returncode == 1 and "already resolved" in again.stderr

    (closed,) = as_json(crm(seeded, "conflicts", "list", "--all", "--json"))
    assert (closed["status"], closed["resolution"], closed["resolved_by"]) == (
        "resolved",
        "keep latest",
        "user:dana",
    )
    history = as_json(crm(seeded, "contacts", "history", ANN, "--json"))
    assert [(a["actor"], a["action"]) for a in history["audit"]][-3:] == [
        ("user:bob", "conflict_opened"),
        ("user:dana", "update"),
        ("user:dana", "conflict_resolved"),
    ]


def test_a_resolving_value_is_checked_and_normalized_like_set(seeded_sqlite: Engine) -> None:
    conflict_id = open_conflict(seeded_sqlite, "company", "globex.example", "initech.example")

    bad = crm(seeded_sqlite, "conflicts", "resolve", str(conflict_id), "--value", "Initech Inc")
    assert bad.returncode == 2 and "is not a domain" in bad.stderr

    host = "www.Initech.example"
    done = crm(seeded_sqlite, "conflicts", "resolve", str(conflict_id), "--value", host)
    assert done.returncode == 0, done.stderr
    company = contact(seeded_sqlite).company
    assert company is not None
    assert (company.name, company.domain) == ("Initech", "initech.example")
