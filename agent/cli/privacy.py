"""``privacy apply`` and ``forget``: removing what must not, or no longer, be logged."""

from __future__ import annotations

import sys
from dataclasses import replace

import click
from sqlalchemy.orm import Session

from agent.cli.common import EXIT_FAILURE, EXIT_USAGE, actor, as_user, pass_app
from agent.cli.output import console, errors, print_json
from agent.mail.addresses import is_internal, normalize_email
from agent.pipeline.filters import NeverLog
from agent.pipeline.people import self_or_internal
from agent.pipeline.policy import Policy
from agent.runtime.app import App
from config import Settings
from connectors.records import Address
from storage.db import purge_freed_space, transaction
from storage.erase import (
    ERASURE_TABLES,
    Erasure,
    Ours,
    Target,
    erase,
    forget_target,
    never_log_target,
    plan_erasure,
)


def ours_predicate(settings: Settings) -> Ours:
    """Which side of an interaction an address is on, as the pipeline decided when logging it.

    The pipeline's answer depends on the mailbox: its owner is always ours,
    and with ``agent.internal_domains`` empty the owner's own domain counts
    as internal unless it is a free-mail provider. The same policy is
    rebuilt here per interaction owner, so "external" means what it meant
    when the interaction was logged. An interaction without a recorded owner
    falls back to the configured domains alone: with none configured, every
    participant of it is external, which erases less rather than more.
    """
    internal = frozenset(settings.agent.internal_domains)
    policies: dict[str, Policy] = {}

    def ours(email: str, owner: str | None) -> bool:
        if owner is None:
            return is_internal(email, internal)
        if owner not in policies:
            policies[owner] = Policy.from_settings(settings, "privacy", owner)
        return self_or_internal(Address(email), policies[owner])

    return ours


@click.group()
def privacy() -> None:
    """The never-log list, applied to what was logged before it."""


@privacy.command("apply")
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@as_user
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def privacy_apply(app: App, dry_run: bool, user: str | None, as_json: bool) -> None:
    """Remove what was logged for addresses and domains now on privacy.never_log.

    The database then holds what it would hold had the list been in force
    from the start: an interaction whose only outside participants are
    listed is deleted with its participants and sources; elsewhere only the
    listed participants are removed; a contact with a listed address is
    erased as by `forget`; an email involving one of your own listed
    addresses is deleted; a company all of whose domains are listed goes once
    it has no contacts left. The audit log records ids and counts, never the
    addresses or subjects removed. The space the rows held is overwritten,
    as by `forget`.
    """
    try:
        listed = NeverLog.from_patterns(app.settings.privacy.never_log)
    except ValueError as exc:
        errors.print(f"config error: privacy.never_log: {exc}", highlight=False, markup=False)
        sys.exit(EXIT_USAGE)
    if not listed:
        console.print("privacy.never_log is empty: nothing to apply")
        return
    app.require_schema()
    ours = ours_predicate(app.settings)
    if dry_run:
        with app.sessions() as session:
            erasure = plan_erasure(session, listed_target(session, listed), ours)
    else:
        with transaction(app.sessions, secure_delete=True) as session:
            target = listed_target(session, listed)
            erasure = erase(session, target, ours, actor=actor(user), action="never_log")
    _report(erasure, as_json=as_json, done=not dry_run, nothing="nothing logged matches the list")
    if erasure and not dry_run:
        _purge(app)


@click.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask; required when stdin is not a terminal.")
@as_user
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def forget(app: App, email: str, yes: bool, user: str | None, as_json: bool) -> None:
    """Erase a person: their contact, addresses, observations, conflicts and participation.

    Interactions they were the last outside participant of are deleted;
    the others keep their other participants. "Outside" is decided as the
    pipeline did for the mailbox each interaction came from: with
    agent.internal_domains empty, the mailbox owner and their company's
    domain are inside, everyone else outside. Subjects and snippets of the
    interactions that stay are not rewritten. The audit log keeps that an
    erasure happened, with counts only, and loses the person's own history.

    The space the rows held is then overwritten (SQLite: the file is
    vacuumed and its write-ahead log emptied, also while an agent runs;
    PostgreSQL: the tables are vacuumed); exit status 1 says it could not
    be, and `crm-sync db vacuum` tries again. Backups and replicas keep
    their own copies.

    Mail still in a synced mailbox brings the person back on the next full
    sync: add the address to privacy.never_log to keep them out.
    """
    address = normalize_email(email)
    if address is None:
        raise click.BadParameter(f"not an email address: {email!r}", param_hint="EMAIL")
    if not yes and not sys.stdin.isatty():
        errors.print("error: forget erases for good; pass --yes when stdin is not a terminal")
        sys.exit(EXIT_USAGE)
    app.require_schema()
    ours = ours_predicate(app.settings)
    if not yes:
        with app.sessions() as session:
            preview = plan_erasure(session, forget_target(session, address), ours)
        if not preview:
            _report(preview, as_json=as_json, done=False, nothing=f"nothing logged for {address}")
            return
        console.print(f"{address}: {_describe(preview.counts())}")
        click.confirm("erase all of this for good?", abort=True)
    with transaction(app.sessions, secure_delete=True) as session:
        target = forget_target(session, address)
        erasure = erase(session, target, ours, actor=actor(user), action="forget")
    _report(erasure, as_json=as_json, done=True, nothing=f"nothing logged for {address}")
    if erasure:
        _purge(app)


def _purge(app: App) -> None:
    """Deleted rows stay readable in the file's free space until it is rewritten."""
    problem = purge_freed_space(app.engine, ERASURE_TABLES)
    if problem:
        errors.print(
            f"error: the rows are erased, but the database file may still hold their bytes: "
            f"{problem}; run `crm-sync db vacuum` again",
            highlight=False,
            markup=False,
        )
        sys.exit(EXIT_FAILURE)


def listed_target(session: Session, listed: NeverLog) -> Target:
    """The list's rules decide; a domain is listed when every address at it is."""
    domains_only = replace(listed, addresses=frozenset())
    return never_log_target(
        session, listed.matches, lambda domain: domains_only.matches(f"postmaster@{domain}")
    )


def _report(erasure: Erasure, *, as_json: bool, done: bool, nothing: str) -> None:
    counts = erasure.counts()
    if as_json:
        print_json({"applied": done, **counts})
    elif not erasure:
        console.print(nothing)
    else:
        console.print(f"{'erased' if done else 'would erase'}: {_describe(counts)}")


def _describe(counts: dict[str, int]) -> str:
    """The non-zero counts, ``contacts: 1, interactions deleted: 3``."""
    return ", ".join(f"{key.replace('_', ' ')}: {n}" for key, n in counts.items() if n)
