"""What one run of a connector was, as the journal and ``run --once`` report it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storage.sync_state import ConnectorStatus

FAILED = frozenset({ConnectorStatus.FAILING, ConnectorStatus.NEEDS_AUTH})
"""Run outcomes that count as failures (the backoff, ``run --once``'s exit status)."""


@dataclass(frozen=True)
class RunRecord:
    """One run (or a skipped one) as the journal and ``--once`` report it.

    ``ended_at`` is None in the record written when the run starts. A skipped
    run has the claim's refusal as ``status`` (``held``, ``busy``, ``paused``,
    ``needs_auth``) and never started.
    """

    connector: str
    owner: str
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "syncing"
    items: int = 0
    logged: int = 0
    error: str | None = None
    taken_over_from: str | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED
