"""The reports, figure by figure, on a hand-built history, on SQLite and PostgreSQL.

Bob and Cat sell; Ann administers and organises one meeting. Over the last
two weeks Dana (Acme) and Bob trade four emails and meet with Cat and Ann;
this week Erin (Beta) writes to Cat, Bob writes to Erin, and Dana writes to
Cat in a private thread only Cat may read. Fay (Gamma) and Gus (Delta) were
busy a month and more ago and have gone quiet: they are cooling. Epsilon
has a contact and no history at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from storage import reports
from storage.connector_days import record
from storage.db import upgrade
from storage.ingest import (
    BatchWrite,
    InteractionRecord,
    NewContact,
    ParticipantRecord,
    write_batch,
)
from storage.models import Contact, ContactEmail, SyncState, utcnow
from storage.users import add_user, get_user, viewer_of
from storage.visibility import Viewer

ANN, BOB, CAT = (f"{name}@ourteam.example" for name in ("ann", "bob", "cat"))
DANA, ERIN, FAY, GUS = (
    "dana@acme.example",
    "erin@beta.example",
    "fay@gamma.example",
    "gus@delta.example",
)


@dataclass(frozen=True)
class History:
    today: date
    last_week: date
    this_week: date


def _at(day: date, minutes: int = 0) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc) + timedelta(minutes=minutes)


class _Mail:
    """Records for one batch, numbered as they are made."""

    def __init__(self) -> None:
        self.records: list[InteractionRecord] = []

    def email(
        self,
        mailbox: str,
        sender: str,
        to: str,
        at: datetime,
        thread: str,
        *,
        private: bool = False,
    ) -> None:
        outbound = sender.endswith("@ourteam.example")
        self._add(
            "email",
            mailbox,
            (ParticipantRecord(sender, "", "from"), ParticipantRecord(to, "", "to")),
            at,
            thread,
            "outbound" if outbound else "inbound",
            private,
        )

    def meeting(self, mailbox: str, people: Sequence[str], at: datetime) -> None:
        roles = ("organizer", *("attendee" for _ in people[1:]))
        participants = tuple(
            ParticipantRecord(p, "", r) for p, r in zip(people, roles, strict=True)
        )
        self._add("meeting", mailbox, participants, at, f"uid-{len(self.records)}", "outbound")

    def _add(
        self,
        kind: str,
        mailbox: str,
        participants: tuple[ParticipantRecord, ...],
        at: datetime,
        thread: str,
        direction: str,
        private: bool = False,
    ) -> None:
        n = len(self.records)
        self.records.append(
            InteractionRecord(
                kind=kind,
                dedupe_key=f"<r{n}@test>",
                occurred_at=at,
                direction=direction,
                connector=f"{mailbox.split('@')[0]}-mail",
                source_id=str(n),
                participants=participants,
                subject=f"subject {n}",
                thread=thread,
                visibility="private" if private else "shared",
                owner=mailbox,
            )
        )


def _people() -> list[NewContact]:
    domains = {DANA: "Acme", ERIN: "Beta", FAY: "Gamma", GUS: "Delta"}
    people = [NewContact(e, e.split("@")[1], name) for e, name in domains.items()]
    return [*people, NewContact("hal@epsilon.example", "epsilon.example", "Epsilon")]


def seed(engine: Engine) -> History:
    upgrade(engine)
    today = utcnow().date()
    this_week = today - timedelta(days=today.weekday())
    last_week = this_week - timedelta(weeks=1)
    mail = _Mail()
    # Last week: Dana and Bob, two replies (2 h and 1 h), and a meeting with Cat and Ann.
    mail.email(BOB, DANA, BOB, _at(last_week, 60), "t1")
    mail.email(BOB, BOB, DANA, _at(last_week, 180), "t1")
    mail.email(BOB, DANA, BOB, _at(last_week, 240), "t1")
    mail.email(BOB, BOB, DANA, _at(last_week, 300), "t1")
    mail.meeting(BOB, (BOB, DANA, CAT, ANN), _at(last_week + timedelta(days=1)))
    # This week: Erin waits for Cat; Bob writes to Erin; a private thread of Cat's.
    mail.email(CAT, ERIN, CAT, _at(this_week, 1), "t2")
    mail.email(BOB, BOB, ERIN, _at(this_week, 2), "t4")
    mail.email(CAT, DANA, CAT, _at(this_week, 3), "t3", private=True)
    # A month and more ago: Fay and Bob (two each way), Gus to Cat (three).
    for n, days in enumerate((40, 45, 50, 55)):
        sender, to = (FAY, BOB) if n % 2 else (BOB, FAY)
        mail.email(BOB, sender, to, _at(today - timedelta(days=days)), "t5")
    for days in (50, 52, 54):
        mail.email(CAT, GUS, CAT, _at(today - timedelta(days=days)), f"t6-{days}")
    with Session(engine) as session, session.begin():
        for name, role in (("ann", "admin"), ("bob", "member"), ("cat", "member")):
            address = f"{name}@ourteam.example"
            add_user(session, address, role=role, actor="user:test")
            session.add(SyncState(connector=f"{name}-mail", kind="mbox", account=address))
        session.flush()
        write_batch(
            session,
            BatchWrite(interactions=mail.records, new_contacts=_people()),
            propagate_deletes=False,
        )
        dana = session.scalar(select(ContactEmail.contact_id).where(ContactEmail.email == DANA))
        session.execute(
            update(Contact).where(Contact.id == dana).values(created_at=_at(last_week, 30))
        )
    return History(today, last_week, this_week)


def _viewer(engine: Engine, email: str) -> Viewer:
    with Session(engine) as session:
        user = get_user(session, email)
        assert user is not None
        return viewer_of(user)


def _figures(result: reports.Activity) -> dict[tuple[str, date], tuple[object, ...]]:
    return {
        (r.teammate, r.period): (
            r.emails_sent,
            r.emails_received,
            r.meetings,
            r.new_contacts,
            r.median_reply_seconds,
            r.unanswered,
        )
        for r in result.rows
    }


def test_activity_per_teammate_and_week(engine: Engine) -> None:
    h = seed(engine)
    with Session(engine) as session:
        result = reports.activity(session, Viewer.cli(), period="week", periods=2, today=h.today)
    assert result.periods == (h.last_week, h.this_week)
    assert result.teammates == (ANN, BOB, CAT)
    assert _figures(result) == {
        (ANN, h.last_week): (0, 0, 1, 1, None, None),
        (ANN, h.this_week): (0, 0, 0, 0, None, 0),
        (BOB, h.last_week): (2, 2, 1, 1, 5400, None),
        (BOB, h.this_week): (1, 0, 0, 1, None, 0),
        (CAT, h.last_week): (0, 0, 1, 1, None, None),
        (CAT, h.this_week): (0, 1, 0, 1, None, 1),
    }


@pytest.mark.parametrize(
    ("reader", "received", "waiting"),
    [("bob", 1, 1), ("cat", 2, 2), ("cli-all", 2, 2)],
    ids=["a-member-not-its-owner", "its-owner", "cli-include-private"],
)
def test_private_threads_count_only_for_those_who_may_read_them(
    engine: Engine, reader: str, received: int, waiting: int
) -> None:
    h = seed(engine)
    viewer = (
        Viewer.cli(include_private=True)
        if reader == "cli-all"
        else _viewer(engine, f"{reader}@ourteam.example")
    )
    with Session(engine) as session:
        result = reports.activity(session, viewer, period="week", periods=2, today=h.today)
    cat = _figures(result)[CAT, h.this_week]
    assert (cat[1], cat[5]) == (received, waiting)


def test_periods_of_days_and_months() -> None:
    today = date(2026, 3, 4)
    assert reports.period_starts("day", 3, today) == [date(2026, 3, d) for d in (2, 3, 4)]
    assert reports.period_starts("week", 2, today) == [date(2026, 2, 23), date(2026, 3, 2)]
    assert reports.period_starts("month", 4, today) == [
        date(2025, 12, 1),
        date(2026, 1, 1),
        date(2026, 2, 1),
        date(2026, 3, 1),
    ]
    with pytest.raises(ValueError, match="period"):
        reports.period_starts("year", 1, today)


def test_cooling_relationships_strongest_first(engine: Engine) -> None:
    h = seed(engine)
    with Session(engine) as session:
        found = reports.cooling(session, Viewer.cli(), today=h.today)
        companies = reports.cooling(session, Viewer.cli(), companies=True, today=h.today)
    assert [(c.email, c.before_90, c.recent_30, c.closest_teammate) for c in found] == [
        (FAY, 4, 0, BOB),
        (GUS, 3, 0, CAT),
    ]
    assert [c.strength for c in found] == [3.0, 1.5]
    assert [c.days_idle for c in found] == [40, 50]
    assert (
        found[0].explanation == "weak: 4 two-way emails and 0 meetings in 90 days, last 40 days ago"
    )
    assert found[1].explanation == (
        "weak: 3 emails received, none sent and 0 meetings in 90 days, last 50 days ago"
    )
    assert [(c.kind, c.name, c.email) for c in companies] == [
        ("company", "Gamma", "gamma.example"),
        ("company", "Delta", "delta.example"),
    ]
    with Session(engine) as session:
        assert len(reports.cooling(session, Viewer.cli(), limit=1, today=h.today)) == 1


def test_coverage_the_companies_one_teammate_knows(engine: Engine) -> None:
    h = seed(engine)
    with Session(engine) as session:
        result = reports.coverage(session, Viewer.cli(), today=h.today)
    assert [
        (c.company, c.domain, c.teammate, c.interactions_365, c.strength) for c in result.companies
    ] == [
        ("Gamma", "gamma.example", BOB, 4, 3.0),
        ("Delta", "delta.example", CAT, 3, 1.5),
    ]
    assert result.by_teammates == {"0": 1, "1": 2, "2": 1, "3+": 1}


def test_sources_per_connector_and_day(engine: Engine) -> None:
    h = seed(engine)
    yesterday = h.today - timedelta(days=1)
    with Session(engine) as session, session.begin():
        record(session, "bob-mail", yesterday, {"items": 5, "logged": 3, "skipped:bulk": 2})
        record(session, "bob-mail", h.today, {"items": 2, "logged": 2})
        record(session, "cat-mail", h.today, {"items": 1, "quarantined": 1})
        record(session, "bob-mail", h.today - timedelta(days=40), {"items": 99})
    with Session(engine) as session:
        result = reports.sources(session, days=30, today=h.today)
    assert len(result.days) == 30 and result.days[-1] == h.today
    assert [(d.connector, d.day, d.measures) for d in result.per_day] == [
        ("bob-mail", yesterday, {"items": 5, "logged": 3, "skipped:bulk": 2}),
        ("bob-mail", h.today, {"items": 2, "logged": 2}),
        ("cat-mail", h.today, {"items": 1, "quarantined": 1}),
    ]
    assert [(t.connector, t.measures, t.interactions) for t in result.totals] == [
        ("bob-mail", {"items": 7, "logged": 5, "skipped:bulk": 2}, 10),
        ("cat-mail", {"items": 1, "quarantined": 1}, 5),
    ]
