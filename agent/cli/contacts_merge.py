"""``contacts merge``: two contacts that are one person become one.

Kept apart from the rest of the ``contacts`` group, which is about reading
and editing single contacts; ``agent.cli.main`` adds it to that group.
"""

from __future__ import annotations

import sys

import click
from sqlalchemy.orm import Session

from agent.cli.common import EXIT_FAILURE, actor, as_user, pass_app
from agent.cli.companies import print_merge
from agent.cli.output import errors
from agent.mail.addresses import normalize_email
from agent.runtime.app import App
from storage.db import transaction
from storage.entity_merge import MergeError, merge_contacts
from storage.ingest import contact_ids


@click.command("merge")
@click.argument("keep", metavar="A")
@click.argument("absorb", metavar="B")
@as_user
@click.option("--json", "as_json", is_flag=True, help="Print what moved as JSON.")
@pass_app
def merge(app: App, keep: str, absorb: str, user: str | None, as_json: bool) -> None:
    """Merge contact B into contact A: one person known under two addresses.

    A and B are an address of the contact or its id. B's addresses,
    observations, interactions and conflicts move to A; A's fields are then
    derived again from all observations, so a value a person set on either
    wins as usual; B goes. Running it again changes nothing. The audit log
    records both contacts as they were.
    """
    app.require_schema()
    with transaction(app.sessions) as session:
        ids = [_contact_id(session, ref) for ref in (keep, absorb)]
        try:
            result = merge_contacts(session, ids[0], ids[1], actor=actor(user))
        except MergeError as exc:
            errors.print(f"error: {exc}")
            sys.exit(EXIT_FAILURE)
    print_merge(result, "contact", as_json=as_json)


def _contact_id(session: Session, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    email = normalize_email(ref)
    found = contact_ids(session, [email]) if email else {}
    if email not in found:
        errors.print(f"error: no contact with the address {ref}")
        sys.exit(EXIT_FAILURE)
    return found[email]
