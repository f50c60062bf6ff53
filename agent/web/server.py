"""Running the web app under uvicorn: alone (``serve``) or beside the agent (``run --web``)."""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from collections.abc import MutableSequence
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

from agent.runtime.app import App
from agent.web.asgi import app_from_environment, create_app
from agent.web.balance import Balance, Share

FACTORY = "agent.web.asgi:app_from_environment"
QUIET: dict[str, Any] = {"log_level": "warning", "access_log": False, "server_header": False}
"""Requests are not logged: their URLs hold search terms and contact ids."""
STARTUP_GRACE = 10.0
"""Seconds a worker must stay up to be started again when it exits: one that fails sooner
fails on every start (a port taken, a database gone), and the server stops instead."""

log = logging.getLogger(__name__)


def serve_forever(app: App, *, host: str, port: int, workers: int = 1) -> None:
    """Until SIGTERM or SIGINT. Several workers are separate processes, each building the
    app from the config named by ``CRM_SYNC_CONFIG``; one runs the app built here."""
    if workers == 1:
        uvicorn.run(create_app(app), host=host, port=port, **QUIET)
    elif hasattr(socket, "SO_REUSEPORT") and sys.platform == "linux":
        WorkerPool(host, port, workers).run()
    else:
        uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, **QUIET)


def listener(host: str, port: int) -> socket.socket:
    """A socket of the port's ``SO_REUSEPORT`` group, bound, not yet listening.

    Each worker listens on its own: Linux then deals new connections across the
    workers evenly, where one socket shared by all hands them to whichever
    process is awake (seen here: 15 of 16 keep-alive clients on one of two
    workers, the other idle). The protocol is named so that asyncio turns
    Nagle's algorithm off on the connections, as it does for sockets it makes.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _worker(host: str, port: int, index: int, counts: MutableSequence[int]) -> None:
    """One worker of a :class:`WorkerPool`: the app built from the environment's config, which
    keeps about its share of the pool's connections (``agent.web.balance``)."""
    running: list[uvicorn.Server] = []
    share = Share(counts, index, lambda: len(running[0].server_state.connections))
    config = uvicorn.Config(Balance(app_from_environment(), share), **QUIET)
    running.append(uvicorn.Server(config))
    running[0].run(sockets=[listener(host, port)])


class WorkerPool:
    """``workers`` processes serving one port, each with its own listening socket; one that
    exits is started again, until SIGTERM or SIGINT stops them all."""

    def __init__(self, host: str, port: int, workers: int) -> None:
        self.host, self.port, self.workers = host, port, workers
        self.stopping = threading.Event()
        self.context = multiprocessing.get_context("spawn")
        self.counts = self.context.Array("i", workers, lock=False)
        """Each worker's open connections, as it last counted them."""

    def run(self) -> None:
        try:
            listener(self.host, self.port).close()
        except OSError as exc:
            raise SystemExit(f"error: cannot listen on {self.host}:{self.port}: {exc}") from None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        running = [self._start(index) for index in range(self.workers)]
        try:
            while not self.stopping.wait(0.5):
                for index, (process, started) in enumerate(running):
                    if process.is_alive() or self.stopping.is_set():
                        continue
                    if time.monotonic() - started < STARTUP_GRACE:
                        raise SystemExit(
                            f"error: a web worker exited with code {process.exitcode} "
                            "as it started; stopping"
                        )
                    log.warning(
                        "web worker exited with code %s; starting another", process.exitcode
                    )
                    running[index] = self._start(index)
        finally:
            self._stop_all([process for process, _ in running])

    def _start(self, index: int) -> tuple[BaseProcess, float]:
        process = self.context.Process(
            target=_worker, args=(self.host, self.port, index, self.counts), daemon=False
        )
        process.start()
        return process, time.monotonic()

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()

    @staticmethod
    def _stop_all(processes: list[BaseProcess], timeout: float = 20.0) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


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
