"""The tables an analyst asks for, written to CSV or Parquet files, in constant memory.

Contacts, companies, interactions and their participants, one file per table.
A team's database holds millions of interactions, so nothing is read whole:
each table is one query read through a server-side cursor (``stream_results``)
``FETCH`` rows at a time, each written before the next is read: to the CSV file
at once, or into a Parquet row group of ``chunk`` rows, held meanwhile as Arrow
columns (a few bytes a value, where a row of Python objects takes a kilobyte:
50,000 rows of interactions are 100 MB as Python rows, 10 MB as Arrow). Files
are created owner-only, as the database is. Every table is read in one read-only
transaction, a snapshot on both databases, so a participant never names an
interaction the file of interactions lacks.

What leaves the database is what the viewer may read, decided in the query by
:func:`storage.visibility.visible`: a private thread only for a viewer allowed
it (``--include-private``), and its participants with it. A message's body is
never exported, only its subject and summary.

CSV is for spreadsheets, which run a cell starting with ``=``, ``+``, ``-`` or
``@`` as a formula: text that came from strangers could make one fetch a URL
or start a program. Such a text cell is written with a leading apostrophe (the
spreadsheets' own mark for "text"), except a number or a phone number. Parquet
is typed and read by programs, and keeps every value as stored.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TextIO

from sqlalchemy import Engine, Select, SQLColumnExpression, func, select, true
from sqlalchemy.orm import Session, sessionmaker

from config.private_files import create_private_folders
from storage.db import session_factory
from storage.models import (
    Company,
    CompanyDomain,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
)
from storage.visibility import Viewer, hidden_count, visible

TABLES = ("contacts", "companies", "interactions", "interaction_participants")
FORMATS = ("csv", "parquet")
CHUNK = 50_000
"""Rows in a Parquet row group."""
FETCH = 5_000
"""Rows read from the database at a time, and written before the next are read."""

Kind = Literal["int", "float", "text", "bool", "time", "date", "json"]
Progress = Callable[[str, int], None]
"""Told the table and how many of its rows are written, after each fetch."""


class ExportError(Exception):
    """An export that cannot be made as asked (a format whose library is missing)."""


@dataclass(frozen=True)
class Field:
    """One exported column: its name in the file, its type, and what it reads."""

    name: str
    kind: Kind
    expression: SQLColumnExpression[Any]


@dataclass(frozen=True)
class _Table:
    fields: tuple[Field, ...]
    where: Callable[[Viewer], Select[Any]]
    """The query's FROM and WHERE for a viewer, given the columns to select."""


def _contacts() -> _Table:
    emails = select(ContactEmail.email).where(ContactEmail.contact_id == Contact.id)
    fields = (
        Field("id", "int", Contact.id),
        Field("display_name", "text", Contact.display_name),
        Field("first_name", "text", Contact.first_name),
        Field("last_name", "text", Contact.last_name),
        Field("email", "text", emails.order_by(ContactEmail.id).limit(1).scalar_subquery()),
        Field(
            "emails",
            "text",
            select(func.aggregate_strings(ContactEmail.email, " "))
            .where(ContactEmail.contact_id == Contact.id)
            .scalar_subquery(),
        ),
        Field("title", "text", Contact.title),
        Field("phone", "text", Contact.phone),
        Field("address", "text", Contact.address),
        Field("birthday", "date", Contact.birthday),
        Field("preferred_channel", "text", Contact.preferred_channel),
        Field("do_not_contact", "bool", Contact.do_not_contact),
        Field("company_id", "int", Contact.company_id),
        Field("owner", "text", Contact.owner),
        Field("lead_source", "text", Contact.lead_source),
        Field("last_contacted_at", "time", Contact.last_contacted_at),
        Field("extra", "json", Contact.extra),
        Field("created_at", "time", Contact.created_at),
        Field("updated_at", "time", Contact.updated_at),
    )
    return _Table(fields, lambda _viewer: select().select_from(Contact).order_by(Contact.id))


def _companies() -> _Table:
    domains = select(CompanyDomain.domain).where(CompanyDomain.company_id == Company.id)
    fields = (
        Field("id", "int", Company.id),
        Field("name", "text", Company.name),
        Field("domain", "text", domains.order_by(CompanyDomain.id).limit(1).scalar_subquery()),
        Field(
            "domains",
            "text",
            select(func.aggregate_strings(CompanyDomain.domain, " "))
            .where(CompanyDomain.company_id == Company.id)
            .scalar_subquery(),
        ),
        Field("created_at", "time", Company.created_at),
        Field("updated_at", "time", Company.updated_at),
    )
    return _Table(fields, lambda _viewer: select().select_from(Company).order_by(Company.id))


