"""``crm-sync tags`` and ``crm-sync segments`` through the real entry point, on both databases."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from storage.db import session_factory, transaction
from storage.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    ContactFigures,
    utcnow,
)
from tests.support.cli import Ran, run_in_process, write_config

Run = Callable[..., Ran]


@pytest.fixture
def crm(
    tmp_path: Path,
    db_url: str,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """``crm-sync ARGS`` in a folder whose config names the test's database, where Ann
    (strong, idle 60 days) and Ben (weak, idle 2 days) work at Acme and Cy has no figures."""
    with transaction(session_factory(engine)) as session:
        acme = Company(name="Acme", domains=[CompanyDomain(domain="acme.example")])
        for name, level, strength, idle in (("ann", "strong", 20.0, 60), ("ben", "weak", 1.0, 2)):
            contact = Contact(display_name=name.title(), company=acme)
            contact.emails.append(ContactEmail(email=f"{name}@acme.example"))
            session.add(contact)
            session.flush()
            session.add(
                ContactFigures(
                    contact_id=contact.id,
                    as_of=date.today(),
                    last_at=utcnow() - timedelta(days=idle),
                    strength=strength,
                    level=level,
                    trend="cooling",
                    closest_teammate="alice@ours.example",
                )
            )
        cy = Contact(display_name="Cy")
        cy.emails.append(ContactEmail(email="cy@other.example"))
        session.add(cy)
    write_config(tmp_path, db_url)

    def run(*args: str) -> Ran:
        return run_in_process(
            "--config", str(tmp_path / "crm-sync.toml"), *args,
            cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
        )  # fmt: skip

    return run


def ok(ran: Ran) -> str:
    assert ran.code == 0, ran.stderr
    return ran.stdout


def test_tags_by_hand_and_listed(crm: Run) -> None:
    added = ok(crm("tags", "add", "Customer", "--contact", "Ann@Acme.example", "--as", "ann",
                   "--contact", "ben@acme.example", "--company", "acme.example"))  # fmt: skip
    assert "tagged 2 contact(s) 'customer'" in added and "tagged 1 company(s)" in added
    again = ok(crm("tags", "add", "customer", "--contact", "ann@acme.example"))
    assert "tagged 0 contact(s) 'customer'; 1 already so" in again
    assert json.loads(ok(crm("tags", "list", "--json"))) == [
        {"name": "customer", "contacts": 2, "companies": 1}
    ]
    assert "customer" in ok(crm("tags", "list"))
    ok(crm("tags", "remove", "customer", "--contact", "ben@acme.example"))
    assert json.loads(ok(crm("tags", "list", "--json")))[0]["contacts"] == 1

    audit = json.loads(ok(crm("audit", "--json")))
    assert {(a["actor"], a["action"]) for a in audit} >= {("user:ann", "tag")}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["tags", "add", "  ", "--contact", "ann@acme.example"], 1, "a tag needs a name"),
        (["tags", "add", "x" * 65, "--contact", "ann@acme.example"], 1, "at most 64"),
        (["tags", "add", "vip", "--contact", "nobody@acme.example"], 1, "no contact with"),
        (["tags", "add", "vip", "--company", "nowhere.example"], 1, "no company owns"),
        (["tags", "add", "vip"], 2, "name at least one --contact EMAIL or --company DOMAIN"),
        (["tags", "apply", "nothing", "--tag", "x"], 1, "no segment named 'nothing'"),
        (["segments", "show", "nothing"], 1, "no segment named 'nothing'"),
        (["segments", "remove", "nothing"], 1, "no segment named 'nothing'"),
        (["segments", "add", "x", "--trend", "up"], 2, "'up' is not one of"),
        (["segments", "add", "x", "--closest-teammate", "alice"], 1, "closest_teammate: 'alice'"),
        (["segments", "add", "a/b"], 1, "a segment name is letters"),
    ],
    ids=lambda value: " ".join(value)[:40] if isinstance(value, list) else str(value),
)
def test_mistakes_are_one_line_and_write_nothing(
    crm: Run, args: list[str], code: int, message: str
) -> None:
    ran = crm(*args)
    assert ran.code == code, ran.stdout + ran.stderr
    assert message in ran.stderr
    assert "Traceback" not in ran.stderr
    assert json.loads(ok(crm("tags", "list", "--json"))) == []
    assert json.loads(ok(crm("segments", "list", "--json"))) == []


def test_tags_from_a_csv_file(crm: Run, tmp_path: Path) -> None:
    (tmp_path / "fair.csv").write_text(
        "email,domain,tag\nann@acme.example,,lead\nnobody@acme.example,,lead\n,acme.example,lead\n"
    )
    ran = crm("tags", "import", str(tmp_path / "fair.csv"))
    assert ran.code == 0, ran.stderr
    assert "3 rows: 2 tags added, 0 already there, 1 skipped" in ran.stdout
    assert "line 3: no contact with the email nobody@acme.example" in ran.stderr
    assert json.loads(ok(crm("tags", "list", "--json"))) == [
        {"name": "lead", "contacts": 1, "companies": 1}
    ]
    (tmp_path / "bad.csv").write_text("name,label\nx,y\n")
    refused = crm("tags", "import", str(tmp_path / "bad.csv"))
    assert refused.code == 1 and "expected a `tag` column" in refused.stderr


def test_segments_and_a_rule(crm: Run, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(crm("tags", "add", "customer", "--contact", "ann@acme.example",
           "--contact", "ben@acme.example", "--contact", "cy@other.example"))  # fmt: skip
    saved = ok(crm("segments", "add", "cold customers", "--tag", "customer",
                   "--level-at-least", "medium", "--idle-days-at-least", "45"))  # fmt: skip
    assert "saved segment 'cold customers': 1 members now" in saved
    ok(crm("segments", "add", "alices", "--subject", "company",
           "--closest-teammate", "alice@ours.example"))  # fmt: skip
    again = crm("segments", "add", "Cold Customers")
    assert again.code == 1 and "exists already" in again.stderr

    listed = {s["name"]: s for s in json.loads(ok(crm("segments", "list", "--json")))}
    assert listed["cold customers"]["members"] == 1
    assert listed["cold customers"]["definition"] == {
        "tag": "customer",
        "level_at_least": "medium",
        "idle_days_at_least": 45,
    }
    assert listed["alices"]["members"] == 0  # no company figures yet

    (ann,) = json.loads(ok(crm("segments", "show", "cold customers", "--json")))
    assert (ann["name"], ann["email"], ann["level"], ann["idle_days"]) == (
        "Ann", "ann@acme.example", "strong", 60,
    )  # fmt: skip
    for columns in ("80", "50"):
        monkeypatch.setenv("COLUMNS", columns)
        assert "ann@acme.example" in ok(crm("segments", "show", "cold customers"))
    rows = list(csv.DictReader(io.StringIO(ok(crm("segments", "show", "cold customers", "--csv")))))
    assert [(r["email"], r["strength"]) for r in rows] == [("ann@acme.example", "20.0")]

    everyone = ok(crm("segments", "add", "everyone"))
    assert "3 members now" in everyone
    shown = json.loads(ok(crm("segments", "show", "everyone", "--json", "--limit", "2")))
    assert [m["name"] for m in shown] == ["Ann", "Ben"]

    applied = json.loads(ok(crm("tags", "apply", "cold customers", "--tag", "win-back", "--json")))
    assert (len(applied["added"]), applied["removed"], applied["members"]) == (1, [], 1)
    with transaction(session_factory(engine)) as session:
        session.execute(update(ContactFigures).values(last_at=utcnow()))
    reapplied = ok(crm("tags", "apply", "cold customers", "--tag", "win-back"))
    assert "0 members of 'cold customers': 0 tagged 'win-back', 1 untagged" in reapplied
    assert {t["name"]: t["contacts"] for t in json.loads(ok(crm("tags", "list", "--json")))} == {
        "customer": 3,
        "win-back": 0,
    }

    assert "removed segment 'cold customers'" in ok(crm("segments", "remove", "cold customers"))
    assert [s["name"] for s in json.loads(ok(crm("segments", "list", "--json")))] == [
        "alices",
        "everyone",
    ]
