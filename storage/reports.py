"""The reports a small business asks for: activity, cooling, coverage, sources.

Each report is one function over a session (and a :class:`Viewer` where
interactions are counted) returning dataclasses, so the CLI, the JSON API
and the pages print the same figures. Counting is done by the database
(``GROUP BY`` on SQLite and PostgreSQL alike); Python only sees the
aggregates, and for reply times the few columns of one period's threads.

A *teammate* is an address of the team (:func:`storage.history.team_of`);
an interaction counts for each teammate among its participants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select
from sqlalchemy.orm import Session, aliased

from storage import relationships
from storage.contact_lookup import first_domain
from storage.history import team_of, unanswered
from storage.models import (
    Company,
    CompanyFigures,
    ConnectorDay,
    Contact,
    ContactEmail,
    ContactFigures,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    User,
    UserMailbox,
    utcnow,
)
from storage.relationship_rules import ThreadMessage, median_seconds, reply_times
from storage.visibility import Viewer, visible

PERIODS = ("day", "week", "month")
BY = ("teammate",)
RECIPIENT_ROLES = ("to", "cc", "bcc")
UNANSWERED_WITHIN = timedelta(days=30)
UNANSWERED_LIMIT = 1000


def utc_today() -> date:
    return utcnow().date()


# --- activity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityRow:
    """One teammate's figures for one period."""

    teammate: str
    period: date
    """The period's first day (a Monday for weeks, the 1st for months)."""
    emails_sent: int = 0
    emails_received: int = 0
    meetings: int = 0
    new_contacts: int = 0
    median_reply_seconds: int | None = None
    unanswered: int | None = None
    """Threads waiting for the teammate's answer now; on the newest period only."""


@dataclass(frozen=True)
class Activity:
    period: str
    periods: tuple[date, ...]
    """Each period's first day, oldest first."""
    teammates: tuple[str, ...]
    rows: tuple[ActivityRow, ...]
    """Teammate by teammate, each with every period oldest first."""


