"""``status``: how every connector is doing."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import click

from agent.cli.common import EXIT_FAILURE, pass_app, safe_url
from agent.cli.doctor import doctor_hint
from agent.cli.output import console, errors, print_json, print_rows
from agent.cli.status_table import print_status
from agent.runtime.app import App
from agent.runtime.file_modes import loose_files
from agent.runtime.health import ALERTING, connector_health, quarantine_rows
from storage.sync_state import ConnectorHealth


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--skipped",
    is_flag=True,
    help="Per connector, by reason: mail skipped, and mail logged only up to a [limits] bound.",
)
@click.option(
    "--quarantined", is_flag=True, help="The items no connector could log, each with its reason."
)
@pass_app
def status(app: App, as_json: bool, skipped: bool, quarantined: bool) -> None:
    """Per connector: state, last success, lag, items, quarantined, errors, and what to do.

    Exits with status 1 when a connector is failing, needs authorisation or
    is stuck, so monitoring can call it. Warns (without changing the exit
    status) when other users can read the database, the token key or the
    tokens, and prints one line counting what `crm-sync doctor` would report;
    with --json these go to stderr.
    """
    app.require_schema()
    if quarantined:
        with app.sessions() as session:
            items = quarantine_rows(session)
        print_rows(
            items,
            ["connector", "source_id", "reason", "created_at"],
            as_json=as_json,
            title="quarantined items",
            empty="nothing quarantined",
        )
        return
    with app.sessions() as session:
        health = connector_health(app.settings, session, now=datetime.now(timezone.utc))
    if skipped:
        print_rows(
            _by_reason(health),
            ["connector", "outcome", "reason", "count"],
            as_json=as_json,
            title="skipped mail, and mail logged up to a bound",
            empty="nothing skipped",
        )
        return
    if as_json:
        print_json([row.as_row() for row in health])
    elif health:
        print_status(health, title=f"crm-sync — {safe_url(app)}")
    else:
        console.print(
            "no connectors configured (see `crm-sync init` and the [[connectors]] tables)",
            markup=False,
            highlight=False,
        )
    _warn_loose_files(app, as_json=as_json)
    hint = doctor_hint(app.settings, app.base_dir, app.config_path)
    if hint:
        (errors if as_json else console).print(hint, highlight=False, soft_wrap=True)
    if any(row.state in ALERTING for row in health):
        sys.exit(EXIT_FAILURE)


def _by_reason(health: list[ConnectorHealth]) -> list[dict[str, object]]:
    """One row per connector, outcome (skipped, or logged up to a bound) and reason."""
    return [
        {"connector": row.connector, "outcome": outcome, "reason": reason, "count": n}
        for row in health
        for outcome, counts in (("skipped", row.skipped), ("limited", row.limited))
        for reason, n in sorted(counts.items())
    ]


def _warn_loose_files(app: App, *, as_json: bool) -> None:
    """On stderr under --json, so stdout stays the list of connectors it always was."""
    for loose in loose_files(app.settings, app.base_dir):
        (errors if as_json else console).print(
            loose.warning(), highlight=False, markup=False, soft_wrap=True
        )
