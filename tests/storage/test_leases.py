"""Leases: one holder per connector, takeover after expiry, fencing of a lost holder.

The protocol tests run on SQLite and PostgreSQL; the race tests need
PostgreSQL's row locks (``FOR UPDATE SKIP LOCKED``), SQLite's single agent
is enforced by an OS file lock instead.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import SyncResult, sync_connector
from config import Settings
from connectors.memory import MemoryConnector
from connectors.records import Batch, MailMessage
from storage import leases
from storage.db import make_engine, session_factory
from storage.leases import AgentLock, AgentRunning, Lease, LeaseLost, Refused
from storage.models import Interaction, SyncState
from tests.support.cli import FAST_AGENT, start_cli, upgrade_database
from tests.support.mailbuilder import message, write_mbox

TTL = timedelta(seconds=30)
NAME = "alice-mbox"
ME = "alice@example.com"


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def _row(sessions: sessionmaker[Session], name: str = NAME) -> SyncState:
    with sessions() as session:
        row = session.get(SyncState, name)
        assert row is not None
        return row


def _expire(sessions: sessionmaker[Session], name: str = NAME) -> None:
    """Make the current lease lapse, as if its holder had stopped renewing it."""
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    with sessions.begin() as session:
        session.execute(
            update(SyncState).where(SyncState.connector == name).values(lease_expires_at=past)
        )


def _claim(
    sessions: sessionmaker[Session], owner: str, parked: frozenset[str] = frozenset()
) -> Lease | Refused:
    return leases.claim(sessions, NAME, owner, TTL, kind="mbox", parked=parked)


# -- the protocol -----------------------------------------------------------------------------


def test_claim_creates_the_row_and_holds_it(sessions: sessionmaker[Session]) -> None:
    lease = _claim(sessions, "a")
    assert isinstance(lease, Lease)
    assert lease.taken_over_from is None
    row = _row(sessions)
    assert (row.kind, row.status, row.lease_owner) == ("mbox", "new", "a")
    assert row.lease_expires_at is not None
    remaining = row.lease_expires_at - datetime.now(timezone.utc)
    assert timedelta(seconds=25) < remaining <= TTL


@pytest.mark.parametrize("second", ["b", "a"], ids=["another-agent", "same-agent-other-thread"])
def test_a_live_lease_refuses_every_other_claim(
    sessions: sessionmaker[Session], second: str
) -> None:
    assert isinstance(_claim(sessions, "a"), Lease)
    refused = _claim(sessions, second)
    assert isinstance(refused, Refused)
    assert refused.reason == "held"
    assert "held by a until" in refused.detail


def test_an_expired_lease_is_taken_over(sessions: sessionmaker[Session]) -> None:
    first = _claim(sessions, "a")
    assert isinstance(first, Lease)
    _expire(sessions)
    second = _claim(sessions, "b")
    assert isinstance(second, Lease)
    assert second.taken_over_from == "a"
    assert _row(sessions).lease_owner == "b"
    assert leases.renew(sessions, first, TTL) is None
    assert leases.release(sessions, first) is False
    assert _row(sessions).lease_owner == "b"


def test_renew_moves_the_expiry_and_release_frees(sessions: sessionmaker[Session]) -> None:
    lease = leases.claim(sessions, NAME, "a", timedelta(seconds=5))
    assert isinstance(lease, Lease)
    renewed = leases.renew(sessions, lease, timedelta(seconds=50))
    assert renewed is not None and renewed.expires_at > lease.expires_at
    assert leases.release(sessions, lease) is True
    row = _row(sessions)
    assert (row.lease_owner, row.lease_expires_at) == (None, None)
    assert isinstance(_claim(sessions, "b"), Lease)


@pytest.mark.parametrize("status", ["paused", "needs_auth"])
def test_parked_connectors_are_refused(sessions: sessionmaker[Session], status: str) -> None:
    assert isinstance(_claim(sessions, "a"), Lease)
    with sessions.begin() as session:
        session.execute(
            update(SyncState)
            .where(SyncState.connector == NAME)
            .values(status=status, lease_owner=None, lease_expires_at=None)
        )
    refused = _claim(sessions, "b", parked=frozenset({"paused", "needs_auth"}))
    assert isinstance(refused, Refused) and refused.reason == status
    assert isinstance(_claim(sessions, "b"), Lease), "only the caller's parked set refuses"


def test_verify_fences_a_lost_holder(sessions: sessionmaker[Session]) -> None:
    lease = _claim(sessions, "a")
    assert isinstance(lease, Lease)
    with sessions.begin() as session:
        leases.verify(session, lease)
    _expire(sessions)
    assert isinstance(_claim(sessions, "b"), Lease)
    with pytest.raises(LeaseLost, match="now held by b"), sessions.begin() as session:
        leases.verify(session, lease)


def test_free_stalled_marks_stuck_and_frees(sessions: sessionmaker[Session]) -> None:
    lease = _claim(sessions, "a")
    assert isinstance(lease, Lease)
    assert leases.free_stalled(sessions, lease, "no progress for 31 min") is True
    row = _row(sessions)
    assert (row.status, row.lease_owner, row.last_error) == (
        "stuck",
        None,
        "no progress for 31 min",
    )
    assert isinstance(_claim(sessions, "b"), Lease)
    assert leases.free_stalled(sessions, lease, "again") is False, "no longer a's to free"


def test_release_owner(sessions: sessionmaker[Session]) -> None:
    for name, owner in (("one", "a"), ("two", "a"), ("three", "b")):
        assert isinstance(leases.claim(sessions, name, owner, TTL), Lease)
    assert sorted(leases.release_owner(sessions, "a")) == ["one", "two"]
    assert leases.free_dead(sessions) == {}, "owners it cannot check are alive"
    with sessions() as session:
        held = dict(session.execute(select(SyncState.connector, SyncState.lease_owner)).all())
    assert held == {"one": None, "two": None, "three": "b"}


@pytest.mark.parametrize(
    ("status", "holder", "recorded", "after"),
    [
        ("syncing", "a", True, ("failing", None)),
        ("syncing", None, True, ("failing", None)),
        ("syncing", "b", False, ("syncing", "b")),
        ("ok", "a", False, ("ok", None)),
        ("paused", None, False, ("paused", None)),
    ],
    ids=["still-its-lease", "lease-freed", "another-holder", "outcome-written", "paused"],
)
def test_a_run_the_database_cut_short_is_recorded_once_it_answers(
    sessions: sessionmaker[Session],
    status: str,
    holder: str | None,
    recorded: bool,
    after: tuple[str, str | None],
) -> None:
    lease = _claim(sessions, "a")
    assert isinstance(lease, Lease)
    with sessions.begin() as session:
        session.execute(
            update(SyncState)
            .where(SyncState.connector == NAME)
            .values(status=status, lease_owner=holder)
        )
    error = "database error: lost the connection to db:5432: is PostgreSQL running?"
    assert leases.record_lost_run(sessions, lease, error) is recorded
    row = _row(sessions)
    assert (row.status, row.lease_owner) == after
    if recorded:
        assert row.last_error == error and row.last_error_at is not None
        assert (row.counters["failures"], row.counters["consecutive_failures"]) == (1, 1)


# -- a leased sync pass -----------------------------------------------------------------------


def _mail(count: int) -> list[MailMessage]:
    return [
        MailMessage(
            f"m{i}",
            ME,
            message(
                sender="Carol <carol@customer.example>",
                to=[ME],
                subject=f"Offer {i}",
                message_id=f"<m{i}@customer.example>",
            ),
        )
        for i in range(count)
    ]


def _leased_sync(
    sessions: sessionmaker[Session],
    lease: Lease,
    progress: Callable[[Batch, SyncResult], None],
    stop: Callable[[], bool] | None = None,
) -> SyncResult:
    connector = MemoryConnector(NAME, list(_mail(30)), batch_size=10)
    policy = Policy.from_settings(Settings(), NAME, ME)
    return sync_connector(
        sessions, connector, policy, kind="memory", progress=progress, lease=lease, stop=stop
    )


def test_a_pass_that_loses_its_lease_commits_nothing_more(sessions: sessionmaker[Session]) -> None:
    lease = _claim(sessions, "a")
    assert isinstance(lease, Lease)

    def taken_over_after_first_batch(batch: Batch, _result: SyncResult) -> None:
        if batch.cursor["position"] == 10:
            _expire(sessions)
            assert isinstance(_claim(sessions, "b"), Lease)

    result = _leased_sync(sessions, lease, taken_over_after_first_batch)
    assert result.status == "lease_lost"
    assert result.items == 10
    row = _row(sessions)
    assert row.cursor == {"v": 1, "position": 10}
    assert (row.lease_owner, row.status) == ("b", "syncing"), "the new holder's row is untouched"
    assert row.counters["items"] == 10
    with sessions() as session:
        assert len(session.scalars(select(Interaction.id)).all()) == 10


def test_a_pass_asked_to_stop_ends_after_the_committed_batch(
    sessions: sessionmaker[Session],
) -> None:
    lease = _claim(sessions, "a")
    assert isinstance(lease, Lease)
    batches: list[int] = []
    result = _leased_sync(
        sessions, lease, lambda batch, _r: batches.append(len(batch.items)), stop=lambda: True
    )
    assert result.status == "stopped"
    assert batches == [10]
    row = _row(sessions)
    assert row.cursor == {"v": 1, "position": 10}
    assert (row.status, row.last_success_at, row.last_error) == ("ok", None, None)
    assert row.counters["last_run"]["items"] == 10


def test_an_unleased_pass_is_unchanged(sessions: sessionmaker[Session]) -> None:
    connector = MemoryConnector(NAME, list(_mail(30)), batch_size=10)
    result = sync_connector(
        sessions, connector, Policy.from_settings(Settings(), NAME, ME), kind="memory"
    )
    assert (result.status, result.items) == ("ok", 30)
    assert _row(sessions).last_success_at is not None


# -- PostgreSQL races --------------------------------------------------------------------------


def test_racing_claims_have_one_winner(pg_engine: Engine) -> None:
    """Sixteen agents claim the same connectors at the same instant; each has one holder."""
    sessions = session_factory(pg_engine)
    names = [f"c{i}" for i in range(6)]
    start = threading.Barrier(16)
    won: dict[str, list[str]] = {name: [] for name in names}
    lock = threading.Lock()

    def agent(owner: str) -> None:
        start.wait()
        for name in names:
            claimed = leases.claim(sessions, name, owner, TTL)
            if isinstance(claimed, Lease):
                with lock:
                    won[name].append(owner)

    threads = [threading.Thread(target=agent, args=(f"agent-{i}",)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(len(owners) == 1 for owners in won.values()), won
    with sessions() as session:
        holders = dict(session.execute(select(SyncState.connector, SyncState.lease_owner)).all())
    assert holders == {name: owners[0] for name, owners in won.items()}


# -- one agent per SQLite database -------------------------------------------------------------


def test_agent_lock_refuses_a_second_agent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    first, second = AgentLock.for_url(url), AgentLock.for_url(url)
    assert first is not None and second is not None
    first.acquire()
    try:
        with pytest.raises(AgentRunning, match=r"already running .*crm\.db.*PostgreSQL"):
            second.acquire()
    finally:
        first.release()
    second.acquire()
    second.release()


def test_agent_lock_dies_with_its_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from storage.leases import AgentLock; "
            f"lock = AgentLock.for_url({url!r}); lock.acquire(); "
            "print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        lock = AgentLock.for_url(url)
        assert lock is not None
        with pytest.raises(AgentRunning, match=f"pid {holder.pid}"):
            lock.acquire()
        holder.kill()
        holder.wait(timeout=10)
        lock.acquire()
        lock.release()
    finally:
        holder.kill()
        holder.wait(timeout=10)


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://u@h/db", "sqlite://", "sqlite:///:memory:"],
    ids=["postgresql", "sqlite-memory", "sqlite-memory-explicit"],
)
def test_agent_lock_only_for_sqlite_files(url: str) -> None:
    assert AgentLock.for_url(url) is None


# -- two agent processes on one PostgreSQL database --------------------------------------------


def _customer_mail(box: str, n: int) -> bytes:
    return message(
        sender=f"Buyer {n % 40} <buyer{n % 40}@acme{n % 9}.example>",
        to=[ME],
        subject=f"{box} order {n}",
        message_id=f"<{box}-{n}@acme.example>",
    )


def _agents_config(folder: Path, url: str, boxes: dict[str, Path], interval: str) -> Path:
    tables = "".join(
        f'\n[[connectors]]\nname = "{name}"\nkind = "mbox"\naccount = "{ME}"\npath = "{path}"\n'
        for name, path in boxes.items()
    )
    config = folder / "crm-sync.toml"
    config.write_text(
        f'[database]\nurl = "{url}"\n\n[agent]\ninterval = "{interval}"\n'
        f'internal_domains = ["example.com"]\n{tables}'
    )
    upgrade_database(folder, "--config", str(config), env=FAST_AGENT)
    return config


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def test_two_agents_never_run_one_connector_at_once(pg_url: str, tmp_path: Path) -> None:
    """Both agents schedule all four connectors every 0.5 s while mail keeps arriving;
    the runs each journal records never overlap for any connector."""
    boxes = {f"box{i}": tmp_path / f"box{i}.mbox" for i in range(4)}
    sent = dict.fromkeys(boxes, 0)
    for name, path in boxes.items():
        write_mbox(path, [_customer_mail(name, n) for n in range(200)])
        sent[name] = 200
    config = _agents_config(tmp_path, pg_url, boxes, "0.5s")
    agents = [
        start_cli(
            "--config",
            str(config),
            "run",
            "--journal",
            str(tmp_path / f"{tag}.jsonl"),
            cwd=tmp_path,
            output=tmp_path / f"{tag}.log",
            env=FAST_AGENT,
        )
        for tag in ("a", "b")
    ]
    try:
        for _ in range(25):
            time.sleep(0.25)
            for name, path in boxes.items():
                with path.open("ab") as out:
                    for n in range(sent[name], sent[name] + 10):
                        raw = _customer_mail(name, n)
                        out.write(b"From buyer@acme.example Mon Mar  2 09:30:00 2026\n" + raw)
                        out.write(b"\n")
                sent[name] += 10
        engine = make_engine(pg_url)
        try:
            _wait(lambda: _items(engine) == sent, 60, "every message synced")
        finally:
            engine.dispose()
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
        codes = [agent.wait(timeout=60) for agent in agents]
    assert codes == [0, 0]

    runs: dict[str, list[tuple[datetime, datetime, str]]] = {name: [] for name in boxes}
    for tag in ("a", "b"):
        for entry in _journal(tmp_path / f"{tag}.jsonl"):
            if entry["event"] == "end":
                runs[entry["connector"]].append(
                    (_when(entry["started_at"]), _when(entry["ended_at"]), entry["owner"])
                )
    for name, intervals in runs.items():
        intervals.sort()
        overlaps = [(a, b) for a, b in itertools.pairwise(intervals) if b[0] < a[1]]
        assert not overlaps, f"{name}: overlapping runs {overlaps}"
    owners = {owner for intervals in runs.values() for _, _, owner in intervals}
    total = sum(len(intervals) for intervals in runs.values())
    print(
        f"\n{total} runs of 4 connectors by 2 agents; no overlap; runs per agent:",
        Counter(owner for intervals in runs.values() for _, _, owner in intervals),
    )
    assert len(owners) == 2, "both agents got connectors"
    assert all(len(intervals) >= 5 for intervals in runs.values())


def _items(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(select(SyncState.connector, SyncState.counters)).all()
    return {name: int((counters or {}).get("items", 0)) for name, counters in rows}


@pytest.mark.parametrize("where", ["this-host", "another-host"])
def test_a_killed_agents_connector_is_taken_over(pg_url: str, tmp_path: Path, where: str) -> None:
    """On this host the restarted agent frees a dead agent's lease at once; a holder on
    another host (its owner renamed so) is waited for until its lease expires."""
    box = write_mbox(tmp_path / "big.mbox", [_customer_mail("big", n) for n in range(1500)])
    config = _agents_config(tmp_path, pg_url, {"big": box}, "1s")
    journal_a, journal_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    ttl = "30s" if where == "this-host" else "2s"
    common = ("--config", str(config), "run", "--lease-ttl", ttl)
    first = start_cli(
        *common,
        "--journal",
        str(journal_a),
        cwd=tmp_path,
        output=tmp_path / "a.log",
        env=FAST_AGENT,
    )
    engine = make_engine(pg_url)
    second = None
    try:
        sessions = session_factory(engine)

        def committed() -> bool:
            try:
                with sessions() as session:
                    row = session.get(SyncState, "big")
            except DBAPIError:
                return False
            return row is not None and row.cursor is not None and bool(row.lease_owner)

        _wait(committed, 60, "a first batch committed")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        if where == "another-host":
            with sessions.begin() as session:
                row = session.get(SyncState, "big")
                assert row is not None and row.lease_owner
                row.lease_owner = "elsewhere.example:" + row.lease_owner.split(":", 1)[1]
        killed = _row(sessions, "big")
        assert killed.lease_owner and killed.lease_expires_at
        assert 0 < killed.counters["items"] < 1500, "killed in the middle of the first sync"
        second = start_cli(
            *common,
            "--journal",
            str(journal_b),
            cwd=tmp_path,
            output=tmp_path / "b.log",
            env=FAST_AGENT,
        )
        _wait(lambda: _row(sessions, "big").last_success_at is not None, 60, "takeover")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
        done = _row(sessions, "big")
        with sessions() as session:
            interactions = len(session.scalars(select(Interaction.id)).all())
    finally:
        for agent in (first, second):
            if agent is not None and agent.poll() is None:
                agent.kill()
                agent.wait()
        engine.dispose()

    (started,) = [e for e in _journal(journal_b) if e["event"] == "start"][:1]
    waited = (_when(started["started_at"]) - killed.lease_expires_at).total_seconds()
    if where == "this-host":
        log = (tmp_path / "b.log").read_text()
        assert f"the lease of {killed.lease_owner}" in log and "no longer runs" in log
        assert waited < 0, "taken before the lease expired"
    else:
        assert started["taken_over_from"] == killed.lease_owner
        assert waited >= 0, "not before the lease expired"
    print(
        f"\n{where}: killed at {killed.counters['items']} of 1500 items; resumed "
        f"{waited:+.2f} s from the lease's expiry"
    )
    assert done.counters["items"] == 1500, "every message counted once across the two agents"
    assert interactions == 1500
    assert done.lease_owner is None
