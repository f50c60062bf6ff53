"""What planning produces: one interaction and what it implies, and a whole batch's write."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from agent.pipeline.filters import Skip
from connectors.records import (
    Limited,
)
from storage.ingest import BatchWrite, Fact, InteractionRecord, NewContact, ResponseRecord


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


@dataclass(frozen=True)
class Answered(Skip):
    """An item that is no interaction but carries attendees' answers (an iTIP REPLY).

    As an item it is a skip, counted under its reason like any other (a reply
    by mail stays a ``calendar_notification``), so that every item is
    accounted for once; its ``responses`` go to the meetings they name,
    which the write finds or counts as ``rsvp_without_meeting``.
    """

    responses: tuple[ResponseRecord, ...] = ()
    limited: tuple[Limited, ...] = ()
