"""``serve`` with several workers: every worker takes its share of the connections."""

from __future__ import annotations

import http.client
import socket
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.processes import LISTENING, children, connections_held, sockets_on_port
from tests.support.web import WebServer, free_port, seeded_database

CLIENTS = 64
pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="reads the connections' owners from /proc, Linux's"
)


def _workers_listening(server: WebServer, count: int, timeout: float = 60) -> dict[int, set[str]]:
    """Each worker's listening sockets, once ``count`` workers listen (``/healthz``
    answers as soon as the first does)."""
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while True:
        listening = sockets_on_port(children(server.process.pid), server.port, LISTENING)
        if len(listening) == count:
            return listening
        assert time.monotonic() < deadline, f"{count} workers did not listen in {timeout} s"
        time.sleep(0.1)


def test_keep_alive_clients_are_dealt_to_every_worker(tmp_path: Path) -> None:
    """One listening socket shared by all workers let one take 15 of 16 clients; each
    worker listens on its own socket of the port's group and the kernel deals them out
    (by a hash of each connection's addresses: a share under a quarter of 64 is a chance
    of about 1 in 15,000)."""
    with (
        seeded_database("sqlite", tmp_path) as (url, _team),
        WebServer(tmp_path, url, web="workers = 2") as server,
    ):
        listening = _workers_listening(server, 2)
        first, second = listening.values()
        assert not first & second, "the workers share one listening socket"
        clients = [http.client.HTTPConnection("127.0.0.1", server.port) for _ in range(CLIENTS)]
        try:
            for client in clients:
                client.connect()
            shares = _dealt(server, list(listening), CLIENTS)
            for client in clients:
                client.request("GET", "/healthz")
                assert client.getresponse().read() == b'{"status":"ok"}'
        finally:
            for client in clients:
                client.close()
    assert not [pid for pid in listening if Path(f"/proc/{pid}").exists()], "workers left behind"
    assert len(shares) == 2 and min(shares) >= CLIENTS // 4, shares


def test_a_port_taken_by_another_program_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    taken = socket.socket()
    taken.bind(("127.0.0.1", port))
    taken.listen()
    try:
        with seeded_database("sqlite", tmp_path) as (url, _team):
            (tmp_path / "crm-sync.toml").write_text(
                f'[database]\nurl = "{url}"\n\n[web]\nsession_secret = "{"s" * 40}"\n'
            )
            done = run_cli("serve", "--port", str(port), "--workers", "2", cwd=tmp_path)
    finally:
        taken.close()
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


KEEP_ALIVE = 16
ROUNDS = 30


def _dealt(server: WebServer, workers: list[int], clients: int, timeout: float = 10) -> list[int]:
    """The connections each worker holds, most first, once they have taken all ``clients``."""
    deadline = time.monotonic() + timeout
    while sum(split := connections_held(workers, server.port)) < clients:
        assert time.monotonic() < deadline, split
        time.sleep(0.05)
    return split


def test_a_worker_holding_more_than_its_share_of_keep_alive_clients_gives_some_up(
    tmp_path: Path,
) -> None:
    """16 keep-alive clients, dealt by the kernel until one worker holds more than 8 (its
    fair share); the requests that follow get ``Connection: close`` from that worker until
    they are split 8 and 8, and every request is answered."""
    with (
        seeded_database("sqlite", tmp_path) as (url, _team),
        WebServer(tmp_path, url, web="workers = 2") as server,
    ):
        workers = list(_workers_listening(server, 2))
        for _ in range(20):
            clients = [
                http.client.HTTPConnection("127.0.0.1", server.port) for _ in range(KEEP_ALIVE)
            ]
            for client in clients:
                client.connect()
            dealt = _dealt(server, workers, KEEP_ALIVE)
            if dealt[0] > KEEP_ALIVE // 2:
                break
            for client in clients:
                client.close()
        else:
            pytest.fail("the kernel dealt 20 sets of 16 clients evenly: nothing to balance")
        closes: list[int] = []
        try:
            for _ in range(ROUNDS):
                closed = 0
                for client in clients:
                    client.request("GET", "/healthz")
                    answer = client.getresponse()
                    assert answer.read() == b'{"status":"ok"}'
                    closed += answer.getheader("connection", "").lower() == "close"
                closes.append(closed)
                if not closed:
                    break
            settled = connections_held(workers, server.port)
        finally:
            for client in clients:
                client.close()
    assert sum(closes) > 0 and closes[-1] == 0, closes
    assert settled == [KEEP_ALIVE // 2] * 2, (dealt, settled)
