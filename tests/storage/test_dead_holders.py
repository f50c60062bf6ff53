"""A lease whose holder died on this host is taken at once; live and remote holders are not.

Holders are real processes: a child that claims a lease and is then killed,
``crm-sync sync`` killed mid-run, ``crm-sync run`` started beside a running
``crm-sync sync`` on SQLite. Both databases.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from storage import leases
from storage.db import make_engine, session_factory
from storage.leases import Lease, Refused
from storage.models import Interaction, SyncState
from tests.support.bulk import OWNER, write_bulk_mbox
from tests.support.cli import run_cli, start_cli, upgrade_database

TTL = timedelta(seconds=60)
NAME = "big"


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _holder(db_url: str, name: str = NAME) -> tuple[subprocess.Popen[str], str]:
    """A child process that claims ``name``'s lease for a minute and waits; its owner."""
    code = (
        "import sys, time\n"
        "from datetime import timedelta\n"
        "from storage import leases\n"
        "from storage.db import make_engine, session_factory\n"
        f"sessions = session_factory(make_engine({db_url!r}))\n"
        "owner = leases.new_owner()\n"
        f"lease = leases.claim(sessions, {name!r}, owner, timedelta(seconds=60))\n"
        "assert isinstance(lease, leases.Lease), lease\n"
        "print(owner, flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert child.stdout is not None
    owner = child.stdout.readline().strip()
    assert owner, "the child claimed the lease"
    return child, owner


@pytest.fixture
def holder(db_url: str, engine: Engine) -> Iterator[tuple[subprocess.Popen[str], str]]:
    child, owner = _holder(db_url)
    yield child, owner
    if child.poll() is None:
        child.kill()
    child.wait(timeout=10)


def _claim(sessions: sessionmaker[Session]) -> Lease | Refused:
    return leases.claim(sessions, NAME, leases.new_owner(), TTL)


def _until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - started


# -- the lease protocol ------------------------------------------------------------------------


def test_a_live_holder_is_refused_and_a_killed_one_is_taken_at_once(
    sessions: sessionmaker[Session],
    holder: tuple[subprocess.Popen[str], str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    child, owner = holder
    refused = _claim(sessions)
    assert isinstance(refused, Refused) and refused.reason == "held"
    assert not leases.holder_gone(owner)

    child.kill()  # not reaped yet: a zombie is gone too
    killed = time.monotonic()
    taken: list[Lease] = []

    def claimed() -> bool:
        result = _claim(sessions)
        if isinstance(result, Lease):
            taken.append(result)
        return bool(taken)

    _until(claimed, 5, "the dead holder's lease taken")
    took = time.monotonic() - killed
    child.wait(timeout=10)
    (lease,) = taken
    assert (lease.taken_over_from, lease.holder_died) == (owner, True)
    assert f"took the lease of {owner} at once" in caplog.text
    print(f"\ndead holder's lease taken {took * 1000:.0f} ms after SIGKILL (TTL 60 s)")
    assert took < 2


def test_this_process_is_a_live_holder(sessions: sessionmaker[Session]) -> None:
    mine = leases.new_owner()
    assert isinstance(leases.claim(sessions, NAME, mine, TTL), Lease)
    assert not leases.holder_gone(mine)
    refused = _claim(sessions)
    assert isinstance(refused, Refused) and refused.reason == "held"


def test_a_holder_on_another_host_is_waited_for(
    sessions: sessionmaker[Session], holder: tuple[subprocess.Popen[str], str]
) -> None:
    """The same dead process, named as on another host: nothing here can prove it gone."""
    child, owner = holder
    child.kill()
    child.wait(timeout=10)
    elsewhere = "elsewhere.example:" + owner.split(":", 1)[1]
    with sessions.begin() as session:
        row = session.get(SyncState, NAME)
        assert row is not None
        row.lease_owner = elsewhere
    assert not leases.holder_gone(elsewhere)
    refused = _claim(sessions)
    assert isinstance(refused, Refused) and refused.reason == "held"


def test_a_reused_pid_is_not_its_old_holder() -> None:
    """This pid, started at another time than the owner says: that process is gone."""
    host, pid, nonce, stamp = leases.new_owner().split(":")
    machine, _, start = stamp.partition("-")
    assert pid == str(os.getpid())
    assert not leases.holder_gone(f"{host}:{pid}:{nonce}:{machine}-{start}")
    assert leases.holder_gone(f"{host}:{pid}:{nonce}:{machine}-{int(start) - 1}")


@pytest.mark.parametrize(
    "owner",
    [
        "a",
        f"{socket.gethostname()}:999999999:ab12cd",
        f"{socket.gethostname()}:0:ab12cd:00000000-1",
        f"{socket.gethostname()}:999999999:ab12cd:00000000-1",
        f"{socket.gethostname()}:pid:ab12cd:x-1",
    ],
    ids=["no-format", "no-machine-stamp", "pid-zero", "another-machine", "garbage"],
)
def test_an_owner_that_cannot_be_checked_counts_as_alive(owner: str) -> None:
    assert not leases.holder_gone(owner)


def test_free_dead_frees_only_dead_holders(
    sessions: sessionmaker[Session], db_url: str, holder: tuple[subprocess.Popen[str], str]
) -> None:
    child, owner = holder
    live_child, live_owner = _holder(db_url, "alive")
    try:
        child.kill()
        child.wait(timeout=10)
        assert leases.free_dead(sessions) == {NAME: owner}
        with sessions() as session:
            held = dict(session.execute(select(SyncState.connector, SyncState.lease_owner)).all())
        assert held == {NAME: None, "alive": live_owner}
    finally:
        live_child.kill()
        live_child.wait(timeout=10)


# -- the commands ------------------------------------------------------------------------------

COUNT = 20000


def _config(tmp_path: Path, url: str, mbox: Path) -> Path:
    config = tmp_path / "crm-sync.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n\n[agent]\ninterval = "1h"\n'
        'internal_domains = ["example.com"]\nplanning_processes = 0\n\n'
        f'[[connectors]]\nname = "{NAME}"\nkind = "mbox"\naccount = "{OWNER}"\npath = "{mbox}"\n'
    )
    upgrade_database(tmp_path, "--config", str(config))
    return config


def _first_batch_committed(engine: Engine) -> Callable[[], bool]:
    def committed() -> bool:
        try:
            with engine.connect() as connection:
                row = connection.execute(
                    select(SyncState.cursor, SyncState.lease_owner).where(
                        SyncState.connector == NAME
                    )
                ).one_or_none()
        except DBAPIError:
            return False
        return row is not None and row.cursor is not None and row.lease_owner is not None

    return committed


def _row(engine: Engine) -> SyncState:
    with session_factory(engine)() as session:
        row = session.get(SyncState, NAME)
        assert row is not None
        return row


def _interactions(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count(Interaction.id))) or 0)


