"""Leases: each connector runs in at most one agent process at a time.

A connector's ``sync_state`` row is its lease: ``lease_owner`` names the
process holding it and ``lease_expires_at`` is when it lapses unless renewed.

* **claim** -- one short transaction: make sure the row exists, lock it with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` (on PostgreSQL a row that another
  agent is claiming at this instant is skipped, never waited for), and take
  it when it is free or its lease has expired. Taking over an expired lease
  is all a takeover is: the new holder resumes from the committed cursor.
* **renew** -- the holder moves the expiry forward while it runs.
* **verify** -- inside every transaction that commits a batch and its
  cursor, the row is locked and its owner checked. A holder that lost its
  lease (expired and taken over, or freed as stuck) cannot commit anything:
  this fencing is what makes a run that wakes up late harmless.
* **release** -- owner and expiry cleared; the next claim succeeds at once.

On PostgreSQL every expiry is computed with the database's clock, so agents
on machines whose clocks disagree still agree on when a lease lapsed.

A holder that died does not make others wait for its expiry when it ran on
this machine: owners are ``host:pid:nonce:machine-start``, where
``machine`` names this kernel's boot and PID namespace and ``start`` is the
process's start time (``/proc/<pid>/stat``). :func:`holder_gone` is true
only when all of that matches here and the pid no longer runs, is a zombie,
or now belongs to a process started at another time (the pid was reused).
Anything it cannot prove -- another host, another container, a reboot, an
owner without the suffix (written where ``/proc`` is missing), a process
``/proc`` hides from this user -- counts as alive and waits for the expiry.
A wrong "gone" would cost no data (every commit is fenced), only
duplicated work.

SQLite takes one agent process per database file, enforced by
:class:`AgentLock`, an OS file lock beside the database that the kernel
drops when the process dies, even by ``SIGKILL``. The lock says nothing
about the leases: a ``crm-sync sync`` holds a lease without being an agent,
so an agent starting frees only the leases of dead holders
(:func:`free_dead`) and waits, like any claim, for a live one.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import secrets
import socket
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.private_files import create_private_file
from storage.db import transaction
from storage.models import SyncState
from storage.sync_state import (
    ConnectorStatus,
    Counters,
    record_failure,
    set_status,
    status_of,
    update_counters,
)
from storage.upsert import insert_for, table_of

log = logging.getLogger(__name__)

_STATE = table_of(SyncState)
_DEAD_STATES = frozenset("ZXx")
"""``/proc/<pid>/stat`` states of a process that has exited (zombie, dead)."""


@dataclass(frozen=True)
class Lease:
    """Held by ``owner`` until ``expires_at``.

    ``taken_over_from`` names the previous holder when the lease was taken
    from one: after its expiry, or at once when ``holder_died`` (a process
    of this machine that no longer runs).
    """

    connector: str
    owner: str
    expires_at: datetime
    taken_over_from: str | None = None
    holder_died: bool = False


@dataclass(frozen=True)
class Refused:
    """Why a claim did not get the lease: ``busy``, ``held`` or the parked status."""

    connector: str
    reason: str
    detail: str


class LeaseLost(Exception):
    """The lease is no longer ours; the transaction that found out must not commit."""

    def __init__(self, lease: Lease, holder: str | None) -> None:
        now_held = f"now held by {holder}" if holder else "freed"
        super().__init__(f"{lease.connector}: lease of {lease.owner} lost ({now_held})")
        self.lease = lease
        self.holder = holder


def new_owner() -> str:
    """This process's name in ``lease_owner``: host and pid for people, a nonce for uniqueness,
    and where :func:`holder_gone` can check it, the machine and start time that prove it died."""
    pid = os.getpid()
    owner = f"{socket.gethostname()}:{pid}:{secrets.token_hex(3)}"
    machine, stat = _machine(), _proc_stat(pid)
    return f"{owner}:{machine}-{stat[1]}" if machine and stat else owner


def holder_gone(owner: str) -> bool:
    """Whether ``owner`` is a process of this machine that no longer runs (see the module
    docstring); False whenever that cannot be proved."""
    parts = owner.split(":")
    if len(parts) != 4 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    machine, _, start = parts[3].partition("-")
    pid = int(parts[1])
    if pid <= 0 or not start.isdigit() or machine != _machine():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # it exists, as another user
    except OSError:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return False
    state, started = stat
    return state in _DEAD_STATES or started != int(start)


@functools.cache
def _machine() -> str | None:
    """This kernel's boot and PID namespace: where a pid names the same process as here."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return hashlib.sha256(f"{boot} {namespace}".encode()).hexdigest()[:8]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """The state letter and start time (clock ticks after boot) of ``pid``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        # the command name, in parentheses, may itself hold spaces and parentheses
        fields = text[text.rindex(")") + 2 :].split()
        return fields[0], int(fields[19])
    except (OSError, ValueError, IndexError):
        return None


