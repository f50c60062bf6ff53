"""``audit``: who changed what, from what, to what (the admin pages' audit log)."""

from __future__ import annotations

from datetime import timedelta

import click

from agent.cli.common import pass_app
from agent.cli.output import print_rows
from agent.runtime.app import App
from storage import audit as log
from storage.models import utcnow


@click.command()
@click.option("--contact", "contact_id", type=click.IntRange(min=1), help="Only this contact id.")
@click.option("--actor", help="Only this actor: user:NAME, connector:NAME, or the name alone.")
@click.option("--days", type=click.IntRange(1, 3650), default=30, show_default=True)
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def audit(
    app: App, contact_id: int | None, actor: str | None, days: int, limit: int, as_json: bool
) -> None:
    """The audit log, newest first: every change by a person or a connector."""
    app.require_schema()
    with app.sessions() as session:
        found = log.entries(
            session,
            entity="contact" if contact_id is not None else None,
            entity_id=contact_id,
            actor=actor,
            since=utcnow() - timedelta(days=days),
            limit=limit,
        )
        rows = [
            {
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "entity": r.entity,
                "entity_id": r.entity_id,
                "before": r.before,
                "after": r.after,
            }
            for r in found
        ]
    print_rows(
        rows,
        ["at", "actor", "action", "entity", "entity_id"],
        as_json=as_json,
        empty="no entry matches",
    )
