"""``companies``: the organisations contacts belong to, and merging two of them."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click
from sqlalchemy.orm import Session

from agent.cli.common import EXIT_FAILURE, actor, as_user, pass_app
from agent.cli.output import console, errors, print_json, print_rows
from agent.mail.addresses import normalize_domain
from agent.runtime.app import App
from storage import contacts as contact_queries
from storage.db import transaction
from storage.entity_merge import MergeError, MergeResult, merge_companies
from storage.ingest import company_ids


@click.group()
def companies() -> None:
    """Companies, found by their domains."""


@companies.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def companies_list(app: App, as_json: bool) -> None:
    """Companies with their domains and how many contacts each, largest first."""
    app.require_schema()
    with app.sessions() as session:
        rows = contact_queries.list_companies(session)
    print_rows(
        [asdict(row) for row in rows],
        ["id", "name", "domains", "contacts"],
        as_json=as_json,
        empty="no companies yet",
    )


@companies.command("merge")
@click.argument("keep", metavar="A")
@click.argument("absorb", metavar="B")
@as_user
@click.option("--json", "as_json", is_flag=True, help="Print what moved as JSON.")
@pass_app
def companies_merge(app: App, keep: str, absorb: str, user: str | None, as_json: bool) -> None:
    """Merge company B into company A: B's contacts and domains move to A, and B goes.

    A and B are a domain the company owns or its id (`companies list`).
    A keeps its name. Running it again changes nothing. The audit log
    records both companies as they were.
    """
    app.require_schema()
    with transaction(app.sessions) as session:
        ids = [_company_id(session, ref) for ref in (keep, absorb)]
        try:
            result = merge_companies(session, ids[0], ids[1], actor=actor(user))
        except MergeError as exc:
            errors.print(f"error: {exc}")
            sys.exit(EXIT_FAILURE)
    print_merge(result, "company", as_json=as_json)


def _company_id(session: Session, ref: str) -> int:
    if ref.isdigit():
        return int(ref)
    domain = normalize_domain(ref.rpartition("@")[2])
    found = company_ids(session, [domain]) if domain else {}
    if domain not in found:
        errors.print(f"error: no company owns the domain {ref}")
        sys.exit(EXIT_FAILURE)
    return found[domain]


def print_merge(result: MergeResult, entity: str, *, as_json: bool) -> None:
    """One line for people, or the result as JSON."""
    if as_json:
        print_json(asdict(result))
    elif not result.merged:
        console.print(
            f"nothing to do: {entity} {result.absorbed} is already {entity} {result.kept}"
        )
    else:
        moved = ", ".join(f"{kind}: {n}" for kind, n in result.moved.items())
        console.print(f"merged {entity} {result.absorbed} into {result.kept} ({moved})")
