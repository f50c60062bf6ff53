"""The web app under load on a large team database, PostgreSQL and SQLite side by side.

The database (``bench/web_data.py``: 100,000 contacts, 10,000 companies,
2,000,000 interactions, 20 salespeople at scale 1.0) is built once per scale
and reused. For each database the app runs as it does in production,
``crm-sync --config FILE serve --host 127.0.0.1 --port PORT --workers N`` in its
own process group (2 workers, each running one request at a time: ``[web]
concurrent_requests = 1``, the setting the README gives a busy team), and is
loaded over real HTTP on loopback by a client in another process: an asyncio
HTTP/1.1 client over raw sockets with keep-alive, closed loop (each client
sends its next request when the last one is answered), a warm-up, then
``--seconds`` of measurement per route, with 1 client and with 16. The client
costs little CPU next to the server (its CPU seconds are reported with each
figure), so the 2 CPUs stay the server's.

Routes: ``GET /search?q=`` (terms of 3+ characters taken from the data's
names, companies and domains), ``GET /contacts/{id}`` (half of the requests
to the 1% of contacts with the most interactions), ``GET /companies/{id}``,
all signed in with a session cookie (``GET /login`` for the form's ``csrf``,
``POST /login``); and the JSON API, ``GET /api/v1/contacts/{id}`` and
``GET /api/v1/search?q=``, with a personal token (``Authorization: Bearer``).

Targets (PostgreSQL, 16 concurrent clients): p95 of search at most 50 ms,
p95 of the contact page at most 100 ms.

Prints one JSON line per figure: generation time per database, then per
database x route x concurrency the p50/p95/p99 latency, requests per second
and the count of errors (anything but 2xx, and broken connections), with the
mean body size, the client's CPU seconds and the machine's load average (a
busy machine shows in the latencies), then the two databases' p95 side by side.
Where there is a /proc, each figure also has the CPU milliseconds per request
(warm-up included) of the server's processes and of the whole machine
(PostgreSQL and the client with them): in a closed loop on a saturated machine
the mean latency is about clients x machine CPU per request / CPUs, which says
how much cheaper a request must get for a target. And each figure has the
connections each worker held halfway through: Linux deals the 16 clients'
keep-alive connections to the workers by a hash, rarely 8 and 8, and a
worker holding more than its share closes some after answering
(``agent.web.balance``): ``reconnects`` counts the connections the client
opened again while measuring, each timed as part of its next request.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import http.client
import json
import math
import os
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import web_data  # noqa: E402  (bench/ is not a package)

from tests.support.processes import (  # noqa: E402
    LISTENING,
    children,
    connections_held,
    sockets_on_port,
)

HOST = "127.0.0.1"
USER = web_data.rep_email(1)
ROUTES = ("search", "contact", "company", "api_contact", "api_search")
TARGETS_MS = {("postgresql", "search", 16): 50.0, ("postgresql", "contact", 16): 100.0}
PATHS_PER_ROUTE = 20_000


def emit(bench: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": bench, "value": round(value, 3), "unit": unit, **extra}), flush=True)


# -- the load client (its own process) -------------------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool, int]:
    """The status of one response, read whole; whether the connection stays open; the
    length of its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close"
    length = 0
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
                break
            await reader.readexactly(size + 2)
            length += size
    elif "content-length" in headers:
        length = int(headers["content-length"])
        await reader.readexactly(length)
    elif status not in (204, 304) and not 100 <= status < 200:
        length = len(await reader.read())
        keep = False
    return status, keep, length


