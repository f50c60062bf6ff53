"""Contacts fill themselves in from the signatures of the mail they send, through the real
pipeline and storage (SQLite and PostgreSQL): the newest signature wins, a late backfill
does not, a person's edit beats them all, and nothing is read where it must not be."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.memory import MemoryConnector
from storage.db import session_factory
from storage.edits import set_fields
from storage.models import Contact, ContactEmail, Observation
from tests.agent.pipeline.test_pipeline import ME, mail, policy, run
from tests.support.mailbuilder import message

ANN = "ann@acme.example"
BERLIN = timezone(timedelta(hours=2))


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    yield session_factory(engine)


def from_ann(n: int, title: str, phone: str, day: int, **kwargs: object) -> bytes:
    body = (
        "Thanks, the offer looks good.\n\n"
        f"Best regards,\nAnn Lee\n{title}\nAcme Robotics GmbH\n"
        f"Tel: {phone}\nwww.acme.example\n"
    )
    return message(
        sender=f"Ann Lee <{ANN}>",
        to=[ME],
        subject="Re: Offer",
        body=str(kwargs.get("body", body)),
        message_id=f"<s{n}@acme.example>",
        date=datetime(2026, 3, day, 9, 0, tzinfo=BERLIN),
    )


def sync(sessions: sessionmaker[Session], name: str, *raws: bytes, **agent: Any) -> None:
    """One pass of connector ``name`` over ``raws``, each message its own source id."""
    pol = policy(name, auto_create_contacts="sent_and_received", **agent)
    items: list[Any] = [mail(zlib.crc32(raw), raw) for raw in raws]
    run(sessions, MemoryConnector(name, items), pol)


def ann(session: Session) -> Contact:
    contact = session.scalar(select(Contact).join(ContactEmail).where(ContactEmail.email == ANN))
    assert contact is not None
    return contact


def facts(session: Session, field: str) -> set[tuple[str, str]]:
    rows = session.execute(
        select(Observation.value, Observation.source).where(Observation.field == field)
    )
    return {(value, source) for value, source in rows}


def test_a_signature_fills_in_the_sender(sessions: sessionmaker[Session]) -> None:
    sync(sessions, "alice-mail", from_ann(1, "Sales Director", "+49 89 1234567", day=2))
    with sessions() as session:
        contact = ann(session)
        assert contact.title == "Sales Director"
        assert contact.phone == "+49 89 1234567"
        assert contact.extra == {
            "company_name": "Acme Robotics GmbH",
            "website": "acme.example",
            "time_zone": "UTC+02:00",
        }
        assert facts(session, "title") == {("Sales Director", "alice-mail")}
        observed = session.scalar(
            select(Observation.observed_at).where(Observation.field == "title")
        )
        assert observed is not None
        assert observed.replace(tzinfo=timezone.utc) == datetime(
            2026, 3, 2, 7, 0, tzinfo=timezone.utc
        )


def test_the_newest_signature_wins_and_a_backfill_does_not(
    sessions: sessionmaker[Session],
) -> None:
    sync(sessions, "alice-mail", from_ann(1, "Sales Director", "+49 89 1234567", day=2))
    sync(sessions, "bob-mail", from_ann(2, "VP Sales", "+49 171 7654321", day=9))
    sync(sessions, "backfill", from_ann(3, "Sales Intern", "+49 30 1111111", day=1))
    with sessions() as session:
        contact = ann(session)
        assert contact.title == "VP Sales"
        assert {value for value, _ in facts(session, "phone")} == {
            "+49 89 1234567",
            "+49 171 7654321",
            "+49 30 1111111",
        }


def test_a_persons_edit_beats_a_later_signature(sessions: sessionmaker[Session]) -> None:
    sync(sessions, "alice-mail", from_ann(1, "Sales Director", "+49 89 1234567", day=2))
    outcome = set_fields(sessions, ANN, {"title": "Chief Revenue Officer"}, user="alice")
    assert outcome is not None
    sync(sessions, "bob-mail", from_ann(2, "VP Sales", "+49 89 1234567", day=20))
    with sessions() as session:
        assert ann(session).title == "Chief Revenue Officer"
        assert ("VP Sales", "bob-mail") in facts(session, "title")


def test_a_metadata_mailbox_reads_no_signature(sessions: sessionmaker[Session]) -> None:
    sync(
        sessions,
        "alice-mail",
        from_ann(1, "Sales Director", "+49 89 1234567", day=2),
        visibility="metadata",
    )
    with sessions() as session:
        contact = ann(session)
        assert contact.title is None and contact.phone is None
        assert contact.extra == {"time_zone": "UTC+02:00"}


def test_quoted_history_and_my_own_signature_are_not_read(
    sessions: sessionmaker[Session],
) -> None:
    quoted = (
        "Yes, let's do that.\n\nAnn\n\n"
        "On Mon, 2 Mar 2026 at 09:00, Alice <alice@northwind.example> wrote:\n"
        "> Alice Smith\n> Account Executive\n> Tel: +1 415 555 0100\n"
    )
    mine = message(
        sender=f"Alice Smith <{ME}>",
        to=[f"Ann Lee <{ANN}>"],
        body="Here is the offer.\n\nAlice Smith\nAccount Executive\nTel: +1 415 555 0100\n",
        message_id="<mine@northwind.example>",
    )
    sync(sessions, "alice-mail", mine, from_ann(1, "", "", day=3, body=quoted))
    with sessions() as session:
        contact = ann(session)
        assert contact.title is None and contact.phone is None
        assert facts(session, "title") == set() and facts(session, "phone") == set()
        assert session.scalar(select(ContactEmail).where(ContactEmail.email == ME)) is None
