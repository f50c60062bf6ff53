"""The ``sync_state`` rows: one per connector, holding its durable cursor and health.

Other tools read the row as it is stored (``status --json``, the metrics,
benchmarks, plain SQL), so ``status`` keeps its words and ``counters`` its
JSON keys; this module is the one place that reads and writes them. The
counters are a :class:`Counters` value: :meth:`Counters.from_json` reads
whatever any version stored (keys it does not know are kept, not dropped),
:meth:`Counters.to_json` writes the same keys back, and every change is a
pure function of plain values (:func:`add_batch`, :func:`record_run`,
:func:`record_failure`, :func:`record_outcome`, :func:`record_verification`),
so the bookkeeping is tested without a database. :func:`update_counters`
applies one of them to a row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import SyncState


class ConnectorStatus(StrEnum):
    """What the agent last did with a connector, as ``sync_state.status`` stores it."""

    NEW = "new"
    SYNCING = "syncing"
    OK = "ok"
    FAILING = "failing"
    NEEDS_AUTH = "needs_auth"
    PAUSED = "paused"
    STUCK = "stuck"

    @classmethod
    def of(cls, stored: str | None) -> ConnectorStatus:
        """The stored word; one this version does not know (a newer one wrote it) reads as
        ``new``, which claims nothing about the connector."""
        try:
            return cls(stored) if stored is not None else cls.NEW
        except ValueError:
            return cls.NEW


PARKED = frozenset({ConnectorStatus.PAUSED, ConnectorStatus.NEEDS_AUTH})
"""Statuses only an admin command ends; no pass starts while the row holds one."""


def next_status(current: str | None, new: ConnectorStatus) -> ConnectorStatus:
    """The status a pass writes: an admin's pause (maybe set during the pass) outlives it."""
    paused = ConnectorStatus.of(current) is ConnectorStatus.PAUSED
    return ConnectorStatus.PAUSED if paused else new


# -- counters: plain values ------------------------------------------------------------------


@dataclass(frozen=True)
class LastRun:
    """The figures of the connector's last completed run, and the API quota it spent."""

    items: int = 0
    logged: int = 0
    seconds: float = 0.0
    quota_units: dict[str, int] | None = None
    """Units per API method, for connectors that count them; None for the others."""
    retries: int | None = None
    """Calls sent again after throttling or a failure, for connectors that retry."""
    unknown: dict[str, Any] = field(default_factory=dict)

    @property
    def quota_total(self) -> int | None:
        return sum(self.quota_units.values()) if self.quota_units is not None else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LastRun:
        spent = data.get("quota_units")
        return cls(
            items=_int(data.get("items")),
            logged=_int(data.get("logged")),
            seconds=_float(data.get("seconds")),
            quota_units=_counts(spent) if isinstance(spent, Mapping) else None,
            retries=_int(data["retries"]) if data.get("retries") is not None else None,
            unknown=_unknown(data, cls),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.unknown,
            "items": self.items,
            "logged": self.logged,
            "seconds": self.seconds,
            "quota_units": dict(self.quota_units) if self.quota_units is not None else None,
            **({"retries": self.retries} if self.retries is not None else {}),
        }


@dataclass(frozen=True)
class Verification:
    """The last reconciliation's summary (``agent.runtime.reconcile.Report.summary``)."""

    checked_at: datetime | None = None
    synced: bool = True
    held: int = 0
    logged: int = 0
    quarantined: int = 0
    missing: int = 0
    explained: int = 0
    unexplained: int = 0
    uncounted_skips: int = 0
    extra: int = 0
    """Items the database holds that the provider no longer does."""
    unknown: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Verification:
        counts = {name: _int(data.get(name)) for name in _VERIFY_COUNTS}
        checked_at = _datetime(data.get("checked_at"))
        unknown = _unknown(data, cls)
        if checked_at is None and "checked_at" in data:
            unknown["checked_at"] = data["checked_at"]  # unreadable here: kept as it was
        return cls(
            checked_at=checked_at, synced=bool(data.get("synced", True)), unknown=unknown, **counts
        )

    def to_json(self) -> dict[str, Any]:
        written: dict[str, Any] = {**self.unknown}
        if self.checked_at is not None:
            written["checked_at"] = self.checked_at.isoformat()
        written["synced"] = self.synced
        return written | {name: getattr(self, name) for name in _VERIFY_COUNTS}


