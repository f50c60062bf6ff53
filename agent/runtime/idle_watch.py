"""An IMAP connector's IDLE watch: new mail runs the connector at once, not at its next tick.

A connector with ``idle = true`` gets a thread of its own holding a second
connection in IDLE on INBOX (RFC 2177). When the server announces a change,
the watch asks the scheduler to run the connector now; the sync itself still
happens in the connector's job, under its lease. A failed connection is
retried with a growing pause (capped at five minutes) while the schedule goes
on, and a connector parked for an admin (paused, needs_auth) is not watched.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from config import Settings
from config.schema import ConnectorConfig
from connectors.capabilities import Closeable, Watchable
from connectors.records import Connector

log = logging.getLogger(__name__)

WAIT_SECONDS = 300.0
"""How long one IDLE command waits before it is renewed (RFC 2177 asks for under 29 min)."""
RETRY_CAP_SECONDS = 300.0

Build = Callable[[ConnectorConfig, Settings, Path], Connector]


@dataclass
class IdleWatch:
    """The watch of one connector; :meth:`run` is its thread's body."""

    config: ConnectorConfig
    settings: Settings
    base_dir: Path
    build: Build
    stopping: threading.Event
    parked: Callable[[str], bool]
    """Whether the connector waits for an admin, read from its ``sync_state`` row."""
    trigger: Callable[[str], None]

    def run(self) -> None:
        watcher: Connector | None = None
        failures = 0
        name = self.config.name
        while not self.stopping.is_set():
            try:
                if self.parked(name):
                    self.stopping.wait(self.settings.interval_of(self.config).total_seconds())
                    continue
                if watcher is None:
                    watcher = self.build(self.config, self.settings, self.base_dir)
                if not isinstance(watcher, Watchable):
                    return
                if watcher.wait_for_changes(WAIT_SECONDS) and not self.stopping.is_set():
                    log.debug("%s: IDLE reports a change", name)
                    self.trigger(name)
                failures = 0
            except Exception as exc:
                failures += 1
                retry = min(RETRY_CAP_SECONDS, 2.0**failures)
                log.warning(
                    "%s: IDLE watch failed (%s); retrying in %.0f s, the schedule goes on",
                    name,
                    exc,
                    retry,
                )
                if watcher is not None:
                    close_quietly(watcher)
                    watcher = None
                self.stopping.wait(retry)
        if watcher is not None:
            close_quietly(watcher)


def close_quietly(connector: object) -> None:
    """Let go of a connector's connection; failing to is no news once it is done with."""
    if isinstance(connector, Closeable):
        with contextlib.suppress(Exception):
            connector.close()
