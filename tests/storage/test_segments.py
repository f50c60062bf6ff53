"""Saved segments on both databases: members exactly as the figures say, one query each."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from storage import relationships, segments, tags
from storage.db import session_factory, transaction
from storage.models import (
    AuditLog,
    Company,
    CompanyDomain,
    CompanyFigures,
    Contact,
    ContactEmail,
    ContactFigures,
    Interaction,
    InteractionParticipant,
    utcnow,
)
from storage.segments import SegmentError

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
ALICE = "alice@ours.example"


@dataclass(frozen=True)
class Row:
    """One contact and its figures (None: no figures row at all)."""

    name: str
    level: str | None
    strength: float = 0.0
    idle: int | None = None
    trend: str = "none"
    closest: str | None = None
    company: str | None = "acme.example"


PEOPLE = (
    Row("Ann", "strong", 22.0, idle=2, trend="steady", closest=ALICE),
    Row("Ben", "medium", 7.5, idle=60, trend="cooling", closest=ALICE),
    Row("Cy", "medium", 5.0, idle=45, trend="cooling", closest="bob@ours.example"),
    Row("Di", "weak", 1.2, idle=100, trend="cooling", company="globex.example"),
    Row("Ed", "strong", 16.0, idle=44, trend="warming", closest="ALICE@ours.example"),
    Row("Flo", None, company=None),
    Row("Gus", "none", 0.0, idle=None, company="globex.example"),
)


@pytest.fixture
def people(engine: Engine) -> Iterator[dict[str, int]]:
    """The contacts of :data:`PEOPLE` by name, Ann, Ben, Ed and Gus tagged ``customer``."""
    with transaction(session_factory(engine)) as session:
        companies = {
            domain: Company(
                name=domain.split(".")[0].title(), domains=[CompanyDomain(domain=domain)]
            )
            for domain in ("acme.example", "globex.example")
        }
        ids: dict[str, int] = {}
        for row in PEOPLE:
            contact = Contact(display_name=row.name, company=companies.get(row.company or ""))
            contact.emails.append(ContactEmail(email=f"{row.name.lower()}@customer.example"))
            session.add(contact)
            session.flush()
            ids[row.name] = contact.id
            if row.level is not None:
                session.add(_figures(ContactFigures, contact_id=contact.id, row=row))
        session.flush()
        acme = companies["acme.example"].id
        session.add(
            _figures(
                CompanyFigures, company_id=acme, row=Row("Acme", "strong", 30.0, 1, closest=ALICE)
            )
        )
        tags.add_tag(
            session, "contact", [ids[n] for n in ("Ann", "Ben", "Ed", "Gus")], "Customer",
            source="user:test", actor="user:test",
        )  # fmt: skip
        ids["acme"], ids["globex"] = acme, companies["globex.example"].id
    yield ids


def _figures(model: Any, *, row: Row, **key: int) -> Any:
    last = None if row.idle is None else NOW - timedelta(days=row.idle, hours=1)
    return model(
        **key,
        as_of=date(2026, 6, 1),
        last_at=last,
        first_at=last,
        strength=row.strength,
        level=row.level,
        trend=row.trend,
        closest_teammate=row.closest,
    )


def _names(session: Session, segment: Any, ids: dict[str, int], **kwargs: Any) -> list[str]:
    by_id = {ids[row.name]: row.name for row in PEOPLE}
    return [by_id[m.id] for m in segments.members(session, segment, now=NOW, **kwargs)]


CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["Ann", "Ed", "Ben", "Cy", "Di", "Flo", "Gus"]),
    ({"level_at_least": "medium"}, ["Ann", "Ed", "Ben", "Cy"]),
    ({"level_at_least": "none"}, ["Ann", "Ed", "Ben", "Cy", "Di", "Flo", "Gus"]),
    ({"strength_at_least": 7.5}, ["Ann", "Ed", "Ben"]),
    ({"idle_days_at_least": 45}, ["Ben", "Cy", "Di", "Flo", "Gus"]),
    ({"idle_days_at_most": 44}, ["Ann", "Ed"]),
    ({"trend": "cooling"}, ["Ben", "Cy", "Di"]),
    ({"trend": "none"}, ["Flo", "Gus"]),
    ({"tag": " CUSTOMER "}, ["Ann", "Ed", "Ben", "Gus"]),
    ({"closest_teammate": "Alice@Ours.example"}, ["Ann", "Ed", "Ben"]),
    ({"company_domain": "globex.example"}, ["Di", "Gus"]),
    (
        {"tag": "customer", "level_at_least": "medium", "idle_days_at_least": 45},
        ["Ben"],
    ),
]


@pytest.mark.parametrize(
    ("definition", "expected"), CASES, ids=[",".join(sorted(d)) or "everyone" for d, _ in CASES]
)
def test_members_are_exactly_those_the_figures_say(
    engine: Engine, people: dict[str, int], definition: dict[str, Any], expected: list[str]
) -> None:
    with transaction(session_factory(engine)) as session:
        segment = segments.add_segment(session, "s", "contact", definition, actor="user:ann")
        assert _names(session, segment, people) == expected
        assert segments.count(session, segment, now=NOW) == len(expected)
        ids: list[int] = list(session.scalars(segments.member_ids(segment, now=NOW)))
        assert sorted(ids) == sorted(people[n] for n in expected)


def test_members_carry_their_figures_and_page(engine: Engine, people: dict[str, int]) -> None:
    with transaction(session_factory(engine)) as session:
        segment = segments.add_segment(
            session, "customers", "contact", {"tag": "customer"}, actor="user:ann"
        )
        first, second = segments.members(session, segment, limit=2, now=NOW)
        assert (first.name, first.email, first.domain) == (
            "Ann",
            "ann@customer.example",
            "acme.example",
        )
        assert (first.level, first.strength, first.trend, first.idle_days) == (
            "strong",
            22.0,
            "steady",
            2,
        )
        assert first.closest_teammate == ALICE
        assert first.last_at == NOW - timedelta(days=2, hours=1)
        assert second.name == "Ed"
        assert _names(session, segment, people, limit=2, offset=2) == ["Ben", "Gus"]
        gus = segments.members(session, segment, offset=3, now=NOW)[0]
        assert (gus.last_at, gus.idle_days, gus.level) == (None, None, "none")


def test_one_query_per_read(engine: Engine, people: dict[str, int]) -> None:
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(args[2])

    with transaction(session_factory(engine)) as session:
        segment = segments.add_segment(
            session, "big", "contact", {"level_at_least": "weak"}, actor="user:ann"
        )
        event.listen(engine, "before_cursor_execute", seen)
        try:
            assert len(segments.members(session, segment, now=NOW)) == 5
        finally:
            event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1


def test_companies_a_teammate_owns(engine: Engine, people: dict[str, int]) -> None:
    with transaction(session_factory(engine)) as session:
        mine = segments.add_segment(
            session, "alice-companies", "company", {"closest_teammate": ALICE}, actor="user:ann"
        )
        (acme,) = segments.members(session, mine, now=NOW)
        assert (acme.id, acme.name, acme.domain, acme.email) == (
            people["acme"],
            "Acme",
            "acme.example",
            None,
        )
        idle = segments.add_segment(
            session, "idle", "company", {"idle_days_at_least": 30}, actor="user:ann"
        )
        assert [m.id for m in segments.members(session, idle, now=NOW)] == [people["globex"]]


BAD = [
    ({"colour": "red"}, "colour: not a segment condition"),
    ({"level_at_least": "huge"}, "level_at_least: 'huge' is not one of none, weak, medium, strong"),
    ({"trend": "up"}, "trend: 'up' is not one of"),
    ({"idle_days_at_least": -1}, "idle_days_at_least:"),
    ({"idle_days_at_least": "soon"}, "idle_days_at_least:"),
    ({"strength_at_least": "nan"}, "strength_at_least: Input should be"),
    ({"strength_at_least": -1}, "strength_at_least: Input should be greater than or equal to 0"),
    ({"tag": "  "}, "tag: a tag needs a name"),
    ({"closest_teammate": "alice"}, "closest_teammate: 'alice' is not an email address"),
    ({"company_domain": "acme"}, "company_domain: 'acme' is not a domain"),
]


@pytest.mark.parametrize(("definition", "message"), BAD, ids=[str(d) for d, _ in BAD])
def test_bad_definitions_are_refused_naming_the_key(
    sqlite_engine: Engine, definition: dict[str, Any], message: str
) -> None:
    sessions = session_factory(sqlite_engine)
    with pytest.raises(SegmentError, match="^" + message), transaction(sessions) as session:
        segments.add_segment(session, "bad", "contact", definition, actor="user:ann")
    with Session(sqlite_engine) as session:
        assert segments.list_segments(session) == []


def test_names_subjects_and_removal(engine: Engine, people: dict[str, int]) -> None:
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        cold = {"tag": "customer", "idle_days_at_least": 45}
        segments.add_segment(session, " Cold  customers ", "contact", cold, actor="user:ann")
        for name, subject, message in (
            ("cold customers", "contact", "exists already"),
            ("x", "person", "subject: 'person' is not one of contact, company"),
            ("", "contact", "a segment needs a name"),
            ("a/b", "contact", "a segment name is letters"),
            ("n" * 101, "contact", "at most 100"),
        ):
            with pytest.raises(SegmentError, match=message):
                segments.add_segment(session, name, subject, {}, actor="user:ann")
    with sessions() as session:
        (summary,) = segments.list_segments(session, now=NOW)
        assert (summary.name, summary.subject, summary.members) == ("Cold customers", "contact", 2)
        assert summary.definition == {"tag": "customer", "idle_days_at_least": 45}
        assert summary.created_by == "user:ann"
    with transaction(sessions) as session:
        assert segments.remove_segment(session, "Cold customers", actor="user:ann")
        assert not segments.remove_segment(session, "Cold customers", actor="user:ann")
    with sessions() as session:
        assert segments.list_segments(session) == []
        actions = session.execute(
            select(AuditLog.action, AuditLog.entity).where(AuditLog.entity == "segment")
        ).all()
        assert [tuple(a) for a in actions] == [("add", "segment"), ("remove", "segment")]


def _mail(session: Session, contact: Contact, n: int, days: int, visibility: str) -> None:
    interaction = Interaction(
        kind="email",
        dedupe_key=f"<{contact.id}-{n}@test>",
        occurred_at=utcnow() - timedelta(days=days),
        subject="Renewal",
        direction="inbound" if n % 2 else "outbound",
        thread=f"t{contact.id}",
        visibility=visibility,
    )
    interaction.participants.append(
        InteractionParticipant(contact_id=contact.id, email=contact.emails[0].email, role="from")
    )
    session.add(interaction)


def test_members_from_figures_the_history_gives(engine: Engine) -> None:
    """End to end: mail logged, figures computed by ``storage.relationships``, then read."""
    with transaction(session_factory(engine)) as session:
        people = {}
        for name in ("shared", "private", "silent"):
            contact = Contact(display_name=name)
            contact.emails.append(ContactEmail(email=f"{name}@customer.example"))
            session.add(contact)
            people[name] = contact
        session.flush()
        for n in range(8):
            _mail(session, people["shared"], n, days=3 + n, visibility="shared")
            _mail(session, people["private"], n, days=3 + n, visibility="private")
        session.flush()
        relationships.refresh_stale(session)
        segment = segments.add_segment(
            session, "known", "contact", {"level_at_least": "weak"}, actor="user:ann"
        )
        (member,) = segments.members(session, segment)
        assert (member.name, member.level) == ("shared", "medium")
        assert member.idle_days == 3 and member.strength >= 5
        quiet = segments.add_segment(
            session, "quiet", "contact", {"idle_days_at_least": 30}, actor="user:ann"
        )
        assert sorted(m.name or "" for m in segments.members(session, quiet)) == [
            "private",
            "silent",
        ]
