"""``serve``: the web app, the JSON API and sign-in, on the config's database."""

from __future__ import annotations

import os

import click

from agent.cli.common import pass_app
from agent.cli.output import console
from agent.runtime.app import App
from agent.web.asgi import create_app
from agent.web.server import serve_forever


@click.command()
@click.option(
    "--host", metavar="HOST", help="Address to listen on. Default: [web] host (127.0.0.1)."
)
@click.option("--port", type=click.IntRange(1, 65535), help="Port. Default: [web] port (8400).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes serving requests. Default: [web] workers (1).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Build the app from the config and the database, say where it would listen, and "
    "exit: 0 when it would start.",
)
@pass_app
def serve(app: App, host: str | None, port: int | None, workers: int | None, check: bool) -> None:
    """Serve the web app and the JSON API until SIGTERM or Ctrl-C.

    People sign in with an account an admin made (`crm-sync users add`);
    the API takes personal tokens (`crm-sync tokens create`). Put it behind
    an HTTPS proxy and set [web] base_url to its https:// address so session
    cookies are sent over HTTPS only.
    """
    app.require_schema()
    web = app.settings.web
    host = host or web.host
    port = port or web.port
    if check:
        create_app(app)
        console.print(f"ok: the web app would serve http://{host}:{port}", highlight=False)
        return
    console.print(f"crm-sync web app on http://{host}:{port}  (Ctrl-C to stop)", highlight=False)
    if app.config_file is not None:
        os.environ["CRM_SYNC_CONFIG"] = str(app.config_file)
    serve_forever(app, host=host, port=port, workers=workers or web.workers)
