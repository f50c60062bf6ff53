"""``tags``: labels on contacts and companies, by hand, from a CSV file, or by a segment.

Every tag records who put it there (``user:NAME``, ``csv:FILE``,
``rule:SEGMENT``), and every change is in the audit log (``storage.tags``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy.orm import Session

from agent.cli.common import EXIT_FAILURE, actor, as_user, pass_app
from agent.cli.output import console, errors, human, print_json, print_rows
from agent.mail.addresses import normalize_domain, normalize_email
from agent.runtime.app import App
from storage import contacts as contact_queries
from storage import segments, tags
from storage.db import transaction
from storage.ingest import company_ids
from storage.segments import SegmentError
from storage.tags import TagError

MAX_SHOWN_PROBLEMS = 20
F = TypeVar("F", bound=Callable[..., Any])


@click.group("tags")
def tags_group() -> None:
    """Tags on contacts and companies: add, remove, list, import a CSV, apply a segment."""


subjects = [
    click.option(
        "--contact",
        "contacts",
        multiple=True,
        metavar="EMAIL",
        help="A contact's address (repeat for several).",
    ),
    click.option(
        "--company",
        "companies",
        multiple=True,
        metavar="DOMAIN",
        help="A company's domain (repeat for several).",
    ),
]


def with_subjects(command: F) -> F:
    for option in reversed(subjects):
        command = option(command)
    return command


@tags_group.command("add")
@click.argument("tag")
@with_subjects
@as_user
@pass_app
def tags_add(
    app: App, tag: str, contacts: tuple[str, ...], companies: tuple[str, ...], user: str | None
) -> None:
    """Put TAG on contacts and companies; those that have it already keep it."""
    _change(app, tag, contacts, companies, user, adding=True)


@tags_group.command("remove")
@click.argument("tag")
@with_subjects
@as_user
@pass_app
def tags_remove(
    app: App, tag: str, contacts: tuple[str, ...], companies: tuple[str, ...], user: str | None
) -> None:
    """Take TAG off contacts and companies, whoever put it there."""
    _change(app, tag, contacts, companies, user, adding=False)


def _change(
    app: App,
    tag: str,
    contacts: tuple[str, ...],
    companies: tuple[str, ...],
    user: str | None,
    *,
    adding: bool,
) -> None:
    app.require_schema()
    if not contacts and not companies:
        raise click.UsageError("name at least one --contact EMAIL or --company DOMAIN")
    who = actor(user)
    done: list[tuple[tags.Changed, int]] = []
    with transaction(app.sessions) as session:
        lookups: tuple[tuple[tags.Kind, tuple[str, ...], Callable[[Session, str], int]], ...] = (
            ("contact", contacts, _contact_id),
            ("company", companies, _company_id),
        )
        for kind, refs, find in lookups:
            ids = {find(session, ref) for ref in refs}
            if ids:
                done.append((_write(session, kind, ids, tag, who, adding=adding), len(ids)))
    verb = "tagged" if adding else "untagged"
    for change, asked in done:
        unchanged = asked - len(change.ids)
        console.print(
            f"{verb} {len(change.ids)} {change.kind}(s) {change.tag!r}"
            + (f"; {unchanged} already so" if unchanged else ""),
            highlight=False,
            soft_wrap=True,
        )


def _write(
    session: Session, kind: tags.Kind, ids: set[int], tag: str, who: str, *, adding: bool
) -> tags.Changed:
    try:
        if adding:
            return tags.add_tag(session, kind, ids, tag, source=who, actor=who)
        return tags.remove_tag(session, kind, ids, tag, actor=who)
    except TagError as exc:
        _fail(str(exc))


def _contact_id(session: Session, ref: str) -> int:
    contact = contact_queries.find_contact(session, normalize_email(ref) or ref)
    if contact is None:
        _fail(f"no contact with the address {ref}")
    return contact.id


def _company_id(session: Session, ref: str) -> int:
    domain = normalize_domain(ref.strip().rpartition("@")[2])
    found = company_ids(session, [domain]) if domain else {}
    if domain not in found:
        _fail(f"no company owns the domain {ref}")
    return found[domain]


def _fail(message: str) -> NoReturn:
    errors.print(f"error: {message}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(EXIT_FAILURE)


@tags_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def tags_list(app: App, as_json: bool) -> None:
    """Every tag with how many contacts and companies carry it, most used first."""
    app.require_schema()
    with app.sessions() as session:
        rows = [asdict(row) for row in tags.list_tags(session)]
    print_rows(rows, ["name", "contacts", "companies"], as_json=as_json, empty="no tags yet")


@tags_group.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@as_user
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@pass_app
def tags_import(app: App, path: Path, user: str | None, as_json: bool) -> None:
    """Tags from a CSV file with a `tag` column and an `email` or `domain` column.

    \b
    email,domain,tag
    ann@acme.example,,customer
    ,globex.example,partner

    Addresses and domains the database does not know are listed and skipped.
    """
    app.require_schema()
    with path.open("rb") as handle:
        data = handle.read(tags.MAX_CSV_BYTES + 1)
    with transaction(app.sessions) as session:
        try:
            result = tags.import_csv(session, data, file_name=path.name, actor=actor(user))
        except TagError as exc:
            _fail(str(exc))
    if as_json:
        print_json(asdict(result))
        return
    console.print(
        f"{result.rows} rows: {result.added} tags added, {result.unchanged} already there, "
        f"{len(result.problems)} skipped",
        highlight=False,
        soft_wrap=True,
    )
    for problem in result.problems[:MAX_SHOWN_PROBLEMS]:
        errors.print(f"  {human(problem)}", highlight=False, soft_wrap=True)
    if len(result.problems) > MAX_SHOWN_PROBLEMS:
        errors.print(f"  ... and {len(result.problems) - MAX_SHOWN_PROBLEMS} more")


@tags_group.command("apply")
@click.argument("segment_name", metavar="SEGMENT")
@click.option("--tag", "tag", required=True, help="The tag to put on every member.")
@as_user
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
@pass_app
def tags_apply(app: App, segment_name: str, tag: str, user: str | None, as_json: bool) -> None:
    """Tag every current member of SEGMENT with TAG (source rule:SEGMENT).

    Run again to follow the segment: new members are tagged, and those who
    left it are untagged where this rule alone had tagged them; a tag a
    person or a file put there stays.
    """
    app.require_schema()
    with transaction(app.sessions) as session:
        try:
            segment = segments.require_segment(session, segment_name)
            result = tags.apply_rule(
                session,
                "company" if segment.subject == "company" else "contact",
                segments.member_ids(segment),
                tag,
                rule=segment.name,
                actor=actor(user),
            )
        except (SegmentError, TagError) as exc:
            _fail(str(exc))
    if as_json:
        print_json(asdict(result))
        return
    console.print(
        f"{result.members} members of {result.rule!r}: {len(result.added)} tagged "
        f"{result.tag!r}, {len(result.removed)} untagged (no longer members)",
        highlight=False,
        soft_wrap=True,
    )
