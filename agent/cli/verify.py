"""``verify``: reconcile what a provider holds with what the database logged."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from rich.text import Text

from agent.cli.common import EXIT_FAILURE, pass_app
from agent.cli.output import console, errors, print_json, print_rows
from agent.cli.wording import command_line
from agent.pipeline.policy import Policy
from agent.runtime.app import App
from agent.runtime.inert_text import plain
from agent.runtime.reconcile import NotVerifiable, Report, record_result, verify_connector
from agent.runtime.registry import NotAvailable, build_connector, mailbox_of
from connectors.errors import AuthError, ConnectorError


@click.command()
@click.argument("name")
@click.option("--all", "show_all", is_flag=True, help="List explained items too, not only losses.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def verify(app: App, name: str, show_all: bool, as_json: bool) -> None:
    """Check that nothing NAME's provider holds was lost without a reason.

    Lists what the mailbox holds in the window the last sync covered, takes
    away what the database logged or quarantined for the connector, and
    re-runs the filters over the rest to tell each item's skip reason. Exits
    with status 1 when something is missing without a reason: then run
    `crm-sync sync --connector NAME` and verify again; what is still missing
    was lost. Reads the mailbox, writes only its result (shown by `status`).

    Calendars (google_calendar, ics) give no inventory to compare with: for
    such a connector verify says so in one line and exits with status 0,
    since nothing was found missing; `crm-sync status` shows its health.
    """
    app.require_schema()
    settings = app.settings
    try:
        config = settings.connector(name)
    except KeyError:
        raise click.UsageError(f"no connector named {name!r} in the config") from None
    try:
        connector = build_connector(config, settings, app.base_dir)
        policy = Policy.from_settings(settings, name, mailbox_of(config))
        report = verify_connector(app.sessions, connector, policy)
    except NotVerifiable:
        _not_verifiable(name, config.kind, app.config_path, as_json=as_json)
        return
    except (NotAvailable, ConnectorError, OSError, ValueError) as exc:
        hint = exc.hint if isinstance(exc, AuthError) else ""
        errors.print(f"error: {exc} {hint}".strip(), highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
    record_result(app.sessions, report)
    _print(report, show_all=show_all, as_json=as_json)
    if report.unexplained:
        sys.exit(EXIT_FAILURE)


def _not_verifiable(name: str, kind: str, config_path: Path | None, *, as_json: bool) -> None:
    reason = "its provider gives no inventory"
    if as_json:
        print_json({"connector": name, "kind": kind, "verifiable": False, "reason": reason})
        return
    console.print(
        f"{name} ({kind}) cannot be verified: {reason}; "
        f"`{command_line(config_path, 'status')}` shows its health",
        highlight=False,
        soft_wrap=True,
    )


def _print(report: Report, *, show_all: bool, as_json: bool) -> None:
    missing = [asdict(m) | {"explained": m.explained} for m in report.missing]
    if as_json:
        print_json(
            {"connector": report.connector}
            | report.summary()
            | {"reasons": _reason_rows(report), "missing_items": missing}
        )
        return
    if not report.synced:
        console.print(f"{report.connector}: never synced; nothing to compare yet")
        return
    summary = report.summary()
    console.print(
        Text.assemble(
            (plain(report.connector), "bold"),
            f": the provider holds {summary['held']} in the synced "
            f"window; {summary['logged']} logged, {summary['quarantined']} quarantined, ",
            _announced(report.announced),
            f"{summary['explained']} not logged for a reason, ",
            (f"{report.unexplained} unexplained", "red" if report.unexplained else "green"),
            f"; {report.extra} logged but no longer there" if report.extra else "",
        ),
        highlight=False,
    )
    if report.missing:
        print_rows(
            _reason_rows(report),
            ["outcome", "reason", "found", "counted_by_sync"],
            as_json=False,
            title="not logged, by reason",
        )
    shown = [m for m in missing if show_all or not m["explained"]]
    if shown:
        print_rows(
            shown,
            ["source_id", "message_id", "outcome", "reason", "detail"],
            as_json=False,
            title="missing" if show_all else "missing without a reason",
        )
    if report.uncounted_skips:
        console.print(
            f"{report.uncounted_skips} skipped items were never counted by a sync: "
            "they were not seen by one"
        )


def _announced(count: int) -> str:
    """Invitations are logged as the meetings they announce, under those meetings' ids:
    said so, lest they read as missing or their meetings as "no longer there"."""
    if not count:
        return ""
    invitations = "1 invitation" if count == 1 else f"{count} invitations"
    return f"{invitations} logged as the meetings announced, "


def _reason_rows(report: Report) -> list[dict[str, Any]]:
    """Missing items by outcome and reason, skips beside what the sync counted."""
    found = Counter((m.outcome, m.reason) for m in report.missing)
    return [
        {
            "outcome": outcome,
            "reason": reason,
            "found": count,
            "counted_by_sync": report.counted_skips.get(reason) if outcome == "skipped" else None,
        }
        for (outcome, reason), count in sorted(found.items())
    ]
