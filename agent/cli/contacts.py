"""``contacts``: the people the agent knows, their history, and what people set by hand.

``set`` and ``import`` write *manual* values (``storage.edits``): they beat
whatever the agent observes, and an edit that crossed someone else's on the
same field opens a conflict (``crm-sync conflicts``) instead of overwriting it.
"""

from __future__ import annotations

import csv
import getpass
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NoReturn, TextIO

import click
from rich.text import Text
from sqlalchemy.orm import Session

from agent.cli.common import EXIT_FAILURE, as_user, pass_app
from agent.cli.contacts_list import print_contact_list
from agent.cli.contacts_merge import merge
from agent.cli.output import console, errors, human, print_json, print_rows
from agent.cli.wording import command_line
from agent.mail.addresses import (
    company_domain,
    load_free_mail,
    normalize_domain,
    normalize_email,
    registrable_domain,
)
from agent.pipeline.people import company_name
from agent.runtime.app import App
from agent.runtime.inert_text import plain
from storage import audit, contact_lookup, edits, fields, history
from storage import contacts as contact_queries
from storage.ingest import NewContact
from storage.models import Contact, ContactFigures
from storage.relationships import standing
from storage.visibility import Viewer

FIELDS_HELP = """
\b
Fields:
  display_name, first_name, last_name, title, address,
  preferred_channel, owner, lead_source      text
  phone           the primary number; every number seen stays known
  birthday        an ISO date: 1984-02-29
  do_not_contact  true or false
  company         the company's domain (acme.example); a domain no
                  company owns yet creates one
  extra.KEY       any other fact, kept under KEY in the contact's extra
"""


@click.group()
def contacts() -> None:
    """Contacts: list, show, set fields by hand, import, history."""


contacts.add_command(merge)