def period_starts(period: str, periods: int, today: date) -> list[date]:
    """The first day of each of the ``periods`` periods that end with the one holding
    ``today``, oldest first."""
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    if period == "day":
        return [today - timedelta(days=n) for n in reversed(range(periods))]
    if period == "week":
        monday = today - timedelta(days=today.weekday())
        return [monday - timedelta(weeks=n) for n in reversed(range(periods))]
    months = today.year * 12 + today.month - 1
    return [date((months - n) // 12, (months - n) % 12 + 1, 1) for n in reversed(range(periods))]


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _bucket(column: Any, starts: Sequence[date]) -> ColumnElement[Any]:
    """The index of the period ``column`` falls in (the window is filtered apart)."""
    whens = [(column >= _midnight(start), i) for i, start in reversed(list(enumerate(starts)))]
    return case(*whens, else_=-1)


def activity(
    session: Session,
    viewer: Viewer,
    *,
    period: str = "week",
    by: str = "teammate",
    periods: int = 8,
    today: date | None = None,
) -> Activity:
    """Per teammate and period: emails sent and received, meetings, new contacts, the median
    time the teammate took to reply, and (on the newest period) threads waiting for them.

    Only interactions ``viewer`` may read are counted. *Sent* is an outbound email
    the teammate sent; *received* an inbound one addressed to them (to, cc, bcc);
    a meeting counts for each teammate invited, unless cancelled. *New contacts*
    are contacts created in the period with whom the teammate shared a visible
    interaction within the report's periods. Reply times are timed within each
    period's messages (:func:`storage.relationship_rules.reply_times`), and
    waiting threads follow :func:`storage.history.unanswered`.
    """
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    today = today or utc_today()
    starts = period_starts(period, max(1, periods), today)
    window = (_midnight(starts[0]), _midnight(today + timedelta(days=1)))
    figures = _figures(session, viewer, starts, window)
    teammates = sorted({email for email, _ in figures})
    if today == utc_today():
        for email, waiting in _waiting(session, viewer, teammates).items():
            figures[email, len(starts) - 1]["unanswered"] = waiting
    rows = tuple(
        ActivityRow(email, start, **figures.get((email, i), {}))
        for email in teammates
        for i, start in enumerate(starts)
    )
    return Activity(period, tuple(starts), tuple(teammates), rows)


Figures = dict[tuple[str, int], dict[str, Any]]
"""``(teammate, period index) -> {field: value}`` of :class:`ActivityRow`."""


def _figures(
    session: Session, viewer: Viewer, starts: Sequence[date], window: tuple[datetime, datetime]
) -> Figures:
    team = sorted(team_of(session))
    figures: Figures = defaultdict(dict)
    for email, index, sent, received, meetings in session.execute(
        _counts(viewer, team, starts, window)
    ):
        figures[email, index].update(emails_sent=sent, emails_received=received, meetings=meetings)
    for email, index, n in session.execute(_new_contacts(viewer, team, starts, window)):
        figures[email, index]["new_contacts"] = n
    for (email, index), seconds in _reply_medians(session, viewer, team, starts, window).items():
        figures[email, index]["median_reply_seconds"] = seconds
    return figures


def _in_window(column: Any, window: tuple[datetime, datetime]) -> ColumnElement[bool]:
    return and_(column >= window[0], column < window[1])


def _counts(
    viewer: Viewer, team: Sequence[str], starts: Sequence[date], window: tuple[datetime, datetime]
) -> Select[Any]:
    mate = aliased(InteractionParticipant)
    inner = (
        select(
            mate.email.label("email"),
            mate.role.label("role"),
            Interaction.id.label("id"),
            Interaction.kind.label("kind"),
            Interaction.direction.label("direction"),
            _bucket(Interaction.occurred_at, starts).label("bucket"),
        )
        .join(Interaction, Interaction.id == mate.interaction_id)
        .where(
            mate.email.in_(team),
            _in_window(Interaction.occurred_at, window),
            Interaction.status != "cancelled",
            visible(viewer),
        )
        .subquery()
    )
    email = inner.c.kind == "email"
    sent = and_(email, inner.c.direction == "outbound", inner.c.role == "from")
    received = and_(email, inner.c.direction == "inbound", inner.c.role.in_(RECIPIENT_ROLES))
    return select(
        inner.c.email,
        inner.c.bucket,
        _distinct_where(sent, inner.c.id),
        _distinct_where(received, inner.c.id),
        _distinct_where(inner.c.kind == "meeting", inner.c.id),
    ).group_by(inner.c.email, inner.c.bucket)


def _distinct_where(condition: ColumnElement[bool], ids: Any) -> ColumnElement[int]:
    return func.count(func.distinct(case((condition, ids))))


def _new_contacts(
    viewer: Viewer, team: Sequence[str], starts: Sequence[date], window: tuple[datetime, datetime]
) -> Select[Any]:
    mate = aliased(InteractionParticipant)
    them = aliased(InteractionParticipant)
    inner = (
        select(
            mate.email.label("email"),
            Contact.id.label("contact"),
            _bucket(Contact.created_at, starts).label("bucket"),
        )
        .join(Interaction, Interaction.id == mate.interaction_id)
        .join(them, them.interaction_id == Interaction.id)
        .join(Contact, Contact.id == them.contact_id)
        .where(
            mate.email.in_(team),
            them.email.not_in(team),
            _in_window(Contact.created_at, window),
            _in_window(Interaction.occurred_at, window),
            visible(viewer),
        )
        .subquery()
    )
    return select(
        inner.c.email, inner.c.bucket, func.count(func.distinct(inner.c.contact))
    ).group_by(inner.c.email, inner.c.bucket)


def _reply_medians(
    session: Session,
    viewer: Viewer,
    team: Sequence[str],
    starts: Sequence[date],
    window: tuple[datetime, datetime],
) -> dict[tuple[str, int], int]:
    """The median of the teammate's reply times per period: only the thread, time and
    direction of the period's emails are read."""
    mate = aliased(InteractionParticipant)
    query = (
        select(
            mate.email,
            _bucket(Interaction.occurred_at, starts),
            Interaction.id,
            Interaction.thread,
            Interaction.occurred_at,
            Interaction.direction,
        )
        .distinct()
        .join(Interaction, Interaction.id == mate.interaction_id)
        .where(
            mate.email.in_(team),
            Interaction.kind == "email",
            Interaction.thread.is_not(None),
            Interaction.direction.in_(("inbound", "outbound")),
            _in_window(Interaction.occurred_at, window),
            visible(viewer),
        )
    )
    messages: dict[tuple[str, int], list[ThreadMessage]] = defaultdict(list)
    for email, index, _id, thread, at, direction in session.execute(query):
        messages[email, index].append(ThreadMessage(thread, at, direction == "outbound"))
    medians = {key: median_seconds(reply_times(found)[0]) for key, found in messages.items()}
    return {key: seconds for key, seconds in medians.items() if seconds is not None}


def _waiting(session: Session, viewer: Viewer, teammates: Sequence[str]) -> dict[str, int]:
    """Threads waiting for each teammate who signs in (:func:`storage.history.unanswered`,
    read as that teammate); another's private threads are left out unless ``viewer`` may
    read every one."""
    users = session.execute(
        select(UserMailbox.account, User.id, User.email, User.role)
        .join(User, User.id == UserMailbox.user_id)
        .where(UserMailbox.account.in_(teammates))
    ).all()
    waiting: dict[str, int] = {}
    for account, user_id, email, role in users:
        own = viewer.include_private or viewer.user_id == user_id
        entries = unanswered(
            session,
            Viewer(user_id=user_id, email=email, role=role),
            within=UNANSWERED_WITHIN,
            limit=UNANSWERED_LIMIT,
        )
        mine = [e for e in entries if own or e.visibility != "private"]
        waiting[account] = sum(1 for e in mine if any(p.email == account for p in e.people))
    return waiting


# --- cooling and coverage ---------------------------------------------------------------


@dataclass(frozen=True)
class Cooling:
    """A relationship going cold: fewer interactions lately than before."""

    kind: str
    """``contact`` or ``company``."""
    id: int
    name: str | None
    email: str | None
    """A contact's first address; a company's first domain."""
    strength: float
    level: str
    before_90: int
    """Interactions in the 90 days before the last 30."""
    recent_30: int
    """Interactions in the last 30 days."""
    last_at: datetime | None
    days_idle: int | None
    closest_teammate: str | None
    explanation: str


def cooling(
    session: Session,
    viewer: Viewer,
    *,
    limit: int = 50,
    companies: bool = False,
    today: date | None = None,
) -> list[Cooling]:
    """Contacts (or companies) whose trend is ``cooling``, strongest first.

    The figures (:mod:`storage.relationships`) are read as kept: current with every
    batch, and brought to a new day by the agent's hourly turn (the command line brings
    them first, :func:`storage.relationships.refresh_stale_in_steps`). They
    count only what the whole team may read, so every reader gets the same list:
    ``viewer`` is taken so that no report can be asked for without one.
    """
    today = today or utc_today()
    if companies:
        return _cooling_companies(session, limit, today)
    return _cooling_contacts(session, limit, today)


def _cooling_row(
    kind: str, subject_id: int, name: str | None, email: str | None, row: Any, today: date
) -> Cooling:
    recent = row.emails_in_30 + row.emails_out_30 + row.meetings_30
    idle = (today - row.last_at.date()).days if row.last_at is not None else None
    return Cooling(
        kind=kind,
        id=subject_id,
        name=name,
        email=email,
        strength=row.strength,
        level=row.level,
        before_90=row.before_90,
        recent_30=recent,
        last_at=row.last_at,
        days_idle=idle,
        closest_teammate=row.closest_teammate,
        explanation=relationships.explanation(row, today),
    )


def _cooling_contacts(session: Session, limit: int, today: date) -> list[Cooling]:
    first_email = (
        select(func.min(ContactEmail.email))
        .where(ContactEmail.contact_id == Contact.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(ContactFigures, Contact.id, Contact.display_name, first_email)
        .join(Contact, Contact.id == ContactFigures.contact_id)
        .where(ContactFigures.trend == "cooling")
        .order_by(ContactFigures.strength.desc(), Contact.id)
        .limit(limit)
    ).all()
    return [_cooling_row("contact", i, name, email, f, today) for f, i, name, email in rows]


def _cooling_companies(session: Session, limit: int, today: date) -> list[Cooling]:
    rows = session.execute(
        select(CompanyFigures, Company.id, Company.name, first_domain(Company.id))
        .join(Company, Company.id == CompanyFigures.company_id)
        .where(CompanyFigures.trend == "cooling")
        .order_by(CompanyFigures.strength.desc(), Company.id)
        .limit(limit)
    ).all()
    return [_cooling_row("company", i, name, domain, f, today) for f, i, name, domain in rows]


@dataclass(frozen=True)
class SoleTeammate:
    """A company only one teammate knows: the bus factor of one."""

    company_id: int
    company: str
    domain: str | None
    teammate: str | None
    interactions_365: int
    strength: float


@dataclass(frozen=True)
class Coverage:
    companies: tuple[SoleTeammate, ...]
    """Companies known by one teammate, strongest first."""
    by_teammates: dict[str, int] = field(default_factory=dict)
    """How many companies ``0``, ``1``, ``2`` and ``3+`` teammates took part with (365 days)."""


TEAMMATE_BANDS = ("0", "1", "2", "3+")


def coverage(
    session: Session, viewer: Viewer, *, limit: int = 200, today: date | None = None
) -> Coverage:
    """Companies known by one teammate only, and how many companies each number of
    teammates knows. Read from the company figures as kept (see :func:`cooling`); they
    hold only what the whole team may read."""
    f = CompanyFigures
    interactions = f.emails_in_365 + f.emails_out_365 + f.meetings_365
    sole = session.execute(
        select(
            Company.id,
            Company.name,
            first_domain(Company.id),
            f.closest_teammate,
            interactions,
            f.strength,
        )
        .join(f, f.company_id == Company.id)
        .where(f.teammates == 1)
        .order_by(f.strength.desc(), Company.id)
        .limit(limit)
    ).all()
    teammates = func.coalesce(f.teammates, 0)
    counts = dict.fromkeys(TEAMMATE_BANDS, 0)
    for n_teammates, n in session.execute(
        select(teammates, func.count())
        .select_from(Company)
        .outerjoin(f, f.company_id == Company.id)
        .group_by(teammates)
    ):
        counts[TEAMMATE_BANDS[min(int(n_teammates), 3)]] += int(n)
    return Coverage(tuple(SoleTeammate(*row) for row in sole), counts)


# --- sources ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceDay:
    connector: str
    day: date
    measures: dict[str, int]


@dataclass(frozen=True)
class SourceTotal:
    connector: str
    measures: dict[str, int]
    interactions: int
    """Interactions that have this connector among their sources (all time)."""


@dataclass(frozen=True)
class Sources:
    days: tuple[date, ...]
    """Each day of the report, oldest first."""
    per_day: tuple[SourceDay, ...]
    totals: tuple[SourceTotal, ...]


def sources(session: Session, *, days: int = 30, today: date | None = None) -> Sources:
    """What each connector brought per day over the last ``days`` (``connector_days``), its
    totals over them, and the interactions it holds. Connectors are the admins' business:
    no viewer, the callers let admins only ask."""
    today = today or utc_today()
    first = today - timedelta(days=max(1, days) - 1)
    in_window = and_(ConnectorDay.day >= first, ConnectorDay.day <= today)
    per_day: dict[tuple[str, date], dict[str, int]] = defaultdict(dict)
    for connector, day, measure, n in session.execute(
        select(ConnectorDay.connector, ConnectorDay.day, ConnectorDay.measure, ConnectorDay.n)
        .where(in_window)
        .order_by(ConnectorDay.connector, ConnectorDay.day, ConnectorDay.measure)
    ):
        per_day[connector, day][measure] = int(n)
    totals: dict[str, dict[str, int]] = defaultdict(dict)
    for connector, measure, n in session.execute(
        select(ConnectorDay.connector, ConnectorDay.measure, func.sum(ConnectorDay.n))
        .where(in_window)
        .group_by(ConnectorDay.connector, ConnectorDay.measure)
    ):
        totals[connector][measure] = int(n)
    held = dict(
        session.execute(
            select(
                InteractionSource.connector,
                func.count(func.distinct(InteractionSource.interaction_id)),
            ).group_by(InteractionSource.connector)
        ).all()
    )
    connectors = sorted(set(totals) | set(held))
    return Sources(
        days=tuple(first + timedelta(days=n) for n in range((today - first).days + 1)),
        per_day=tuple(SourceDay(c, d, m) for (c, d), m in sorted(per_day.items())),
        totals=tuple(SourceTotal(c, totals.get(c, {}), int(held.get(c, 0))) for c in connectors),
    )
