"""What a person sees of a sync: a progress bar while it runs, a summary after."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from agent.cli.output import console, errors
from agent.cli.wording import counted
from agent.runtime.inert_text import plain
from agent.runtime.sync_pass import SyncResult
from connectors.records import Batch


@contextmanager
def sync_progress(
    name: str, total: int | None, position: Callable[[Batch], int | None] | None = None
) -> Iterator[Callable[[Batch, SyncResult], None]]:
    """A progress bar on stderr; ``position`` maps a batch to how far the source is read."""
    columns: list[Any] = [
        SpinnerColumn(),
        TextColumn("{task.description}", style="bold", markup=False),
        BarColumn(),
        MofNCompleteColumn() if total is None else TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[counts]}", markup=False),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=errors, transient=True) as bar:
        task = bar.add_task(plain(name), total=total, counts="")

        def update(batch: Batch, result: SyncResult) -> None:
            where = position(batch) if position else None
            skipped = sum(result.skipped.values())
            counts = f"{result.items} read, {result.logged} logged, {skipped} skipped"
            if where is not None:
                bar.update(task, completed=where, counts=counts)
            else:
                bar.update(task, completed=result.items, counts=counts)

        yield update


def print_summary(result: SyncResult, *, dry_run: bool = False) -> None:
    verb = "would log" if dry_run else "logged"
    console.print(
        Text.assemble(
            (plain(result.connector), "bold"),
            f": {result.status}; read {result.items}, {verb} {result.logged}"
            + ("" if dry_run else f" ({result.interactions_created} new)")
            + f", skipped {sum(result.skipped.values())}, quarantined {result.quarantined}"
            + f" in {result.seconds:.1f}s",
        )
    )
    if dry_run and result.would_create:
        console.print(f"  would create {counted(len(result.would_create), 'contact')}:")
        for email in sorted(result.would_create):
            console.print(f"    {email}", highlight=False)
    elif not dry_run:
        console.print(
            f"  created {counted(result.contacts_created, 'contact')} and "
            f"{counted(result.companies_created, 'company', 'companies')}"
        )
    for reason, count in sorted(result.skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        console.print(f"  skipped {count:>5}  {reason}")
    for reason, count in sorted(result.limited.items(), key=lambda kv: (-kv[1], kv[0])):
        console.print(f"  limited {count:>5}  {reason} (logged up to a bound of [limits])")
    if result.resynced:
        console.print("  the stored cursor had expired: a full resync ran")
    if result.error:
        errors.print(f"  error: {result.error}", highlight=False, markup=False)
