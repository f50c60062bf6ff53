"""The ``crm-sync`` command line.

Exit codes: 0 success, 1 a failure at run time, 2 a usage or config error.
Every listing takes ``--json``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from agent.app import App, SchemaOutOfDate
from agent.output import console, errors, print_json, print_rows
from agent.pipeline import Policy
from agent.registry import NotAvailable, build_connector, mailbox_of
from agent.report import print_summary, sync_progress
from agent.status import connector_status
from agent.sync import SyncResult, mark_failed, sync_connector
from config import ConfigError
from config.loader import DEFAULT_FILE, ENV_CONFIG
from config.schema import parse_since
from connectors.errors import AuthError
from connectors.mbox import MboxConnector
from connectors.records import Connector
from storage import contacts as contact_queries

EXIT_FAILURE = 1
EXIT_USAGE = 2

pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=f"Config file. Default: ${ENV_CONFIG}, then ./{DEFAULT_FILE}.",
)
@click.version_option(package_name="crm-sync")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """crm-sync logs your team's email and meetings into a shared customer database.

    Start with `crm-sync init` to write a config file, `crm-sync db upgrade`
    to create the database, then `crm-sync status`.
    """
    ctx.obj = App(config_path=config_path)


@cli.command()
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
    console.print("next: edit it, then run `crm-sync db upgrade` and `crm-sync status`")


@cli.command()
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
    from agent.demo import run_demo

    run_demo(database)


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create the tables, or migrate them to this version's schema."""
    revision = app.upgrade()
    console.print(f"database at revision {revision}: {_safe_url(app)}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--skipped", is_flag=True, help="List skipped mail per connector, by reason.")
@pass_app
def status(app: App, as_json: bool, skipped: bool) -> None:
    """Per connector: state, last success, lag, items, errors, lease.

    Exits with status 1 when a connector is failing or needs authorisation,
    so monitoring can call it.
    """
    app.require_schema()
    with app.sessions() as session:
        rows = connector_status(app.settings, session, now=datetime.now(timezone.utc))
    if skipped:
        print_rows(
            [
                {"connector": row["connector"], "reason": reason, "count": count}
                for row in rows
                for reason, count in sorted(row["skipped"].items())
            ],
            ["connector", "reason", "count"],
            as_json=as_json,
            title="skipped mail",
            empty="nothing skipped",
        )
        return
    print_rows(
        rows,
        ["connector", "kind", "state", "last_success", "lag", "items", "last_error"],
        as_json=as_json,
        title=f"crm-sync — {_safe_url(app)}",
        empty="no connectors configured (see `crm-sync init` and the [[connectors]] tables)",
    )
    if any(row["state"] in ("failing", "needs_auth") for row in rows):
        sys.exit(EXIT_FAILURE)


@cli.command()
@click.option("--connector", "names", multiple=True, metavar="NAME", help="Only this connector.")
@click.option("--full", is_flag=True, help="Resync from scratch (duplicates nothing).")
@click.option(
    "--dry-run", is_flag=True, help="Run the pipeline without writing; show what would change."
)
@pass_app
def sync(app: App, names: tuple[str, ...], full: bool, dry_run: bool) -> None:
    """One sync pass now, with a progress bar."""
    settings = app.settings
    chosen = [c for c in settings.connectors if not names or c.name in names]
    unknown = set(names) - {c.name for c in settings.connectors}
    if unknown:
        raise click.UsageError(f"no connector named {', '.join(sorted(unknown))} in the config")
    if not chosen:
        raise click.UsageError("no connectors configured (add [[connectors]] tables)")
    app.upgrade()
    failed = False
    for config in chosen:
        if not config.enabled and not names:
            continue
        try:
            connector = build_connector(config, settings, app.base_dir)
        except (NotAvailable, AuthError, ValueError) as exc:
            result = mark_failed(app.sessions, config.name, config.kind, exc)
            print_summary(result)
            failed = True
            continue
        result = _run_sync(app, connector, config.kind, mailbox_of(config), full, dry_run)
        failed |= result.status != "ok"
    if failed:
        sys.exit(EXIT_FAILURE)


@cli.group("import")
def import_() -> None:
    """One-off backfills from files."""


