"""``users`` and ``tokens``: who may sign in to the web app, and personal API tokens.

The same functions (``storage.users``) serve the admin pages, so what one
does the other sees at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import NoReturn, TypeVar

import click
from sqlalchemy.orm import Session

from agent.cli.common import EXIT_FAILURE, actor, as_user, pass_app
from agent.cli.output import console, errors, print_rows
from agent.runtime.app import App
from storage import users as store
from storage.db import transaction
from storage.visibility import ROLES

T = TypeVar("T")


def _password(from_stdin: bool, from_env: str | None) -> str:
    """The password from the environment variable named, stdin's first line, or a prompt."""
    if from_env is not None:
        value = os.environ.get(from_env)
        if not value:
            raise click.UsageError(
                f"--password-env: the environment variable {from_env} is not set"
            )
        return value
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


password_env = click.option(
    "--password-env",
    metavar="VAR",
    help="Read the password from the environment variable VAR (for scripts).",
)


def _fail(exc: Exception) -> NoReturn:
    errors.print(f"error: {exc}", highlight=False, markup=False)
    sys.exit(EXIT_FAILURE)


def _change(app: App, work: Callable[[Session], T]) -> T:
    """``work`` in one transaction; a refused request is one line and exit status 1."""
    app.require_schema()
    try:
        with transaction(app.sessions) as session:
            return work(session)
    except store.UserError as exc:
        _fail(exc)


@click.group()
def users() -> None:
    """People who may sign in to the web app, their role and their mailboxes."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="member", show_default=True)
@click.option("--name", help="The name shown on pages.")
@click.option(
    "--mailbox",
    "mailboxes",
    multiple=True,
    metavar="ADDRESS",
    help="Another mailbox account this user owns (repeatable); their own address always is. "
    "Private threads are shown to the owners of their mailboxes only.",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option(
    "--no-password", is_flag=True, help="No password: this user signs in with Google only."
)
@password_env
@as_user
@pass_app
def users_add(
    app: App,
    email: str,
    role: str,
    name: str | None,
    mailboxes: tuple[str, ...],
    password_stdin: bool,
    no_password: bool,
    password_env: str | None,
    user: str | None,
) -> None:
    """Let EMAIL sign in, as a member unless --role admin."""
    app.require_schema()
    password = None if no_password else _password(password_stdin, password_env)

    def add(session: Session) -> str:
        added = store.add_user(
            session,
            email,
            role=role,
            display_name=name,
            password=password,
            mailboxes=mailboxes,
            actor=actor(user),
        )
        owned = ", ".join(m.account for m in added.mailboxes)
        return f"added {added.email} ({added.role}); mailboxes: {owned}"

    console.print(_change(app, add), highlight=False)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def users_list(app: App, as_json: bool) -> None:
    """Everyone who may sign in."""
    app.require_schema()
    with app.sessions() as session:
        rows = [asdict(row) for row in store.list_users(session)]
    columns = ["email", "display_name", "role", "mailboxes", "has_password", "disabled"]
    print_rows(rows, columns, as_json=as_json, empty="no users yet: add one with `users add`")


@users.command("passwd")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@password_env
@as_user
@pass_app
def users_passwd(
    app: App, email: str, password_stdin: bool, password_env: str | None, user: str | None
) -> None:
    """Set EMAIL's password; every session they have open ends."""
    app.require_schema()
    password = _password(password_stdin, password_env)
    _change(app, lambda session: store.set_password(session, email, password, actor=actor(user)))
    console.print(f"password set for {email.strip().lower()}", highlight=False)


@users.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(ROLES))
@as_user
@pass_app
def users_role(app: App, email: str, role: str, user: str | None) -> None:
    """Make EMAIL an admin or a member."""
    _change(app, lambda session: store.set_role(session, email, role, actor=actor(user)))
    console.print(f"{email.strip().lower()} is now {role}", highlight=False)


@users.command("remove")
@click.argument("email")
@as_user
@pass_app
def users_remove(app: App, email: str, user: str | None) -> None:
    """Stop EMAIL signing in; their tokens go too. What they logged stays."""
    _change(app, lambda session: store.remove_user(session, email, actor=actor(user)))
    console.print(f"removed {email.strip().lower()}", highlight=False)


@click.group()
def tokens() -> None:
    """Personal tokens for the JSON API (Authorization: Bearer TOKEN)."""


@tokens.command("create")
@click.argument("email")
@click.option("--name", default="api", show_default=True, help="What the token is for.")
@as_user
@pass_app
def tokens_create(app: App, email: str, name: str, user: str | None) -> None:
    """A new token for EMAIL, printed once: it reads what EMAIL may read."""
    token = _change(
        app, lambda session: store.create_token(session, email, name, actor=actor(user))
    )
    errors.print("the token (shown this once; keep it secret):", highlight=False)
    click.echo(token)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_app
def tokens_list(app: App, as_json: bool) -> None:
    """Every token's owner, name and last use; never the token."""
    app.require_schema()
    with app.sessions() as session:
        rows = [asdict(row) for row in store.list_tokens(session)]
    print_rows(rows, ["email", "name", "created_at", "last_used_at"], as_json=as_json)


@tokens.command("revoke")
@click.argument("email")
@click.argument("name")
@as_user
@pass_app
def tokens_revoke(app: App, email: str, name: str, user: str | None) -> None:
    """Revoke EMAIL's tokens named NAME."""
    count = _change(
        app, lambda session: store.revoke_token(session, email, name, actor=actor(user))
    )
    if not count:
        _fail(Exception(f"{email} has no token named {name!r}"))
    console.print(f"revoked {count} token{'s' if count != 1 else ''}", highlight=False)
