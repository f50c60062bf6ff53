"""Erasing a person and applying the never-log list retroactively, on both databases.

The data is logged by the real pipeline; every test then compares the whole
database before and after, so anything touched that should not have been
shows up as a difference.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from agent.cli.privacy import listed_target, ours_predicate
from agent.pipeline.filters import NeverLog
from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import Settings, parse_settings
from connectors.memory import MemoryConnector
from connectors.records import Address, Attendee, CalendarEvent, Item, MailMessage
from storage.db import session_factory, transaction
from storage.erase import (
    Ours,
    erase,
    fate,
    forget_target,
    plan_erasure,
)
from storage.models import (
    AuditLog,
    Conflict,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    Observation,
)
from storage.search import search
from tests.support.db_snapshot import diff, snapshot
from tests.support.mailbuilder import message

ME = "alice@northwind.example"
ANN = "Ann Lee <ann@acme.example>"
BOB = "Bob Stone <bob@acme.example>"
CAROL = "Carol <carol@northwind.example>"
TESS = "Tess Teller <tess@mybank.example>"
HR = "HR <hr@northwind.example>"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _day(n: int) -> datetime:
    return START + timedelta(days=n)


def _mail(
    key: str, day: int, sender: str, to: Sequence[str], cc: Sequence[str] = ()
) -> MailMessage:
    raw = message(sender=sender, to=to, cc=cc, subject=key, message_id=f"<{key}@x>", date=_day(day))
    return MailMessage(key, ME, raw)


def _meeting(key: str, day: int, *guests: str) -> CalendarEvent:
    attendees = tuple(
        Attendee(Address(email, name), "accepted")
        for name, email in (g.removesuffix(">").split(" <") for g in guests)
    )
    return CalendarEvent(
        source_id=key,
        calendar=ME,
        owner=ME,
        uid=f"{key}@northwind.example",
        original_start=_day(day),
        start=_day(day),
        end=_day(day) + timedelta(hours=1),
        summary=key,
        organizer=Address(ME, "Alice"),
        attendees=attendees,
    )


ITEMS: list[Item] = [
    _mail("offer", 0, ME, [ANN]),
    _mail("reply", 1, ANN, [ME], [BOB]),
    _mail("pricing", 2, ME, [BOB]),
    _mail("team", 3, ME, [ANN], [CAROL]),
    _mail("loan", 4, ME, [TESS]),
    _mail("loan-and-pricing", 5, ME, [TESS, BOB]),
    _mail("hr", 6, HR, [ME], [BOB]),
    _meeting("sync-ann-bob", 7, ANN, BOB),
    _meeting("sync-ann", 8, ANN),
]
"""Everyone is written to first, so each outside address becomes a contact ("sent")."""


def _settings(**agent: Any) -> Settings:
    return parse_settings({"agent": {"internal_domains": ["northwind.example"], **agent}}, None)


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    factory = session_factory(engine)
    settings = _settings()
    policy = Policy.from_settings(settings, "alice-mail", ME)
    result = sync_connector(factory, MemoryConnector("alice-mail", list(ITEMS)), policy, kind="t")
    assert result.status == "ok" and result.logged == len(ITEMS), result
    with transaction(factory) as session:
        ann = _contact_id(session, "ann@acme.example")
        session.add(Conflict(contact_id=ann, field="title", values={"a": "CTO", "b": "CEO"}))
    return factory


@pytest.fixture
def ours() -> Ours:
    return ours_predicate(_settings())


def _contact_id(session: Session, email: str) -> int:
    contact_id = session.scalar(select(ContactEmail.contact_id).where(ContactEmail.email == email))
    assert contact_id is not None, email
    return contact_id


def _interaction_ids(session: Session) -> dict[str, int]:
    return {s: i for s, i in session.execute(select(Interaction.subject, Interaction.id))}


def _timeline(sessions: sessionmaker[Session]) -> dict[str, list[str]]:
    """Subject -> the participants' addresses, as they now are."""
    with sessions() as session:
        rows = session.execute(
            select(Interaction.subject, InteractionParticipant.email)
            .join(InteractionParticipant)
            .order_by(InteractionParticipant.email)
        )
        timeline: dict[str, list[str]] = {}
        for subject, email in rows:
            timeline.setdefault(subject, []).append(email)
    return timeline


