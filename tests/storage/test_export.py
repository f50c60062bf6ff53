"""The analyst's export on both databases: files read back with ``csv`` and ``pyarrow``
agree with the tables, hold what the viewer may read and never a body, and a large
database is written in bounded memory."""

from __future__ import annotations

import csv
import stat
import tracemalloc
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session

from storage.export import (
    TABLES,
    ExportError,
    arrow_schema,
    export,
    fields,
    file_name,
    inert_cell,
    left_out,
)
from storage.models import (
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    User,
)
from storage.visibility import Viewer
from tests.support.web import Team, seed_team

BODY = "the confidential body of every message"


@pytest.fixture
def team(engine: Engine) -> Team:
    """:func:`seed_team`'s team, every message with a body, one contact with every kind of
    value (a date, a flag, JSON facts, a second address, text a spreadsheet would run)."""
    seeded = seed_team(engine)
    with Session(engine) as session, session.begin():
        session.execute(update(Interaction).values(body=BODY))
        dana = session.get(Contact, seeded.dana_id)
        assert dana is not None
        dana.birthday = date(1980, 2, 29)
        dana.do_not_contact = True
        dana.phone = "+1 (555) 010-0000"
        dana.lead_source = '=HYPERLINK("http://evil.example","x")'
        dana.extra = {"nickname": "Dee"}
        session.add(ContactEmail(contact_id=dana.id, email="dana.w@acme.example"))
    return seeded


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where the export goes: beside the test's SQLite database, not with it."""
    return tmp_path / "export"


def _csv(folder: Path, table: str) -> list[dict[str, str]]:
    with (folder / file_name(table, "csv")).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == [f.name for f in fields(table)]
        return list(reader)


def _count(engine: Engine, table: Any, *where: Any) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def _files_text(folder: Path) -> str:
    return "".join(path.read_bytes().decode("utf-8", "replace") for path in folder.iterdir())


def test_csv_holds_what_the_command_line_may_read(engine: Engine, team: Team, out: Path) -> None:
    written = export(engine, Viewer.cli(), "csv", out)

    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.csv" for t in TABLES)
    assert {stat.S_IMODE(p.stat().st_mode) for p in [out, *out.iterdir()]} == {0o600, 0o700}
    rows = {table: _csv(out, table) for table in TABLES}
    assert written == {table: len(rows[table]) for table in TABLES}
    assert written["contacts"] == _count(engine, Contact)
    shared = Interaction.visibility != "private"
    assert written["interactions"] == _count(engine, Interaction, shared) == 3
    assert team.shared_subject in {r["subject"] for r in rows["interactions"]}
    assert team.private_subject not in {r["subject"] for r in rows["interactions"]}
    exported_ids = {r["id"] for r in rows["interactions"]}
    assert {r["interaction_id"] for r in rows["interaction_participants"]} == exported_ids
    assert "body" not in rows["interactions"][0]
    assert BODY not in _files_text(out)
    assert left_out(engine, Viewer.cli()) == 1


def test_csv_writes_typed_values_as_text_and_no_formula(
    engine: Engine, team: Team, out: Path
) -> None:
    export(engine, Viewer.cli(), "csv", out, ["contacts"])

    dana = next(r for r in _csv(out, "contacts") if r["id"] == str(team.dana_id))
    assert dana["birthday"] == "1980-02-29"
    assert dana["do_not_contact"] == "true"
    assert dana["email"] == "dana@acme.example"
    assert sorted(dana["emails"].split()) == ["dana.w@acme.example", "dana@acme.example"]
    assert dana["phone"] == "+1 (555) 010-0000"
    assert dana["lead_source"] == '\'=HYPERLINK("http://evil.example","x")'
    assert dana["extra"] == '{"nickname": "Dee"}'
    assert datetime.fromisoformat(dana["created_at"]).tzinfo is not None
    assert dana["first_name"] == ""
    assert [p.name for p in out.iterdir()] == ["contacts.csv"]


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("\t=1", "'\t=1"),
        ("+44 20 7946 0000", "+44 20 7946 0000"),
        ("-12.5", "-12.5"),
        ("Ann = CTO", "Ann = CTO"),
        ("", ""),
    ],
    ids=["equals", "at", "plus-dde", "minus-dde", "tab", "phone", "number", "inner", "empty"],
)
def test_a_csv_cell_is_never_a_formula(text: str, cell: str) -> None:
    assert inert_cell(text) == cell


def test_include_private_exports_private_threads_and_their_people(
    engine: Engine, team: Team, out: Path
) -> None:
    written = export(engine, Viewer.cli(include_private=True), "csv", out)

    subjects = {r["subject"] for r in _csv(out, "interactions")}
    assert team.private_subject in subjects
    assert written["interactions"] == _count(engine, Interaction) == 4
    assert written["interaction_participants"] == _count(engine, InteractionParticipant)
    assert BODY not in _files_text(out)
    assert left_out(engine, Viewer.cli(include_private=True)) == 0


