"""What ``init`` asks, how it checks each answer, and how answers become the config file.

``config/example.toml`` is the one template: every setting in it is a
commented-out example, so a file written without answers is a valid config
that logs nothing yet (``internal_domains = ["example.com"]`` once written
live made colleagues into customer contacts). An answer replaces the
commented example of its key with a live line, in place, so the file keeps
its explanations; a first mailbox becomes a ``[[connectors]]`` table, added
as ``connectors add`` adds one.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click
import tomlkit

from agent.mail.addresses import load_free_mail, normalize_domain, normalize_email
from agent.runtime.checks import looks_like_example, service_account_key_problem
from agent.runtime.db_errors import ENCODE_HINT, parse_url

T = TypeVar("T")

DEFAULT_DATABASE_FILE = "crm-sync.db"
_POSTGRES_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg")
_HEADER = re.compile(r"^\[([A-Za-z_]+)\]\s*$")
_EXAMPLE_LINE = re.compile(r"^# ([a-z_]+) = ")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^\[?[0-9A-Fa-f:.]+\]?$")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def template() -> str:
    """The shipped example config: what ``init`` writes when nothing is answered."""
    return resources.files("config").joinpath("example.toml").read_text("utf-8")


@dataclass
class Answers:
    """What the admin told ``init``; empty means "keep the commented example"."""

    domains: list[str] = field(default_factory=list)
    mailbox: str | None = None
    database: str | None = None
    connector: dict[str, Any] | None = None

    def settings(self) -> dict[tuple[str, str], Any]:
        """(table, key) -> value for the template's live lines."""
        values: dict[tuple[str, str], Any] = {}
        if self.domains:
            values["agent", "internal_domains"] = self.domains
        if self.database:
            values["database", "url"] = self.database
        return values


def fill(text: str, values: Mapping[tuple[str, str], Any]) -> str:
    """``text`` with the ``# key = example`` line of each (table, key) made ``key = value``.

    Raises ValueError when the template lacks a key's example line, so a
    template edit that drops one fails the tests instead of losing an answer.
    """
    lines = text.splitlines(keepends=True)
    pending = dict(values)
    table = ""
    for index, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            table = header.group(1)
            continue
        example = _EXAMPLE_LINE.match(line)
        if example and (table, example.group(1)) in pending:
            key = example.group(1)
            value = tomlkit.item(pending.pop((table, key))).as_string()
            lines[index] = f"{key} = {value}\n"
    if pending:
        missing = ", ".join(f"{table}.{key}" for table, key in pending)
        raise ValueError(f"the config template has no example line for {missing}")
    return "".join(lines)


# ----------------------------------------------------------------------------- answers


def parse_domains(text: str) -> list[str]:
    """Comma- or space-separated domains, each a real one of the admin's company."""
    domains: list[str] = []
    free_mail = load_free_mail()
    for word in re.split(r"[,\s]+", text.strip()):
        if not word:
            continue
        domain = normalize_domain(word.removeprefix("*@").removeprefix("@"))
        if domain is None:
            raise click.BadParameter(f"{word!r} is not a domain (yourcompany.com)")
        if looks_like_example(domain):
            raise click.BadParameter(
                f"{domain} is an example name: give the domain your colleagues' addresses end in"
            )
        if free_mail.is_free(domain):
            raise click.BadParameter(
                f"{domain} is a free-mail provider: the people there are not your colleagues"
            )
        if domain not in domains:
            domains.append(domain)
    return domains


def parse_mailbox(text: str) -> str | None:
    """A real address, or None for "no mailbox yet"."""
    if not text.strip():
        return None
    address = normalize_email(text.strip())
    if address is None:
        raise click.BadParameter(f"{text.strip()!r} is not an email address")
    if looks_like_example(address):
        raise click.BadParameter(f"{address} is an example address: give a real mailbox")
    return address


def parse_database(text: str) -> str | None:
    """A database URL from a SQLite file name or a PostgreSQL URL; None for the default file.

    A password is never written into the file: a URL may carry one only as
    ``${VAR}``, which the agent reads from its environment.
    """
    answer = text.strip()
    if not answer or answer == DEFAULT_DATABASE_FILE:
        return None
    if "://" not in answer:
        if answer.endswith(("/", os.sep)) or Path(answer).expanduser().is_dir():
            raise click.BadParameter(f"{answer} is a folder: give a file name in it")
        return "sqlite:///" + str(Path(answer).expanduser())
    scheme, _, rest = answer.partition("://")
    if scheme.lower() not in _POSTGRES_SCHEMES:
        raise click.BadParameter(
            f"{scheme}:// is not a database crm-sync uses: give a SQLite file name "
            "or a postgresql://user@host/database URL"
        )
    url = f"postgresql+psycopg://{rest}"
    parsed = parse_url(url)
    if parsed is None or not parsed.host or not parsed.database:
        raise click.BadParameter(
            f"not a valid URL: postgresql://user@host/database ({ENCODE_HINT})"
        )
    if parsed.password and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", parsed.password):
        raise click.BadParameter(
            "a password never goes into the config file: write ${VAR} in its place "
            "(postgresql://crm:${CRM_DB_PASSWORD}@host/crm) and set VAR where the agent runs"
        )
    if looks_like_example(parsed.host):
        raise click.BadParameter(f"{parsed.host} is an example name: give your server's")
    return url


