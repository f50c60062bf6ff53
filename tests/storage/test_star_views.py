"""The analysts' views on both databases: they exist after an upgrade and go with a
downgrade, agree with the tables, leave private threads and message text out, and answer
the join a BI tool sends."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.orm import Session

from storage.db import alembic_config, current_revision, table_names, upgrade
from storage.history import team_of
from storage.models import (
    Contact,
    ContactEmail,
    ContactFigures,
    Interaction,
    InteractionParticipant,
    InteractionSource,
)
from storage.star_views import VIEWS
from tests.support.web import Team, seed_team

EARLY = datetime(2024, 12, 27, 9, 30, tzinfo=timezone.utc)
"""A shared meeting on a Friday, days before an ISO week that starts in the old year."""
EARLIER = datetime(2024, 11, 1, 12, 0, tzinfo=timezone.utc)
"""A private thread before every shared interaction: no view may reach back to it."""


@pytest.fixture
def team(engine: Engine) -> Team:
    """:func:`seed_team`'s team, plus a 45-minute meeting with Dana at two of her addresses
    and one person no contact stands for, a private thread before everything, and Dana's
    relationship figures."""
    seeded = seed_team(engine)
    with Session(engine) as session, session.begin():
        session.add(ContactEmail(contact_id=seeded.dana_id, email="dana.w@acme.example"))
        meeting = Interaction(
            kind="meeting",
            dedupe_key="uid-1@cal",
            occurred_at=EARLY,
            ends_at=EARLY + timedelta(minutes=45),
            subject="Quarterly review",
            summary="Agenda",
            body="Private notes",
            direction="outbound",
            owner="ann@ourteam.example",
        )
        meeting.participants = [
            InteractionParticipant(email="ann@ourteam.example", role="organizer"),
            InteractionParticipant(
                email="dana@acme.example", role="attendee", contact_id=seeded.dana_id
            ),
            InteractionParticipant(
                email="dana.w@acme.example", role="attendee", contact_id=seeded.dana_id
            ),
            InteractionParticipant(email="guest@elsewhere.example", role="attendee"),
        ]
        hidden = Interaction(
            kind="email",
            dedupe_key="<early-private@test>",
            occurred_at=EARLIER,
            subject="Early private",
            direction="inbound",
            visibility="private",
            owner="cat@ourteam.example",
        )
        hidden.participants = [
            InteractionParticipant(
                email="dana@acme.example", role="from", contact_id=seeded.dana_id
            )
        ]
        hidden.sources = [InteractionSource(connector="cat-mail", source_id="early")]
        session.add_all([meeting, hidden])
        session.add(
            ContactFigures(
                contact_id=seeded.dana_id,
                as_of=date(2026, 12, 1),
                last_at=EARLY,
                strength=0.75,
                level="strong",
                trend="up",
            )
        )
    return seeded


def _rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(text(sql), params)]


def _day(value: Any) -> date:
    """A view's day: a ``date`` on PostgreSQL, ISO text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def test_upgrade_creates_the_views_and_downgrade_drops_them(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), "0008")  # the views' own revision, no later one
    tables = table_names(engine)
    assert set(inspect(engine).get_view_names()) == set(VIEWS)
    assert not tables & set(VIEWS)

    command.downgrade(alembic_config(engine), "0007")
    assert current_revision(engine) == "0007"
    assert inspect(engine).get_view_names() == []
    assert table_names(engine) == tables

    upgrade(engine)
    assert set(inspect(engine).get_view_names()) == set(VIEWS)


def test_the_fact_is_one_row_per_shared_interaction_and_outside_contact(
    engine: Engine, team: Team
) -> None:
    with Session(engine) as session:
        team_addresses = team_of(session)
        expected = {
            (interaction_id, contact_id)
            for interaction_id, contact_id, email, visibility in session.execute(
                select(
                    InteractionParticipant.interaction_id,
                    InteractionParticipant.contact_id,
                    InteractionParticipant.email,
                    Interaction.visibility,
                ).join(Interaction)
            )
            if contact_id is not None and email not in team_addresses and visibility != "private"
        }
        private = set(
            session.scalars(select(Interaction.id).where(Interaction.visibility == "private"))
        )
    facts = _rows(engine, "SELECT * FROM fact_interactions")
    assert len(facts) == len(expected) == 4
    assert {(f["interaction_id"], f["contact_id"]) for f in facts} == expected
    assert not private & {f["interaction_id"] for f in facts}
    meeting = next(f for f in facts if f["kind"] == "meeting")
    assert meeting["duration_minutes"] == 45
    assert meeting["teammate"] == "ann@ourteam.example"
    assert _day(meeting["day"]) == EARLY.date()
    assert {f["duration_minutes"] for f in facts if f["kind"] == "email"} == {None}
    dana = [f for f in facts if f["contact_id"] == team.dana_id]
    assert {f["company_id"] for f in dana} == {team.company_id}
    assert {f["teammate"] for f in dana if f["kind"] == "email"} == {team.member}


