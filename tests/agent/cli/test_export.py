"""`crm-sync export` as an analyst's admin runs it, on both databases: files and a summary,
private threads left out and counted, a folder in use or a missing pyarrow refused."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from storage.db import make_engine
from tests.support.cli import run_cli, run_in_process, write_config
from tests.support.web import Team, seed_team


@pytest.fixture
def team(tmp_path: Path, db_url: str) -> Team:
    """:func:`seed_team`'s team in the database the config in ``tmp_path`` names."""
    engine = make_engine(db_url)
    try:
        seeded = seed_team(engine)
    finally:
        engine.dispose()
    write_config(tmp_path, db_url)
    return seeded


def _subjects(path: Path) -> set[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["subject"] for row in csv.DictReader(handle)}


def test_export_writes_csv_files_and_says_what_it_left_out(tmp_path: Path, team: Team) -> None:
    ran = run_cli("export", "--out", "out", cwd=tmp_path)

    assert ran.returncode == 0, ran.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "companies.csv",
        "contacts.csv",
        "interaction_participants.csv",
        "interactions.csv",
    ]
    lines = ran.stdout.splitlines()
    assert lines[0] == "exported 12 rows in 4 files to out"
    assert lines[1].split() == ["contacts", "2", "out/contacts.csv"]
    assert lines[3].split() == ["interactions", "3", "out/interactions.csv"]
    assert lines[-1] == (
        "1 private interaction left out (their mailbox owner's; --include-private exports them)"
    )
    subjects = _subjects(out / "interactions.csv")
    assert team.shared_subject in subjects and team.private_subject not in subjects
    assert ran.stderr == ""


def test_export_parquet_of_chosen_tables_with_private_threads(
    tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = run_in_process(
        "export", "--format", "parquet", "--out", "out", "--table", "interactions",
        "--table", "contacts", "--include-private",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip

    assert ran.code == 0, ran.stderr
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["contacts.parquet", "interactions.parquet"]
    interactions = pq.read_table(out / "interactions.parquet")
    assert team.private_subject in interactions["subject"].to_pylist()
    assert interactions.num_rows == 4
    assert "body" not in interactions.schema.names
    assert "left out" not in ran.stdout
    assert ran.stdout.splitlines()[0] == "exported 6 rows in 2 files to out"


def test_a_folder_with_files_is_refused_unless_forced(
    tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    refused = run_in_process(
        "export", "--out", "out", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert refused.code == 2
    assert refused.stderr.splitlines()[-1] == (
        "Error: out is not empty: name a new folder, or give --force to write into it "
        "(files of the same names are replaced)"
    )
    assert [p.name for p in out.iterdir()] == ["notes.txt"]

    forced = run_in_process(
        "export", "--out", "out", "--table", "companies", "--force",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip
    assert forced.code == 0, forced.stderr
    assert sorted(p.name for p in out.iterdir()) == ["companies.csv", "notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_parquet_without_pyarrow_is_refused_before_any_file(
    tmp_path: Path, team: Team, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)

    ran = run_in_process(
        "export", "--format", "parquet", "--out", "out",
        cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys,
    )  # fmt: skip

    assert ran.code == 1
    assert ran.stderr == (
        "Error: Parquet needs pyarrow, which is not installed: pip install 'pyarrow>=20'\n"
    )
    assert not (tmp_path / "out").exists()
