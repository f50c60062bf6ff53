"""Relationship figures per contact and per company, kept current in the writer's transaction.

A row of ``contact_figures`` or ``company_figures`` is recomputed from the
subject's history whenever a batch touches the subject (``storage.ingest``
calls :func:`refresh`), so figures are never a scan per page view and never
drift from the history: re-delivered mail adds nothing to the history, so it
changes no figure. Windows are relative to the end of the row's ``as_of``
day; :func:`refresh_stale` brings rows of earlier days forward (the agent's
daily job, and every report before it reads).

What counts: interactions the whole team may see (private threads are the
owner's alone, and figures are shown to everyone), email and meetings,
inbound or outbound (internal mail is the team talking to itself), not
cancelled, and not a meeting the person declined. The rules that turn the
counts into a strength, a level and a trend are in
``storage.relationship_rules``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, sessionmaker

from storage import relationship_rules as rules
from storage.batching import CHUNK, chunks
from storage.db import transaction
from storage.history import (
    TEAM,
    Among,
    company_interactions,
    contact_interactions,
    newest_ids,
    subject_condition,
    team_of,
)
from storage.models import (
    Company,
    CompanyFigures,
    Contact,
    ContactFigures,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    utcnow,
)
from storage.upsert import insert_for, table_of
from storage.visibility import PRIVATE, Viewer

Figures = ContactFigures | CompanyFigures
KINDS = ("emails_in", "emails_out", "meetings")
COUNT_COLUMNS = (*(f"{name}_{days}" for days in rules.WINDOWS for name in KINDS), "before_90")


REPLY_SAMPLE = 300
"""Messages a contact's or company's reply times are read from: the newest, in 365 days."""
SPAN = 20_000
"""Subjects recomputed together when many are (a new day's turn): one range of ids."""
NEVER = date(1970, 1, 1)
"""The ``as_of`` of a row made to be locked before its first computation: stale."""


def today() -> date:
    return utcnow().date()


def refresh(
    session: Session,
    *,
    contacts: Iterable[int] = (),
    companies: Iterable[int] = (),
    as_of: date | None = None,
    span: bool = False,
) -> None:
    """Recompute the figures of these contacts and companies for ``as_of`` (today).

    The rows are locked first (made, when missing), in key order: a batch adding
    to a row waits for a recomputation of it and the other way round, so
    neither overwrites what the other counted. With ``span``, many subjects are
    read by ranges of ids (:data:`SPAN` at a time) rather than lists: the
    database then joins the history once per range instead of looking each
    subject up.
    """
    day = as_of or today()
    for model, key, pairs, ids in (
        (ContactFigures, "contact_id", _contact_pairs, contacts),
        (CompanyFigures, "company_id", _company_pairs, companies),
    ):
        for chunk in chunks(sorted(set(ids)), SPAN if span else CHUNK):
            lock_rows(session, model, key, chunk)
            write_rows(session, model, key, _compute(session, pairs, chunk, day, span=span))


def lock_rows(
    session: Session, model: type[Figures], key: str, ids: Sequence[int], *, make: bool = True
) -> None:
    """Make the missing rows (``make``) and lock them, in key order (PostgreSQL; SQLite's
    writer holds the whole database already)."""
    table = table_of(model)
    if make:
        placeholder = {"as_of": NEVER, "team": {}, **dict.fromkeys(COUNT_COLUMNS, 0)}
        placeholder |= {"strength": 0.0, "level": "none", "trend": "none", "teammates": 0}
        statement = insert_for(session, table).on_conflict_do_nothing(index_elements=[key])
        session.execute(statement, [{key: i, **placeholder} for i in ids])
    if session.get_bind().dialect.name == "postgresql":
        column = table.c[key]
        session.execute(
            select(column).where(column.in_(ids)).order_by(column).with_for_update()
        ).all()


def refresh_contacts_and_companies(
    session: Session,
    contact_ids: Collection[int],
    *,
    also: Collection[int] = (),
    as_of: date | None = None,
) -> None:
    """The contacts, the companies they belong to, and the companies ``also`` (those they
    belonged to before a change): what a change to their history moves."""
    companies = companies_of(session, contact_ids) | set(also)
    refresh(session, contacts=contact_ids, companies=companies, as_of=as_of)


def company_of_each(session: Session, contact_ids: Iterable[int]) -> dict[int, int | None]:
    """Each contact's company now: a merged fact may move a contact to another one."""
    found: dict[int, int | None] = {}
    for chunk in chunks(sorted(set(contact_ids))):
        rows = session.execute(select(Contact.id, Contact.company_id).where(Contact.id.in_(chunk)))
        found |= {contact_id: company_id for contact_id, company_id in rows}
    return found


def companies_of(session: Session, contact_ids: Iterable[int]) -> set[int]:
    """The companies these contacts belong to now."""
    found: set[int] = set()
    for chunk in chunks(sorted(set(contact_ids))):
        found.update(
            session.scalars(
                select(Contact.company_id).where(
                    Contact.id.in_(chunk), Contact.company_id.is_not(None)
                )
            )
        )
    return {company for company in found if company is not None}


def refresh_stale(
    session: Session,
    *,
    as_of: date | None = None,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Recompute rows older than ``as_of`` and make the missing ones (at most ``limit``);
    how many.

    Time moves windows without any new mail: yesterday's "last 30 days" is
    not today's. Reports call this first, so they never read a stale row; the
    agent calls it in steps of ``limit``, a transaction each.
    """
    day = as_of or today()
    done = 0
    for model, key, subjects in (
        (ContactFigures, "contact_id", Contact),
        (CompanyFigures, "company_id", Company),
    ):
        column = getattr(model, key)
        stale = (
            select(subjects.id)
            .outerjoin(model, column == subjects.id)
            .where(or_(column.is_(None), model.as_of < day))
            .order_by(subjects.id)
        )
        if limit is not None:
            stale = stale.limit(limit - done)
        for chunk in chunks(list(session.scalars(stale)), SPAN):
            if model is ContactFigures:
                refresh(session, contacts=chunk, as_of=day, span=True)
            else:
                refresh(session, companies=chunk, as_of=day, span=True)
            done += len(chunk)
            if progress is not None:
                progress(len(chunk))
        if limit is not None and done >= limit:
            break
    return done


def refresh_stale_in_steps(sessions: sessionmaker[Session], *, step: int = SPAN) -> int:
    """:func:`refresh_stale` a transaction per ``step`` rows, so that a day's turn over a
    large database never holds one long transaction; how many rows."""
    total = 0
    while True:
        with transaction(sessions) as session:
            done = refresh_stale(session, limit=step)
        total += done
        if done < step:
            return total


def contacts_of_sources(session: Session, sources: Sequence[tuple[str, str]]) -> set[int]:
    """The contacts in the interactions logged from these sources: those whose figures a
    removal changes, read before the removal."""
    found: set[int] = set()
    for connector, source_id in sources:
        found.update(
            session.scalars(
                select(InteractionParticipant.contact_id)
                .join(
                    InteractionSource,
                    InteractionSource.interaction_id == InteractionParticipant.interaction_id,
                )
                .where(
                    InteractionSource.connector == connector,
                    InteractionSource.source_id == source_id,
                    InteractionParticipant.contact_id.is_not(None),
                )
            )
        )
    return found


@dataclass(frozen=True)
class Moment:
    """The first or the last interaction: when, what, about what, with which teammates."""

    at: datetime
    kind: str
    topic: str | None
    teammates: tuple[str, ...]


@dataclass(frozen=True)
class Standing:
    """A contact's or a company's figures as pages, the API and the CLI show them."""

    level: str
    strength: float
    trend: str
    explanation: str
    first_at: datetime | None
    last_at: datetime | None
    counts: dict[str, dict[str, int]]
    """``{"30": {"emails_in": n, "emails_out": n, "meetings": n}, "90": ..., "365": ...}``"""
    our_reply_seconds: int | None
    """Median time from their message to our next one in a thread, 365 days."""
    their_reply_seconds: int | None
    closest_teammate: str | None
    teammates: int
    as_of: date
    first: Moment | None
    last: Moment | None


def standing(session: Session, model: type[Figures], subject_id: int) -> Standing:
    """The stored row, or (missing, or of an earlier day) the figures computed afresh for
    today without writing them: a page view never writes, and never shows stale counts.

    Reply times are computed here, from the newest messages of the subject's own
    threads (:data:`REPLY_SAMPLE`, 365 days; an indexed read, like the timeline's): a
    median is not kept by adding to it, so the rows that every batch updates do not
    hold one.
    """
    pairs = _contact_pairs if model is ContactFigures else _company_pairs
    day = today()
    row = session.execute(_figures_row(model), {"subject": subject_id}).mappings().first()
    if row is not None and row["as_of"] >= day:
        values = dict(row)
    else:
        values = _compute(session, pairs, [subject_id], day)[0]
    among = (contact_interactions if model is ContactFigures else company_interactions)(subject_id)
    ours, theirs = _reply_medians(session, among, end_of(day))
    counts = _counts(values)
    first, last = _moments(session, values["first_interaction_id"], values["last_interaction_id"])
    return Standing(
        level=values["level"],
        strength=values["strength"],
        trend=values["trend"],
        explanation=rules.explain(
            level_name=values["level"], counts=counts, last_at=values["last_at"], today=day
        ),
        first_at=values["first_at"],
        last_at=values["last_at"],
        counts={str(d): {k: values[f"{k}_{d}"] for k in KINDS} for d in rules.WINDOWS},
        our_reply_seconds=ours,
        their_reply_seconds=theirs,
        closest_teammate=values["closest_teammate"],
        teammates=values["teammates"],
        as_of=values["as_of"],
        first=first,
        last=last,
    )


@cache
def _figures_row(model: type[Figures]) -> Select[Any]:
    table = table_of(model)
    key = "contact_id" if model is ContactFigures else "company_id"
    return select(table).where(table.c[key] == bindparam("subject"))


def _moments(session: Session, *interaction_ids: int | None) -> list[Moment | None]:
    """Counted interactions (ones the whole team may read, subject included), in the order
    asked, each with its teammates: one query for the lot."""
    wanted = sorted({i for i in interaction_ids if i is not None})
    if not wanted:
        return [None] * len(interaction_ids)
    rows = session.execute(_MOMENTS, {"wanted": wanted})
    moments: dict[int, tuple[datetime, str, str | None]] = {}
    mates: dict[int, list[str]] = defaultdict(list)
    for interaction_id, at, kind, topic, email in rows:
        moments[interaction_id] = (at, kind, topic)
        if email is not None:
            mates[interaction_id].append(email)
    found = {
        i: Moment(at, kind, topic, tuple(dict.fromkeys(mates[i])))
        for i, (at, kind, topic) in moments.items()
    }
    return [found.get(i) if i is not None else None for i in interaction_ids]


_MOMENTS = (
    select(Interaction.id, Interaction.occurred_at, Interaction.kind, Interaction.subject)
    .add_columns(InteractionParticipant.email)
    .outerjoin(
        InteractionParticipant,
        (InteractionParticipant.interaction_id == Interaction.id)
        & InteractionParticipant.email.in_(TEAM),
    )
    .where(Interaction.id.in_(bindparam("wanted", expanding=True)))
    .order_by(Interaction.id, InteractionParticipant.id)
)


def explanation(row: Figures | None, on: date | None = None) -> str:
    """The row's level with the reasons a person can check (see ``rules.explain``)."""
    if row is None:
        return "none: no interaction the team can see"
    values = {c.key: getattr(row, c.key) for c in table_of(type(row)).columns}
    return rules.explain(
        level_name=row.level, counts=_counts(values), last_at=row.last_at, today=on or today()
    )


def _counts(values: dict[str, Any]) -> rules.Counts:
    return rules.Counts(
        emails_in={d: values[f"emails_in_{d}"] for d in rules.WINDOWS},
        emails_out={d: values[f"emails_out_{d}"] for d in rules.WINDOWS},
        meetings={d: values[f"meetings_{d}"] for d in rules.WINDOWS},
        before_90=values["before_90"],
    )


# -- computing ---------------------------------------------------------------------------------

Pairs = Callable[[Sequence[int], bool], Select[int | None, int]]
"""``(subject id, interaction id)`` for a chunk of subjects: who took part in what."""


@cache
def counted() -> ColumnElement[bool]:
    return and_(
        Interaction.visibility != PRIVATE,
        Interaction.status != "cancelled",
        Interaction.kind.in_(("email", "meeting")),
        Interaction.direction.in_(("inbound", "outbound")),
    )


def taking_part() -> ColumnElement[bool]:
    return InteractionParticipant.response_status.is_(None) | (
        InteractionParticipant.response_status != "declined"
    )


def _among(column: Any, ids: Sequence[int], span: bool) -> ColumnElement[bool]:
    among: ColumnElement[bool] = column.between(ids[0], ids[-1]) if span else column.in_(ids)
    return among


def _contact_pairs(ids: Sequence[int], span: bool) -> Select[int | None, int]:
    p = InteractionParticipant
    return (
        select(p.contact_id.label("subject"), p.interaction_id.label("interaction"))
        .where(_among(p.contact_id, ids, span), taking_part())
        .distinct()
    )


def _company_pairs(ids: Sequence[int], span: bool) -> Select[int | None, int]:
    p = InteractionParticipant
    return (
        select(Contact.company_id.label("subject"), p.interaction_id.label("interaction"))
        .join(Contact, Contact.id == p.contact_id)
        .where(_among(Contact.company_id, ids, span), taking_part())
        .distinct()
    )


def _compute(
    session: Session, pairs_of: Pairs, ids: Sequence[int], day: date, *, span: bool = False
) -> list[dict[str, Any]]:
    """The rows of ``ids`` (sorted; with ``span``, the subjects between the first and the
    last are read too, and left out)."""
    end = end_of(day)
    pairs = pairs_of(ids, span).subquery()
    rows = {i: _empty(day) for i in ids}
    for subject, *figures in session.execute(_counts_query(pairs, end)):
        if subject in rows:
            rows[subject].update(zip(COUNT_COLUMNS, (int(n or 0) for n in figures), strict=True))
    _first_and_last(session, pairs, end, rows)
    _teammates(session, pairs, end, rows)
    for row in rows.values():
        derive(row)
    return [{"subject": i, **row} for i, row in rows.items()]


def derive(row: dict[str, Any]) -> None:
    """What follows from the counts and the team: strength, level, trend, closest teammate."""
    counts = _counts(row)
    row["strength"] = rules.strength(counts)
    row["level"] = rules.level(row["strength"])
    row["trend"] = rules.trend(counts)
    row["closest_teammate"] = rules.closest(row["team"])
    row["teammates"] = len(row["team"])


def end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=timezone.utc)


def _empty(day: date) -> dict[str, Any]:
    return {
        "as_of": day,
        **dict.fromkeys(COUNT_COLUMNS, 0),
        "first_at": None,
        "last_at": None,
        "first_interaction_id": None,
        "last_interaction_id": None,
        "closest_teammate": None,
        "teammates": 0,
        "team": {},
    }


def _counts_query(pairs: Any, end: datetime) -> Select[Any]:
    def within(start: datetime, *also: ColumnElement[bool]) -> Any:
        return func.sum(case((and_(Interaction.occurred_at >= start, *also), 1), else_=0))

    email, meeting = Interaction.kind == "email", Interaction.kind == "meeting"
    inbound, outbound = Interaction.direction == "inbound", Interaction.direction == "outbound"
    columns = []
    for days in rules.WINDOWS:
        start = end - timedelta(days=days)
        columns += [
            within(start, email, inbound),
            within(start, email, outbound),
            within(start, meeting),
        ]
    recent = end - timedelta(days=30)
    columns.append(
        within(recent - timedelta(days=rules.TREND_BASELINE_DAYS), Interaction.occurred_at < recent)
    )
    return (
        select(pairs.c.subject, *columns)
        .join(Interaction, Interaction.id == pairs.c.interaction)
        .where(counted(), Interaction.occurred_at < end)
        .group_by(pairs.c.subject)
    )


def _first_and_last(
    session: Session, pairs: Any, end: datetime, rows: dict[int, dict[str, Any]]
) -> None:
    def ranked(*order: Any) -> Any:
        return func.row_number().over(partition_by=pairs.c.subject, order_by=order)

    numbered = (
        select(
            pairs.c.subject,
            Interaction.id,
            Interaction.occurred_at,
            ranked(Interaction.occurred_at, Interaction.id).label("a"),
            ranked(Interaction.occurred_at.desc(), Interaction.id.desc()).label("d"),
        )
        .join(Interaction, Interaction.id == pairs.c.interaction)
        .where(counted(), Interaction.occurred_at < end)
        .subquery()
    )
    query = select(
        numbered.c.subject, numbered.c.id, numbered.c.occurred_at, numbered.c.a, numbered.c.d
    ).where((numbered.c.a == 1) | (numbered.c.d == 1))
    for subject, interaction_id, at, a, d in session.execute(query):
        if subject not in rows:
            continue
        if a == 1:
            rows[subject].update(first_at=at, first_interaction_id=interaction_id)
        if d == 1:
            rows[subject].update(last_at=at, last_interaction_id=interaction_id)


def _reply_medians(session: Session, among: Among, end: datetime) -> tuple[int | None, int | None]:
    """The median reply times each way of one subject (``among`` its participant rows), over
    the newest :data:`REPLY_SAMPLE` messages of its threads within 365 days, read newest
    first from the participants' history index: a page view reads a bounded number of
    rows, however busy the customer. (An email has no answers to decline, so every
    participant of one takes part.)"""
    window = {**among.params, "end": end, "since": end - timedelta(days=365)}
    mail = [
        rules.ThreadMessage(thread, at, direction == "outbound")
        for thread, at, direction in session.execute(
            _reply_sample(among.company, REPLY_SAMPLE), window
        )
    ]
    if not mail:
        return None, None
    ours, theirs = rules.reply_times(mail)
    return rules.median_seconds(ours), rules.median_seconds(theirs)


_END: BindParameter[datetime] = bindparam("end")
_SINCE: BindParameter[datetime] = bindparam("since")


@cache
def _reply_sample(company: bool, sample: int) -> Select[Any]:
    at = InteractionParticipant.occurred_at
    window = subject_condition(company) & (at < _END) & (at >= _SINCE)
    newest = newest_ids(Viewer.cli(), window).subquery()
    return (
        select(Interaction.thread, newest.c.occurred_at, Interaction.direction)
        .join(Interaction, Interaction.id == newest.c.interaction_id)
        .where(counted(), Interaction.kind == "email", Interaction.thread.is_not(None))
        .order_by(newest.c.occurred_at.desc(), newest.c.interaction_id.desc())
        .limit(sample)
    )


def _teammates(
    session: Session, pairs: Any, end: datetime, rows: dict[int, dict[str, Any]]
) -> None:
    """Each subject's teammates in 365 days: interactions and the last one's time."""
    team = sorted(team_of(session))
    if not team:
        return
    mate = InteractionParticipant.__table__.alias("mate")
    count = func.count(func.distinct(Interaction.id))
    last = func.max(Interaction.occurred_at)
    query = (
        select(pairs.c.subject, mate.c.email, count, last)
        .join(Interaction, Interaction.id == pairs.c.interaction)
        .join(mate, mate.c.interaction_id == Interaction.id)
        .where(
            counted(),
            Interaction.occurred_at < end,
            Interaction.occurred_at >= end - timedelta(days=365),
            mate.c.email.in_(team),
        )
        .group_by(pairs.c.subject, mate.c.email)
    )
    for subject, email, n, at in session.execute(query):
        if subject in rows:
            rows[subject]["team"][email] = [n, at.isoformat()]


def write_rows(
    session: Session, model: type[Figures], key: str, rows: list[dict[str, Any]]
) -> None:
    """Rows keyed by ``subject`` written in one multi-row upsert."""
    if not rows:
        return
    table = table_of(model)
    values = [{key: row.pop("subject"), **row} for row in rows]
    statement = insert_for(session, table)
    statement = statement.on_conflict_do_update(
        index_elements=[key],
        set_={name: statement.excluded[name] for name in values[0] if name != key},
    )
    session.execute(statement, values)
