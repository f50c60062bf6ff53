"""``conflicts``: review what the merge could not decide (DESIGN rule 4).

A conflict is two people changing one field of a contact from the same
version: the value committed first stays in the field ("manual"), the later
edit waits in the conflict ("latest") until someone picks.
"""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from agent.cli.common import EXIT_FAILURE, as_user, pass_app
from agent.cli.contacts import field_value, resolve_choices, shown, user_name
from agent.cli.output import console, errors, print_rows
from agent.pipeline.people import company_name
from agent.runtime.app import App
from storage import edits
from storage.models import Conflict


@click.group()
def conflicts() -> None:
    """Review and resolve what two people changed at once."""


@conflicts.command("list")
@click.option("--all", "include_resolved", is_flag=True, help="Resolved conflicts too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def conflicts_list(app: App, include_resolved: bool, as_json: bool) -> None:
    """Conflicts waiting for a decision, oldest first.

    "manual" is the value the field holds (the edit committed first) and who
    set it; "latest" is the later edit that was kept aside.
    """
    app.require_schema()
    with app.sessions() as session:
        rows = edits.list_conflicts(session, include_resolved=include_resolved)
    print_rows(
        [
            {
                **asdict(row),
                "contact": row.email,
                "manual_value": f"{shown(row.manual)} ({row.manual_by or '?'})",
                "latest_value": f"{shown(row.latest)} ({row.latest_by or '?'})",
            }
            for row in rows
        ],
        ["id", "contact", "field", "manual_value", "latest_value", "status", "created_at"]
        + (["resolution", "resolved_value", "resolved_by"] if include_resolved else []),
        as_json=as_json,
        title="conflicts",
        empty="no open conflicts" if not include_resolved else "no conflicts",
    )
    waiting = [row for row in rows if row.status == "open"]
    if waiting and not as_json:
        first = waiting[0]
        console.print(
            f"to decide conflict {first.id}: "
            + resolve_choices(app.config_path, first.id, first.manual, first.latest)
            + "; or set another value with --value V. The same for each ID.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@conflicts.command("resolve")
@click.argument("conflict_id", metavar="ID", type=int)
@click.option("--value", metavar="V", help="Set this value instead (empty clears the field).")
@click.option(
    "--keep",
    type=click.Choice(["manual", "latest"]),
    help="manual: keep the value the field holds; latest: take the later edit.",
)
@as_user
@pass_app
def conflicts_resolve(
    app: App, conflict_id: int, value: str | None, keep: edits.Keep | None, user: str | None
) -> None:
    """Settle conflict ID with --value V, --keep manual or --keep latest.

    The chosen value is written as a value set by hand (by --as USER), the
    conflict is marked resolved with who, when and how, and the audit log
    records both.
    """
    if (value is None) == (keep is None):
        raise click.UsageError("give exactly one of --value V, --keep manual, --keep latest")
    app.require_schema()
    if value is not None:
        with app.sessions() as session:
            conflict = session.get(Conflict, conflict_id)
            field = conflict.field if conflict is not None else None
        if field is not None:
            value = field_value(field, value) or ""
    try:
        resolution = edits.resolve_conflict(
            app.sessions,
            conflict_id,
            user=user_name(user),
            value=value,
            keep=keep,
            company_name=company_name,
        )
    except edits.EditError as exc:
        errors.print(f"error: {exc}")
        sys.exit(EXIT_FAILURE)
    change = resolution.outcome.applied[0] if resolution.outcome.applied else None
    before = shown(change.before) if change else "-"
    console.print(
        f"conflict {conflict_id} resolved ({resolution.how}): {resolution.outcome.email} "
        f"{resolution.field}: {before} -> {shown(resolution.value)}",
        markup=False,
        highlight=False,
    )
