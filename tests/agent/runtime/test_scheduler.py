"""The scheduler in-process: isolation, backoff, parking, stalls, stopping, IDLE triggers.

Connectors are in-memory ones (``connectors.memory``) that block or fail on
cue, built by an injected factory; the database is a real SQLite file.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from agent.runtime.runs import RunRecord
from agent.runtime.scheduler import Agent
from agent.runtime.timing import Timing, backoff_delay, jitter_of
from config import Settings
from config.schema import (
    MIN_INTERVAL_CONTEXT,
    AgentConfig,
    ConnectorConfig,
    ImapConnector,
    MboxConnector,
)
from connectors.errors import AuthError, ConnectorError, TransientError
from connectors.memory import MemoryConnector
from connectors.records import Batch, Connector, Cursor, Item, MailMessage
from storage.db import session_factory
from storage.models import SyncState
from tests.support.mailbuilder import message

ME = "alice@example.com"
FAST = Timing(lease_ttl=timedelta(seconds=2), stall_limit=timedelta(minutes=5))


# -- pure parts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "failures", "cap", "expected"),
    [
        (60, 0, 3600, 60),
        (60, 1, 3600, 120),
        (60, 2, 3600, 240),
        (60, 5, 3600, 1920),
        (60, 6, 3600, 3600),
        (60, 500, 3600, 3600),
        (7200, 3, 3600, 7200),
        (1, 3, 3600, 8),
    ],
    ids=["none", "one", "two", "five", "capped", "huge-streak", "cap-below-interval", "short"],
)
def test_backoff_doubles_per_failure_up_to_the_cap(
    interval: int, failures: int, cap: int, expected: int
) -> None:
    delay = backoff_delay(timedelta(seconds=interval), failures, timedelta(seconds=cap))
    assert delay == timedelta(seconds=expected)


@pytest.mark.parametrize(
    ("interval", "jitter"),
    [(1, 0.1), (300, 30.0), (3600, 30.0)],
    ids=["tenth", "tenth-at-cap", "capped"],
)
def test_jitter_is_a_tenth_of_the_interval_at_most_30s(interval: int, jitter: float) -> None:
    assert jitter_of(timedelta(seconds=interval)) == pytest.approx(jitter)


def test_a_connector_interval_overrides_the_agents() -> None:
    own, default = _mbox("own", interval="90s"), _mbox("default")
    settings = Settings(agent=AgentConfig(interval="5m"), connectors=[own, default])  # type: ignore[arg-type]
    assert settings.interval_of(own) == timedelta(seconds=90)
    assert settings.interval_of(default) == timedelta(minutes=5)


# -- connectors on cue -------------------------------------------------------------------------


def _mail(prefix: str, count: int) -> list[Item]:
    return [
        MailMessage(
            f"{prefix}-{i}",
            ME,
            message(
                sender="Carol <carol@customer.example>",
                to=[ME],
                subject=f"{prefix} {i}",
                message_id=f"<{prefix}-{i}@customer.example>",
            ),
        )
        for i in range(count)
    ]


class Scripted(MemoryConnector):
    """A memory connector that can fail, or wait for a gate after ``hold_after`` batches."""

    def __init__(
        self,
        name: str,
        count: int = 20,
        *,
        error: Exception | None = None,
        gate: threading.Event | None = None,
        hold_after: int = 0,
        pause: float = 0.0,
    ) -> None:
        super().__init__(name, _mail(name, count), batch_size=5)
        self.error = error
        self.gate = gate
        self.hold_after = hold_after
        self.pause = pause
        self.holding = threading.Event()

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        if self.error is not None:
            raise self.error
        for index, batch in enumerate(super().fetch(cursor)):
            if self.gate is not None and index >= self.hold_after:
                self.holding.set()
                self.gate.wait(timeout=30)
            time.sleep(self.pause)
            yield batch


def _mbox(name: str, **options: object) -> MboxConnector:
    return MboxConnector(name=name, kind="mbox", account=ME, path=Path(f"{name}.mbox"), **options)  # type: ignore[arg-type]


class Fixture:
    """Settings, a database and the connectors the factory hands out, by name."""

    def __init__(self, engine: Engine, tmp_path: Path) -> None:
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.tmp_path = tmp_path
        self.connectors: dict[str, Callable[[], Connector]] = {}
        self.records: list[RunRecord] = []
        self._lock = threading.Lock()

    def build(self, config: ConnectorConfig, _settings: Settings, _base: Path) -> Connector:
        return self.connectors[config.name]()

    def journal(self, record: RunRecord) -> None:
        with self._lock:
            self.records.append(record)

    def agent(
        self, configs: list[ConnectorConfig], interval: str = "1h", timing: Timing = FAST
    ) -> Agent:
        # faster than a config may ask for (config.schema.MIN_INTERVAL), as tests need
        fast = {MIN_INTERVAL_CONTEXT: timedelta(seconds=0.1)}
        agent = AgentConfig.model_validate({"interval": interval}, context=fast)
        settings = Settings(agent=agent, connectors=configs)
        return Agent(
            settings,
            self.sessions,
            self.tmp_path,
            timing=timing,
            build=self.build,
            journal=self.journal,
        )

    def row(self, name: str) -> SyncState:
        with self.sessions() as session:
            row = session.get(SyncState, name)
            assert row is not None
            return row

    def peek(self, name: str) -> SyncState | None:
        with self.sessions() as session:
            return session.get(SyncState, name)

    def ended(self, name: str) -> list[RunRecord]:
        with self._lock:
            return [r for r in self.records if r.connector == name and r.ended_at is not None]


@pytest.fixture
def fx(sqlite_engine: Engine, tmp_path: Path) -> Fixture:
    return Fixture(sqlite_engine, tmp_path)


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- one pass of everything (--once) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (TransientError("HTTP 503"), "failing"),
        (FileNotFoundError("/srv/mail/gone.mbox: no such file"), "failing"),
        (AuthError("invalid_grant", hint="run `crm-sync connectors auth bad`"), "needs_auth"),
        (ConnectorError("UIDVALIDITY keeps changing"), "failing"),
    ],
    ids=["transient", "missing-file", "revoked-grant", "connector-error"],
)
def test_a_failing_connector_never_delays_the_others(
    fx: Fixture, error: Exception, status: str
) -> None:
    """The good connectors finish while a bad one fails and a slow one is still stuck."""
    gate = threading.Event()
    fx.connectors = {
        "good": lambda: Scripted("good", 20),
        "also-good": lambda: Scripted("also-good", 20),
        "bad": lambda: Scripted("bad", error=error),
        "slow": lambda: Scripted("slow", gate=gate),
    }
    agent = fx.agent([_mbox(n) for n in fx.connectors])
    done: list[list[RunRecord]] = []
    runner = threading.Thread(target=lambda: done.append(agent.run_once()))
    runner.start()
    try:
        _until(lambda: len(fx.ended("good")) == 1 and len(fx.ended("also-good")) == 1)
        _until(lambda: len(fx.ended("bad")) == 1)
        assert not fx.ended("slow"), "the slow connector is still in its first batch"
        assert fx.row("good").counters["items"] == 20
        bad = fx.row("bad")
        assert bad.status == status
        assert bad.counters["failures"] == 1 and bad.counters["consecutive_failures"] == 1
        assert bad.last_error and str(error).split(":")[0] in bad.last_error
    finally:
        gate.set()
        runner.join(timeout=30)
    records = {r.connector: r for r in done[0]}
    assert [r.connector for r in done[0]] == list(fx.connectors)
    assert {n: r.status for n, r in records.items()} == {
        "good": "ok",
        "also-good": "ok",
        "bad": status,
        "slow": "ok",
    }
    assert [n for n, r in records.items() if r.failed] == ["bad"]
    assert all(fx.row(n).lease_owner is None for n in fx.connectors)


def test_a_connector_that_cannot_be_built_is_marked_failed(fx: Fixture) -> None:
    def broken() -> Connector:
        raise ValueError("security = 'plain' would send the password in clear")

    fx.connectors = {"broken": broken, "good": lambda: Scripted("good")}
    records = fx.agent([_mbox("broken"), _mbox("good")]).run_once()
    assert [(r.connector, r.status) for r in records] == [("broken", "failing"), ("good", "ok")]
    assert "password in clear" in (fx.row("broken").last_error or "")
    assert fx.row("broken").lease_owner is None


def test_needs_auth_is_parked_until_an_admin_sets_it_back(fx: Fixture) -> None:
    revoked = {"now": True}

    def gmail() -> Connector:
        error = AuthError("token revoked", hint="run `crm-sync connectors auth g`")
        return Scripted("g", error=error if revoked["now"] else None)

    fx.connectors = {"g": gmail}
    agent = fx.agent([_mbox("g")])
    assert agent.run_once()[0].status == "needs_auth"
    revoked["now"] = False
    parked = agent.run_once()[0]
    assert (parked.status, parked.failed) == ("needs_auth", True)
    assert len(fx.ended("g")) == 1, "a parked connector is not run at all"
    with fx.sessions.begin() as session:  # what `connectors auth g` does once access is back
        session.execute(update(SyncState).where(SyncState.connector == "g").values(status="ok"))
    assert agent.run_once()[0].status == "ok"
    assert fx.row("g").counters["items"] == 20


def test_a_pause_during_a_run_outlives_the_run(fx: Fixture) -> None:
    gate = threading.Event()
    fx.connectors = {"c": lambda: Scripted("c", 20, gate=gate, hold_after=1)}
    agent = fx.agent([_mbox("c")])
    done: list[list[RunRecord]] = []
    runner = threading.Thread(target=lambda: done.append(agent.run_once()))
    runner.start()
    try:
        _until(lambda: getattr(fx.peek("c"), "cursor", None) is not None)
        with fx.sessions.begin() as session:  # what `connectors pause c` does
            session.execute(
                update(SyncState).where(SyncState.connector == "c").values(status="paused")
            )
    finally:
        gate.set()
        runner.join(timeout=30)
    assert done[0][0].status == "ok"
    assert fx.row("c").status == "paused"
    again = agent.run_once()[0]
    assert (again.status, again.failed) == ("paused", False)


def test_failures_are_counted_and_a_success_ends_the_streak(fx: Fixture) -> None:
    failing = {"now": True}
    fx.connectors = {
        "flaky": lambda: Scripted("flaky", error=TransientError("503") if failing["now"] else None)
    }
    agent = fx.agent([_mbox("flaky")])
    agent.run_once()
    agent.run_once()
    counters = fx.row("flaky").counters
    assert (counters["failures"], counters["consecutive_failures"]) == (2, 2)
    failing["now"] = False
    agent.run_once()
    counters = fx.row("flaky").counters
    assert (counters["failures"], counters["consecutive_failures"]) == (2, 0)


# -- stalls ------------------------------------------------------------------------------------


def test_a_stalled_run_is_reported_stuck_and_cannot_commit_later(fx: Fixture) -> None:
    gate = threading.Event()
    hung = Scripted("hung", 20, gate=gate, hold_after=1)
    fx.connectors = {"hung": lambda: hung}
    timing = Timing(lease_ttl=timedelta(seconds=0.3), stall_limit=timedelta(seconds=0.5))
    agent = fx.agent([_mbox("hung")], timing=timing)
    done: list[list[RunRecord]] = []
    runner = threading.Thread(target=lambda: done.append(agent.run_once()))
    runner.start()
    try:
        _until(lambda: getattr(fx.peek("hung"), "status", None) == "stuck")
        row = fx.row("hung")
        assert row.lease_owner is None
        assert row.last_error and "no progress" in row.last_error
        assert row.cursor == {"v": 1, "position": 5}, "the first batch committed before the stall"
    finally:
        gate.set()
        runner.join(timeout=30)
    assert done[0][0].status == "lease_lost"
    row = fx.row("hung")
    assert (row.status, row.cursor) == ("stuck", {"v": 1, "position": 5})
    assert agent.run_once()[0].status == "ok", "the next run resumes from the committed cursor"
    assert fx.row("hung").counters["items"] == 20


def test_leases_are_renewed_while_a_run_makes_progress(fx: Fixture) -> None:
    """Batches every 0.1 s for 1.5 s, under a lease of 0.3 s: the heartbeat keeps it."""
    fx.connectors = {"long": lambda: Scripted("long", 75, pause=0.1)}
    timing = Timing(lease_ttl=timedelta(seconds=0.3), stall_limit=timedelta(seconds=5))
    record = fx.agent([_mbox("long")], timing=timing).run_once()[0]
    assert (record.status, record.items) == ("ok", 75)


# -- the daemon --------------------------------------------------------------------------------


def test_the_schedule_backs_off_a_failing_connector(fx: Fixture) -> None:
    fx.connectors = {
        "good": lambda: Scripted("good", 0),
        "bad": lambda: Scripted("bad", error=TransientError("503")),
    }
    agent = fx.agent([_mbox("good"), _mbox("bad")], interval="0.1s")
    agent.start()
    time.sleep(2.0)
    assert agent.stop(5)
    good, bad = len(fx.ended("good")), len(fx.ended("bad"))
    # Every 0.1 s (+ up to 0.01 s jitter) for the good one; the bad one waits
    # 0.2, 0.4, 0.8 s ... after its failures: at most 5 runs in 2 s.
    assert good >= 10
    assert 2 <= bad <= 5
    gaps = [
        (b.started_at - a.ended_at).total_seconds()  # type: ignore[operator]
        for a, b in itertools.pairwise(fx.ended("bad"))
    ]
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps)), gaps
    assert fx.row("bad").counters["consecutive_failures"] == bad


def test_stop_lets_the_current_batch_commit_and_releases_leases(fx: Fixture) -> None:
    fx.connectors = {"big": lambda: Scripted("big", 200, pause=0.05)}
    agent = fx.agent([_mbox("big")])
    agent.start()
    _until(lambda: getattr(fx.peek("big"), "cursor", None) is not None)
    started = time.monotonic()
    assert agent.stop(5) is True
    assert time.monotonic() - started < 3.0  # after the batch, not after the 200 items
    (record,) = fx.ended("big")
    row = fx.row("big")
    assert record.status == "stopped"
    assert 0 < record.items < 200 and row.counters["items"] == record.items
    assert row.cursor == {"v": 1, "position": record.items}
    assert (row.status, row.lease_owner, row.last_success_at) == ("ok", None, None)


def test_stop_is_bounded_even_when_a_run_hangs(fx: Fixture) -> None:
    gate = threading.Event()
    fx.connectors = {"hung": lambda: Scripted("hung", gate=gate)}
    agent = fx.agent([_mbox("hung")])
    agent.start()
    _until(lambda: getattr(fx.peek("hung"), "lease_owner", None) is not None)
    started = time.monotonic()
    try:
        assert agent.stop(0.5) is False
        assert time.monotonic() - started < 2.5  # the bound, plus room for a loaded machine
        assert fx.row("hung").lease_owner is None
    finally:
        gate.set()


def test_stop_is_bounded_whatever_the_scheduler_thread_is_doing(fx: Fixture) -> None:
    """APScheduler's loop holds its job store lock while it works out missed run times
    (without end, for an interval of zero or less); stopping must not wait for it."""
    fx.connectors = {"c": lambda: Scripted("c", 5)}
    agent = fx.agent([_mbox("c")])
    agent.start()
    _until(lambda: len(fx.ended("c")) == 1)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with agent._scheduler._jobstores_lock:  # type: ignore[union-attr]
            held.set()
            release.wait(30)

    threading.Thread(target=hold, daemon=True).start()
    held.wait(5)
    try:
        started = time.monotonic()
        assert agent.stop(0.5) is True
        assert time.monotonic() - started < 2.0
    finally:
        release.set()


@pytest.mark.parametrize("seconds", [0, -60], ids=["zero", "negative"])
@pytest.mark.parametrize("where", ["agent", "connector"])
def test_an_interval_of_zero_or_less_is_refused_when_the_agent_is_built(
    fx: Fixture, seconds: int, where: str
) -> None:
    """Settings built in code skip the schema's checks; the agent checks again."""
    interval = timedelta(seconds=seconds)
    settings = Settings(connectors=[_mbox("c")])  # type: ignore[list-item]
    if where == "agent":
        agent = settings.agent.model_copy(update={"interval": interval})
        settings = settings.model_copy(update={"agent": agent})
    else:
        connector = settings.connectors[0].model_copy(update={"interval": interval})
        settings = settings.model_copy(update={"connectors": [connector]})
    with pytest.raises(ValueError, match=f"c: the interval must be more than 0, not {interval}"):
        Agent(settings, fx.sessions, fx.tmp_path)


