"""``status``: how every connector is doing."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import click

from agent.app import App
from agent.commands.common import EXIT_FAILURE, pass_app, safe_url
from agent.output import print_rows
from agent.status import ALERTING, connector_status


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--skipped", is_flag=True, help="List skipped mail per connector, by reason.")
@pass_app
def status(app: App, as_json: bool, skipped: bool) -> None:
    """Per connector: state, last success, lag, items, errors, lease, and what to do.

    Exits with status 1 when a connector is failing, needs authorisation or
    is stuck, so monitoring can call it.
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
        [
            "connector",
            "kind",
            "state",
            "last_success",
            "lag",
            "items",
            "quota_units_last_run",
            "last_error",
            "fix",
        ],
        as_json=as_json,
        title=f"crm-sync — {safe_url(app)}",
        empty="no connectors configured (see `crm-sync init` and the [[connectors]] tables)",
    )
    if any(row["state"] in ALERTING for row in rows):
        sys.exit(EXIT_FAILURE)