@contacts.command("list")
@click.option("--company", metavar="DOMAIN", help="Only contacts of this company.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def contacts_list(app: App, company: str | None, limit: int | None, as_json: bool) -> None:
    """Contacts, most recently contacted first.

    The table fits the terminal: id, name, address, company and when last
    contacted come first, and the address is never cut (`contacts show`
    takes it, the id or the name); title, interactions and other addresses
    are added while there is room. --json gives every field.
    """
    app.require_schema()
    with app.sessions() as session:
        rows = contact_queries.list_contacts(session, company=company, limit=limit)
    if as_json or not rows:
        print_rows([row.__dict__ for row in rows], [], as_json=as_json, empty="no contacts yet")
        return
    print_contact_list(rows, console.width)


@contacts.command("show")
@click.argument("contact_ref", metavar="CONTACT")
@click.option("--limit", type=click.IntRange(min=1, max=1000), default=20, show_default=True)
@click.option(
    "--include-private",
    is_flag=True,
    help="Show private threads too (those logged from a mailbox set to private). Without it "
    "they are left out, and their number is said.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def contacts_show(
    app: App, contact_ref: str, limit: int, include_private: bool, as_json: bool
) -> None:
    """A contact with its timeline, the agent's suggestions and open conflicts.

    CONTACT is an address (any of the contact's), an id as `contacts list`
    shows it (12, or '#12' quoted for the shell), or a name or part of one,
    ignoring case. A name that fits several contacts lists them with their
    ids, and the exit status is 1.

    A suggestion is a newer value the agent saw that differs from one a
    person set: the person's value stays until someone changes it. Private
    threads are their mailbox owner's: the web app shows them to that owner
    only, and this command leaves them out unless given --include-private.
    """
    app.require_schema()
    with app.sessions() as session:
        contact = _find(session, contact_ref, app.config_path)
        viewer = Viewer.cli(include_private=include_private)
        among = history.contact_interactions(contact.id)
        shown_timeline = history.timeline(session, viewer, among, size=limit)
        provenance = edits.provenance(session, contact.id)
        record: dict[str, Any] = {
            "id": contact.id,
            "name": contact.display_name,
            **{name: fields.read(contact, name) for name in fields.FIELDS},
            "company": contact.company.name if contact.company else None,
            "company_domain": contact.company.domain if contact.company else None,
            "extra": contact.extra or {},
            "emails": [e.email for e in contact.emails],
            "last_contacted_at": contact.last_contacted_at,
            "version": contact.version,
            "manual": sorted(name for name, value in provenance.items() if value.manual),
            "suggestions": [asdict(s) for s in edits.suggestions(session, contact.id)],
            "conflicts": [asdict(c) for c in edits.list_conflicts(session, contact_id=contact.id)],
            "timeline": [
                {
                    "occurred_at": i.occurred_at,
                    "kind": i.kind,
                    "direction": i.direction,
                    "subject": i.subject,
                    "summary": i.snippet,
                    "status": i.status,
                }
                for i in shown_timeline.entries
            ],
            "private_hidden": shown_timeline.hidden,
            "relationship": asdict(standing(session, ContactFigures, contact.id)),
        }
    if as_json:
        print_json(record)
        return
    _print_contact(record, app.config_path)


def _print_contact(record: dict[str, Any], config_path: Path | None) -> None:
    title = record["name"] or (record["emails"] or ["-"])[0]
    header = Text.assemble((human(title), "bold"), "  ", human(record["emails"]))
    console.print(header, highlight=False)
    listed = [n for n in fields.FIELDS if n not in ("display_name", "company", "do_not_contact")]
    for key in ("company", *listed, "last_contacted_at"):
        if record[key]:
            mark = " (set by hand)" if key in record["manual"] else ""
            label = key.replace("_", " ")
            console.print(f"  {label}: {_field_text(label, record[key])}{mark}", markup=False)
    if record["do_not_contact"] == "true":
        console.print("  do not contact", style="bold red")
    standing_ = record["relationship"]
    trend = f", {standing_['trend']}" if standing_["trend"] != "none" else ""
    mate = standing_["closest_teammate"]
    console.print(
        f"  relationship: {standing_['explanation']}{trend}"
        + (f"; closest teammate {mate}" if mate else ""),
        markup=False,
        highlight=False,
    )
    for key, value in sorted(record["extra"].items()):
        console.print(f"  extra.{human(key)}: {human(value)}", markup=False)
    for s in record["suggestions"]:
        console.print(
            f"  suggestion: {human(s['field'])} = {s['value']!r} "
            f"(seen by {human(s['source'])} {human(s['observed_at'])}; kept {s['current']!r})",
            markup=False,
        )
    for c in record["conflicts"]:
        console.print(
            f"  conflict {c['id']}: {human(c['field'])} is {shown(c['manual'])} "
            f"({human(c['manual_by'])}), {human(c['latest_by'])} wrote {shown(c['latest'])}: "
            + resolve_choices(config_path, c["id"], c["manual"], c["latest"]),
            markup=False,
            highlight=False,
            soft_wrap=True,
            style="yellow",
        )
    print_rows(
        record["timeline"],
        ["occurred_at", "kind", "direction", "subject", "summary"],
        as_json=False,
        title="timeline",
        empty="no interactions yet",
    )
    if record["private_hidden"]:
        n = record["private_hidden"]
        console.print(
            f"{n} private interaction{'s' if n != 1 else ''} not shown "
            "(their mailbox owner's; --include-private shows them)",
            highlight=False,
        )


def _field_text(label: str, value: Any) -> str:
    """One plain line, but an address keeps its lines, aligned under the first."""
    if label != "address" or not isinstance(value, str):
        return human(value)
    return ("\n" + " " * (len(label) + 4)).join(plain(line) for line in value.splitlines())


@contacts.command("set", epilog=FIELDS_HELP)
@click.argument("email")
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
@as_user
@pass_app
def contacts_set(app: App, email: str, assignments: tuple[str, ...], user: str | None) -> None:
    """Set a contact's fields by hand; `FIELD=` (nothing after =) clears one.

    A value set by hand beats anything the agent observes; newer values the
    agent sees later show as suggestions in `contacts show`. If someone else
    changed the same field since this command read the contact, the field
    keeps their value, a conflict keeps both (`crm-sync conflicts list`) and
    the exit status is 1.
    """
    changes: dict[str, str | None] = {}
    for assignment in assignments:
        name, value = parse_assignment(assignment)
        if name in changes:
            raise click.UsageError(f"{name} is given twice")
        changes[name] = value
    address = parse_address(email)
    app.require_schema()
    with app.sessions() as session:
        base = edits.snapshot(session, address)
    if base is None:
        errors.print(f"error: no contact with the address {email}")
        sys.exit(EXIT_FAILURE)
    result = _edit(app, [edits.Edit(address, changes, base)], user, dry_run=False)
    outcome = result.outcomes[0]
    _print_outcome(outcome, app.config_path, dry_run=False, quiet_unchanged=False)
    if outcome.conflicts:
        sys.exit(EXIT_FAILURE)


@contacts.command("import", epilog=FIELDS_HELP)
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@as_user
@click.option("--dry-run", is_flag=True, help="Show what would change per contact; write nothing.")
@pass_app
def contacts_import(app: App, path: Path, user: str | None, dry_run: bool) -> None:
    """Set fields of many contacts from a CSV file, as if typed by hand.

    The file has a header row with an `email` column and one column per
    field. An empty cell leaves the field as it is (a spreadsheet cannot
    tell "blank" from "clear"; `contacts set EMAIL FIELD=` clears). A
    contact that does not exist is created, with its company by domain as
    the agent would choose it. The whole file is one transaction: a bad
    cell anywhere stops it before anything is written (exit status 2); a
    conflict with someone else's edit is kept for review (exit status 1).
    """
    rows = read_people_csv(path)
    app.require_schema()
    with app.sessions() as session:
        bases = edits.snapshots(session, [email for email, _ in rows])
    settings = app.settings.agent
    free_mail = load_free_mail(settings.free_mail_domains, settings.not_free_mail_domains)
    batch = []
    for email, changes in rows:
        base = bases.get(email)
        create = None
        if base is None:
            domain = company_domain(email, free_mail)
            create = NewContact(email, domain, company_name(domain) if domain else None)
        batch.append(edits.Edit(email, changes, base, create))
    result = _edit(app, batch, user, dry_run=dry_run)
    for outcome in result.outcomes:
        _print_outcome(outcome, app.config_path, dry_run=dry_run, quiet_unchanged=True)
    created = sum(o.created for o in result.outcomes)
    changed = sum(bool(o.changed) and not o.created for o in result.outcomes)
    conflicts = sum(len(o.conflicts) for o in result.outcomes)
    unchanged = len(result.outcomes) - created - changed
    verb = "would create" if dry_run else "created"
    console.print(
        f"{path.name}: {len(rows)} rows; {verb} {created}, "
        f"{'would update' if dry_run else 'updated'} {changed}, {unchanged} unchanged, "
        f"{conflicts} conflicts" + (" (dry run: nothing written)" if dry_run else ""),
        markup=False,
    )
    if conflicts and not dry_run:
        sys.exit(EXIT_FAILURE)


@contacts.command("history")
@click.argument("email", metavar="CONTACT")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def contacts_history(app: App, email: str, as_json: bool) -> None:
    """A contact's audit trail (who changed what, from what, to what) and observations.

    CONTACT is an address, an id or a name, as `contacts show` takes them.

    The observations are every fact ever recorded about the contact, with
    its provenance: the value, its source (a connector, or the person who
    set it), when it was true, and whether a person set it.
    """
    app.require_schema()
    with app.sessions() as session:
        contact = _find(session, email, app.config_path)
        trail = [
            {
                "at": row.at,
                "actor": row.actor,
                "action": row.action,
                "before": row.before,
                "after": row.after,
            }
            for row in audit.history(session, "contact", contact.id)
        ]
        facts = [
            {
                "field": o.field,
                "value": o.value,
                "source": o.source,
                "observed_at": o.observed_at,
                "manual": o.manual,
                "recorded_at": o.recorded_at,
            }
            for o in edits.observations(session, contact.id)
        ]
    if as_json:
        print_json({"contact_id": contact.id, "audit": trail, "observations": facts})
        return
    print_rows(
        trail,
        ["at", "actor", "action", "before", "after"],
        as_json=False,
        title=f"audit trail of {email}",
        empty="no audited changes",
    )
    print_rows(
        facts,
        ["field", "value", "source", "observed_at", "manual"],
        as_json=False,
        title="observations",
        empty="no observations",
    )


def user_name(user: str | None) -> str:
    """The person at the keyboard: ``--as USER``, else the login name."""
    return user or getpass.getuser()


def parse_address(email: str) -> str:
    address = normalize_email(email)
    if address is None:
        raise click.BadParameter(f"{email!r} is not an email address", param_hint="EMAIL")
    return address


def parse_assignment(text: str) -> tuple[str, str | None]:
    """``FIELD=VALUE`` as a field name and its canonical value; a usage error names the field."""
    name, equals, value = text.partition("=")
    if not equals:
        raise click.UsageError(f"{text!r}: expected FIELD=VALUE (FIELD= clears the field)")
    name = name.strip()
    return name, field_value(name, value)


def field_value(name: str, raw: str) -> str | None:
    """A person's value for ``name`` in the form observations store; usage error if invalid.

    A company may be given as any host or address at its domain: it is
    reduced to the registrable domain, as the pipeline names companies.
    """
    try:
        fields.check_name(name)
        if name == "company" and raw.strip():
            raw = _company_domain(raw)
        return fields.parse(name, raw)
    except fields.FieldError as exc:
        raise click.UsageError(str(exc)) from None


def _company_domain(raw: str) -> str:
    domain = normalize_domain(raw.strip().rpartition("@")[2])
    if domain is None:
        raise fields.FieldError("company", f"{raw!r} is not a domain (acme.example)")
    return registrable_domain(domain)


def read_people_csv(path: Path) -> list[tuple[str, dict[str, str | None]]]:
    """The rows of a people CSV as (address, changes); a usage error lists every problem.

    Empty cells are left out, so they change nothing.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        lines = _csv_lines(path, handle)
        _, header = next(lines, (0, []))
        if not header:
            raise click.UsageError(f"{path}: empty file (expected a header row with `email`)")
        columns = [_column(name) for name in header]
        _check_columns(path, columns)
        problems: list[str] = []
        rows: list[tuple[str, dict[str, str | None]]] = []
        first_line: dict[str, int] = {}
        for line, cells in lines:
            if not any(cell.strip() for cell in cells):
                continue
            row = dict(zip(columns, cells, strict=False))
            address = normalize_email(row.get("email", ""))
            if address is None:
                problems.append(f"line {line}: {row.get('email', '')!r} is not an email address")
                continue
            if address in first_line:
                problems.append(
                    f"line {line}: {address} again (first on line {first_line[address]})"
                )
                continue
            first_line[address] = line
            changes: dict[str, str | None] = {}
            for name, cell in row.items():
                if name == "email" or not cell.strip():
                    continue
                try:
                    changes[name] = field_value(name, cell)
                except click.UsageError as exc:
                    problems.append(f"line {line}: {exc.message}")
            rows.append((address, changes))
    if problems:
        shown = problems[:20] + (
            [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        )
        raise click.UsageError(f"{path}:\n  " + "\n  ".join(human(p) for p in shown))
    return rows


def _csv_lines(path: Path, handle: TextIO) -> Iterator[tuple[int, list[str]]]:
    """Each row with the line it ends on.

    A row the csv module refuses (a cell over its size limit, a stray
    quote) or text that is not UTF-8 is a usage error naming the file and
    line, never a traceback.
    """
    reader = csv.reader(handle)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise click.UsageError(f"{path}, line {reader.line_num}: {_csv_problem(exc)}") from None
        except UnicodeDecodeError:
            raise click.UsageError(
                f"{path}, after line {reader.line_num}: not UTF-8 text (save it as CSV UTF-8)"
            ) from None
        yield reader.line_num, cells


def _csv_problem(exc: csv.Error) -> str:
    limit = csv.field_size_limit()
    if str(exc).startswith("field larger than field limit"):
        return f"a cell is longer than {limit} characters, the most a cell may hold"
    return f"not readable as CSV ({exc})"


def _column(name: str) -> str:
    name = name.strip()
    return name if name.startswith(fields.EXTRA) else name.lower()


def _check_columns(path: Path, columns: Sequence[str]) -> None:
    """Headers reach the message through :func:`human`: click prints usage errors raw."""
    if "email" not in columns:
        raise click.UsageError(f"{path}: no `email` column (columns: {human(columns)})")
    unknown = [c for c in columns if c != "email" and not fields.is_field(c)]
    if unknown:
        raise click.UsageError(
            f"{path}: unknown columns: {human(unknown)} "
            f"(settable: {', '.join(fields.FIELDS)}, extra.KEY)"
        )
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise click.UsageError(f"{path}: columns given twice: {human(repeated)}")


def _edit(
    app: App, batch: Sequence[edits.Edit], user: str | None, *, dry_run: bool
) -> edits.EditResult:
    try:
        return edits.edit_contacts(
            app.sessions,
            batch,
            user=user_name(user),
            dry_run=dry_run,
            company_name=company_name,
        )
    except edits.EditError as exc:
        errors.print(f"error: {exc}")
        sys.exit(EXIT_FAILURE)


def _print_outcome(
    outcome: edits.EditOutcome,
    config_path: Path | None,
    *,
    dry_run: bool,
    quiet_unchanged: bool,
) -> None:
    if quiet_unchanged and not (outcome.created or outcome.changed or outcome.conflicts):
        return
    status = " (new contact)" if outcome.created else ""
    console.print(f"{outcome.email}{status}", style="bold", markup=False, highlight=False)
    for change in outcome.applied:
        if change.before == change.after:
            line = f"  {change.field}: {shown(change.after)} (unchanged, now set by hand)"
        else:
            line = f"  {change.field}: {shown(change.before)} -> {shown(change.after)}"
        console.print(line, markup=False, highlight=False)
    for name in outcome.kept:
        console.print(
            f"  {name}: left as it is; someone changed it since it was read",
            markup=False,
            highlight=False,
        )
    for c in outcome.conflicts:
        what = "would conflict" if dry_run else f"conflict {c.id}"
        choices = "" if dry_run else ": " + resolve_choices(config_path, c.id, c.manual, c.latest)
        console.print(
            f"  {c.field}: {what}: {c.manual_by or 'someone'} set {shown(c.manual)} since it "
            f"was read; that stays until resolved and {shown(c.latest)} waits in the conflict"
            + choices,
            markup=False,
            highlight=False,
            soft_wrap=True,
            style="yellow",
        )


def resolve_choices(
    config_path: Path | None, conflict_id: int, manual: str | None, latest: str | None
) -> str:
    """The two commands that settle a conflict, complete, each with what it keeps."""

    def keep(which: str) -> str:
        words = ("conflicts", "resolve", str(conflict_id), "--keep", which)
        return f"`{command_line(config_path, *words)}`"

    return f"{keep('manual')} keeps {shown(manual)}, {keep('latest')} takes {shown(latest)}"


def shown(value: str | None) -> str:
    return "(empty)" if value is None else repr(value)


def _find(session: Session, ref: str, config_path: Path | None) -> Contact:
    """The contact ``ref`` names: an address, an id (``12`` or ``#12``), or a name.

    An address is looked up the way the pipeline stores addresses
    (``Bob.Smith@GoogleMail.com`` is ``bobsmith@gmail.com``). Exits 1 when
    there is none, or when a name fits several (listing them with their ids).
    """
    text = ref.strip()
    if "@" in text:
        contact = contact_queries.find_contact(session, normalize_email(text) or text)
        return contact if contact is not None else _none(f"no contact with the address {text}")
    number = text.removeprefix("#")
    if number.isdigit():
        contact = contact_lookup.contact_by_id(session, int(number))
        return contact if contact is not None else _none(f"no contact with the id {number}")
    candidates = contact_lookup.contacts_named(session, text)
    if not candidates:
        _none(f"no contact is named like {text!r} (give an address, an id or a name)")
    if len(candidates) > 1:
        _ambiguous(text, candidates, config_path)
    contact = contact_lookup.contact_by_id(session, candidates[0].id)
    assert contact is not None
    return contact


def _none(message: str) -> NoReturn:
    errors.print(f"error: {message}", highlight=False, markup=False)
    sys.exit(EXIT_FAILURE)


def _ambiguous(
    text: str, candidates: Sequence[contact_lookup.Candidate], config_path: Path | None
) -> NoReturn:
    shown_ = candidates[: contact_lookup.MAX_CANDIDATES]
    more = " or more" if len(candidates) > contact_lookup.MAX_CANDIDATES else ""
    errors.print(
        f"error: {len(shown_)}{more} contacts are named like {text!r}; "
        f"give one's id: `{command_line(config_path, 'contacts', 'show', str(shown_[0].id))}`",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    for c in shown_:
        errors.print(
            f"  {c.id:>6}  {human(c.name)}  {human(c.email)}  {human(c.company)}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    sys.exit(EXIT_FAILURE)