_VERIFY_COUNTS = (
    "held",
    "logged",
    "quarantined",
    "missing",
    "explained",
    "unexplained",
    "uncounted_skips",
    "extra",
)


@dataclass(frozen=True)
class Counters:
    """A connector's running totals, as ``sync_state.counters`` holds them.

    ``items``, ``logged``, ``quarantined``, ``skipped`` and ``limited`` (by
    reason) add up every batch ever committed; ``failures`` every failed
    run, ``consecutive_failures`` the current streak (the scheduler's
    backoff); ``last_run`` and ``verify`` are the latest of each.
    """

    items: int = 0
    logged: int = 0
    quarantined: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    limited: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    consecutive_failures: int = 0
    last_run: LastRun | None = None
    verify: Verification | None = None
    unknown: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not know, written back as they were read."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Counters:
        """Read a stored value; a count that is not a number reads as 0, and a
        ``last_run`` or ``verify`` that is not an object is kept as it was."""
        data = data or {}
        unknown = _unknown(data, cls)
        nested: dict[str, Any] = {}
        for name, kind in (("last_run", LastRun), ("verify", Verification)):
            value = data.get(name)
            if isinstance(value, Mapping):
                nested[name] = kind.from_json(value)
            elif name in data:
                unknown[name] = value
        return cls(
            items=_int(data.get("items")),
            logged=_int(data.get("logged")),
            quarantined=_int(data.get("quarantined")),
            skipped=_counts(data.get("skipped")),
            limited=_counts(data.get("limited")),
            failures=_int(data.get("failures")),
            consecutive_failures=_int(data.get("consecutive_failures")),
            unknown=unknown,
            **nested,
        )

    def to_json(self) -> dict[str, Any]:
        """The stored value: every count under its usual key, reasons sorted."""
        written: dict[str, Any] = {
            **self.unknown,
            "items": self.items,
            "logged": self.logged,
            "quarantined": self.quarantined,
            "skipped": dict(sorted(self.skipped.items())),
            "limited": dict(sorted(self.limited.items())),
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
        }
        if self.last_run is not None:
            written["last_run"] = self.last_run.to_json()
        if self.verify is not None:
            written["verify"] = self.verify.to_json()
        return written


def add_batch(
    counters: Counters,
    *,
    items: int,
    logged: int,
    quarantined: int,
    skipped: Mapping[str, int] | None = None,
    limited: Mapping[str, int] | None = None,
) -> Counters:
    """The totals with one committed batch's figures added (reasons counted per item)."""
    return replace(
        counters,
        items=counters.items + items,
        logged=counters.logged + logged,
        quarantined=counters.quarantined + quarantined,
        skipped=_added(counters.skipped, skipped),
        limited=_added(counters.limited, limited),
    )


def record_run(counters: Counters, last_run: LastRun) -> Counters:
    """The totals with ``last_run`` as the latest run's figures."""
    return replace(counters, last_run=last_run)


def record_failure(counters: Counters) -> Counters:
    """One more failed run, and one more in the current streak."""
    return replace(
        counters,
        failures=counters.failures + 1,
        consecutive_failures=counters.consecutive_failures + 1,
    )


def record_outcome(counters: Counters, *, failed: bool) -> Counters:
    """A run's end: a failure counts (:func:`record_failure`), anything else ends the streak."""
    return record_failure(counters) if failed else replace(counters, consecutive_failures=0)


def record_verification(counters: Counters, verification: Verification) -> Counters:
    """The totals with ``verification`` as the latest reconciliation."""
    return replace(counters, verify=verification)