def _audit_text(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        rows = session.scalars(select(AuditLog)).all()
        return json.dumps([(r.entity, r.entity_id, r.before, r.after) for r in rows])


LOGGED = {
    "offer": ["alice@northwind.example", "ann@acme.example"],
    "reply": ["alice@northwind.example", "ann@acme.example", "bob@acme.example"],
    "pricing": ["alice@northwind.example", "bob@acme.example"],
    "team": ["alice@northwind.example", "ann@acme.example", "carol@northwind.example"],
    "loan": ["alice@northwind.example", "tess@mybank.example"],
    "loan-and-pricing": ["alice@northwind.example", "bob@acme.example", "tess@mybank.example"],
    "hr": ["alice@northwind.example", "bob@acme.example", "hr@northwind.example"],
    "sync-ann-bob": ["alice@northwind.example", "ann@acme.example", "bob@acme.example"],
    "sync-ann": ["alice@northwind.example", "ann@acme.example"],
}


def test_forget_erases_the_person_and_nothing_else(
    engine: Engine, sessions: sessionmaker[Session], ours: Ours
) -> None:
    assert _timeline(sessions) == LOGGED
    with sessions() as session:
        ann = _contact_id(session, "ann@acme.example")
        assert ann in {hit.id for hit in search(session, "ann@acme").contacts}
        ids = _interaction_ids(session)
        gone = [ids[k] for k in ("offer", "team", "sync-ann")]  # Ann was the only outsider
        hers = {
            model.__tablename__: {(i,) for i in session.scalars(select(model.id).where(clause))}
            for model, clause in (
                (ContactEmail, ContactEmail.contact_id == ann),
                (Observation, Observation.contact_id == ann),
                (Conflict, Conflict.contact_id == ann),
                (
                    InteractionParticipant,
                    (InteractionParticipant.contact_id == ann)
                    | InteractionParticipant.interaction_id.in_(gone),
                ),
                (InteractionSource, InteractionSource.interaction_id.in_(gone)),
            )
        }
    before = snapshot(engine)

    with transaction(sessions) as session:
        erasure = erase(
            session,
            forget_target(session, "ann@acme.example"),
            ours,
            actor="user:dpo",
            action="forget",
        )

    expected = {
        k: [e for e in v if e != "ann@acme.example"]
        for k, v in LOGGED.items()
        if k not in ("offer", "team", "sync-ann")
    }
    assert _timeline(sessions) == expected
    counts = erasure.counts()
    assert counts | {"audit_entries": 0} == {
        "contacts": 1,
        "emails": 1,
        "observations": 4,  # display, first and last name, and one read from her mail
        "conflicts": 1,
        "participants": 5,
        "interactions_deleted": 3,
        "interactions_trimmed": 2,
        "sources": 3,
        "companies": 0,
        "audit_entries": 0,
    }
    assert counts["audit_entries"] > 0  # the pipeline's own entries about Ann

    changes = diff(before, snapshot(engine))
    figures = {"contact_figures", "company_figures"}  # what her history added up to
    assert changes.keys() - figures == {"contacts", "interactions", "audit_log", *hers}
    assert changes["contact_figures"][:2] == ({(ann,)}, set())
    assert changes["contacts"] == ({(ann,)}, set(), set())
    assert changes["interactions"] == ({(i,) for i in gone}, set(), set())
    for table, rows in hers.items():
        assert changes[table] == (rows, set(), set()), table
    audit_text = _audit_text(sessions)
    assert "ann@acme.example" not in audit_text
    assert "Ann" not in audit_text and "Lee" not in audit_text
    with sessions() as session:
        entries = session.scalars(
            select(AuditLog).where(AuditLog.actor == "user:dpo").order_by(AuditLog.id)
        ).all()
    assert [(e.action, e.entity) for e in entries] == [
        ("forget", "erasure"),
        ("erase", "contact"),
        *[("erase", "interaction")] * 3,
        *[("erase_participants", "interaction")] * 2,
    ]
    assert entries[0].after == counts
    assert entries[1].entity_id == ann
    with sessions() as session:  # nor can search find her (SQLite's index, PostgreSQL's rows)
        found = {
            hit.id for q in ("ann@acme", "ann lee", "acme") for hit in search(session, q).contacts
        }
    assert ann not in found


def test_forgetting_an_address_without_a_contact_removes_only_its_participation(
    sessions: sessionmaker[Session], ours: Ours
) -> None:
    with transaction(sessions) as session:
        target = forget_target(session, "carol@northwind.example")
        erasure = erase(session, target, ours, actor="u", action="forget")
    assert not erasure.contacts and not erasure.deleted
    expected = dict(LOGGED, team=["alice@northwind.example", "ann@acme.example"])
    assert _timeline(sessions) == expected


def test_a_dry_run_changes_nothing_and_a_second_erasure_finds_nothing(
    engine: Engine, sessions: sessionmaker[Session], ours: Ours
) -> None:
    before = snapshot(engine)
    with sessions() as session:
        preview = plan_erasure(session, forget_target(session, "ann@acme.example"), ours)
    assert snapshot(engine) == before

    with transaction(sessions) as session:
        done = erase(
            session, forget_target(session, "ann@acme.example"), ours, actor="u", action="forget"
        )
    assert done.counts() == preview.counts()

    erased = snapshot(engine)
    with transaction(sessions) as session:
        again = erase(
            session, forget_target(session, "ann@acme.example"), ours, actor="u", action="forget"
        )
    assert not again
    assert snapshot(engine) == erased


def test_never_log_applied_afterwards_removes_what_the_pipeline_would_have_skipped(
    engine: Engine, sessions: sessionmaker[Session], ours: Ours
) -> None:
    with sessions() as session:
        bob = session.get(Contact, _contact_id(session, "bob@acme.example"))
        assert bob is not None and bob.last_contacted_at == _day(7)  # the meeting
        tess = _contact_id(session, "tess@mybank.example")
        ids = _interaction_ids(session)
    listed = NeverLog.from_patterns(["*@mybank.example", "hr@northwind.example"])
    before = snapshot(engine)

    with transaction(sessions) as session:
        target = listed_target(session, listed)
        erasure = erase(session, target, ours, actor="user:admin", action="never_log")

    expected = {k: v for k, v in LOGGED.items() if k not in ("loan", "hr")}
    expected["loan-and-pricing"] = ["alice@northwind.example", "bob@acme.example"]
    assert _timeline(sessions) == expected
    assert erasure.counts()["contacts"] == erasure.counts()["companies"] == 1
    assert sorted(erasure.deleted) == sorted([ids["loan"], ids["hr"]])
    changes = diff(before, snapshot(engine))
    assert changes["contacts"][0] == {(tess,)}
    assert len(changes["companies"][0]) == 1 and len(before["companies"]) == 2  # Mybank, Acme
    assert changes["contacts"][2] <= {(bob.id,)}  # he lost an interaction: recomputed
    with sessions() as session:
        assert session.scalar(
            select(Contact.last_contacted_at).where(Contact.id == bob.id)
        ) == _day(7)
    audit_text = _audit_text(sessions)
    for erased in ("mybank", "tess", "Tess", "hr@"):
        assert erased not in audit_text


def test_an_erased_interaction_moves_the_last_contact_of_the_others_back(
    engine: Engine, sessions: sessionmaker[Session], ours: Ours
) -> None:
    """The HR mail is Bob's latest: deleting it (HR is listed) recomputes his last contact."""
    with transaction(sessions) as session:
        for key in ("sync-ann-bob", "sync-ann"):
            session.delete(session.get(Interaction, _interaction_ids(session)[key]))
    listed = NeverLog.from_patterns(["hr@northwind.example"])
    with transaction(sessions) as session:
        bob = _contact_id(session, "bob@acme.example")
        erase(session, listed_target(session, listed), ours, actor="u", action="never_log")
    with sessions() as session:
        contact = session.get(Contact, bob)
        assert contact is not None and contact.last_contacted_at == _day(5)


def _yes(*_: Any) -> bool:
    return True


def _no(*_: Any) -> bool:
    return False


def _domain(domain: str) -> Callable[[str, str | None], bool]:
    return lambda email, _owner: email.endswith("@" + domain)


@pytest.mark.parametrize(
    ("kind", "participants", "vetoes", "ours", "expected"),
    [
        ("email", [("a@us", False), ("x@them", False)], set(), _domain("us"), "keep"),
        ("email", [("a@us", False), ("x@them", True)], set(), _domain("us"), "delete"),
        (
            "email",
            [("a@us", False), ("x@them", True), ("y@them", False)],
            set(),
            _domain("us"),
            "trim",
        ),
        ("email", [("a@us", False), ("b@us", True)], set(), _domain("us"), "trim"),
        ("email", [("a@us", True), ("x@them", False)], {"a@us"}, _domain("us"), "delete"),
        ("meeting", [("a@us", True), ("x@them", False)], {"a@us"}, _domain("us"), "trim"),
        ("email", [("a@us", False), ("x@them", True)], set(), _no, "trim"),
        ("email", [("a@us", False), ("x@them", True)], set(), _yes, "trim"),
        ("email", [("x@them", True)], set(), _no, "delete"),
    ],
    ids=[
        "not-involved",
        "last-outsider",
        "another-outsider-remains",
        "internal-only-loses-a-colleague",
        "listed-address-of-ours-vetoes-mail",
        "listed-address-of-ours-leaves-a-meeting",
        "everyone-external",
        "everyone-ours-nothing-to-lose",
        "alone",
    ],
)
def test_fate(
    kind: str,
    participants: list[tuple[str, bool]],
    vetoes: set[str],
    ours: Ours,
    expected: str,
) -> None:
    assert fate(kind, "a@us", participants, frozenset(vetoes), ours) == expected


@pytest.mark.parametrize(
    ("internal_domains", "owner", "email", "expected"),
    [
        (["northwind.example"], ME, "carol@northwind.example", True),
        (["northwind.example"], ME, "x@eu.northwind.example", True),
        (["northwind.example"], ME, "ann@acme.example", False),
        (["northwind.example"], None, "carol@northwind.example", True),
        ([], ME, "carol@northwind.example", True),
        ([], ME, "ann@acme.example", False),
        ([], "alice@gmail.com", "alice@gmail.com", True),
        ([], "alice@gmail.com", "bob@gmail.com", False),
        ([], None, "carol@northwind.example", False),
    ],
    ids=[
        "internal-domain",
        "internal-subdomain",
        "external",
        "no-owner-configured-domain",
        "unconfigured-owner-company-domain",
        "unconfigured-other-domain",
        "unconfigured-free-mail-owner",
        "unconfigured-free-mail-neighbour",
        "unconfigured-no-owner",
    ],
)
def test_which_side_an_address_is_on(
    internal_domains: list[str], owner: str | None, email: str, expected: bool
) -> None:
    ours = ours_predicate(_settings(internal_domains=internal_domains))
    assert ours(email, owner) is expected
