"""The running agent: one APScheduler job per connector, each run isolated and leased.

Every enabled connector gets an interval job (``agent.interval``, or the
connector's own ``interval``) with ``max_instances=1`` (a connector never
overlaps itself), ``coalesce=True`` (a backlog of missed ticks is one run),
a jitter of a tenth of the interval (at most 30 s, so many agents and
connectors do not tick in step) and a misfire grace of one interval; first
runs are spread over the agent's first two seconds. Jobs run in a small
thread pool, one connector per thread, so a slow or failing connector never
delays another. A run:

1. claims the connector's lease (:mod:`storage.leases`); a connector another
   agent holds, or one parked as ``paused`` or ``needs_auth`` until an admin
   runs ``connectors resume``/``connectors auth``, is skipped;
2. builds a fresh connector object in its own thread: client libraries such
   as Gmail's httplib2 are not thread-safe, so no object is shared;
3. syncs from the committed cursor (:func:`agent.runtime.sync_pass.sync_connector`),
   batch by batch, each commit fenced by the lease;
4. on failure counts it in ``sync_state.counters`` (``failures``,
   ``consecutive_failures``) and delays the next run: the interval doubled
   per consecutive failure, capped (:func:`backoff_delay`); an ``AuthError``
   leaves the connector parked as ``needs_auth``;
5. releases the lease.

A run that ends on a database error (the server went away mid-run) cannot
write its outcome, and its row still says ``syncing``. The agent remembers
it and, on its next successful contact with the database (the heartbeat
tries every third of the lease's time to live), records the connector as
``failing`` with the error and frees the run's lease
(:func:`storage.leases.record_lost_run`). Within this agent a connector
has one run, verification or such recording at a time (:meth:`Agent._reserve`);
across agents, the lease keeps them apart.

Leases are renewed by one heartbeat thread per agent, every third of the
lease's time to live, rather than between batches: a batch may legitimately
take minutes (a provider's Retry-After, a slow IMAP server), and a heartbeat
keeps the time to live short, so a dead agent's connectors are taken over
within about a minute whatever the batch size. The same thread watches for
stalls: a run that has committed nothing for the stall limit is reported
``stuck`` and its lease freed, so another agent can take the connector over;
should the stalled run wake up, its lease check refuses its next commit.

An IMAP connector with ``idle = true`` also gets a watcher thread
(:mod:`agent.runtime.idle_watch`); when the server announces a change the
connector's job runs at once instead of at its next tick.

Once a day each connector that can list what its provider holds is
reconciled (:mod:`agent.runtime.reconcile`) under its lease, so it never overlaps a
sync; ``status`` shows the result.

Stopping (:meth:`Agent.stop`): no new runs start, running ones end after
the batch being written commits, leases are released, all within a bound --
whatever the scheduler's own thread is doing: it is told to shut down from a
thread of its own, never waited for.

An interval of zero or less is refused when the agent is built, whatever the
settings passed validation or not: APScheduler would compute missed run
times without end, holding its lock, and grow without bound.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor as _Pool
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline.policy import Policy
from agent.pipeline.workers import processes_for
from agent.runtime import reconcile
from agent.runtime.debug import summary_of
from agent.runtime.figures_job import schedule_figures
from agent.runtime.idle_watch import IdleWatch, close_quietly
from agent.runtime.registry import build_connector, mailbox_of
from agent.runtime.runs import FAILED, RunRecord
from agent.runtime.sync_pass import SyncResult, mark_failed, sync_connector
from agent.runtime.timing import Timing, backoff_delay, duration_text, jitter_of
from config import Settings
from config.schema import ConnectorConfig
from connectors.records import Connector
from storage import leases
from storage.db import transaction
from storage.leases import Lease, LeaseLost, Refused
from storage.models import SyncState
from storage.sync_state import (
    PARKED,
    ConnectorStatus,
    get_state,
    record_outcome,
    update_counters,
)

log = logging.getLogger(__name__)

_IN_THIS_AGENT = "held by this agent: a run or verification of it is in progress"
MAX_WORKERS = 8
_IDLE_WAIT = 300.0
_VERIFY_FIRST = timedelta(minutes=10)
_VERIFY_JITTER = 600
_WATCH_RETRY_CAP = 300.0

Build = Callable[[ConnectorConfig, Settings, Path], Connector]
Journal = Callable[[RunRecord], None]


@dataclass
class _Active:
    """A run in progress: its lease and when it last committed a batch."""

    lease: Lease
    progress: float = field(default_factory=time.monotonic)
    lost: bool = False
    stalls: bool = True
    """Whether the stall watch applies: a verification commits no batches."""

    def touch(self, *_: object) -> None:
        self.progress = time.monotonic()


@dataclass(frozen=True)
class _Unrecorded:
    """A run that ended on a database error, its outcome still to be written."""

    lease: Lease
    error: str


class Agent:
    """Schedules and runs the connectors of ``settings`` under this process's leases."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        base_dir: Path,
        *,
        owner: str | None = None,
        timing: Timing | None = None,
        workers: int | None = None,
        build: Build = build_connector,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.base_dir = base_dir
        self.owner = owner or leases.new_owner()
        self.timing = timing or Timing()
        self.connectors = [c for c in settings.connectors if c.enabled]
        for config in self.connectors:
            interval = settings.interval_of(config)
            if interval <= timedelta(0):
                raise ValueError(f"{config.name}: the interval must be more than 0, not {interval}")
        self.workers = workers or max(1, min(MAX_WORKERS, len(self.connectors)))
        self._build = build
        self._journal = journal
        self._active: dict[str, _Active] = {}
        self._busy: set[str] = set()
        self._unrecorded: dict[str, _Unrecorded] = {}
        self._url = _url_of(sessions)
        self._again: set[str] = set()
        self._lock = threading.Condition()
        self._stopping = threading.Event()
        self._keeper_done = threading.Event()
        self._keeper: threading.Thread | None = None
        self._scheduler: BackgroundScheduler | None = None

    # -- the two ways to run ---------------------------------------------------------------

    def start(self) -> None:
        """Start the schedule in background threads; :meth:`stop` ends it."""
        self._start_keeper()
        _quiet_apscheduler()
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(self.workers)}, timezone=timezone.utc
        )
        now = datetime.now(timezone.utc)
        for config in self.connectors:
            interval = self.settings.interval_of(config)
            jitter = jitter_of(interval)
            scheduler.add_job(
                self.run_connector,
                IntervalTrigger(
                    seconds=interval.total_seconds(), jitter=jitter, timezone=timezone.utc
                ),
                args=[config],
                id=config.name,
                name=config.name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=max(1, round(interval.total_seconds())),
                next_run_time=now + timedelta(seconds=random.uniform(0, min(jitter, 2.0))),
            )
            scheduler.add_job(
                self.verify_connector,
                IntervalTrigger(days=1, jitter=_VERIFY_JITTER, timezone=timezone.utc),
                args=[config],
                id=f"{config.name}:verify",
                name=f"{config.name} (verify)",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=_VERIFY_JITTER,
                next_run_time=now + _VERIFY_FIRST + timedelta(seconds=random.uniform(0, 3000)),
            )
        schedule_figures(scheduler, self.sessions)
        scheduler.start()
        self._scheduler = scheduler
        for config in self.connectors:
            if config.kind == "imap" and getattr(config, "idle", False):
                threading.Thread(
                    target=self._idle_watch(config).run, name=f"idle-{config.name}", daemon=True
                ).start()
        log.info(
            "agent %s started: %d connector(s), %d worker(s)",
            self.owner,
            len(self.connectors),
            self.workers,
        )

    def run_once(self) -> list[RunRecord]:
        """Run every enabled connector once, side by side; the records, in config order."""
        self._start_keeper()
        try:
            with _Pool(self.workers, thread_name_prefix="crm-sync-run") as pool:
                return list(pool.map(self.run_connector, self.connectors))
        finally:
            self._settle_all()
            self._stop_keeper()

    def stop(self, timeout: float) -> bool:
        """Stop within ``timeout`` seconds: no new runs, running ones end after their batch.

        Leases still held when the time is up are released anyway (their runs
        can commit nothing more). True when every run ended in time.
        """
        self._stopping.set()
        if self._scheduler is not None:
            threading.Thread(
                target=_shut_down_quietly,
                args=(self._scheduler,),
                name="crm-sync-scheduler-stop",
                daemon=True,
            ).start()
        deadline = time.monotonic() + timeout
        with self._lock:  # a run is busy from before its claim, so none slips past this
            while self._busy and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            unfinished = sorted(self._busy)
        self._settle_all()
        try:
            freed = leases.release_owner(self.sessions, self.owner)
        except Exception as exc:
            freed = []
            log.warning(
                "stopping: could not release the leases (%s); they lapse within %s",
                summary_of(exc),
                duration_text(self.timing.lease_ttl),
            )
        self._stop_keeper()
        if unfinished:
            log.warning(
                "stopping: %s still running after %.0f s; leases released (%s)",
                ", ".join(unfinished),
                timeout,
                ", ".join(freed) or "none held",
            )
        return not unfinished

    def request_stop(self) -> None:
        """Ask running passes to end after their current batch (safe from a signal handler)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def trigger(self, name: str) -> None:
        """Run ``name`` now (or right after its current run) instead of at its next tick."""
        with self._lock:
            if name in self._active:
                self._again.add(name)
                return
        self._run_soon(name)

    def _run_soon(self, name: str) -> None:
        """An extra run as a one-off job of its own.

        Not by moving the interval job: APScheduler skips a job whose previous
        run has not returned yet (``max_instances=1``), and a trigger often
        lands in the tail of that run. Two runs of one connector cannot
        overlap anyway: the second finds the lease held and stands down.
        """
        scheduler = self._scheduler
        config = next((c for c in self.connectors if c.name == name), None)
        if scheduler is None or config is None or self._stopping.is_set():
            return
        with contextlib.suppress(Exception):
            scheduler.add_job(
                self.run_connector,
                "date",
                run_date=datetime.now(timezone.utc),
                args=[config],
                id=f"{name}:now",
                name=f"{name} (now)",
                replace_existing=True,
                misfire_grace_time=None,
            )

    # -- one run ---------------------------------------------------------------------------

    def run_connector(self, config: ConnectorConfig) -> RunRecord:
        """One leased run of one connector; never raises."""
        started = datetime.now(timezone.utc)
        name = config.name
        if self._stopping.is_set():
            return RunRecord(name, self.owner, started, started, "stopped")
        if not self._reserve(name):
            return RunRecord(name, self.owner, started, started, "held", error=_IN_THIS_AGENT)
        try:
            self._settle(name)
            try:
                claimed = leases.claim(
                    self.sessions,
                    name,
                    self.owner,
                    self.timing.lease_ttl,
                    kind=config.kind,
                    parked=PARKED,
                )
            except Exception as exc:
                error = summary_of(exc)
                log.warning("%s: could not claim its lease: %s", name, error)
                return RunRecord(name, self.owner, started, started, "failing", error=error)
            if isinstance(claimed, Refused):
                log.debug("%s: skipped: %s", name, claimed.detail)
                return RunRecord(
                    name, self.owner, started, started, claimed.reason, error=claimed.detail
                )
            if self._stopping.is_set():
                with contextlib.suppress(Exception):
                    leases.release(self.sessions, claimed)
                return RunRecord(name, self.owner, started, started, "stopped")
            return self._leased_run(config, claimed)
        finally:
            self._unreserve(name)

    def _reserve(self, name: str) -> bool:
        """Whether ``name`` was free in this agent and is now reserved by the caller."""
        with self._lock:
            if name in self._busy:
                return False
            self._busy.add(name)
            return True

    def _unreserve(self, name: str) -> None:
        with self._lock:
            self._busy.discard(name)
            self._lock.notify_all()

    def _leased_run(self, config: ConnectorConfig, lease: Lease) -> RunRecord:
        name = config.name
        if lease.taken_over_from and not lease.holder_died:  # claim logged a dead holder
            log.warning(
                "%s: the lease of %s had expired; resuming from its committed cursor",
                name,
                lease.taken_over_from,
                extra={"connector": name},
            )
        active = _Active(lease)
        with self._lock:
            self._active[name] = active
        record = RunRecord(
            name, self.owner, datetime.now(timezone.utc), taken_over_from=lease.taken_over_from
        )
        self._write_journal(record)
        try:
            result = self._sync(config, lease, active)
            failures = self._count_outcome(lease, result)
            record = replace(
                record,
                ended_at=datetime.now(timezone.utc),
                status=result.status,
                items=result.items,
                logged=result.logged,
                error=result.error,
            )
            self._log_outcome(record, result)
            self._write_journal(record)
        except Exception as exc:
            # sync_connector records a connector's own failures; one that escapes it is
            # a failure to write (the database went away), so the outcome waits for it
            log.exception("%s: run failed", name, extra={"connector": name})
            error = summary_of(exc, self._url)
            with self._lock:
                self._unrecorded[name] = _Unrecorded(lease, error)
            failures = None
            record = replace(
                record, ended_at=datetime.now(timezone.utc), status="failing", error=error
            )
            self._write_journal(record)
        finally:
            # the lease goes first: a run triggered from here on must find it free
            if not active.lost:
                with contextlib.suppress(Exception):
                    leases.release(self.sessions, lease)
            with self._lock:
                self._active.pop(name, None)
                again = name in self._again
                self._again.discard(name)
                self._lock.notify_all()
        self._plan_next(config, record, failures, again)
        return record

    def _sync(self, config: ConnectorConfig, lease: Lease, active: _Active) -> SyncResult:
        try:
            connector = self._build(config, self.settings, self.base_dir)
        except Exception as exc:
            log.debug("%s: cannot start", config.name, exc_info=True)
            return mark_failed(self.sessions, config.name, config.kind, exc)
        try:
            return sync_connector(
                self.sessions,
                connector,
                Policy.from_settings(self.settings, config.name, mailbox_of(config)),
                kind=config.kind,
                propagate_deletes=self.settings.agent.propagate_deletes,
                progress=active.touch,
                lease=lease,
                stop=self._stopping.is_set,
                processes=processes_for(self.settings.agent.planning_processes),
            )
        finally:
            close_quietly(connector)

    def _settle(self, name: str) -> None:
        """Record a run of ``name`` the database cut short, if it answers now.

        The caller holds ``name``'s reservation, so no run of it starts meanwhile.
        """
        with self._lock:
            lost = self._unrecorded.get(name)
        if lost is None:
            return
        try:
            recorded = leases.record_lost_run(self.sessions, lost.lease, lost.error)
        except Exception as exc:
            log.debug("%s: its failed run is not recorded yet: %s", name, summary_of(exc))
            return
        with self._lock:
            self._unrecorded.pop(name, None)
        if recorded:
            log.warning(
                "%s: the database answers again; its run that failed is recorded: %s",
                name,
                lost.error,
                extra={"connector": name},
            )

    def _settle_all(self) -> None:
        with self._lock:
            names = list(self._unrecorded)
        for name in names:
            if self._reserve(name):
                try:
                    self._settle(name)
                finally:
                    self._unreserve(name)

    def _count_outcome(self, lease: Lease, result: SyncResult) -> int | None:
        """Count a failure (or end a failure streak); the streak's length, None if unknown."""
        if result.status in ("lease_lost", "stopped"):
            return None
        try:
            with transaction(self.sessions) as session:
                leases.verify(session, lease)
                state = get_state(session, lease.connector)
                failed = result.status in FAILED
                counters = update_counters(state, lambda c: record_outcome(c, failed=failed))
                return counters.consecutive_failures
        except LeaseLost:
            return None

    def _plan_next(
        self, config: ConnectorConfig, record: RunRecord, failures: int | None, again: bool
    ) -> None:
        if self._scheduler is None or self._stopping.is_set():
            return
        if record.status == ConnectorStatus.FAILING and failures:
            interval = self.settings.interval_of(config)
            delay = backoff_delay(interval, failures, self.timing.max_backoff)
            delay += timedelta(seconds=random.uniform(0, jitter_of(interval)))
            log.info(
                "%s: failure %d in a row; next run in %s",
                config.name,
                failures,
                duration_text(delay),
                extra={"connector": config.name},
            )
            self._reschedule(config.name, delay)
        elif again:
            self._run_soon(config.name)

    def _reschedule(self, name: str, delay: timedelta) -> None:
        scheduler = self._scheduler
        if scheduler is None or self._stopping.is_set():
            return
        with contextlib.suppress(Exception):
            scheduler.modify_job(name, next_run_time=datetime.now(timezone.utc) + delay)

    def _log_outcome(self, record: RunRecord, result: SyncResult) -> None:
        extra = {"connector": record.connector}
        if record.status in ("ok", "stopped"):
            level = logging.INFO if result.items or result.quarantined else logging.DEBUG
            log.log(
                level,
                "%s: %s; read %d, logged %d, quarantined %d in %.1f s",
                record.connector,
                record.status,
                result.items,
                result.logged,
                result.quarantined,
                result.seconds,
                extra=extra,
            )
        elif record.status == ConnectorStatus.NEEDS_AUTH:
            log.error(
                "%s: parked until an admin fixes its access: %s",
                record.connector,
                record.error,
                extra=extra,
            )

    def _write_journal(self, record: RunRecord) -> None:
        if self._journal is not None:
            try:
                self._journal(record)
            except Exception:
                log.exception("cannot write the run journal")

    def verify_connector(self, config: ConnectorConfig) -> None:
        """The daily reconciliation of one connector, under its lease; never raises."""
        if self._stopping.is_set() or not self._reserve(config.name):
            return
        try:
            self._verify(config)
        finally:
            self._unreserve(config.name)

    def _verify(self, config: ConnectorConfig) -> None:
        name = config.name
        try:
            claimed = leases.claim(
                self.sessions, name, self.owner, self.timing.lease_ttl, parked=PARKED
            )
        except Exception as exc:
            log.warning("%s: could not claim its lease to verify: %s", name, summary_of(exc))
            return
        if isinstance(claimed, Refused):
            return
        active = _Active(claimed, stalls=False)
        with self._lock:
            self._active[name] = active
        connector: Connector | None = None
        try:
            connector = self._build(config, self.settings, self.base_dir)
            policy = Policy.from_settings(self.settings, name, mailbox_of(config))
            report = reconcile.verify_connector(self.sessions, connector, policy)
            reconcile.record_result(self.sessions, report)
            level = logging.WARNING if report.unexplained else logging.INFO
            log.log(
                level,
                "%s: verified: %d unexplained of %d held",
                name,
                report.unexplained,
                report.held,
                extra={"connector": name},
            )
        except reconcile.NotVerifiable:
            log.debug("%s: cannot list what it holds; not verified", name)
        except Exception as exc:
            log.warning("%s: verification failed: %s", name, exc, extra={"connector": name})
        finally:
            if connector is not None:
                close_quietly(connector)
            with self._lock:
                self._active.pop(name, None)
                self._lock.notify_all()
            if not active.lost:
                with contextlib.suppress(Exception):
                    leases.release(self.sessions, claimed)

    # -- heartbeat and stall watch ---------------------------------------------------------

    def _start_keeper(self) -> None:
        if self._keeper is None:
            self._keeper_done.clear()
            self._keeper = threading.Thread(target=self._keep, name="crm-sync-leases", daemon=True)
            self._keeper.start()

    def _stop_keeper(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            self._keeper_done.set()
            keeper.join(timeout=5)

    def _keep(self) -> None:
        while not self._keeper_done.wait(self.timing.heartbeat):
            try:
                self.tend()
            except Exception:
                log.exception("lease heartbeat failed; retrying")

    def tend(self) -> None:
        """Renew the leases of runs making progress; free those stalled past the limit;
        record the runs a database outage cut short, once it answers again."""
        limit = self.timing.stall_limit.total_seconds()
        with self._lock:
            running = [a for a in self._active.values() if not a.lost]
        for active in running:
            lease = active.lease
            idle = time.monotonic() - active.progress
            if active.stalls and idle > limit:
                reason = (
                    f"no progress for {duration_text(timedelta(seconds=idle))} (stall limit "
                    f"{duration_text(self.timing.stall_limit)}); the lease of {lease.owner} was "
                    "freed and the next run resumes from the committed cursor"
                )
                active.lost = True
                if leases.free_stalled(self.sessions, lease, reason):
                    log.error("%s: stuck: %s", lease.connector, reason)
            else:
                self._renew(active)
        self._settle_all()

    def _renew(self, active: _Active) -> None:
        lease = active.lease
        try:
            renewed = leases.renew(self.sessions, lease, self.timing.lease_ttl)
        except Exception as exc:
            log.warning(
                "%s: could not renew its lease (%s); retrying", lease.connector, summary_of(exc)
            )
            return
        if renewed is None:
            active.lost = True
            log.warning("%s: lease lost to another agent", lease.connector)

    def _idle_watch(self, config: ConnectorConfig) -> IdleWatch:
        return IdleWatch(
            config,
            self.settings,
            self.base_dir,
            self._build,
            self._stopping,
            parked=lambda name: self._status(name) in PARKED,
            trigger=self.trigger,
        )

    def _status(self, name: str) -> str | None:
        with self.sessions() as session:
            return session.scalar(select(SyncState.status).where(SyncState.connector == name))


def _url_of(sessions: sessionmaker[Session]) -> URL | None:
    """The database's URL, to name its host in messages (never its password)."""
    bind = sessions.kw.get("bind")
    return bind.url if isinstance(bind, Engine) else None


def _shut_down_quietly(scheduler: BackgroundScheduler) -> None:
    """Shut ``scheduler`` down: waits for its lock and thread, which is why it runs apart."""
    with contextlib.suppress(Exception):
        scheduler.shutdown(wait=False)


class _SkipMaxInstances(logging.Filter):
    """A tick that finds its connector still running is the design, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


def _quiet_apscheduler() -> None:
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkipMaxInstances) for f in scheduler_log.filters):
        scheduler_log.addFilter(_SkipMaxInstances())
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.WARNING)
