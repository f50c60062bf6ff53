"""The agent's hourly turn over relationship figures that a new day made stale.

Batches keep the figures of the people they touch current; a quiet
customer's "last 30 days" still moves every midnight. Each agent checks once
an hour and brings stale rows forward in short transactions; two agents
doing it at once write the same rows twice, which is harmless.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.orm import Session, sessionmaker

from storage.relationships import refresh_stale_in_steps

log = logging.getLogger(__name__)


def schedule_figures(scheduler: BaseScheduler, sessions: sessionmaker[Session]) -> None:
    scheduler.add_job(
        _refresh,
        IntervalTrigger(hours=1, jitter=300),
        args=[sessions],
        id="figures",
        name="relationship figures",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )


def _refresh(sessions: sessionmaker[Session]) -> None:
    try:
        rows = refresh_stale_in_steps(sessions)
    except Exception:  # the next hour tries again; a sync must never stop for this
        log.exception("relationship figures could not be brought up to date")
        return
    if rows:
        log.info("relationship figures brought up to date: %d row(s)", rows)
