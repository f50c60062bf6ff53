"""``contacts``: the people the agent knows, and their history."""

from __future__ import annotations

import sys
from typing import Any

import click

from agent.app import App
from agent.commands.common import EXIT_FAILURE, pass_app
from agent.output import console, errors, print_json, print_rows
from storage import contacts as contact_queries


@click.group()
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