def _interactions() -> _Table:
    fields = (
        Field("id", "int", Interaction.id),
        Field("kind", "text", Interaction.kind),
        Field("occurred_at", "time", Interaction.occurred_at),
        Field("ends_at", "time", Interaction.ends_at),
        Field("direction", "text", Interaction.direction),
        Field("status", "text", Interaction.status),
        Field("subject", "text", Interaction.subject),
        Field("summary", "text", Interaction.summary),
        Field("thread", "text", Interaction.thread),
        Field("visibility", "text", Interaction.visibility),
        Field("owner", "text", Interaction.owner),
        Field("created_at", "time", Interaction.created_at),
        Field("updated_at", "time", Interaction.updated_at),
    )
    return _Table(
        fields,
        lambda viewer: (
            select().select_from(Interaction).where(visible(viewer)).order_by(Interaction.id)
        ),
    )


def _participants() -> _Table:
    fields = (
        Field("id", "int", InteractionParticipant.id),
        Field("interaction_id", "int", InteractionParticipant.interaction_id),
        Field("contact_id", "int", InteractionParticipant.contact_id),
        Field("email", "text", InteractionParticipant.email),
        Field("name", "text", InteractionParticipant.name),
        Field("role", "text", InteractionParticipant.role),
        Field("response_status", "text", InteractionParticipant.response_status),
        Field("responded_at", "time", InteractionParticipant.responded_at),
    )
    return _Table(
        fields,
        lambda viewer: (
            select()
            .select_from(InteractionParticipant)
            .join(Interaction, Interaction.id == InteractionParticipant.interaction_id)
            .where(visible(viewer))
            .order_by(InteractionParticipant.id)
        ),
    )


_SPECS: dict[str, Callable[[], _Table]] = {
    "contacts": _contacts,
    "companies": _companies,
    "interactions": _interactions,
    "interaction_participants": _participants,
}


def fields(table: str) -> tuple[Field, ...]:
    """The columns of ``table``'s file, in order."""
    return _SPECS[table]().fields


def query(table: str, viewer: Viewer) -> Select[Any]:
    """What ``viewer`` may export of ``table``, in id order."""
    spec = _SPECS[table]()
    return spec.where(viewer).add_columns(*(f.expression.label(f.name) for f in spec.fields))


def file_name(table: str, fmt: str) -> str:
    return f"{table}.{fmt}"


def left_out(source: Engine | sessionmaker[Session], viewer: Viewer) -> int:
    """How many interactions (private threads) the viewer's export leaves out."""
    with _sessions(source)() as session:
        return hidden_count(session, viewer, true())


def require(fmt: str) -> None:
    """Refuse a format that cannot be written here, before any file is made."""
    if fmt not in FORMATS:
        raise ExportError(f"no such format: {fmt} (one of {', '.join(FORMATS)})")
    if fmt == "parquet":
        _pyarrow()


def export(
    source: Engine | sessionmaker[Session],
    viewer: Viewer,
    fmt: str,
    out_dir: Path,
    tables: Sequence[str] = TABLES,
    progress: Progress | None = None,
    *,
    chunk: int = CHUNK,
) -> dict[str, int]:
    """Write ``tables`` as ``viewer`` may read them to ``out_dir`` (one file each, named by
    :func:`file_name`); the rows written per table.

    A file appears under its name only once complete: it is written beside it
    first and renamed, so an export that fails leaves no file that looks whole.
    """
    require(fmt)
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise ExportError(f"no such table: {', '.join(unknown)}")
    create_private_folders(out_dir)
    written: dict[str, int] = {}
    with _snapshot(_sessions(source)) as session:
        for table in tables:
            written[table] = _export_table(session, viewer, table, fmt, out_dir, progress, chunk)
    return written


def _sessions(source: Engine | sessionmaker[Session]) -> sessionmaker[Session]:
    return session_factory(source) if isinstance(source, Engine) else source


_POSTGRESQL_SNAPSHOT = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}


@contextmanager
def _snapshot(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One read-only transaction for the whole export: PostgreSQL's ``REPEATABLE READ``
    sees one snapshot across statements; SQLite's read transaction does anyway."""
    with sessions() as session:
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options=_POSTGRESQL_SNAPSHOT)
        try:
            yield session
        finally:
            session.rollback()


def _export_table(
    session: Session,
    viewer: Viewer,
    table: str,
    fmt: str,
    out_dir: Path,
    progress: Progress | None,
    chunk: int,
) -> int:
    path = out_dir / file_name(table, fmt)
    partial = path.with_name(path.name + ".partial")
    columns = fields(table)
    _create_private(partial)
    writer: _Writer = (
        _CsvWriter(partial, columns) if fmt == "csv" else _ParquetWriter(partial, columns, chunk)
    )
    count = 0
    try:
        for rows in _chunks(session, query(table, viewer), min(chunk, FETCH)):
            writer.write(rows)
            count += len(rows)
            if progress is not None:
                progress(table, count)
    finally:
        writer.close()
    os.replace(partial, path)
    if progress is not None and count == 0:
        progress(table, 0)
    return count


