"""What the commands share: the app object, exit codes, small helpers."""

from __future__ import annotations

import click
from sqlalchemy.engine import make_url

from agent.app import App

EXIT_FAILURE = 1
EXIT_USAGE = 2

pass_app = click.make_pass_decorator(App)


def safe_url(app: App) -> str:
    """The database URL without its password, for messages."""
    return make_url(app.settings.database.url).render_as_string(hide_password=True)
