"""What planning produces: one interaction and what it implies, and a whole batch's write."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from connectors.records import (
    Limited,
)
from storage.ingest import BatchWrite, Fact, InteractionRecord, NewContact


@dataclass
class BatchPlan:
    write: BatchWrite = field(default_factory=BatchWrite)
    skipped: Counter[str] = field(default_factory=Counter)
    logged: int = 0
    limited: list[Limited] = field(default_factory=list)
    """Items logged only up to a bound of ``config.limits``, with the reason."""


@dataclass(frozen=True)
class Planned:
    """One interaction to log, the contacts it may create and the facts it observed."""

    record: InteractionRecord
    new_contacts: list[NewContact]
    facts: list[Fact]
    limited: tuple[Limited, ...] = ()
