"""``run``: the agent in the foreground, until SIGTERM or SIGINT (or once, for cron)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from types import FrameType

import click

from agent.cli.common import EXIT_FAILURE, pass_app, safe_url
from agent.cli.output import errors, to_jsonable
from agent.runtime import logs
from agent.runtime.app import App
from agent.runtime.debug import configure_logs
from agent.runtime.runs import RunRecord
from agent.runtime.scheduler import Agent
from agent.runtime.timing import Timing
from config.schema import parse_duration
from storage import leases
from storage.leases import AgentLock, AgentRunning

log = logging.getLogger("agent.run")


def _duration(_ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        duration = parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param=param) from None
    if duration <= timedelta(0):
        raise click.BadParameter("must be more than 0", param=param)
    return duration


@click.command()
@click.option(
    "--once",
    is_flag=True,
    help="Run every enabled connector once, side by side, then exit (for cron). Exit status "
    "1 if one failed or waits for authorisation.",
)
@click.option("--json-logs", is_flag=True, help="Log one JSON object per line (for log shippers).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Connectors synced at the same time. Default: one per connector, at most 8.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Serve Prometheus metrics on 127.0.0.1:PORT (the figures of `status`).",
)
@click.option(
    "--journal",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append one JSON line per run start and end (connector, agent, times, outcome) to FILE.",
)
@click.option(
    "--lease-ttl",
    default="60s",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="How long a connector's lease outlives this agent if it dies; renewed every third.",
)
@click.option(
    "--stall-limit",
    default="30m",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="A run that commits nothing for this long is reported stuck and its lease freed.",
)
@click.option(
    "--stop-timeout",
    default="30s",
    show_default=True,
    callback=_duration,
    metavar="DURATION",
    help="On SIGTERM/SIGINT, how long running batches get to commit before the agent exits.",
)
@click.option(
    "--web",
    is_flag=True,
    help="Also serve the web app and JSON API in this process, on [web] host and port "
    "(for a small team on one machine; `crm-sync serve` runs it apart).",
)
@pass_app
def run(
    app: App,
    once: bool,
    json_logs: bool,
    workers: int | None,
    metrics_port: int | None,
    journal: Path | None,
    lease_ttl: timedelta,
    stall_limit: timedelta,
    stop_timeout: timedelta,
    web: bool,
) -> None:
    """Run the agent: sync every connector on its interval until stopped.

    Logs go to stderr (set $CRM_SYNC_LOG_LEVEL=DEBUG for more). The database
    schema is upgraded on start; `crm-sync db upgrade` creates the database
    first. SIGTERM or SIGINT stops it: no new runs
    start, each running connector commits the batch it is writing, leases are
    released, and it exits 0 within --stop-timeout. Several agents may share a
    PostgreSQL database (each connector runs in one of them at a time); a
    SQLite database takes one agent.
    """
    configure_logs(app.debug, json=json_logs, level=logs.level_from_env(default="INFO"))
    settings = app.settings
    if not any(c.enabled for c in settings.connectors):
        raise click.UsageError("no enabled connectors in the config (add [[connectors]] tables)")
    app.require_database()  # before the lock file is made beside it
    lock = AgentLock.for_url(app.database_url)
    if lock is not None:
        try:
            lock.acquire()
        except AgentRunning as exc:
            errors.print(f"error: {exc}", highlight=False, markup=False)
            sys.exit(EXIT_FAILURE)
    app.upgrade()
    for connector, holder in leases.free_dead(app.sessions).items():
        log.warning("%s: freed the lease of %s, a process that no longer runs", connector, holder)
    agent = Agent(
        settings,
        app.sessions,
        app.base_dir,
        timing=Timing(lease_ttl=lease_ttl, stall_limit=stall_limit),
        workers=workers,
        journal=_Journal(journal) if journal is not None else None,
    )
    log.info("database %s; agent %s", safe_url(app), agent.owner)
    wake = _on_signals(agent)
    if once:
        _once(agent, wake, stop_timeout)
    else:
        _serve(app, agent, wake, metrics_port, stop_timeout, web=web)


def _once(agent: Agent, wake: threading.Event, stop_timeout: timedelta) -> None:
    """Every connector once; a signal meanwhile stops it like the daemon."""
    records: list[RunRecord] = []

    def work() -> None:
        records.extend(agent.run_once())
        wake.set()

    threading.Thread(target=work, name="crm-sync-once", daemon=True).start()
    _wait_for(wake)
    if agent.stopping:
        _shut_down(agent, stop_timeout)
    _exit_once(records)


def _serve(
    app: App,
    agent: Agent,
    wake: threading.Event,
    metrics_port: int | None,
    stop_timeout: timedelta,
    *,
    web: bool = False,
) -> None:
    metrics = None
    if metrics_port is not None:
        from agent.runtime.metrics import start_metrics_server

        metrics = start_metrics_server(metrics_port, app.sessions, app.settings)
        log.info("metrics on http://127.0.0.1:%d/metrics", metrics.port)
    pages = None
    if web:
        from agent.web.server import WebThread

        settings = app.settings.web
        pages = WebThread(app, host=settings.host, port=settings.port)
        pages.start()
        log.info("web app on http://%s:%d", settings.host, settings.port)
    agent.start()
    _wait_for(wake)
    try:
        if pages is not None:
            pages.stop()
        _shut_down(agent, stop_timeout)
    finally:
        if metrics is not None:
            metrics.close()


def _shut_down(agent: Agent, stop_timeout: timedelta) -> None:
    """Stop within ``stop_timeout`` and exit 0, even when a run will not end.

    Runs get most of the time to commit their batch; the rest is for releasing
    the leases. Should anything else hold the exit up (the database not
    answering the release, a scheduler thread that never lets go), a watchdog
    ends the process when the time is up: leases not released lapse by
    themselves, and no batch is ever half committed.
    """
    seconds = stop_timeout.total_seconds()
    log.info("stopping: letting running batches commit (at most %.0f s)", seconds)
    watchdog = threading.Timer(seconds, _exit_at_deadline, args=(seconds,))
    watchdog.daemon = True
    watchdog.start()
    finished = agent.stop(seconds - min(_RELEASE_TIME, seconds / 5))
    log.info("stopped")
    if not finished:
        # A run stuck in a network call cannot be interrupted; its lease is
        # released and its batch uncommitted, so ending the process is safe.
        _exit_now()
    sys.exit(0)


_RELEASE_TIME = 2.0
"""Seconds of the stop timeout kept for releasing the leases once the runs have ended."""


def _exit_now() -> None:
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


def _exit_at_deadline(seconds: float) -> None:
    """The watchdog: says why for a moment at most (stderr may be a pipe nobody reads), exits."""
    said = threading.Thread(
        target=log.warning,
        args=("stopping took %.0f s, the most allowed: exiting now", seconds),
        daemon=True,
    )
    said.start()
    said.join(0.5)
    os._exit(0)


_SIGNAL_CHECK = 0.25
"""Seconds between the main thread's looks for a signal that reached another thread."""


def _wait_for(wake: threading.Event) -> None:
    """Wait for ``wake`` a moment at a time, never in one blocking wait.

    Python runs a signal's handler in the main thread only, once that thread
    runs again; the kernel may hand SIGTERM to any thread (it does when the
    main one is busy, as right after a SIGCONT), and a main thread blocked in
    one long wait would then never notice it.
    """
    while not wake.wait(_SIGNAL_CHECK):
        pass


def _on_signals(agent: Agent) -> threading.Event:
    """SIGTERM and SIGINT ask the agent to stop and set the returned event."""
    wake = threading.Event()

    def handle(_signum: int, _frame: FrameType | None) -> None:
        agent.request_stop()
        wake.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return wake


def _exit_once(records: list[RunRecord]) -> None:
    failed = [r for r in records if r.failed]
    for record in records:
        if record.status in ("held", "busy"):
            log.info("%s: skipped: %s", record.connector, record.error)
    for record in failed:
        log.error("%s: %s: %s", record.connector, record.status, record.error)
    sys.exit(EXIT_FAILURE if failed else 0)


class _Journal:
    """Appends each run record as one JSON line, flushed at once; safe across threads."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, record: RunRecord) -> None:
        event = "start" if record.ended_at is None else "end"
        line = json.dumps({"event": event, **to_jsonable(asdict(record))}, ensure_ascii=False)
        with self._lock:
            self._handle.write(line + "\n")
            self._handle.flush()
