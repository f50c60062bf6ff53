"""``export``: contacts, companies and interactions as CSV or Parquet files for analysts.

The files hold what the command line may read: shared interactions, and private
threads only with ``--include-private``; never a message's body. How many
private interactions were left out is said, so that a total that looks short
is explained. The writing itself, streamed in constant memory, is
:mod:`storage.export`'s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from agent.cli.common import pass_app
from agent.cli.output import console, errors
from agent.cli.wording import counted
from agent.runtime.app import App
from storage import export as exporting
from storage.visibility import Viewer


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(exporting.FORMATS),
    default="csv",
    show_default=True,
    help="csv: one UTF-8 file per table with a header row; parquet: typed columns.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="The folder to write into: a new or empty one (made if it is not there).",
)
@click.option(
    "--table",
    "tables",
    type=click.Choice(exporting.TABLES),
    multiple=True,
    help="Only this table (repeat for several). Default: every one.",
)
@click.option(
    "--include-private",
    is_flag=True,
    help="Export private threads too (those logged from a mailbox set to private), with "
    "their participants. Without it they are left out, and their number is said.",
)
@click.option("--force", is_flag=True, help="Write into a folder that holds files already.")
@pass_app
def export(
    app: App,
    fmt: str,
    out_dir: Path,
    tables: Sequence[str],
    include_private: bool,
    force: bool,
) -> None:
    """Write the database's contacts, companies, interactions and participants to files.

    One file per table (contacts.csv, interactions.parquet...), read in chunks so
    that millions of rows take little memory. Message bodies are never written,
    only subjects and summaries. In CSV, a text a spreadsheet would run as a
    formula (=, +, -, @) starts with an apostrophe.
    """
    app.require_schema()
    try:
        exporting.require(fmt)
    except exporting.ExportError as exc:
        raise click.ClickException(str(exc)) from None
    _check_folder(out_dir, force)
    chosen = [t for t in exporting.TABLES if t in tables] if tables else list(exporting.TABLES)
    viewer = Viewer.cli(include_private=include_private)
    with _progress() as progress:
        try:
            written = exporting.export(app.sessions, viewer, fmt, out_dir, chosen, progress)
        except OSError as exc:
            raise click.ClickException(f"could not write to {out_dir}: {exc.strerror}") from None
    _print_summary(written, out_dir, fmt)
    hidden = exporting.left_out(app.sessions, viewer)
    if hidden:
        console.print(
            f"{counted(hidden, 'private interaction')} left out "
            "(their mailbox owner's; --include-private exports them)",
            highlight=False,
        )


def _check_folder(out_dir: Path, force: bool) -> None:
    """Refuse to mix an export with files already there, unless asked to."""
    if out_dir.is_dir() and any(out_dir.iterdir()) and not force:
        raise click.UsageError(
            f"{out_dir} is not empty: name a new folder, or give --force to write into it "
            "(files of the same names are replaced)"
        )


@contextmanager
def _progress() -> Iterator[exporting.Progress | None]:
    """A line per table on stderr while it is written, its rows so far and the time taken;
    none where stderr is not a terminal (a log, a pipe), which would keep only clutter."""
    if not errors.is_terminal:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),
        TextColumn("{task.fields[rows]}", markup=False),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def update(table: str, rows: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=None, rows="")
            bar.update(tasks[table], rows=f"{rows:,} rows")

        yield update


def _print_summary(written: dict[str, int], out_dir: Path, fmt: str) -> None:
    total = sum(written.values())
    console.print(
        f"exported {counted(total, 'row')} in {counted(len(written), 'file')} to {out_dir}",
        highlight=False,
    )
    width = max(len(table) for table in written)
    for table, rows in written.items():
        path = out_dir / exporting.file_name(table, fmt)
        console.print(f"  {table:<{width}}  {rows:>10,}  {path}", highlight=False)
