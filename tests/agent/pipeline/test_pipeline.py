"""The whole mail pipeline into a real database: filter, match, log -- exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.errors import AuthError, TransientError
from connectors.mbox import MboxConnector
from connectors.memory import MemoryConnector
from connectors.records import MailMessage, SourceRemoved
from storage.db import session_factory
from storage.models import (
    CONTRACT_TABLES,
    CompanyDomain,
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    InteractionSource,
    Observation,
    Quarantine,
    SyncState,
)
from tests.support.mailbuilder import message, write_mbox

ME = "alice@northwind.example"
ANN = "Ann Lee <ann@acme.example>"


def settings(**agent: Any) -> Any:
    return parse_settings(
        {
            "agent": {"internal_domains": ["northwind.example"], **agent},
            "privacy": {"never_log": ["*@mybank.example"]},
        },
        None,
    )


def policy(name: str = "alice-mail", mailbox: str = ME, **agent: Any) -> Policy:
    return Policy.from_settings(settings(**agent), name, mailbox)


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    yield session_factory(engine)


def mail(n: int, raw: bytes, mailbox: str = ME) -> MailMessage:
    return MailMessage(f"id-{n}", mailbox, raw)


def run(sessions: sessionmaker[Session], connector: Any, pol: Policy, **kwargs: Any) -> Any:
    return sync_connector(sessions, connector, pol, kind="test", **kwargs)


def count(sessions: sessionmaker[Session], model: Any) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)
            for table in sorted(CONTRACT_TABLES)
        }


CONVERSATION = [
    message(
        sender=f"Alice <{ME}>",
        to=[ANN],
        cc=["Bob Roe <bob@gmail.com>"],
        subject="Pricing",
        body="Hi Ann, here are our prices.",
        message_id="<p1@northwind.example>",
        date=datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc),
    ),
    message(
        sender=ANN,
        to=[ME],
        subject="Re: Pricing",
        body="Thanks, looks good.\n\nOn Mon, Mar 2, 2026 at 9:00 AM Alice wrote:\n> Hi Ann",
        message_id="<p2@acme.example>",
        headers={"In-Reply-To": "<p1@northwind.example>", "References": "<p1@northwind.example>"},
        date=datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc),
    ),
    message(
        sender="Carl <carl@initech.example>",
        to=[ME],
        subject="Cold pitch",
        message_id="<c1@initech.example>",
    ),
    message(
        sender="News <news@shop.example>",
        to=[ME],
        subject="Sale",
        headers={"List-Unsubscribe": "<mailto:u@shop.example>"},
        message_id="<s1@shop.example>",
    ),
    message(
        sender="noreply@service.example",
        to=[ME],
        subject="Your receipt",
        message_id="<r1@service.example>",
    ),
    message(
        sender=f"Alice <{ME}>",
        to=["Dan <dan@northwind.example>"],
        subject="Lunch?",
        message_id="<i1@northwind.example>",
    ),
    message(
        sender="statements@mybank.example",
        to=[ME],
        subject="Statement",
        message_id="<b1@mybank.example>",
    ),
    b"Subject: nothing else\n\nno sender, no recipients, no date\n",
]


def test_conversation_is_logged_with_the_right_contacts(sessions: sessionmaker[Session]) -> None:
    connector = MemoryConnector("alice-mail", [mail(n, raw) for n, raw in enumerate(CONVERSATION)])
    result = run(sessions, connector, policy())
    assert result.status == "ok"
    assert result.logged == 3
    assert dict(result.skipped) == {
        "automated_list": 1,
        "automated_sender": 1,
        "internal_only": 1,
        "never_log": 1,
    }
    assert result.quarantined == 1
    with sessions() as session:
        emails = set(session.scalars(select(ContactEmail.email)))
        # written to: Ann and Bob; Carl only wrote in (policy "sent")
        assert emails == {"ann@acme.example", "bob@gmail.com"}
        companies = set(session.scalars(select(CompanyDomain.domain)))
        assert companies == {"acme.example"}  # gmail.com is free mail
        ann = session.scalar(
            select(Contact).join(ContactEmail).where(ContactEmail.email == "ann@acme.example")
        )
        assert ann is not None
        assert (ann.display_name, ann.first_name, ann.last_name) == ("Ann Lee", "Ann", "Lee")
        assert ann.last_contacted_at == datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)
        reply = session.scalar(
            select(Interaction).where(Interaction.dedupe_key == "p2@acme.example")
        )
        assert reply is not None
        assert reply.direction == "inbound"
        assert reply.thread == "p1@northwind.example"
        assert reply.summary == "Thanks, looks good."
        assert reply.body is None  # store_bodies = false
        carl = session.scalar(
            select(InteractionParticipant).where(
                InteractionParticipant.email == "carl@initech.example"
            )
        )
        assert carl is not None and carl.contact_id is None
        quarantined = session.scalars(select(Quarantine)).all()
        assert [(q.source_id, q.reason) for q in quarantined] == [
            ("id-7", "no sender and no recipients")
        ]
    with sessions() as session:
        state = session.get(SyncState, "alice-mail")
        assert state is not None and state.status == "ok"
        assert state.counters["skipped"]["automated_list"] == 1
        assert state.counters["quarantined"] == 1


def test_rerunning_the_same_mail_adds_nothing(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    items = [mail(n, raw) for n, raw in enumerate(CONVERSATION)]
    run(sessions, MemoryConnector("alice-mail", list(items)), policy())
    before = row_counts(engine)
    result = run(sessions, MemoryConnector("alice-mail", list(items)), policy(), full=True)
    assert result.interactions_created == 0 and result.contacts_created == 0
    assert row_counts(engine) == before


def test_sent_and_received_and_none_policies(sessions: sessionmaker[Session]) -> None:
    items = [mail(n, raw) for n, raw in enumerate(CONVERSATION)]
    run(
        sessions,
        MemoryConnector("a", list(items)),
        policy("a", auto_create_contacts="sent_and_received"),
    )
    with sessions() as session:
        assert "carl@initech.example" in set(session.scalars(select(ContactEmail.email)))
        assert "noreply@service.example" not in set(session.scalars(select(ContactEmail.email)))
    before = count(sessions, Contact)
    more = [
        mail(100, message(sender=f"Alice <{ME}>", to=["eve@globex.example"], message_id="<e1@x>"))
    ]
    run(sessions, MemoryConnector("b", more), policy("b", auto_create_contacts="none"))
    assert count(sessions, Contact) == before
    assert count(sessions, Interaction) == 4


def test_a_contact_created_later_gets_the_earlier_mail(sessions: sessionmaker[Session]) -> None:
    inbound = message(
        sender="Eve <eve@globex.example>",
        to=[ME],
        message_id="<e0@globex.example>",
        date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    outbound = message(
        sender=ME,
        to=["eve@globex.example"],
        message_id="<e1@northwind.example>",
        date=datetime(2026, 1, 2, tzinfo=timezone.utc),
    )
    run(sessions, MemoryConnector("a", [mail(1, inbound)]), policy("a"))
    assert count(sessions, Contact) == 0
    run(sessions, MemoryConnector("a2", [mail(2, outbound)]), policy("a2"))
    with sessions() as session:
        linked = session.scalars(
            select(InteractionParticipant.contact_id).where(
                InteractionParticipant.email == "eve@globex.example"
            )
        ).all()
        assert len(linked) == 2 and None not in linked


def test_same_message_in_two_mailboxes_is_one_interaction_with_two_sources(
    sessions: sessionmaker[Session],
) -> None:
    raw = message(sender=ANN, to=[ME, "dan@northwind.example"], message_id="<shared@acme.example>")
    run(sessions, MemoryConnector("alice", [mail(1, raw, ME)]), policy("alice", ME))
    run(
        sessions,
        MemoryConnector("dan", [mail(9, raw, "dan@northwind.example")]),
        policy("dan", "dan@northwind.example"),
    )
    assert count(sessions, Interaction) == 1
    with sessions() as session:
        sources = session.execute(
            select(InteractionSource.connector, InteractionSource.source_id)
        ).all()
    assert sorted(sources) == [("alice", "id-1"), ("dan", "id-9")]


def test_removed_sources_keep_the_interaction_unless_told(sessions: sessionmaker[Session]) -> None:
    raw = message(sender=ANN, to=[ME], message_id="<gone@acme.example>")
    connector = MemoryConnector("a", [mail(1, raw)])
    run(sessions, connector, policy("a"))
    connector.add(SourceRemoved("id-1"))
    run(sessions, connector, policy("a"))
    assert (count(sessions, Interaction), count(sessions, InteractionSource)) == (1, 0)

    connector2 = MemoryConnector("b", [MailMessage("x", ME, raw)])
    run(sessions, connector2, policy("b"))
    connector2.add(SourceRemoved("x"))
    run(sessions, connector2, policy("b"), propagate_deletes=True)
    assert count(sessions, Interaction) == 0


def test_names_are_observations_and_the_latest_wins(sessions: sessionmaker[Session]) -> None:
    older = message(
        sender=ME,
        to=["Annie <ann@acme.example>"],
        message_id="<o1@x>",
        date=datetime(2025, 1, 1, tzinfo=timezone.utc),
    )
    newer = message(
        sender=ME,
        to=["Ann Lee <ann@acme.example>"],
        message_id="<o2@x>",
        date=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    # the newer fact arrives first; a late backfill of old mail must not overwrite it
    run(sessions, MemoryConnector("a", [mail(2, newer)]), policy("a"))
    run(sessions, MemoryConnector("b", [mail(1, older)]), policy("b"))
    with sessions() as session:
        contact = session.scalar(select(Contact))
        assert contact is not None and contact.display_name == "Ann Lee"
        assert count(sessions, Observation) >= 3


def test_dry_run_writes_nothing(engine: Engine, sessions: sessionmaker[Session]) -> None:
    before = row_counts(engine)
    connector = MemoryConnector("a", [mail(n, raw) for n, raw in enumerate(CONVERSATION)])
    result = run(sessions, connector, policy("a"), dry_run=True)
    assert result.would_create == {"ann@acme.example", "bob@gmail.com"}
    assert result.logged == 3
    after = row_counts(engine)
    # the connector's state row is created, nothing else
    assert {k: v for k, v in after.items() if k != "sync_state"} == {
        k: v for k, v in before.items() if k != "sync_state"
    }


def test_a_crash_between_batches_resumes_exactly_once(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    raws = [
        message(sender=ME, to=[f"p{n}@acme.example"], message_id=f"<c{n}@x>") for n in range(25)
    ]
    path = write_mbox(tmp_path / "crash.mbox", raws)
    pol = policy("crash")

    class Crash(BaseException):  # like a kill: nothing in the agent catches it
        pass

    def crash_after_two(batch: Any, result: Any) -> None:
        if result.items >= 10:
            raise Crash

    with pytest.raises(Crash):
        run(sessions, MboxConnector("crash", path, ME, batch_size=5), pol, progress=crash_after_two)
    assert count(sessions, Interaction) == 10
    result = run(sessions, MboxConnector("crash", path, ME, batch_size=5), pol)
    assert result.items == 15
    assert count(sessions, Interaction) == 25
    assert count(sessions, InteractionSource) == 25


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (AuthError("grant revoked", hint="run crm-sync connectors auth a"), "needs_auth"),
        (TransientError("503"), "failing"),
    ],
    ids=["auth", "transient"],
)
def test_connector_errors_mark_the_connector_and_keep_the_cursor(
    sessions: sessionmaker[Session], error: Exception, status: str
) -> None:
    items = [mail(n, message(sender=ANN, to=[ME], message_id=f"<k{n}@x>")) for n in range(4)]
    connector = MemoryConnector("a", items, batch_size=2, fail_at={2: error})  # type: ignore[dict-item]
    result = run(sessions, connector, policy("a"))
    assert result.status == status
    with sessions() as session:
        state = session.get(SyncState, "a")
        assert state is not None
        assert state.status == status and state.cursor == {"v": 1, "position": 2}
        assert state.last_error and (
            "grant revoked" in state.last_error or "503" in state.last_error
        )
    assert run(sessions, connector, policy("a")).status == "ok"
    assert count(sessions, Interaction) == 4
