"""Reconciliation: everything the provider holds in the synced window is accounted for.

A sync that loses a message by mistake looks exactly like one that skipped it
on purpose: the message is simply not in the database. Verification makes
the difference visible. It lists what the provider holds in the window the
connector's committed cursor covers
(:meth:`~connectors.capabilities.Inventoried.inventory`: ids, no content)
and takes away what the database holds for the connector:
``interaction_sources`` (logged) and ``quarantine`` (unreadable, with the
reason). What is left is *missing*, and each missing item is fetched again
(:meth:`~connectors.capabilities.Inventoried.lookup`) and judged:

==================  =======================================================  ==========
outcome             meaning                                                  explained?
==================  =======================================================  ==========
skipped             the pipeline (re-run, pure) skips it, with its reason     yes
outside_window      older than the connector's ``since``                      yes
pending             arrived after the last sync started                       yes
would_log           the pipeline would log it: a loss, or a filter changed    no
would_quarantine    unreadable now, yet no quarantine row says so             no
unreadable          the connector cannot read it now, and never quarantined   no
==================  =======================================================  ==========

Skipped messages leave no row, so the skip counters keep the sync honest:
if re-running the pipeline finds more skipped messages than the sync ever
counted as skipped, the difference was never seen by a sync, and counts as
unexplained. Items the database holds but the provider no longer does are
reported as ``extra`` (deleted or moved since; not an error).

Some items are logged under other ids than their own: an invitation email is
logged as the meetings it announces, each under
``f"{message's source id}/{uid}/{start}"``. Those are the held item's, not
``extra``: the held item counts as ``announced`` (logged by another path),
and its meetings' rows as held by it.

Verification writes nothing but its own result, into the connector's
``sync_state.counters["verify"]``, where ``status`` and the metrics read it.
Run it after a sync: mail that arrives in between can show up as missing
until the next one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.parser import BytesHeaderParser
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline.batch import plan_batch
from agent.pipeline.emails import plan_mail
from agent.pipeline.filters import Skip
from agent.pipeline.meetings import plan_meeting
from agent.pipeline.policy import Policy
from connectors.capabilities import Inventoried
from connectors.records import CalendarEvent, Connector, Item, MailMessage, Unreadable
from storage.db import transaction
from storage.models import InteractionSource, Quarantine, SyncState
from storage.sync_state import (
    Verification,
    counters_of,
    get_state,
    record_verification,
    update_counters,
)

EXPLAINED = frozenset({"skipped", "outside_window", "pending"})


class NotVerifiable(Exception):
    """This connector cannot list what its provider holds."""


@dataclass(frozen=True)
class Missing:
    """One item the provider holds and the database does not, and why."""

    source_id: str
    outcome: str
    reason: str = ""
    detail: str = ""
    message_id: str | None = None

    @property
    def explained(self) -> bool:
        return self.outcome in EXPLAINED


@dataclass
class Report:
    connector: str
    checked_at: datetime
    synced: bool = True
    held: int = 0
    logged: int = 0
    quarantined: int = 0
    extra: int = 0
    announced: int = 0
    """Held items logged under ids derived from theirs: invitations, as their meetings."""
    gone: int = 0
    missing: list[Missing] = field(default_factory=list)
    counted_skips: dict[str, int] = field(default_factory=dict)

    @property
    def uncounted_skips(self) -> int:
        """Skips found now beyond every skip the sync ever counted: never seen by a sync."""
        skipped = sum(m.outcome == "skipped" for m in self.missing)
        return max(0, skipped - sum(self.counted_skips.values()))

    @property
    def unexplained(self) -> int:
        return sum(not m.explained for m in self.missing) + self.uncounted_skips

    def summary(self) -> dict[str, Any]:
        """The figures ``status`` and the metrics show, JSON-ready."""
        return {
            "checked_at": self.checked_at.isoformat(),
            "synced": self.synced,
            "held": self.held,
            "logged": self.logged,
            "quarantined": self.quarantined,
            "missing": len(self.missing),
            "explained": sum(m.explained for m in self.missing),
            "unexplained": self.unexplained,
            "uncounted_skips": self.uncounted_skips,
            "extra": self.extra,
            "announced": self.announced,
        }


def verify_connector(
    sessions: sessionmaker[Session],
    connector: Connector,
    policy: Policy,
    *,
    now: datetime | None = None,
) -> Report:
    """Compare what ``connector``'s provider holds with the database (module docstring).

    Only a connector that can list what its provider holds
    (:class:`~connectors.capabilities.Inventoried`) can be verified.
    """
    if not isinstance(connector, Inventoried):
        raise NotVerifiable(f"connector {connector.name!r} cannot list")
    report = Report(connector.name, now or datetime.now(timezone.utc))
    with sessions() as session:
        state = session.get(SyncState, connector.name)
        cursor = state.cursor if state else None
        last_run = state.last_run_at if state else None
        counted = counters_of(state).skipped
    if cursor is None:
        report.synced = False
        return report
    report.counted_skips = dict(counted)
    held = set(connector.inventory(cursor))
    with sessions() as session:
        logged, quarantined = _held_in_database(session, connector.name)
    report.held = len(held)
    report.logged = len(held & logged)
    report.quarantined = len(held & quarantined.keys())
    derived = derived_from(logged - held, held)
    report.extra = len(logged - held) - len(derived)
    report.announced = len(set(derived.values()) - quarantined.keys())
    absent = held - logged - quarantined.keys()
    found = {item.source_id: item for item in connector.lookup(sorted(absent))}
    report.gone = len(absent - found.keys())
    for source_id in sorted(found):
        judged = judge(found[source_id], policy, logged, since=connector.since, last_run=last_run)
        if judged is not None:
            report.missing.append(judged)
    return report


def derived_from(source_ids: set[str], held: set[str]) -> dict[str, str]:
    """Each of ``source_ids`` that names a held item's derived record, with that item's id.

    A derived id is the item's own, a ``/`` and more (``{id}/{uid}/{start}`` for the
    meetings of an invitation); every ``/`` is tried, since ids and UIDs may hold one.
    """
    found: dict[str, str] = {}
    for source_id in source_ids:
        position = source_id.find("/")
        while position > 0:
            if source_id[:position] in held:
                found[source_id] = source_id[:position]
                break
            position = source_id.find("/", position + 1)
    return found


def record_result(sessions: sessionmaker[Session], report: Report) -> None:
    """Keep the summary on the connector's row for ``status`` and the metrics."""
    verification = Verification.from_json(report.summary())
    with transaction(sessions) as session:
        update_counters(
            get_state(session, report.connector),
            lambda counters: record_verification(counters, verification),
        )