# -- what ``status`` shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectorHealth:
    """One connector as ``status`` and the metrics show it (``agent.runtime.health``).

    ``state`` is the display state derived from the row, the config and the
    clock (``removed``, ``lagging``... beside the stored statuses); ``fix``
    says what to try. :meth:`as_row` is the mapping ``status --json`` prints.
    """

    connector: str
    kind: str | None
    state: str
    last_success: datetime | None = None
    lag: timedelta | None = None
    last_error: str | None = None
    fix: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    counters: Counters = field(default_factory=Counters)

    @property
    def items(self) -> int:
        return self.counters.items

    @property
    def logged(self) -> int:
        return self.counters.logged

    @property
    def skipped(self) -> dict[str, int]:
        return self.counters.skipped

    @property
    def limited(self) -> dict[str, int]:
        return self.counters.limited

    @property
    def quarantined(self) -> int:
        return self.counters.quarantined

    @property
    def failures(self) -> int:
        return self.counters.failures

    @property
    def consecutive_failures(self) -> int:
        return self.counters.consecutive_failures

    @property
    def needs_auth(self) -> bool:
        return self.state == ConnectorStatus.NEEDS_AUTH

    @property
    def quota_units(self) -> dict[str, int]:
        """The last run's API quota units per method; empty where none were counted."""
        last_run = self.counters.last_run
        return dict(last_run.quota_units or {}) if last_run is not None else {}

    @property
    def quota_units_last_run(self) -> int | None:
        last_run = self.counters.last_run
        return last_run.quota_total if last_run is not None else None

    @property
    def retries_last_run(self) -> int | None:
        last_run = self.counters.last_run
        return last_run.retries if last_run is not None else None

    def as_row(self) -> dict[str, Any]:
        """The row ``status --json`` prints; its keys are what scripts read."""
        return {
            "connector": self.connector,
            "kind": self.kind,
            "state": self.state,
            "last_success": self.last_success,
            "lag": self.lag,
            "items": self.items,
            "skipped": dict(self.skipped),
            "limited": dict(self.limited),
            "quarantined": self.quarantined,
            "last_error": self.last_error,
            "fix": self.fix,
            "lease_owner": self.lease_owner,
            "lease_expires_at": self.lease_expires_at,
            "needs_auth": self.needs_auth,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "quota_units_last_run": self.quota_units_last_run,
            "retries_last_run": self.retries_last_run,
            "counters": self.counters.to_json(),
        }


# -- the rows ----------------------------------------------------------------------------------


def list_states(session: Session) -> Sequence[SyncState]:
    return session.scalars(select(SyncState).order_by(SyncState.connector)).all()


def get_state(
    session: Session, connector: str, kind: str | None = None, account: str | None = None
) -> SyncState:
    """The connector's row, created on first use; ``account`` recorded when given, since
    it decides whose private threads the connector's interactions are."""
    state = session.get(SyncState, connector)
    if state is None:
        state = SyncState(
            connector=connector,
            kind=kind,
            account=account,
            status=ConnectorStatus.NEW.value,
            counters=Counters().to_json(),
        )
        session.add(state)
        session.flush()
    elif account is not None and state.account != account:
        state.account = account
    return state


def status_of(state: SyncState | None) -> ConnectorStatus:
    """The row's status; a connector without a row is ``new``."""
    return ConnectorStatus.of(state.status if state is not None else None)


def set_status(state: SyncState, status: ConnectorStatus) -> None:
    state.status = status.value


def counters_of(state: SyncState | None) -> Counters:
    """The row's counters; a connector without a row has counted nothing."""
    return Counters.from_json(state.counters if state is not None else None)


def update_counters(state: SyncState, change: Callable[[Counters], Counters]) -> Counters:
    """Apply ``change`` to the row's counters; the new counters.

    A JSON column changes only by assignment of a new value, so the row is
    written only when ``change`` changed something.
    """
    counters = change(counters_of(state))
    stored = counters.to_json()
    if stored != state.counters:
        state.counters = stored
    return counters


# -- reading stored values ---------------------------------------------------------------------


def _int(value: object) -> int:
    if isinstance(value, int | float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return 0
    return 0


def _float(value: object) -> float:
    if isinstance(value, int | float | str):
        try:
            return float(value)
        except (ValueError, OverflowError):
            return 0.0
    return 0.0


def _counts(value: object) -> dict[str, int]:
    """A count by reason; anything but an object reads as no counts."""
    if not isinstance(value, Mapping):
        return {}
    return {str(key): _int(count) for key, count in value.items()}


def _added(stored: Mapping[str, int], found: Mapping[str, int] | None) -> dict[str, int]:
    total = Counter(stored)
    total.update(found or {})
    return dict(sorted(total.items()))


def _datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _unknown(data: Mapping[str, Any], kind: Any) -> dict[str, Any]:
    """The keys of ``data`` that are not fields of the dataclass ``kind``."""
    known = {f.name for f in fields(kind)} - {"unknown"}
    return {key: value for key, value in data.items() if key not in known}
