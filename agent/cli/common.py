"""What the commands share: the app object, exit codes, small helpers."""

from __future__ import annotations

import getpass

import click
from sqlalchemy.engine import make_url

from agent.runtime.app import App
from storage import audit

EXIT_FAILURE = 1
EXIT_USAGE = 2

pass_app = click.make_pass_decorator(App)

as_user = click.option(
    "--as",
    "user",
    metavar="USER",
    help="Who is doing this, for the audit log. Default: your login name.",
)


def actor(user: str | None) -> str:
    """The audit log's name for the person at the keyboard (``--as USER`` or the login name)."""
    return audit.user(user or getpass.getuser())


def safe_url(app: App) -> str:
    """The database URL without its password, for messages."""
    return make_url(app.settings.database.url).render_as_string(hide_password=True)


def configured_base_url(app: App) -> str:
    """``[web] base_url`` of the config, for commands that print what points at the web app;
    a usage error saying what to give when it is not set."""
    base_url = app.settings.web.base_url
    if not base_url:
        raise click.UsageError(
            f"give --base-url, or set [web] base_url in {app.config_file}", ctx=None
        )
    return base_url