@import_.command("mbox")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--mailbox", required=True, metavar="ADDRESS", help="Whose mail this is.")
@click.option("--since", metavar="DATE|AGE", help="Only mail from then on: 2024-01-01 or 90d.")
@click.option("--dry-run", is_flag=True, help="Run the pipeline without writing.")
@pass_app
def import_mbox(app: App, path: Path, mailbox: str, since: str | None, dry_run: bool) -> None:
    """Backfill from an mbox file or Maildir folder (e.g. a Google Takeout export).

    Running it again over the same file adds nothing: it resumes where it
    stopped, and every write is idempotent.
    """
    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    name = import_connector_name(path, mailbox)
    connector = MboxConnector(name, path, mailbox, since=start)
    app.upgrade()
    result = _run_sync(app, connector, "mbox", mailbox, False, dry_run)
    if result.status != "ok":
        sys.exit(EXIT_FAILURE)


def import_connector_name(path: Path, mailbox: str) -> str:
    """A stable name per file and owner, so a second import resumes the first."""
    import hashlib

    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return f"import-{mailbox.strip().lower()}-{digest}"


def _run_sync(
    app: App, connector: Connector, kind: str, mailbox: str, full: bool, dry_run: bool
) -> SyncResult:
    policy = Policy.from_settings(app.settings, connector.name, mailbox)
    total, position = _progress_scale(connector)
    with sync_progress(connector.name, total, position) as progress:
        result = sync_connector(
            app.sessions,
            connector,
            policy,
            kind=kind,
            full=full,
            dry_run=dry_run,
            propagate_deletes=app.settings.agent.propagate_deletes,
            progress=progress,
        )
    print_summary(result, dry_run=dry_run)
    return result


def _progress_scale(connector: Connector) -> tuple[int | None, Any]:
    if isinstance(connector, MboxConnector) and connector.path.is_file():
        return connector.size_hint(), lambda batch: batch.cursor.get("offset")
    return None, None


@cli.group()
def contacts() -> None:
    """Contacts and their history."""


@contacts.command("list")
@click.option("--company", metavar="DOMAIN", help="Only contacts of this company.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def contacts_list(app: App, company: str | None, limit: int | None, as_json: bool) -> None:
    """Contacts, most recently contacted first."""
    app.require_schema()
    with app.sessions() as session:
        rows = contact_queries.list_contacts(session, company=company, limit=limit)
    print_rows(
        [row.__dict__ for row in rows],
        ["name", "emails", "company", "title", "interactions", "last_contacted_at"],
        as_json=as_json,
        empty="no contacts yet",
    )


@contacts.command("show")
@click.argument("email")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def contacts_show(app: App, email: str, limit: int, as_json: bool) -> None:
    """A contact with its timeline of interactions."""
    app.require_schema()
    with app.sessions() as session:
        contact = contact_queries.find_contact(session, email)
        if contact is None:
            errors.print(f"error: no contact with the address {email}")
            sys.exit(EXIT_FAILURE)
        history = contact_queries.timeline(session, contact.id, limit=limit)
        record: dict[str, Any] = {
            "id": contact.id,
            "name": contact.display_name,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "title": contact.title,
            "phone": contact.phone,
            "company": contact.company.name if contact.company else None,
            "company_domain": contact.company.domain if contact.company else None,
            "emails": [e.email for e in contact.emails],
            "last_contacted_at": contact.last_contacted_at,
            "version": contact.version,
            "timeline": [
                {
                    "occurred_at": i.occurred_at,
                    "kind": i.kind,
                    "direction": i.direction,
                    "subject": i.subject,
                    "summary": i.summary,
                    "status": i.status,
                }
                for i in history
            ],
        }
    if as_json:
        print_json(record)
        return
    console.print(f"[bold]{record['name'] or email}[/bold]  {', '.join(record['emails'])}")
    for key in ("title", "company", "phone", "last_contacted_at"):
        if record[key]:
            console.print(f"  {key.replace('_', ' ')}: {record[key]}")
    print_rows(
        record["timeline"],
        ["occurred_at", "kind", "direction", "subject", "summary"],
        as_json=False,
        title="timeline",
        empty="no interactions yet",
    )


def _safe_url(app: App) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(app.settings.database.url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: turns the errors an admin can fix into messages and exit codes."""
    try:
        cli.main(args=argv, prog_name="crm-sync", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        errors.print("aborted")
        sys.exit(EXIT_FAILURE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        errors.print(f"config error: {exc.path or 'configuration'}", highlight=False)
        for problem in exc.problems:
            errors.print(f"  {problem}", highlight=False, markup=False)
        sys.exit(EXIT_USAGE)
    except SchemaOutOfDate as exc:
        errors.print(f"error: {exc}")
        sys.exit(EXIT_FAILURE)
    except OperationalError as exc:
        errors.print(f"database error: {exc.orig}", highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
    except SQLAlchemyError as exc:
        errors.print(f"database error: {exc}", highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
