"""The database going away mid-run, and database errors as people read them.

PostgreSQL is reached through a TCP proxy the test cuts and restores: real
connections, reset and refused as when the server goes away. Whatever the
outage leaves behind, ``status`` afterwards says ``failing`` or ``stuck``
and exits 1, never ``syncing`` with 0. Errors are one line without
``--debug``, and never show the database password.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from storage.db import make_engine, session_factory
from storage.models import SyncState
from tests.support.bulk import OWNER, write_bulk_mbox
from tests.support.cli import run_cli, start_cli, upgrade_database
from tests.support.tcp_proxy import TcpProxy, running_proxy

NAME = "big"
COUNT = 20000


@pytest.fixture
def proxy(pg_url: str) -> Iterator[TcpProxy]:
    server = make_url(pg_url)
    with running_proxy(server.host or "127.0.0.1", server.port or 5432) as running:
        yield running


def _via(pg_url: str, proxy: TcpProxy) -> str:
    return (
        make_url(pg_url)
        .set(host="127.0.0.1", port=proxy.port)
        .render_as_string(hide_password=False)
    )


def _config(tmp_path: Path, url: str) -> Path:
    mbox = write_bulk_mbox(tmp_path / "big.mbox", "big", COUNT)
    config = tmp_path / "crm-sync.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n\n[agent]\ninterval = "1h"\n'
        'internal_domains = ["example.com"]\nplanning_processes = 0\n\n'
        f'[[connectors]]\nname = "{NAME}"\nkind = "mbox"\naccount = "{OWNER}"\npath = "{mbox}"\n'
    )
    upgrade_database(tmp_path, "--config", str(config))
    return config


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.02)


def _row(engine: Engine) -> SyncState | None:
    try:
        with session_factory(engine)() as session:
            return session.get(SyncState, NAME)
    except DBAPIError:
        return None


def _mid_run(engine: Engine) -> Callable[[], bool]:
    def committed() -> bool:
        row = _row(engine)
        return row is not None and row.cursor is not None and row.status == "syncing"

    return committed


def _status(config: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], Any]:
    result = run_cli("--config", str(config), "status", "--json", cwd=tmp_path)
    (row,) = json.loads(result.stdout)
    return result, row


def _show(title: str, *results: subprocess.CompletedProcess[str]) -> None:
    print(f"\n--- {title}")
    for result in results:
        print(f"$ crm-sync {' '.join(result.args[3:])}  (exit {result.returncode})")
        print((result.stdout + result.stderr).rstrip())


def test_the_agent_records_a_run_the_outage_cut_short(
    tmp_path: Path, pg_url: str, proxy: TcpProxy
) -> None:
    config = _config(tmp_path, _via(pg_url, proxy))
    log = tmp_path / "agent.log"
    agent = start_cli("--config", str(config), "run", "--lease-ttl", "3s", cwd=tmp_path, output=log)
    engine = make_engine(pg_url)
    try:
        _until(_mid_run(engine), 60, "a first batch committed")
        proxy.cut()
        _until(lambda: "run failed" in log.read_text(), 60, "the run ended on the outage")
        during = run_cli("--config", str(config), "status", cwd=tmp_path)
        assert during.returncode == 1
        assert during.stderr.strip().splitlines() == [
            f"database error: could not connect to 127.0.0.1:{proxy.port} (connection refused): "
            f"is PostgreSQL running? check [database] url in {config}"
        ]
        cut_short = _row(engine)
        assert cut_short is not None and cut_short.status == "syncing"

        proxy.restore()
        _until(lambda: getattr(_row(engine), "status", None) == "failing", 30, "recorded")
        after, row = _status(config, tmp_path)
        table = run_cli("--config", str(config), "status", cwd=tmp_path)
        assert (after.returncode, row["state"]) == (1, "failing")
        assert table.returncode == 1
        assert row["last_error"].startswith("database error: ")
        assert f"127.0.0.1:{proxy.port}" in row["last_error"]
        assert row["lease_owner"] is None
        assert (row["failures"], row["consecutive_failures"]) == (1, 1)

        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=60) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        engine.dispose()
    text = log.read_text()
    assert "Traceback" not in text
    assert "the database answers again; its run that failed is recorded" in text
    _show("crm-sync run, its log", subprocess.CompletedProcess(["", "", "", "run"], 0, text, ""))
    _show("while the database is away", during)
    _show("after it is back", table)


def test_a_sync_cut_short_shows_stuck_until_the_next_sync(
    tmp_path: Path, pg_url: str, proxy: TcpProxy
) -> None:
    config = _config(tmp_path, _via(pg_url, proxy))
    output = tmp_path / "sync.log"
    sync = start_cli("--config", str(config), "sync", cwd=tmp_path, output=output)
    engine = make_engine(pg_url)
    try:
        _until(_mid_run(engine), 60, "a first batch committed")
        proxy.cut()
        assert sync.wait(timeout=60) == 1
        text = output.read_text()
        assert "Traceback" not in text
        errors = [line for line in text.splitlines() if line.startswith("database error:")]
        assert len(errors) == 1, text
        assert f"127.0.0.1:{proxy.port}" in errors[0]

        proxy.restore()
        after, row = _status(config, tmp_path)
        table = run_cli("--config", str(config), "status", cwd=tmp_path)
        assert (after.returncode, row["state"]) == (1, "stuck"), after.stdout
        assert "no longer runs" in row["fix"] or "without recording" in row["fix"]

        again = run_cli("--config", str(config), "sync", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        final, row = _status(config, tmp_path)
        assert (final.returncode, row["state"], row["items"]) == (0, "ok", COUNT)
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
        engine.dispose()
    _show(
        "crm-sync sync, cut short", subprocess.CompletedProcess(["", "", "", "sync"], 1, text, "")
    )
    _show("after the database is back", table)


# -- a password full of URL characters ----------------------------------------------------------

PASSWORD = "Zq@9:x/Kv#7?w%Q"


def _fragments(secret: str, shortest: int) -> set[str]:
    return {
        secret[i : i + n]
        for n in range(shortest, len(secret) + 1)
        for i in range(len(secret) - n + 1)
    }


def _leaks(text: str) -> set[str]:
    """Pieces of the password in ``text``: 3 characters and more of it as written, 4 and
    more of it percent-encoded (3 would be an escape like the hint's ``%40``, not a secret)."""
    pieces = _fragments(PASSWORD, 3) | _fragments(quote(PASSWORD, safe=""), 4)
    return {piece for piece in pieces if piece in text}


def _closed_port() -> int:
    with running_proxy("127.0.0.1", 9) as gone:
        port = gone.port
    return port


@pytest.mark.parametrize(
    ("password", "via_env", "code", "first_line"),
    [
        (PASSWORD, False, 2, "config error: "),
        (PASSWORD, True, 2, "config error: configuration"),
        (quote(PASSWORD, safe=""), False, 1, "database error: could not connect to 127.0.0.1:"),
        (PASSWORD.replace("@", ""), False, 1, "database error: could not connect to 127.0.0.1:"),
    ],
    ids=["raw-in-file", "raw-in-env", "encoded", "raw-without-at"],
)
@pytest.mark.parametrize("command", [["status"], ["run", "--once"]], ids=["status", "run-once"])
def test_a_password_never_shows_in_an_error(
    tmp_path: Path,
    password: str,
    via_env: bool,
    code: int,
    first_line: str,
    command: list[str],
) -> None:
    url = f"postgresql+psycopg://crm:{password}@127.0.0.1:{_closed_port()}/crm"
    config = tmp_path / "crm-sync.toml"
    config.write_text(
        f'[database]\nurl = "{"sqlite:///x.db" if via_env else url}"\n\n'
        f'[[connectors]]\nname = "m"\nkind = "mbox"\naccount = "{OWNER}"\npath = "m.mbox"\n'
    )
    env = {"CRM_SYNC_DATABASE_URL": url} if via_env else {}
    plain = run_cli("--config", str(config), *command, cwd=tmp_path, env=env)
    debug = run_cli("--debug", "--config", str(config), *command, cwd=tmp_path, env=env)
    for result in (plain, debug):
        output = result.stdout + result.stderr
        assert result.returncode == code, output
        assert not _leaks(output), output
    assert "Traceback" not in plain.stdout + plain.stderr
    assert plain.stderr.splitlines()[0].startswith(first_line), plain.stderr
    if code == 1:
        assert len(plain.stderr.strip().splitlines()) == 1, plain.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    if command == ["status"] and password != PASSWORD.replace("@", ""):
        _show(f"password {password!r}", plain)