def test_no_view_carries_message_text(engine: Engine, team: Team) -> None:
    for view in VIEWS:
        columns = {c["name"] for c in inspect(engine).get_columns(view)}
        assert not columns & {"subject", "summary", "body", "thread", "snippet"}, view
        for row in _rows(engine, f"SELECT * FROM {view}"):
            assert not {"Private notes", "Agenda", team.shared_subject} & set(row.values())


def test_dimensions_carry_figures_and_first_addresses(engine: Engine, team: Team) -> None:
    contacts = {r["id"]: r for r in _rows(engine, "SELECT * FROM dim_contacts")}
    dana = contacts[team.dana_id]
    assert (dana["name"], dana["email"], dana["title"]) == (
        "Dana Whitfield",
        "dana@acme.example",
        "CFO",
    )
    assert (dana["level"], dana["strength"], dana["trend"]) == ("strong", 0.75, "up")
    assert contacts[team.hostile_id]["level"] is None
    companies = _rows(engine, "SELECT * FROM dim_companies")
    assert [(c["id"], c["name"], c["domain"]) for c in companies] == [
        (team.company_id, "Acme Widgets", "acme.example")
    ]
    teammates = {r["email"]: r for r in _rows(engine, "SELECT * FROM dim_teammates")}
    assert set(teammates) == {team.admin, team.member, team.other}
    assert teammates[team.admin]["role"] == "admin"
    assert teammates[team.member]["connectors"] == 1


def test_dim_days_covers_every_shared_day_with_iso_calendar(engine: Engine, team: Team) -> None:
    with Session(engine) as session:
        last = session.scalar(
            select(Interaction.occurred_at)
            .where(Interaction.visibility != "private")
            .order_by(Interaction.occurred_at.desc())
        )
    assert last is not None
    days = _rows(engine, "SELECT * FROM dim_days ORDER BY day")
    span = (last.date() - EARLY.date()).days + 1
    assert [_day(d["day"]) for d in days] == [EARLY.date() + timedelta(days=n) for n in range(span)]
    for row in days:
        day = _day(row["day"])
        iso = day.isocalendar()
        assert (row["year"], row["quarter"], row["month"]) == (
            day.year,
            (day.month + 2) // 3,
            day.month,
        )
        assert (row["iso_year"], row["iso_week"], row["weekday"]) == tuple(iso), day
    assert _day(days[3]["day"]) == date(2024, 12, 30)
    assert (days[3]["iso_year"], days[3]["iso_week"]) == (2025, 1)


def test_an_empty_database_has_no_days(engine: Engine) -> None:
    assert _rows(engine, "SELECT * FROM dim_days") == []
    assert _rows(engine, "SELECT * FROM fact_interactions") == []


BI_QUERY = """
SELECT co.name AS company, d.year AS year, d.quarter AS quarter, t.name AS teammate,
    count(*) AS touches, count(DISTINCT f.contact_id) AS people,
    sum(f.duration_minutes) AS meeting_minutes
FROM fact_interactions f
JOIN dim_days d ON d.day = f.day
JOIN dim_contacts c ON c.id = f.contact_id
LEFT JOIN dim_companies co ON co.id = f.company_id
LEFT JOIN dim_teammates t ON t.email = f.teammate
GROUP BY co.name, d.year, d.quarter, t.name
ORDER BY year, quarter, company
"""
"""What a dashboard asks: touches per company, quarter and teammate."""


def test_a_bi_tool_join_answers(engine: Engine, team: Team) -> None:
    with Session(engine) as session:
        bob_dates = [
            at
            for (at,) in session.execute(
                select(Interaction.occurred_at)
                .join(Interaction.participants)
                .join(Contact, Contact.id == InteractionParticipant.contact_id)
                .where(Interaction.owner == team.member, Interaction.visibility != "private")
                .where(Contact.company_id == team.company_id)
            )
        ]
    rows = _rows(engine, BI_QUERY)
    early = (EARLY.year, (EARLY.month + 2) // 3)
    assert rows[0] == {
        "company": "Acme Widgets",
        "year": early[0],
        "quarter": early[1],
        "teammate": "Ann",
        "touches": 1,
        "people": 1,
        "meeting_minutes": 45,
    }
    acme_by_bob = [r for r in rows if r["company"] == "Acme Widgets" and r["teammate"] == "Bob"]
    assert sum(r["touches"] for r in acme_by_bob) == len(bob_dates) == 2
    hostile = [r for r in rows if r["company"] is None]
    assert [(r["teammate"], r["touches"]) for r in hostile] == [("Bob", 1)]
