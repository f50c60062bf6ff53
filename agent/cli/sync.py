"""``sync`` and ``import``: one pass now, with a progress bar."""

from __future__ import annotations

import contextlib
import hashlib
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import click

from agent.cli.common import EXIT_FAILURE, pass_app
from agent.cli.output import console
from agent.cli.progress import print_summary, sync_progress
from agent.pipeline.policy import Policy
from agent.pipeline.workers import processes_for
from agent.runtime.app import App
from agent.runtime.debug import summary_of
from agent.runtime.registry import NotAvailable, build_connector, mailbox_of
from agent.runtime.sync_pass import SyncResult, mark_failed, sync_connector
from config.schema import parse_since
from connectors.capabilities import Positioned
from connectors.errors import AuthError
from connectors.maildir import NOT_CHOSEN
from connectors.mbox import MboxConnector
from connectors.records import Batch, Connector
from storage import leases


@click.command()
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


@click.group("import")
def import_() -> None:
    """One-off backfills from files."""


@import_.command("mbox")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--mailbox", required=True, metavar="ADDRESS", help="Whose mail this is.")
@click.option("--since", metavar="DATE|AGE", help="Only mail from then on: 2024-01-01 or 90d.")
@click.option(
    "--folder",
    "folders",
    multiple=True,
    metavar="NAME",
    help="Only this Maildir folder (repeatable); none named: all but junk, trash and drafts.",
)
@click.option("--dry-run", is_flag=True, help="Run the pipeline without writing.")
@pass_app
def import_mbox(
    app: App,
    path: Path,
    mailbox: str,
    since: str | None,
    folders: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Backfill from an mbox file or a Maildir (e.g. a Google Takeout export, ~/Maildir).

    A Maildir is read with all its folders (Maildir++ ``.Sent``, nested
    ``Sent/``), sent ones as the owner's sent mail; junk, trash and drafts
    only when named with ``--folder``. Running it again over the same file
    adds nothing: it resumes where it stopped, and every write is idempotent.
    """
    try:
        start = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    name = import_connector_name(path, mailbox)
    connector = MboxConnector(
        name,
        path,
        mailbox,
        since=start,
        folders=folders,
        batch_bytes=app.settings.agent.batch_bytes,
    )
    if folders:
        _check_folders(connector)
    app.upgrade()
    result = _run_sync(app, connector, "mbox", mailbox, False, dry_run)
    if path.is_dir() and result.status != "busy":
        _print_folders(connector)
    if result.status != "ok":
        sys.exit(EXIT_FAILURE)


def _check_folders(connector: MboxConnector) -> None:
    """``--folder`` names folders of a Maildir that exist: a typo reads nothing, silently."""
    if not connector.path.is_dir():
        raise click.BadParameter(
            f"chooses Maildir folders, and {connector.path} is an mbox file", param_hint="--folder"
        )
    missing = connector.selection().missing
    if missing:
        held = ", ".join(count.name for count in connector.folder_counts()) or "none"
        raise click.BadParameter(
            f"no folder named {', '.join(missing)} in {connector.path} (its folders: {held})",
            param_hint="--folder",
        )


def _print_folders(connector: MboxConnector) -> None:
    """The Maildir's folders: what this import read of each, and those left out and why."""
    counts = connector.folder_counts()
    width = max((len(count.name) for count in counts), default=0) + 2
    read = [count for count in counts if count.skipped is None]
    skipped = [count for count in counts if count.skipped is not None]
    if read:
        console.print("  folders read (this import, of the messages held):")
    for count in read:
        role = " (sent mail)" if count.role == "sent" else ""
        console.print(f"    {count.name:<{width}}{count.read} of {_messages(count.messages)}{role}")
    if skipped:
        hint = any(count.skipped != NOT_CHOSEN for count in skipped)
        console.print("  folders skipped" + (" (--folder NAME reads one):" if hint else ":"))
    for count in skipped:
        why = "not chosen with --folder" if count.skipped == NOT_CHOSEN else count.skipped
        console.print(f"    {count.name:<{width}}{_messages(count.messages)}: {why}")


def _messages(count: int) -> str:
    return f"{count} message{'' if count == 1 else 's'}"


def import_connector_name(path: Path, mailbox: str) -> str:
    """A stable name per file and owner, so a second import resumes the first."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return f"import-{mailbox.strip().lower()}-{digest}"


LEASE_TTL = timedelta(seconds=60)


def _run_sync(
    app: App, connector: Connector, kind: str, mailbox: str, full: bool, dry_run: bool
) -> SyncResult:
    """One pass under the connector's lease, so it never overlaps a running agent's.

    An error that escapes the pass (the database went away: the pass records
    its own failures otherwise) ends the command, the caller printing it in
    one line; should the database answer again by then, the connector is
    recorded as ``failing`` first, so ``status`` never shows it ``syncing``
    for a run that is over.
    """
    policy = Policy.from_settings(app.settings, connector.name, mailbox)
    total, position = _progress_scale(connector)
    lease: leases.Lease | None = None
    if not dry_run:
        claimed = leases.claim(
            app.sessions, connector.name, leases.new_owner(), LEASE_TTL, kind=kind
        )
        if isinstance(claimed, leases.Refused):
            result = SyncResult(connector.name, status="busy", error=claimed.detail)
            print_summary(result)
            return result
        lease = claimed
    with contextlib.ExitStack() as stack:
        if lease is not None:
            stack.enter_context(leases.held(app.sessions, lease, LEASE_TTL))
        progress = stack.enter_context(sync_progress(connector.name, total, position))
        try:
            result = sync_connector(
                app.sessions,
                connector,
                policy,
                kind=kind,
                full=full,
                dry_run=dry_run,
                propagate_deletes=app.settings.agent.propagate_deletes,
                progress=progress,
                lease=lease,
                processes=processes_for(app.settings.agent.planning_processes),
            )
        except Exception as exc:
            if lease is not None:
                _record_lost_run(app, lease, exc)
            raise
    print_summary(result, dry_run=dry_run)
    return result


def _record_lost_run(app: App, lease: leases.Lease, exc: BaseException) -> None:
    """Try once to record the run as failing; the database is likely still away."""
    with contextlib.suppress(Exception):
        leases.record_lost_run(app.sessions, lease, summary_of(exc))


def _progress_scale(
    connector: Connector,
) -> tuple[int | None, Callable[[Batch], int | None] | None]:
    """The progress bar's total and how far a batch is, for a connector that can say
    (:class:`~connectors.capabilities.Positioned`); otherwise it counts items."""
    if isinstance(connector, Positioned):
        return connector.progress_total(), connector.position
    return None, None
