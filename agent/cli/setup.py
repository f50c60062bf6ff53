"""Getting started: ``init``, ``db upgrade`` and ``demo``."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click
import tomlkit

from agent.cli.common import EXIT_FAILURE, EXIT_USAGE, pass_app, safe_url
from agent.cli.init_config import (
    Answers,
    ask,
    connector_name,
    default_domains,
    fill,
    parse_database,
    parse_domains,
    parse_mailbox,
    password_variable,
    template,
)
from agent.cli.output import console, errors
from agent.cli.wording import command_line
from agent.runtime.app import App
from config import ConfigError
from config import edit as config_edit
from config.loader import DEFAULT_FILE
from config.schema import SecretsConfig
from config.secrets import ensure_key_file
from storage.db import purge_freed_space, table_names

T = TypeVar("T")


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option(
    "--no-input",
    is_flag=True,
    help="Ask nothing, even on a terminal: write what the options give, the rest as "
    "commented-out examples.",
)
@click.option(
    "--domain",
    "domains",
    multiple=True,
    metavar="DOMAIN",
    help="Your company's email domain; repeat it, or separate with commas, for several "
    "(agent.internal_domains).",
)
@click.option(
    "--mailbox",
    metavar="ADDRESS",
    help="The first mailbox to log. Without --domain, its domain is your company's (unless "
    "it is a free-mail provider's); without a terminal, the next steps show the "
    "`connectors add` for it.",
)
@click.option(
    "--database",
    metavar="FILE|URL",
    help="A SQLite file (default: crm-sync.db next to the config) or a "
    "postgresql://user@host/database URL (a password only as ${VAR}).",
)
@click.pass_context
def init(
    ctx: click.Context,
    force: bool,
    no_input: bool,
    domains: tuple[str, ...],
    mailbox: str | None,
    database: str | None,
) -> None:
    """Write a config file (to --config, or ./crm-sync.toml) and the key for OAuth tokens.

    On a terminal, init asks for the first mailbox, your company's email
    domains, how the mailbox is read (IMAP or Gmail) and the database; it
    checks each answer (an example name such as example.com is refused) and
    writes them. The options answer those questions ahead.

    Without a terminal, or with --no-input, every setting in the file is a
    commented-out example unless an option gave it: the file is a valid
    config that logs nothing yet, and `crm-sync doctor` says what to add.
    """
    app = ctx.find_object(App)
    target = (app.config_path if app else None) or DEFAULT_FILE
    if target.exists() and not force:
        errors.print(f"error: {target} exists; use --force to overwrite it")
        sys.exit(EXIT_USAGE)
    given = _given(domains, mailbox, database)
    answers = ask(given) if not no_input and sys.stdin.isatty() else given
    document = tomlkit.parse(fill(template(), answers.settings()))
    if answers.connector:
        config_edit.add_connector(document, answers.connector)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        config_edit.write(target, document)
    except ConfigError as exc:  # an answer the checks above let through
        errors.print(f"error: {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    console.print(f"wrote {target}", highlight=False)
    key = ensure_key_file(target.parent / SecretsConfig().key_file)
    console.print(
        f"the key that encrypts OAuth tokens is {key} (mode 0600, kept if it existed)",
        highlight=False,
        soft_wrap=True,
    )
    _print_next_steps(target, answers)


def _given(domains: tuple[str, ...], mailbox: str | None, database: str | None) -> Answers:
    """The options as answers, checked as the questions check them (a usage error if not)."""
    given = Answers(
        domains=_option("--domain", parse_domains, " ".join(domains)),
        mailbox=_option("--mailbox", parse_mailbox, mailbox or ""),
        database=_option("--database", parse_database, database or ""),
    )
    if not given.domains:
        given.domains = default_domains(given.mailbox)
    return given


def _option(name: str, parse: Callable[[str], T], value: str) -> T:
    try:
        return parse(value)
    except click.BadParameter as exc:
        raise click.UsageError(f"{name}: {exc.message}") from None


def _print_next_steps(target: Path, answers: Answers) -> None:
    """The commands that take the admin from this file to a running agent, as they run."""
    steps: list[tuple[str, str]] = []
    if not answers.domains:
        steps.append(
            (
                f"${{EDITOR:-vi}} {shlex.quote(str(target))}",
                "every setting in it is a commented-out example: set internal_domains "
                "under [agent] to your company's email domains",
            )
        )
    steps.append((command_line(target, "db", "upgrade"), "creates the database"))
    steps += _connector_steps(target, answers)
    steps += [
        (command_line(target, "doctor"), "what is still missing, each with its fix"),
        (command_line(target, "sync", "--dry-run"), "what would be logged; writes nothing"),
        (command_line(target, "run"), "the agent: every connector on its interval"),
    ]
    console.print("next:")
    for command, why in steps:
        console.print(f"  # {why}\n  {command}", highlight=False, soft_wrap=True)


def _connector_steps(target: Path, answers: Answers) -> list[tuple[str, str]]:
    connector = answers.connector
    if connector is None:
        mailbox = answers.mailbox or "ADDRESS"
        name = connector_name(mailbox, "imap") if answers.mailbox else "NAME"
        host = f"imap.{mailbox.rpartition('@')[2]}" if answers.mailbox else "HOST"
        variable = password_variable(mailbox) if answers.mailbox else "VAR"
        add = command_line(
            target, "connectors", "add", "imap", "--name", name, "--account", mailbox,
            "--host", host, "--password-env", variable,
        )  # fmt: skip
        return [(add, "a mailbox to log (or gmail, google_calendar, mbox, ics)")]
    name = connector["name"]
    steps: list[tuple[str, str]] = []
    password = str(connector.get("password", ""))
    if password.startswith("${"):
        steps.append((f"export {password[2:-1]}=...", f"{name}'s password, where the agent runs"))
    if connector.get("auth") == "oauth":
        if "client_secrets" not in connector:
            steps.append(
                (
                    f"${{EDITOR:-vi}} {shlex.quote(str(target))}",
                    f"set client_secrets of {name} to the OAuth client's JSON file",
                )
            )
        steps.append((command_line(target, "connectors", "auth", name), "grants read access"))
    steps.append(
        (command_line(target, "connectors", "test", name), "connects; counts a first sync")
    )
    return steps


@click.command()
@click.option(
    "--db",
    "database",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("demo.db"),
    show_default=True,
    help="The SQLite file to create (replaced if it exists).",
)
def demo(database: Path) -> None:
    """Sync the bundled sample company's mailboxes and calendar, and show what was logged.

    Runs offline in seconds; needs no config file.
    """
    from agent.cli.demo import run_demo

    run_demo(database)


@click.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create the tables, or migrate them to this version's schema."""
    revision = app.upgrade()
    console.print(f"database at revision {revision}: {safe_url(app)}")


@db.command("vacuum")
@pass_app
def db_vacuum(app: App) -> None:
    """Overwrite the space deleted rows left behind, as `forget` does after an erasure.

    SQLite: rebuild the file and empty its write-ahead log; PostgreSQL:
    VACUUM every table of crm-sync. For when `forget` or `privacy apply` could not
    finish it (an agent kept reading); safe while agents run.
    """
    problem = purge_freed_space(app.engine, sorted(table_names(app.engine)))
    if problem:
        errors.print(f"error: {problem}", highlight=False, markup=False)
        sys.exit(EXIT_FAILURE)
    console.print(f"freed space overwritten: {safe_url(app)}")
