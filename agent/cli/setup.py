"""Getting started: ``init``, ``db upgrade`` and ``demo``."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

import click

from agent.cli.common import EXIT_FAILURE, EXIT_USAGE, pass_app, safe_url
from agent.cli.output import console, errors
from agent.runtime.app import App
from config.loader import DEFAULT_FILE
from config.schema import SecretsConfig
from config.secrets import ensure_key_file
from storage.db import purge_freed_space, table_names


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_context
def init(ctx: click.Context, force: bool) -> None:
    """Write a commented config file (to --config, or ./crm-sync.toml)."""
    app = ctx.find_object(App)
    target = (app.config_path if app else None) or DEFAULT_FILE
    if target.exists() and not force:
        errors.print(f"error: {target} exists; use --force to overwrite it")
        sys.exit(EXIT_USAGE)
    template = resources.files("config").joinpath("example.toml").read_text("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(template, "utf-8")
    console.print(f"wrote {target}")
    key = ensure_key_file(target.parent / SecretsConfig().key_file)
    console.print(f"the key that encrypts OAuth tokens is {key} (mode 0600, kept if it existed)")
    console.print("next: edit it, then run `crm-sync db upgrade` and `crm-sync status`")


@click.command()
@click.option(
    "--db",
    "database",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("demo.db"),
    show_default=True,
    help="The SQLite file to create (replaced if it exists).",
)
def demo(database: Path) -> None:
    """Sync the bundled sample company's mailboxes and calendar, and show what was logged.

    Runs offline in seconds; needs no config file.
    """
    from agent.cli.demo import run_demo

    run_demo(database)


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create the tables, or migrate them to this version's schema."""
    revision = app.upgrade()
    console.print(f"database at revision {revision}: {safe_url(app)}")


@db.command("vacuum")
@pass_app
def db_vacuum(app: App) -> None:
    """Overwrite the space deleted rows left behind, as `forget` does after an erasure.

    SQLite: rebuild the file and empty its write-ahead log; PostgreSQL:
    VACUUM every table of crm-sync. For when `forget` or `privacy apply` could not
    finish it (an agent kept reading); safe while agents run.
    """
    problem = purge_freed_space(app.engine, sorted(table_names(app.engine)))
    if problem:
        errors.print(f"error: {problem}", highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
    console.print(f"freed space overwritten: {safe_url(app)}")