def claim(
    sessions: sessionmaker[Session],
    connector: str,
    owner: str,
    ttl: timedelta,
    *,
    kind: str | None = None,
    parked: Collection[str] = (),
) -> Lease | Refused:
    """Take the connector's lease for ``ttl`` unless a live holder has it.

    A live lease refuses even its own owner: owners are unique per process,
    so that is another thread of this agent (a sync and a verification of
    the same connector must not overlap either). A lease whose holder is
    gone (:func:`holder_gone`) is taken at once rather than at its expiry.
    A connector whose status is in ``parked`` (waiting for an admin) is
    refused without being locked, which keeps idle ticks cheap.
    """
    with sessions() as session:
        status = session.scalar(select(_STATE.c.status).where(_STATE.c.connector == connector))
    if status is not None and status in parked:
        return Refused(connector, status, f"status is {status}")
    with transaction(sessions) as session:
        session.execute(
            insert_for(session, _STATE)
            .values(
                connector=connector,
                kind=kind,
                status=ConnectorStatus.NEW.value,
                counters=Counters().to_json(),
            )
            .on_conflict_do_nothing(index_elements=["connector"])
        )
        row = session.execute(
            select(_STATE.c.status, _STATE.c.lease_owner, _STATE.c.lease_expires_at)
            .where(_STATE.c.connector == connector)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if row is None:
            return Refused(connector, "busy", "another agent is claiming it right now")
        if row.status in parked:
            return Refused(connector, row.status, f"status is {row.status}")
        now = _now(session)
        holder = row.lease_owner
        live = bool(holder and row.lease_expires_at and row.lease_expires_at > now)
        died = live and holder_gone(holder)
        if live and not died:
            return Refused(
                connector, "held", f"held by {holder} until {row.lease_expires_at.isoformat()}"
            )
        expires = now + ttl
        session.execute(
            update(_STATE)
            .where(_STATE.c.connector == connector)
            .values(lease_owner=owner, lease_expires_at=expires)
        )
    if died:
        log.warning(
            "%s: took the lease of %s at once: that process no longer runs on this host",
            connector,
            holder,
        )
    return Lease(connector, owner, expires, taken_over_from=holder or None, holder_died=died)


def renew(sessions: sessionmaker[Session], lease: Lease, ttl: timedelta) -> Lease | None:
    """The lease with a later expiry, or None when it is no longer ours."""
    with transaction(sessions) as session:
        expires = _now(session) + ttl
        changed = _update_held(session, lease, lease_expires_at=expires)
    if not changed:
        return None
    return Lease(lease.connector, lease.owner, expires, lease.taken_over_from)


@contextmanager
def held(
    sessions: sessionmaker[Session], lease: Lease, ttl: timedelta
) -> Iterator[threading.Event]:
    """Renew ``lease`` every third of ``ttl`` while the block runs; release it after.

    The yielded event is set when a renewal finds the lease gone: the pass
    will then stop at its next commit, which checks the lease anyway.
    """
    done, lost = threading.Event(), threading.Event()

    def beat() -> None:
        current: Lease | None = lease
        while current is not None and not done.wait(ttl.total_seconds() / 3):
            try:
                current = renew(sessions, current, ttl)
            except Exception:
                continue  # a database hiccup; the next beat tries again before expiry
        if current is None:
            lost.set()

    thread = threading.Thread(target=beat, name=f"lease-{lease.connector}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        done.set()
        thread.join()
        if not lost.is_set():
            try:
                release(sessions, lease)
            except SQLAlchemyError as exc:
                # The block's own error, if any, is the one to report; the lease lapses
                # by itself, or at once for the next claim once this process has exited.
                log.debug(
                    "%s: could not release its lease (%s); it lapses at its expiry",
                    lease.connector,
                    str(exc.orig if isinstance(exc, DBAPIError) else exc).splitlines()[0],
                )


def verify(session: Session, lease: Lease) -> None:
    """Raise :class:`LeaseLost` unless ``lease`` is still held, locking the row until commit.

    Call it in the transaction that is about to commit a batch: with the row
    locked, no takeover can slip in between this check and the commit.
    """
    holder = session.scalar(
        select(_STATE.c.lease_owner).where(_STATE.c.connector == lease.connector).with_for_update()
    )
    if holder != lease.owner:
        raise LeaseLost(lease, holder)


def release(sessions: sessionmaker[Session], lease: Lease) -> bool:
    """Give the lease back; False when it was no longer ours."""
    with transaction(sessions) as session:
        return _update_held(session, lease, lease_owner=None, lease_expires_at=None)


def free_stalled(sessions: sessionmaker[Session], lease: Lease, reason: str) -> bool:
    """Free a lease whose run stopped making progress and mark the connector ``stuck``."""
    with transaction(sessions) as session:
        return _update_held(
            session,
            lease,
            lease_owner=None,
            lease_expires_at=None,
            status=ConnectorStatus.STUCK.value,
            last_error=reason,
            last_error_at=_now(session),
        )


def release_owner(sessions: sessionmaker[Session], owner: str) -> list[str]:
    """Release every lease ``owner`` holds (an agent shutting down); the connectors freed."""
    return _clear(sessions, _STATE.c.lease_owner == owner)


def free_dead(sessions: sessionmaker[Session]) -> dict[str, str]:
    """Free every lease whose holder is gone (:func:`holder_gone`): connector -> that holder.

    An agent calls it as it starts, so ``status`` stops reporting the
    leases of a predecessor that died, before any tick claims them.
    """
    with transaction(sessions) as session:
        held = session.execute(
            select(_STATE.c.connector, _STATE.c.lease_owner).where(
                _STATE.c.lease_owner.is_not(None)
            )
        ).all()
        dead = {row.connector: row.lease_owner for row in held if holder_gone(row.lease_owner)}
        for connector, holder in dead.items():
            session.execute(
                update(_STATE)
                .where(_STATE.c.connector == connector, _STATE.c.lease_owner == holder)
                .values(lease_owner=None, lease_expires_at=None)
            )
    return dead


def record_lost_run(sessions: sessionmaker[Session], lease: Lease, error: str) -> bool:
    """Record as ``failing`` a run that ended on a database error; whether it was recorded.

    Such a run could not write its own outcome, so its row still says
    ``syncing`` and may still hold its lease: call this once the database
    answers again. The row is only touched while no one else has the
    connector: the lease is still the run's (it is freed), or it is free
    and the row still says ``syncing`` (another holder's run would hold the
    lease or have written its outcome). Any other status stays: the run got
    to write its outcome after all, or never started.
    """
    with transaction(sessions) as session:
        state = session.get(SyncState, lease.connector, with_for_update=True)
        if state is None:
            return False
        ours = state.lease_owner == lease.owner
        if not ours and state.lease_owner is not None:
            return False
        if ours:
            state.lease_owner, state.lease_expires_at = None, None
        if status_of(state) is not ConnectorStatus.SYNCING:
            return False  # the run wrote its outcome, or never started writing
        set_status(state, ConnectorStatus.FAILING)
        state.last_error = error
        state.last_error_at = _now(session)
        update_counters(state, record_failure)
        return True


def _update_held(session: Session, lease: Lease, **values: object) -> bool:
    """Update the row only while ``lease`` holds it; whether it did."""
    held = session.execute(
        update(_STATE)
        .where(_STATE.c.connector == lease.connector, _STATE.c.lease_owner == lease.owner)
        .values(**values)
        .returning(_STATE.c.connector)
    ).first()
    return held is not None


def _clear(sessions: sessionmaker[Session], condition: ColumnElement[bool]) -> list[str]:
    with transaction(sessions) as session:
        names = list(session.scalars(select(_STATE.c.connector).where(condition)))
        if names:
            session.execute(
                update(_STATE)
                .where(_STATE.c.connector.in_(names))
                .values(lease_owner=None, lease_expires_at=None)
            )
    return names


def _now(session: Session) -> datetime:
    if session.get_bind().dialect.name == "postgresql":
        now = session.scalar(select(func.now()))
        assert isinstance(now, datetime)
        return now.astimezone(timezone.utc)
    return datetime.now(timezone.utc)


# -- one agent per SQLite database -----------------------------------------------------------


class AgentRunning(Exception):
    """Another agent process already runs on this SQLite database."""


class AgentLock:
    """An exclusive ``flock`` on ``<database>.agent.lock``, held for the process's lifetime.

    It keeps agents apart, not connectors: those stay with their leases,
    which a ``crm-sync sync`` run beside the agent holds too.

    The file is never deleted: unlinking a lock file lets a third process
    lock a fresh inode while the second still holds the old one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    @classmethod
    def for_url(cls, url: str) -> AgentLock | None:
        """The lock for a SQLite file database; None for PostgreSQL and ``:memory:``."""
        parsed = make_url(url)
        database = parsed.database
        if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return None
        path = Path(database).resolve()
        return cls(path.with_name(path.name + ".agent.lock"))

    def acquire(self) -> None:
        """Take the lock or raise :class:`AgentRunning` naming the process that has it."""
        create_private_file(self.path)  # beside the database, as private as it
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            database = self.path.name.removesuffix(".agent.lock")
            raise AgentRunning(
                f"another crm-sync agent ({holder}) is already running on the SQLite database "
                f"{self.path.with_name(database)}; SQLite takes one agent process: stop that "
                "one first, or use PostgreSQL to run several agents"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