def judge(
    item: Item,
    policy: Policy,
    logged: set[str],
    *,
    since: date | None = None,
    last_run: datetime | None = None,
) -> Missing | None:
    """Why ``item`` is not in the database; None when it is, under derived ids.

    An invitation by mail, for one, is logged as the meetings it announces,
    whose source ids are not the message's.
    """
    message_id = _message_id(item)
    if isinstance(item, Unreadable):
        return Missing(item.source_id, "unreadable", item.reason)
    if not isinstance(item, MailMessage | CalendarEvent):
        return None
    when = item.internal_date if isinstance(item, MailMessage) else item.start
    if since is not None and when is not None and when < _moment(since):
        return Missing(item.source_id, "outside_window", "since", f"{when:%Y-%m-%d}", message_id)
    plan = plan_batch([item], policy)
    if plan.write.quarantined:
        reason = plan.write.quarantined[0][2]
        return Missing(item.source_id, "would_quarantine", reason, message_id=message_id)
    if plan.skipped:
        (reason,) = plan.skipped
        return Missing(item.source_id, "skipped", reason, _skip_detail(item, policy), message_id)
    records = plan.write.interactions
    if records and all(record.source_id in logged for record in records):
        return None
    arrived = item.internal_date if isinstance(item, MailMessage) else None
    if arrived is not None and last_run is not None and arrived >= last_run:
        return Missing(item.source_id, "pending", "arrived after the last sync", "", message_id)
    return Missing(item.source_id, "would_log", "the pipeline logs it", "", message_id)


def _held_in_database(session: Session, connector: str) -> tuple[set[str], dict[str, str]]:
    logged = set(
        session.scalars(
            select(InteractionSource.source_id).where(InteractionSource.connector == connector)
        )
    )
    rows = session.execute(
        select(Quarantine.source_id, Quarantine.reason).where(Quarantine.connector == connector)
    )
    quarantined = {source_id: reason for source_id, reason in rows}
    return logged, quarantined


def _skip_detail(item: MailMessage | CalendarEvent, policy: Policy) -> str:
    """The filter's words for a skip (plan_batch keeps only the reason)."""
    try:
        outcome = (
            plan_mail(item, policy) if isinstance(item, MailMessage) else plan_meeting(item, policy)
        )
    except Exception:
        return ""
    return outcome.detail if isinstance(outcome, Skip) else ""


def _moment(since: date) -> datetime:
    """A window's start as an instant: a date (IMAP's SINCE is one) is its midnight, UTC."""
    if isinstance(since, datetime):
        return since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    return datetime(since.year, since.month, since.day, tzinfo=timezone.utc)


def _message_id(item: Item) -> str | None:
    """The Message-ID (mail) or UID (meeting) an admin can search the mailbox for."""
    if isinstance(item, CalendarEvent):
        return item.uid
    if not isinstance(item, MailMessage):
        return None
    value = BytesHeaderParser().parsebytes(item.raw).get("Message-ID")
    return " ".join(str(value).split()) if value else None