def parse_host(text: str) -> str:
    host = text.strip().lower()
    if not _HOST.match(host):
        raise click.BadParameter(f"{text.strip()!r} is not a host name (imap.yourcompany.com)")
    if looks_like_example(host):
        raise click.BadParameter(f"{host} is an example name: give your IMAP server's")
    return host


def parse_variable(text: str) -> str:
    name = text.strip().removeprefix("${").removeprefix("$").removesuffix("}")
    if not _VARIABLE.match(name):
        raise click.BadParameter(f"{text.strip()!r} is not a variable name (BOB_IMAP_PASSWORD)")
    return name


def parse_key_file(text: str) -> Path:
    if not text.strip():
        raise click.BadParameter("give the path of the JSON key downloaded for it")
    path = _absolute(text)
    problem = service_account_key_problem(path)
    if problem is not None:
        raise click.BadParameter(problem)
    return path


def parse_client_secrets(text: str) -> Path | None:
    if not text.strip():
        return None
    path = _absolute(text)
    try:
        info = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise click.BadParameter(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(info, dict) or not ({"installed", "web"} & info.keys()):
        raise click.BadParameter(f"{path} is not an OAuth client file (Desktop app)")
    return path


def _absolute(text: str) -> Path:
    return Path(os.path.abspath(Path(text.strip()).expanduser()))


def default_domains(mailbox: str | None) -> list[str]:
    """The mailbox's own domain, unless it is a free-mail provider's."""
    if mailbox is None:
        return []
    domain = mailbox.rpartition("@")[2]
    return [] if load_free_mail().is_free(domain) else [domain]


def connector_name(mailbox: str, kind: str) -> str:
    local = _NAME_UNSAFE.sub("-", mailbox.partition("@")[0]).strip(".-_") or "mailbox"
    return f"{local}-{kind}"


def password_variable(mailbox: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "_", mailbox.partition("@")[0]).strip("_").upper()
    return f"{stem if stem[:1].isalpha() else 'MAIL_' + stem}_IMAP_PASSWORD"


# ----------------------------------------------------------------------------- asking


def ask(given: Answers) -> Answers:
    """Ask what ``given`` (the command's options) leaves open; re-ask until an answer is valid."""
    click.echo(
        "crm-sync init: a few questions. Enter takes the answer in [brackets]; "
        "Ctrl-C stops without writing anything.\n"
    )
    answers = Answers(domains=given.domains, mailbox=given.mailbox, database=given.database)
    if answers.mailbox is None:
        answers.mailbox = _prompt(
            "The first mailbox to log: its address (Enter: none yet)", "", parse_mailbox
        )
    if not answers.domains:
        suggested = ", ".join(default_domains(answers.mailbox))
        answers.domains = _prompt(
            "Your company's email domains, comma-separated (Enter: none)",
            suggested,
            parse_domains,
        )
    if answers.mailbox is not None:
        answers.connector = _ask_connector(answers.mailbox)
    if given.database is None:
        answers.database = _prompt(
            "The database: a SQLite file, or a postgresql://user@host/database URL",
            DEFAULT_DATABASE_FILE,
            parse_database,
        )
    return answers


def _prompt(text: str, default: str, parse: Callable[[str], T]) -> T:
    value: T = click.prompt(text, default=default, show_default=bool(default), value_proc=parse)
    return value


def _ask_connector(mailbox: str) -> dict[str, Any] | None:
    how = click.prompt(
        f"How does crm-sync read {mailbox}?",
        type=click.Choice(["imap", "gmail", "later"]),
        default="imap",
    )
    if how == "imap":
        return _ask_imap(mailbox)
    if how == "gmail":
        return _ask_gmail(mailbox)
    return None


def _ask_imap(mailbox: str) -> dict[str, Any]:
    host = _prompt("  IMAP server", "imap." + mailbox.rpartition("@")[2], parse_host)
    variable = _prompt(
        "  The environment variable the agent will find its password in",
        password_variable(mailbox),
        parse_variable,
    )
    return {
        "name": connector_name(mailbox, "imap"),
        "kind": "imap",
        "account": mailbox,
        "host": host,
        "password": "${" + variable + "}",
    }


def _ask_gmail(mailbox: str) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": connector_name(mailbox, "gmail"),
        "kind": "gmail",
        "account": mailbox,
    }
    auth = click.prompt(
        "  Sign in as the user (oauth), or as a Workspace service account?",
        type=click.Choice(["oauth", "service_account"]),
        default="oauth",
    )
    values["auth"] = auth
    if auth == "service_account":
        values["key_file"] = str(
            _prompt("  The service account's JSON key file", "", parse_key_file)
        )
        return values
    secrets = _prompt(
        "  The OAuth client's JSON file from the Google Cloud console (Enter: set it later)",
        "",
        parse_client_secrets,
    )
    if secrets is not None:
        values["client_secrets"] = str(secrets)
    return values