def _create_private(path: Path) -> None:
    """``path`` empty and owner-only (0600): the writers then open it without changing its
    mode, and the rename keeps it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _chunks(session: Session, statement: Select[Any], chunk: int) -> Iterator[Sequence[Any]]:
    """The rows of ``statement``, ``chunk`` at a time, through a server-side cursor."""
    streamed = statement.execution_options(stream_results=True, yield_per=chunk)
    result = session.connection().execute(streamed)
    try:
        yield from result.partitions()
    finally:
        result.close()


class _Writer(Protocol):
    def write(self, rows: Sequence[Sequence[Any]]) -> None: ...

    def close(self) -> None: ...


_FORMULA = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?[\d\s().\-/]*\Z")


def inert_cell(text: str) -> str:
    """``text`` as a spreadsheet cell that cannot be a formula (see the module's docstring)."""
    if text[:1] in _FORMULA and not (text[0] in "+-" and _NUMBER.match(text)):
        return "'" + text
    return text


def _time_text(value: datetime) -> str:
    return value.isoformat()


def _date_text(value: date) -> str:
    return value.isoformat()


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _same(value: Any) -> Any:
    return value


_CSV_CELL: dict[Kind, Callable[[Any], Any]] = {
    "int": _same,
    "float": _same,
    "text": inert_cell,
    "bool": _bool_text,
    "time": _time_text,
    "date": _date_text,
    "json": lambda value: inert_cell(_json_text(value)),
}


class _CsvWriter:
    """UTF-8, a header row, ``csv``'s default dialect; empty for ``NULL``."""

    def __init__(self, path: Path, columns: Sequence[Field]) -> None:
        self._file: TextIO = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow([c.name for c in columns])
        self._cells = [_CSV_CELL[c.kind] for c in columns]

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        cells = self._cells
        self._csv.writerows(
            [None if value is None else cell(value) for cell, value in zip(cells, row, strict=True)]
            for row in rows
        )

    def close(self) -> None:
        self._file.close()


def _pyarrow() -> tuple[Any, Any]:
    """``pyarrow`` and ``pyarrow.parquet``, or an error saying how to install them."""
    try:
        import pyarrow  # type: ignore[import-untyped]
        import pyarrow.parquet  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ExportError(
            "Parquet needs pyarrow, which is not installed: pip install 'pyarrow>=20'"
        ) from exc
    return pyarrow, pyarrow.parquet


def arrow_schema(table: str) -> Any:
    """The Arrow schema of ``table``'s Parquet file: declared, never inferred from data,
    so an empty export or a column of ``NULL`` has the same types as a full one."""
    return _arrow_schema(fields(table))


def _arrow_schema(columns: Sequence[Field]) -> Any:
    pa, _ = _pyarrow()
    types = {
        "int": pa.int64(),
        "float": pa.float64(),
        "text": pa.string(),
        "bool": pa.bool_(),
        "time": pa.timestamp("us", tz="UTC"),
        "date": pa.date32(),
        "json": pa.string(),
    }
    return pa.schema([pa.field(c.name, types[c.kind]) for c in columns])


class _ParquetWriter:
    """A row group per ``rows_per_group`` rows; until then the rows wait as Arrow columns."""

    def __init__(self, path: Path, columns: Sequence[Field], rows_per_group: int) -> None:
        self._pa, parquet = _pyarrow()
        self._schema = _arrow_schema(columns)
        self._json = [i for i, c in enumerate(columns) if c.kind == "json"]
        self._file = parquet.ParquetWriter(str(path), self._schema)
        self._rows_per_group = rows_per_group
        self._waiting: list[Any] = []
        self._rows_waiting = 0

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        columns = [list(values) for values in zip(*rows, strict=True)]
        for i in self._json:
            columns[i] = [None if v is None else _json_text(v) for v in columns[i]]
        arrays = [
            self._pa.array(values, type=field.type)
            for values, field in zip(columns, self._schema, strict=True)
        ]
        self._waiting.append(self._pa.record_batch(arrays, schema=self._schema))
        self._rows_waiting += len(rows)
        while self._rows_waiting >= self._rows_per_group:
            self._write_group()

    def _write_group(self) -> None:
        waiting = self._pa.Table.from_batches(self._waiting, schema=self._schema)
        group = waiting.slice(0, self._rows_per_group)
        self._file.write_table(group, row_group_size=self._rows_per_group)
        rest = waiting.slice(self._rows_per_group)
        self._waiting, self._rows_waiting = rest.to_batches(), rest.num_rows

    def close(self) -> None:
        try:
            if self._rows_waiting:
                self._write_group()
        finally:
            self._file.close()
