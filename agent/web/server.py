"""Running the web app under uvicorn: alone (``serve``) or beside the agent (``run --web``)."""

from __future__ import annotations

import threading
from typing import Any

import uvicorn

from agent.runtime.app import App
from agent.web.asgi import create_app

FACTORY = "agent.web.asgi:app_from_environment"
QUIET: dict[str, Any] = {"log_level": "warning", "access_log": False, "server_header": False}
"""Requests are not logged: their URLs hold search terms and contact ids."""


def serve_forever(app: App, *, host: str, port: int, workers: int = 1) -> None:
    """Until SIGTERM or SIGINT. Several workers are separate processes, each building the
    app from the config named by ``CRM_SYNC_CONFIG``; one runs the app built here."""
    if workers > 1:
        uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, **QUIET)
    else:
        uvicorn.run(create_app(app), host=host, port=port, **QUIET)


class WebThread:
    """The web app in a thread of the agent's process, for a small team on one machine."""

    def __init__(self, app: App, *, host: str, port: int) -> None:
        config = uvicorn.Config(create_app(app), host=host, port=port, **QUIET)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