def test_a_user_exports_their_own_private_threads_only(
    engine: Engine, team: Team, out: Path
) -> None:
    with Session(engine) as session:
        ids = dict(session.execute(select(User.email, User.id)).all())
    for who, sees_private in ((team.other, True), (team.member, False)):
        viewer = Viewer(user_id=ids[who], email=who)
        export(engine, viewer, "csv", out / who, ["interactions"])
        subjects = {r["subject"] for r in _csv(out / who, "interactions")}
        assert (team.private_subject in subjects) is sees_private, who


def test_parquet_round_trip_with_declared_types(engine: Engine, team: Team, out: Path) -> None:
    written = export(engine, Viewer.cli(), "parquet", out, chunk=2)

    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
    for table in TABLES:
        path = out / file_name(table, "parquet")
        read = pq.read_table(path)
        assert read.schema.equals(arrow_schema(table)), table
        assert read.num_rows == written[table]
        assert pq.ParquetFile(path).num_row_groups == -(-written[table] // 2)
    interactions = pq.read_table(out / "interactions.parquet")
    assert interactions.schema.field("id").type == pa.int64()
    assert interactions.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert "body" not in interactions.schema.names
    with Session(engine) as session:
        stored = dict(
            session.execute(
                select(Interaction.id, Interaction.occurred_at).where(
                    Interaction.visibility != "private"
                )
            ).all()
        )
    got = {row["id"]: row["occurred_at"] for row in interactions.to_pylist()}
    assert got == stored
    contacts = pq.read_table(out / "contacts.parquet").to_pylist()
    dana = next(c for c in contacts if c["id"] == team.dana_id)
    assert dana["birthday"] == date(1980, 2, 29)
    assert dana["do_not_contact"] is True
    assert dana["lead_source"].startswith("=HYPERLINK")
    values = {
        str(value)
        for table in TABLES
        for row in pq.read_table(out / file_name(table, "parquet")).to_pylist()
        for value in row.values()
    }
    assert BODY not in values
    assert team.private_subject not in values


def test_a_row_group_gathers_several_reads(
    engine: Engine, team: Team, out: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.export.FETCH", 2)
    written = export(engine, Viewer.cli(include_private=True), "parquet", out, chunk=5)

    assert written["interaction_participants"] == 8
    metadata = pq.ParquetFile(out / "interaction_participants.parquet").metadata
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert groups == [5, 3]
    ids = pq.read_table(out / "interaction_participants.parquet")["id"].to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == 8


def test_an_empty_database_gives_headers_and_schemas(engine: Engine, out: Path) -> None:
    seen: list[tuple[str, int]] = []
    for fmt in ("csv", "parquet"):
        written = export(engine, Viewer.cli(), fmt, out / fmt, progress=_record(seen))
        assert written == dict.fromkeys(TABLES, 0)
    assert _csv(out / "csv", "contacts") == []
    read = pq.read_table(out / "parquet" / "contacts.parquet")
    assert read.num_rows == 0 and read.schema.equals(arrow_schema("contacts"))
    assert seen == [(t, 0) for t in TABLES] * 2


def _record(seen: list[tuple[str, int]]) -> Any:
    return lambda table, rows: seen.append((table, rows))


def test_an_unknown_table_or_format_is_refused(engine: Engine, out: Path) -> None:
    with pytest.raises(ExportError, match="no such table: notes"):
        export(engine, Viewer.cli(), "csv", out / "a", ["contacts", "notes"])
    with pytest.raises(ExportError, match="no such format: xlsx"):
        export(engine, Viewer.cli(), "xlsx", out / "b")
    assert not out.exists()


# -- a large database, in bounded memory -------------------------------------------------------

GENERATED = 20_000


def _generate(engine: Engine, count: int) -> None:
    """``count`` shared email interactions with a long body, two participants each: held
    whole, the 60,000 rows would take some 24 MiB; streamed 1,000 at a time, about 2."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as connection:
        connection.execute(
            insert(Interaction),
            [
                {
                    "kind": "email",
                    "dedupe_key": f"<g{n}@generated.example>",
                    "occurred_at": start + timedelta(minutes=n),
                    "subject": f"Generated subject number {n}",
                    "summary": "A summary of a generated message. " * 3,
                    "body": BODY * 20,
                    "direction": "inbound",
                    "thread": f"thread-{n // 5}",
                }
                for n in range(count)
            ],
        )
        ids = connection.scalars(select(Interaction.id)).all()
        connection.execute(
            insert(InteractionParticipant),
            [
                {"interaction_id": i, "email": email, "role": role}
                for i in ids
                for email, role in (("them@acme.example", "from"), ("us@ourteam.example", "to"))
            ],
        )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_large_export_streams_in_bounded_memory(engine: Engine, out: Path, fmt: str) -> None:
    _generate(engine, GENERATED)
    export(engine, Viewer.cli(), fmt, out / "warm", ["interactions"], chunk=1_000)

    tracemalloc.start()
    try:
        written = export(engine, Viewer.cli(), fmt, out / "out", chunk=1_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert written["interactions"] == GENERATED
    assert written["interaction_participants"] == 2 * GENERATED
    exported = sum(p.stat().st_size for p in (out / "out").iterdir())
    print(f"{fmt}: peak {peak / 2**20:.1f} MiB for {exported / 2**20:.1f} MiB of files")
    assert peak < 6 * 2**20