async def _client(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], spec["port"]
    extra = "".join(f"{k}: {v}\r\n" for k, v in spec["headers"].items())
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
        for path in spec["paths"]
    ]
    concurrency = spec["concurrency"]
    began = time.perf_counter()
    measure_from = began + spec["warmup"]
    stop_at = measure_from + spec["seconds"]
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    body_bytes = 0
    answered = 0
    reconnects = 0

    async def worker(number: int) -> None:
        nonlocal body_bytes, answered, reconnects
        reader, writer = await asyncio.open_connection(host, port, limit=2**22)
        closed = False  # by the server, after the last answer: the next request opens one
        index = number
        try:
            while True:
                started = time.perf_counter()
                if started >= stop_at:
                    break
                request = requests[index % len(requests)]
                index += concurrency
                try:
                    if closed:
                        reader, writer = await asyncio.open_connection(host, port, limit=2**22)
                        closed = False
                        reconnects += started >= measure_from
                    writer.write(request)
                    status, keep, length = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                    if started >= measure_from:
                        statuses[type(exc).__name__] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port, limit=2**22)
                    continue
                answered += 1
                if started >= measure_from:
                    latencies.append(time.perf_counter() - started)
                    statuses[str(status)] += 1
                    body_bytes += length
                if not keep:
                    writer.close()
                    closed = True
        finally:
            writer.close()

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "latencies": latencies,
        "statuses": dict(statuses),
        "window": stop_at - measure_from,
        "body_bytes": body_bytes,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "answered": answered,
        "reconnects": reconnects,
    }


def client_main() -> None:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(asyncio.run(_client(spec))))