def test_trigger_runs_a_connector_before_its_tick(fx: Fixture) -> None:
    fx.connectors = {"c": lambda: Scripted("c", 5)}
    agent = fx.agent([_mbox("c")], interval="1h")
    agent.start()
    try:
        _until(lambda: len(fx.ended("c")) == 1)
        agent.trigger("c")
        _until(lambda: len(fx.ended("c")) == 2, timeout=20)  # the tick is an hour away
    finally:
        agent.stop(5)


class Idle(Scripted):
    """Reports a change on INBOX whenever ``changed`` is set, like IMAP IDLE."""

    changed = threading.Event()

    def wait_for_changes(self, timeout: float) -> bool:
        if self.changed.wait(min(timeout, 0.1)):
            self.changed.clear()
            return True
        return False


def test_imap_idle_triggers_the_connectors_job(fx: Fixture) -> None:
    imap = ImapConnector(
        name="box", kind="imap", account=ME, host="127.0.0.1", password="x", idle=True
    )
    fx.connectors = {"box": lambda: Idle("box", 5)}
    Idle.changed.clear()
    agent = fx.agent([imap], interval="1h")
    agent.start()
    try:
        _until(lambda: len(fx.ended("box")) == 1)
        Idle.changed.set()
        # the next tick is an hour away: a second run now can only be IDLE's doing
        # (the bound is generous for a loaded CI machine)
        _until(lambda: len(fx.ended("box")) == 2, timeout=20)
    finally:
        agent.stop(5)
