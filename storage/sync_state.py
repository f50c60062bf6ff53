"""The ``sync_state`` rows: one per connector, holding its durable cursor and health."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import SyncState


def list_states(session: Session) -> Sequence[SyncState]:
    return session.scalars(select(SyncState).order_by(SyncState.connector)).all()


def get_state(session: Session, connector: str, kind: str | None = None) -> SyncState:
    """The connector's row, created on first use."""
    state = session.get(SyncState, connector)
    if state is None:
        state = SyncState(connector=connector, kind=kind, status="new", counters={})
        session.add(state)
        session.flush()
    return state


def bump_counters(state: SyncState, **deltas: int) -> None:
    """Add to the counters; JSON columns change only by reassignment."""
    counters: dict[str, Any] = dict(state.counters or {})
    for key, delta in deltas.items():
        counters[key] = int(counters.get(key, 0)) + delta
    state.counters = counters
