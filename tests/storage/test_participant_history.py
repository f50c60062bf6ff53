"""A person's history read from their participant rows, whose copies of each interaction's
time and privacy the database keeps equal to it (migration 0010)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from storage import history
from storage.db import make_engine, upgrade
from storage.models import Interaction, InteractionParticipant
from storage.thread_marks import mark_thread
from storage.users import get_user, viewer_of
from tests.support.web import Team, seed_team


def _copies(engine: Engine) -> set[tuple[bool, bool]]:
    """For every participant row: whether its time and its privacy equal its interaction's."""
    with Session(engine) as session:
        rows = session.execute(
            select(
                InteractionParticipant.occurred_at,
                InteractionParticipant.private,
                Interaction.occurred_at,
                Interaction.visibility,
            ).join(Interaction, Interaction.id == InteractionParticipant.interaction_id)
        ).all()
    assert rows
    return {(mine == theirs, private == (v == "private")) for mine, private, theirs, v in rows}


def _subjects(engine: Engine, team: Team, email: str) -> tuple[list[str | None], int]:
    with Session(engine) as session:
        user = get_user(session, email)
        assert user is not None
        line = history.timeline(
            session, viewer_of(user), history.contact_interactions(team.dana_id)
        )
        return [e.subject for e in line.entries], line.hidden


def test_rows_inserted_by_any_writer_carry_their_interactions_time_and_privacy(
    engine: Engine,
) -> None:
    seed_team(engine)  # participants written as mapped objects, without the copies
    assert _copies(engine) == {(True, True)}


def test_a_moved_meeting_and_a_thread_made_private_are_followed_at_once(engine: Engine) -> None:
    team = seed_team(engine)
    renewal = "Renewal terms for next year"
    assert _subjects(engine, team, team.member) == (["Re: " + renewal, renewal], 1)

    with Session(engine) as session, session.begin():
        first = session.scalars(select(Interaction).where(Interaction.subject == renewal)).one()
        first.occurred_at = datetime.now(timezone.utc) + timedelta(hours=1)
    assert _copies(engine) == {(True, True)}
    assert _subjects(engine, team, team.member) == ([renewal, "Re: " + renewal], 1)

    with Session(engine) as session, session.begin():
        bob = get_user(session, team.member)
        assert bob is not None
        thread = session.scalar(select(Interaction.thread).where(Interaction.subject == renewal))
        mark_thread(session, viewer_of(bob), [], "private", thread=thread)
    assert _copies(engine) == {(True, True)}
    assert _subjects(engine, team, team.member) == ([renewal, "Re: " + renewal], 1)
    assert _subjects(engine, team, team.other) == ([team.private_subject], 2)

    with Session(engine) as session, session.begin():
        bob = get_user(session, team.member)
        assert bob is not None
        mark_thread(session, viewer_of(bob), [], "shared", thread=thread)
    assert _copies(engine) == {(True, True)}
    assert _subjects(engine, team, team.other)[1] == 0


def test_a_person_in_two_roles_of_one_interaction_is_listed_once(engine: Engine) -> None:
    team = seed_team(engine)
    with Session(engine) as session, session.begin():
        shared = session.scalars(
            select(Interaction).where(Interaction.subject == team.shared_subject)
        ).one()
        session.add(
            InteractionParticipant(
                interaction_id=shared.id, contact_id=team.dana_id, email="d@acme.example", role="cc"
            )
        )
    subjects, _ = _subjects(engine, team, team.member)
    assert subjects == ["Re: " + team.shared_subject, team.shared_subject]
    with Session(engine) as session:
        bob = get_user(session, team.member)
        assert bob is not None
        known = history.who_knows(
            session, viewer_of(bob), history.contact_interactions(team.dana_id)
        )
        assert [(m.email, m.interactions) for m in known] == [(team.member, 2)]


def test_an_upgrade_fills_the_copies_of_the_rows_already_there(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0009")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO interactions (id, kind, dedupe_key, occurred_at, direction,"
                    " visibility, status, created_at, updated_at) VALUES"
                    " (1, 'email', 'k1', :at, 'inbound', 'private', 'active', :at, :at),"
                    " (2, 'email', 'k2', :later, 'inbound', 'shared', 'active', :at, :at)"
                ),
                {"at": "2026-01-02 03:04:05", "later": "2026-02-02 03:04:05"},
            )
            connection.execute(
                text(
                    "INSERT INTO interaction_participants (interaction_id, email, role) VALUES"
                    " (1, 'a@x.example', 'from'), (2, 'a@x.example', 'from')"
                )
            )
        upgrade(engine)
        assert _copies(engine) == {(True, True)}
    finally:
        engine.dispose()


def test_a_persons_newest_page_is_read_from_the_history_index(engine: Engine) -> None:
    """The plan the database picks for the timeline's ids (told not to scan on PostgreSQL,
    as it would on a table this small)."""
    team = seed_team(engine)
    with Session(engine) as session:
        bob = get_user(session, team.member)
        assert bob is not None
        among = history.contact_interactions(team.dana_id)
        statement = history.newest_ids(viewer_of(bob), among.condition).limit(26).compile(engine)
        values = statement.construct_params(among.params)
        connection = session.connection()
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", values).all()
        else:
            params = tuple(values[name] for name in statement.positiontup or ())
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", params).all()
    assert any("ix_interaction_participants_history" in str(row) for row in plan), plan
    assert not any("Sort" in str(row) or "TEMP B-TREE" in str(row) for row in plan), plan


def test_who_knows_counts_the_newest_interactions_only(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However long a history, a page view counts teammates over a bounded number of the
    newest interactions the reader may see."""
    team = seed_team(engine)
    with Session(engine) as session:
        bob = get_user(session, team.member)
        assert bob is not None
        among = history.contact_interactions(team.dana_id)
        everything = history.who_knows(session, viewer_of(bob), among)
        monkeypatch.setattr(history, "KNOWN_SAMPLE", 1)
        newest = history.who_knows(session, viewer_of(bob), among)
    assert [(m.email, m.interactions) for m in everything] == [(team.member, 2)]
    assert [(m.email, m.interactions) for m in newest] == [(team.member, 1)]