def run_load(
    port: int,
    paths: Sequence[str],
    headers: dict[str, str],
    concurrency: int,
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    spec = {
        "host": HOST,
        "port": port,
        "paths": list(paths),
        "headers": headers,
        "concurrency": concurrency,
        "warmup": warmup,
        "seconds": seconds,
    }
    done = subprocess.run(
        [sys.executable, __file__, "--client"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=False,
        timeout=warmup + seconds + 300,
    )
    if done.returncode != 0:
        raise SystemExit(f"the load client failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout))


def _ticks() -> float:
    return float(os.sysconf("SC_CLK_TCK"))


def machine_cpu_seconds() -> float | None:
    """CPU time the machine spent busy since boot (every process: the app, PostgreSQL,
    the client), or ``None`` where there is no /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return None
    idle, iowait = fields[3], fields[4]
    return (sum(fields) - idle - iowait) / _ticks()


def tree_cpu_seconds(root: int) -> float | None:
    """CPU time used so far by ``root`` and the processes under it, or ``None`` without /proc."""
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            if pid == root:
                return None
            continue  # it ended meanwhile
        total += (int(fields[11]) + int(fields[12])) / _ticks()
        pending.extend(children(pid))
    return total


def connections_per_worker(server: int, port: int) -> list[int] | None:
    """The established connections to ``port`` that each process listening on it holds, most
    first, or ``None`` without /proc. Linux deals each new connection to one worker's socket
    by a hash of its addresses, so 16 clients' connections split unevenly (3 and 13 seen),
    and the clients of the busier worker wait longer: the split explains a p95."""
    if not Path("/proc/net/tcp").exists():
        return None
    pids = [server, *children(server)]
    return connections_held(list(sockets_on_port(pids, port, LISTENING)), port)


def _sample_split(into: list[list[int] | None], server: int, port: int) -> None:
    into.append(connections_per_worker(server, port))


def _per_request(before: float | None, after: float | None, requests: int) -> float | None:
    if before is None or after is None or not requests:
        return None
    return round((after - before) * 1000 / requests, 2)


def percentile(ordered: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


class Server:
    """``crm-sync serve`` on a free port, in its own process group."""

    def __init__(
        self,
        kind: str,
        url: str,
        workers: int,
        workdir: Path,
        concurrent_requests: int | None = None,
    ) -> None:
        self.port = _free_port()
        self.log = workdir / f"serve-{kind}.log"
        env = dict(os.environ, CRM_SYNC_WEB_SECRET=secrets.token_urlsafe(48))
        env.pop("CRM_SYNC_DATABASE_URL", None)
        config = workdir / f"crm-sync-{kind}.toml"
        config.write_text(
            f'[database]\nurl = "{url}"\n\n[web]\nsession_secret = "${{CRM_SYNC_WEB_SECRET}}"\n'
            + (f"concurrent_requests = {concurrent_requests}\n" if concurrent_requests else "")
        )
        config.chmod(0o600)
        executable = Path(sys.executable).parent / "crm-sync"
        program = str(executable) if executable.exists() else shutil.which("crm-sync")
        if program is None:
            raise SystemExit("crm-sync is not installed in this environment (pip install -e .)")
        command = [program, "--config", str(config), "serve", "--host", HOST]
        command += ["--port", str(self.port), "--workers", str(workers)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = self.log.read_text(errors="replace")[-3000:]
                raise SystemExit(
                    f"the server exited ({self.process.returncode}) before /healthz answered:\n"
                    f"{tail}"
                )
            try:
                if _get(self.port, "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise SystemExit(f"/healthz did not answer 200 within {timeout:.0f} s (log: {self.log})")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def sign_in(port: int) -> str:
    """A signed-in session's ``Cookie`` header: the login form, then its POST."""
    jar: dict[str, str] = {}

    def keep(headers: Any) -> None:
        for value in headers.get_all("set-cookie") or []:
            name, _, rest = value.partition("=")
            jar[name.strip()] = rest.split(";", 1)[0]

    def cookie() -> str:
        return "; ".join(f"{k}={v}" for k, v in jar.items())

    status, headers, body = _get(port, "/login")
    if status != 200:
        raise SystemExit(f"GET /login answered {status}")
    keep(headers)
    field = re.search(rb"<input[^>]*name=[\"']csrf[\"'][^>]*>", body)
    value = re.search(rb"value=[\"']([^\"']*)[\"']", field.group(0)) if field else None
    if value is None:
        raise SystemExit("GET /login has no hidden input named csrf")
    form = urllib.parse.urlencode(
        {"email": USER, "password": web_data.PASSWORD, "csrf": html.unescape(value[1].decode())}
    )
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    try:
        connection.request(
            "POST",
            "/login",
            body=form,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie()},
        )
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    if response.status != 303:
        raise SystemExit(f"POST /login answered {response.status}, not 303")
    keep(response.headers)
    return cookie()


def api_token(url: str) -> str:
    from storage.db import make_engine, session_factory
    from storage.users import create_token

    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            token = create_token(session, USER, f"bench-{secrets.token_hex(4)}", actor="bench")
            session.commit()
        return token
    finally:
        engine.dispose()


def current_figures(kind: str, url: str) -> None:
    """Relationship figures made and brought to today, as the agent's hourly job keeps them
    (the generated database has none): without them every contact page would compute a
    busy customer's figures from their whole history, which no running team's pages do."""
    from storage.db import make_engine, session_factory
    from storage.relationships import refresh_stale_in_steps

    engine = make_engine(url)
    try:
        started = time.perf_counter()
        rows = refresh_stale_in_steps(session_factory(engine))
        emit(f"web.figures.{kind}", time.perf_counter() - started, "s", rows=rows)
    finally:
        engine.dispose()


# -- the requests ----------------------------------------------------------------------------


def route_paths(url: str, seed: int) -> dict[str, list[str]]:
    """Each route's requests, in a fixed random order."""
    from sqlalchemy import text

    from storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            contacts = int(connection.execute(text("SELECT max(id) FROM contacts")).scalar() or 0)
            companies = int(connection.execute(text("SELECT max(id) FROM companies")).scalar() or 0)
        busy = web_data.busiest_contacts(engine, 0.01)
    finally:
        engine.dispose()
    rng = random.Random(seed)
    terms = web_data.search_terms()

    def contact() -> int:
        return rng.choice(busy) if rng.random() < 0.5 else rng.randint(1, contacts)

    def term() -> str:
        return urllib.parse.quote(rng.choice(terms))

    n = PATHS_PER_ROUTE
    return {
        "search": [f"/search?q={term()}" for _ in range(n)],
        "contact": [f"/contacts/{contact()}" for _ in range(n)],
        "company": [f"/companies/{rng.randint(1, companies)}" for _ in range(n)],
        "api_contact": [f"/api/v1/contacts/{contact()}" for _ in range(n)],
        "api_search": [f"/api/v1/search?q={term()}" for _ in range(n)],
    }


def measure(
    kind: str, url: str, args: argparse.Namespace, workdir: Path
) -> dict[tuple[str, int], dict[str, Any]]:
    current_figures(kind, url)
    paths = route_paths(url, args.seed)
    token = api_token(url)
    server = Server(kind, url, args.workers, workdir, args.concurrent_requests)
    figures: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        cookie = sign_in(server.port)
        for route in args.routes:
            headers = (
                {"Authorization": f"Bearer {token}"}
                if route.startswith("api_")
                else {"Cookie": cookie}
            )
            for concurrency in args.concurrency:
                server_before = tree_cpu_seconds(server.process.pid)
                machine_before = machine_cpu_seconds()
                split: list[list[int] | None] = []
                sample = threading.Timer(
                    args.warmup + args.seconds / 2,
                    _sample_split,
                    (split, server.process.pid, server.port),
                )
                sample.start()
                result = run_load(
                    server.port, paths[route], headers, concurrency, args.warmup, args.seconds
                )
                sample.join()
                server_cpu = _per_request(
                    server_before, tree_cpu_seconds(server.process.pid), result["answered"]
                )
                machine_cpu = _per_request(
                    machine_before, machine_cpu_seconds(), result["answered"]
                )
                ordered = sorted(result["latencies"])
                statuses = result["statuses"]
                errors = sum(v for k, v in statuses.items() if not k.startswith("2"))
                p50, p95, p99 = (percentile(ordered, s) * 1000 for s in (0.50, 0.95, 0.99))
                line: dict[str, Any] = {
                    "database": kind,
                    "route": route,
                    "clients": concurrency,
                    "workers": args.workers,
                    "concurrent_requests": args.concurrent_requests,
                    "p50_ms": round(p50, 2),
                    "p95_ms": round(p95, 2),
                    "p99_ms": round(p99, 2),
                    "rps": round(len(ordered) / result["window"], 1),
                    "requests": len(ordered),
                    "errors": errors,
                    "body_kib": round(result["body_bytes"] / max(1, len(ordered)) / 1024, 1),
                    "client_cpu_s": round(result["cpu_seconds"], 2),
                    "server_cpu_ms_per_request": server_cpu,
                    "machine_cpu_ms_per_request": machine_cpu,
                    "connections_per_worker": split[0] if split else None,
                    "reconnects": result["reconnects"],
                    "loadavg_1m": round(os.getloadavg()[0], 2),
                }
                if errors:
                    line["statuses"] = statuses
                target = TARGETS_MS.get((kind, route, concurrency))
                if target is not None:
                    line["target_p95_ms"] = target
                    line["pass"] = bool(ordered) and p95 <= target and not errors
                figures[(route, concurrency)] = line
                emit(f"web.{kind}.{route}.c{concurrency}", p95, "ms p95", **line)
    finally:
        server.stop()
    return figures


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of the database (0.01: quick)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per route")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--workers", type=int, default=2, help="passed to serve")
    parser.add_argument(
        "--concurrent-requests", type=int, default=1, help="[web] concurrent_requests of serve"
    )
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--concurrency", default="1,16")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main()
        return
    args.routes = [r for r in args.routes.split(",") if r]
    unknown = set(args.routes) - set(ROUTES)
    if unknown:
        parser.error(f"unknown routes {sorted(unknown)}; known: {', '.join(ROUTES)}")
    args.concurrency = [int(c) for c in args.concurrency.split(",")]

    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > cpus / 2:
        print(
            f"warning: load average {load:.1f} on {cpus} CPUs before the run: other work "
            "shares the machine, the latencies will show it (see loadavg_1m per figure)",
            file=sys.stderr,
        )
    scale = web_data.Scale.of(args.scale)
    kinds = [k for k in ("postgresql", "sqlite") if args.only in (None, k)]
    urls = {}
    for kind in kinds:
        built = web_data.ensure(kind, scale)
        web_data.report(kind, scale, built)
        urls[kind] = built["url"]
    results: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="crm-sync-bench-web-") as tmp:
        for kind in kinds:
            results[kind] = measure(kind, urls[kind], args, Path(tmp))
    if len(kinds) == 2:
        for route in args.routes:
            for concurrency in args.concurrency:
                pg = results["postgresql"][(route, concurrency)]
                lite = results["sqlite"][(route, concurrency)]
                emit(
                    f"web.compare.{route}.c{concurrency}",
                    pg["p95_ms"] / lite["p95_ms"] if lite["p95_ms"] else float("nan"),
                    "pg/sqlite p95",
                    postgresql={k: pg[k] for k in ("p50_ms", "p95_ms", "p99_ms", "rps", "errors")},
                    sqlite={k: lite[k] for k in ("p50_ms", "p95_ms", "p99_ms", "rps", "errors")},
                )


if __name__ == "__main__":
    main()
