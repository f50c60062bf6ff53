"""``crm-sync report``: each report as a table, as JSON and as CSV, on a team's history.

The history is the one of :mod:`tests.storage.test_reports` (dated relative to
today, so that the recent periods hold something), in a SQLite file named by
a config file as an admin would have it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from storage.connector_days import record
from storage.db import make_engine
from tests.storage.test_reports import BOB, CAT, FAY, GUS, History, seed
from tests.support.cli import Ran, run_in_process, write_config


@dataclass(frozen=True)
class Setup:
    folder: Path
    history: History


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Setup]:
    write_config(tmp_path)
    engine = make_engine(f"sqlite:///{tmp_path / 'crm-sync.db'}")
    try:
        history = seed(engine)
        with Session(engine) as session, session.begin():
            record(session, "bob-mail", history.today, {"items": 4, "logged": 3, "skipped:bulk": 1})
            record(session, "=cmd|' /C calc'!A0", history.today, {"items": 1})
        yield Setup(tmp_path, history)
    finally:
        engine.dispose()


def _run(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> Ran:
    ran = run_in_process("report", *args, cwd=setup.folder, monkeypatch=monkeypatch, capsys=capsys)
    assert ran.code == 0, ran.stderr
    return ran


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_activity(
    team: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    h = team.history
    table = _run(team, monkeypatch, capsys, "activity", "--by", "teammate", "--periods", "2")
    assert "Activity per week" in table.stdout
    assert BOB in table.stdout and "90 min" in table.stdout

    data = json.loads(
        _run(team, monkeypatch, capsys, "activity", "--periods", "2", "--json").stdout
    )
    assert data["periods"] == [h.last_week.isoformat(), h.this_week.isoformat()]
    bob = [r for r in data["rows"] if r["teammate"] == BOB]
    assert [(r["emails_sent"], r["median_reply_seconds"]) for r in bob] == [(2, 5400), (1, None)]

    rows = _csv(_run(team, monkeypatch, capsys, "activity", "--periods", "2", "--csv").stdout)
    cat_now = next(
        r for r in rows if r["teammate"] == CAT and r["period"] == h.this_week.isoformat()
    )
    assert (cat_now["emails_received"], cat_now["unanswered"]) == ("1", "1")
    everything = _csv(
        _run(
            team, monkeypatch, capsys, "activity", "--periods", "2", "--csv", "--include-private"
        ).stdout
    )
    cat_all = next(
        r for r in everything if r["teammate"] == CAT and r["period"] == h.this_week.isoformat()
    )
    assert cat_all["emails_received"] == "2"


def test_cooling(
    team: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _run(team, monkeypatch, capsys, "cooling")
    assert "Going cold" in table.stdout and FAY in table.stdout
    data = json.loads(_run(team, monkeypatch, capsys, "cooling", "--json").stdout)
    assert [(r["email"], r["days_idle"]) for r in data] == [(FAY, 40), (GUS, 50)]
    rows = _csv(_run(team, monkeypatch, capsys, "cooling", "--limit", "1", "--csv").stdout)
    assert [(r["email"], r["closest_teammate"]) for r in rows] == [(FAY, BOB)]
    companies = json.loads(
        _run(team, monkeypatch, capsys, "cooling", "--companies", "--json").stdout
    )
    assert [r["name"] for r in companies] == ["Gamma", "Delta"]


def test_coverage(
    team: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _run(team, monkeypatch, capsys, "coverage")
    assert "gamma.example" in table.stdout
    assert "companies by teammates who know them: 0: 1, 1: 2, 2: 1, 3+: 1" in table.stdout
    data = json.loads(_run(team, monkeypatch, capsys, "coverage", "--json").stdout)
    assert data["by_teammates"] == {"0": 1, "1": 2, "2": 1, "3+": 1}
    rows = _csv(_run(team, monkeypatch, capsys, "coverage", "--csv").stdout)
    assert [(r["company"], r["teammate"], r["interactions_365"]) for r in rows] == [
        ("Gamma", BOB, "4"),
        ("Delta", CAT, "3"),
    ]


def test_sources(
    team: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _run(team, monkeypatch, capsys, "sources", "--days", "7")
    assert "Sources, last 7 days" in table.stdout and "bob-mail" in table.stdout
    data = json.loads(_run(team, monkeypatch, capsys, "sources", "--json").stdout)
    totals = {t["connector"]: (t["measures"], t["interactions"]) for t in data["totals"]}
    assert totals["bob-mail"] == ({"items": 4, "logged": 3, "skipped:bulk": 1}, 10)
    rows = _csv(_run(team, monkeypatch, capsys, "sources", "--csv").stdout)
    bob = next(r for r in rows if r["connector"] == "bob-mail")
    assert (bob["day"], bob["items"], bob["skipped"]) == (
        team.history.today.isoformat(),
        "4",
        "bulk=1",
    )
    # A name a spreadsheet would run as a formula stays text.
    assert any(r["connector"] == "'=cmd|' /C calc'!A0" for r in rows)
    assert len(data["days"]) == 30 and data["days"][-1] == team.history.today.isoformat()
    assert data["days"][0] == (team.history.today - timedelta(days=29)).isoformat()


def test_each_report_explains_itself_with_an_example(
    team: Setup, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("activity", "cooling", "coverage", "sources"):
        shown = _run(team, monkeypatch, capsys, name, "--help").stdout
        assert f"crm-sync report {name}" in shown, name