def test_sync_after_a_killed_sync_runs_at_once(tmp_path: Path, db_url: str) -> None:
    mbox = write_bulk_mbox(tmp_path / "big.mbox", "big", COUNT)
    config = _config(tmp_path, db_url, mbox)
    first = start_cli("--config", str(config), "sync", cwd=tmp_path, output=tmp_path / "first.log")
    engine = make_engine(db_url)
    try:
        _until(_first_batch_committed(engine), 60, "a first batch committed")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed = _row(engine)
        assert killed.lease_owner and 0 < killed.counters["items"] < COUNT
        status = run_cli("--config", str(config), "status", "--json", cwd=tmp_path)
        (shown,) = json.loads(status.stdout)
        assert (status.returncode, shown["state"]) == (1, "stuck"), status.stdout
        assert "no longer runs" in shown["fix"]

        started = datetime.now()
        again = run_cli("--config", str(config), "sync", cwd=tmp_path)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "busy" not in again.stdout
        took = re.search(
            r"^(\S+ \S+) WARNING storage\.leases: big: took the lease of (\S+) at once",
            again.stderr,
            re.M,
        )
        assert took and took.group(2) == killed.lease_owner, again.stderr
        seconds = (
            datetime.strptime(took.group(1), "%Y-%m-%d %H:%M:%S,%f") - started
        ).total_seconds()
        done = _row(engine)
        assert (done.status, done.lease_owner, done.counters["items"]) == ("ok", None, COUNT)
        assert _interactions(engine) == COUNT
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        engine.dispose()
    print(
        f"\nkilled at {killed.counters['items']} of {COUNT}; the next `crm-sync sync` took "
        f"the lease {seconds:.2f} s after it was started (lease TTL 60 s)"
    )


def test_run_started_beside_a_sync_on_sqlite_leaves_it_alone(
    tmp_path: Path, sqlite_url: str
) -> None:
    mbox = write_bulk_mbox(tmp_path / "big.mbox", "big", COUNT)
    config = _config(tmp_path, sqlite_url, mbox)
    sync = start_cli("--config", str(config), "sync", cwd=tmp_path, output=tmp_path / "sync.log")
    engine = make_engine(sqlite_url)
    try:
        _until(_first_batch_committed(engine), 60, "a first batch committed")
        holder = _row(engine).lease_owner
        agent = run_cli("--config", str(config), "run", "--once", cwd=tmp_path)
        assert sync.poll() is None, "the sync was still running when the agent ran"
        assert agent.returncode == 0, agent.stderr
        assert f"{NAME}: skipped: held by {holder}" in " ".join(agent.stderr.split())
        assert sync.wait(timeout=120) == 0, (tmp_path / "sync.log").read_text()
        done = _row(engine)
        assert (done.status, done.lease_owner, done.counters["items"]) == ("ok", None, COUNT)
        assert _interactions(engine) == COUNT
        assert "lease" not in (tmp_path / "sync.log").read_text()
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
        engine.dispose()
