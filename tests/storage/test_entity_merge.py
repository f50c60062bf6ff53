"""Merging contacts and companies, on both databases, over data the pipeline logged."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from agent.cli.privacy import ours_predicate
from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import Settings, parse_settings
from connectors.memory import MemoryConnector
from connectors.records import Item, MailMessage
from storage import history
from storage.db import session_factory, transaction
from storage.entity_merge import MergeError, merge_companies, merge_contacts
from storage.erase import erase, forget_target
from storage.ingest import apply_merge, company_ids, contact_ids
from storage.models import (
    AuditLog,
    CompanyDomain,
    Conflict,
    Contact,
    ContactEmail,
    InteractionParticipant,
    Observation,
)
from storage.visibility import Viewer
from tests.support.db_snapshot import diff, snapshot
from tests.support.mailbuilder import message

ME = "alice@northwind.example"
ANN = "ann@acme.example"
ANN_PRIVATE = "annlee@gmail.com"
BOB = "bob@acme.example"
CARL = "carl@acme-corp.example"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _day(n: int) -> datetime:
    return START + timedelta(days=n)


def _mail(key: str, day: int, sender: str, to: Sequence[str], cc: Sequence[str] = ()) -> Item:
    raw = message(sender=sender, to=to, cc=cc, subject=key, message_id=f"<{key}@x>", date=_day(day))
    return MailMessage(key, ME, raw)


ITEMS = [
    _mail("offer", 0, ME, [f"Ann Lee <{ANN}>"]),
    _mail("reply", 1, f"Ann Lee <{ANN}>", [ME], [f"Bob Stone <{BOB}>"]),
    _mail("weekend", 3, ME, [f"Ann Lee <{ANN_PRIVATE}>"]),
    _mail("both", 2, ME, [f"Ann Lee <{ANN}>", f"Ann Lee <{ANN_PRIVATE}>"]),
    _mail("pricing", 4, ME, [f"Bob Stone <{BOB}>"]),
    _mail("corp", 5, ME, [f"Carl Corp <{CARL}>"]),
]


def _settings() -> Settings:
    return parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)


def _sync(sessions: sessionmaker[Session], items: list[Item], name: str = "alice-mail") -> None:
    policy = Policy.from_settings(_settings(), name, ME)
    result = sync_connector(sessions, MemoryConnector(name, items), policy, kind="t")
    assert result.status == "ok" and result.logged == len(items), result


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    factory = session_factory(engine)
    _sync(factory, list(ITEMS))
    with transaction(factory) as session:
        private = _contact(session, ANN_PRIVATE)
        session.add_all(
            [
                Observation(
                    contact_id=private,
                    field="title",
                    value="CTO",
                    source="user:bea",
                    observed_at=_day(3),
                    manual=True,
                ),
                Conflict(contact_id=private, field="phone", values={"a": "1", "b": "2"}),
            ]
        )
        session.flush()
        apply_merge(session, [private])
    return factory


def _contact(session: Session, email: str) -> int:
    return contact_ids(session, [email])[email]


def _company(session: Session, domain: str) -> int:
    return company_ids(session, [domain])[domain]


def test_merging_two_contacts_keeps_every_address_fact_and_interaction(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        ann, private = _contact(session, ANN), _contact(session, ANN_PRIVATE)
        timelines = {c: _subjects(session, c) for c in (ann, private)}
        version = session.scalar(select(Contact.version).where(Contact.id == ann))
    assert timelines == {ann: {"offer", "reply", "both"}, private: {"both", "weekend"}}
    before = snapshot(engine)

    with transaction(sessions) as session:
        result = merge_contacts(session, ann, private, actor="user:bea")

    assert result.merged
    assert result.moved == {"emails": 1, "observations": 4, "participants": 2, "conflicts": 1}
    with sessions() as session:
        kept = session.get(Contact, ann)
        assert kept is not None and session.get(Contact, private) is None
        assert [e.email for e in kept.emails] == [ANN, ANN_PRIVATE]
        assert _subjects(session, ann) == {"offer", "reply", "both", "weekend"}
        assert kept.title == "CTO"  # the person's manual value came along and wins
        assert kept.display_name == "Ann Lee"
        assert kept.last_contacted_at == _day(3)
        assert version is not None and kept.version > version
        names = session.execute(
            select(Observation.value, Observation.observed_at).where(
                Observation.contact_id == ann, Observation.field == "first_name"
            )
        ).all()
        assert names == [("Ann", _day(3))]  # one fact, at its latest time
        assert [c.field for c in session.scalars(select(Conflict))] == ["phone"]
        assert session.scalar(select(Conflict.contact_id)) == ann
        entries = session.scalars(
            select(AuditLog).where(AuditLog.actor == "user:bea").order_by(AuditLog.id)
        ).all()
    assert [(e.action, e.entity, e.entity_id) for e in entries][:2] == [
        ("merge", "contact", ann),
        ("merged_into", "contact", private),
    ]
    assert entries[0].after is not None and entries[0].after["merged_id"] == private
    assert entries[0].after["emails"] == [ANN, ANN_PRIVATE]
    assert entries[1].after == {"into": ann}

    changes = diff(before, snapshot(engine))
    assert changes.keys() == {
        "contacts",
        "contact_emails",
        "observations",
        "interaction_participants",
        "conflicts",
        "audit_log",
        "contact_figures",
        "company_figures",
    }
    assert changes["contacts"] == ({(private,)}, set(), {(ann,)})  # Bob untouched
    assert changes["contact_figures"] == ({(private,)}, set(), {(ann,)})
    removed, added, relinked = changes["interaction_participants"]
    assert not removed and not added
    with sessions() as session:
        emails = session.scalars(
            select(InteractionParticipant.email).where(
                InteractionParticipant.id.in_([key[0] for key in relinked])
            )
        )
        assert set(emails) == {ANN_PRIVATE}


def test_merging_again_or_into_itself_changes_nothing(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        ann, private = _contact(session, ANN), _contact(session, ANN_PRIVATE)
        assert merge_contacts(session, ann, private, actor="u").merged
    merged = snapshot(engine)
    with transaction(sessions) as session:
        again = merge_contacts(session, ann, private, actor="u")
        by_address = merge_contacts(session, ann, _contact(session, ANN_PRIVATE), actor="u")
    assert not again.merged and not by_address.merged
    assert snapshot(engine) == merged

    with transaction(sessions) as session, pytest.raises(MergeError, match="no contact"):
        merge_contacts(session, private, ann, actor="u")
    with transaction(sessions) as session, pytest.raises(MergeError, match="no contact"):
        merge_contacts(session, ann, 10_000, actor="u")


def test_two_merges_of_the_same_pair_at_once_merge_once(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        ann, private = _contact(session, ANN), _contact(session, ANN_PRIVATE)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def merge() -> None:
        barrier.wait()
        with transaction(sessions) as session:
            results.append(merge_contacts(session, ann, private, actor="u").merged)

    threads = [threading.Thread(target=merge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == [False, True]
    with sessions() as session:
        merges = session.scalars(select(AuditLog).where(AuditLog.action == "merge")).all()
        assert len(merges) == 1


def test_erasing_the_kept_contact_erases_the_history_of_the_absorbed_one(
    sessions: sessionmaker[Session],
) -> None:
    with transaction(sessions) as session:
        ann, private = _contact(session, ANN), _contact(session, ANN_PRIVATE)
        merge_contacts(session, ann, private, actor="u")
    ours = ours_predicate(_settings())
    with transaction(sessions) as session:
        erase(session, forget_target(session, ANN_PRIVATE), ours, actor="u", action="forget")
    with sessions() as session:
        assert session.scalars(select(ContactEmail.email)).all() == [BOB, CARL]
        rows = session.scalars(select(AuditLog)).all()
        text = json.dumps([(r.entity, r.entity_id, r.before, r.after) for r in rows])
    for erased in ("ann", "Ann", "gmail", "CTO"):
        assert erased not in text
    left = [(r.action, r.entity_id) for r in rows if r.entity == "contact"]
    assert [entry for entry in left if entry[1] in (ann, private)] == [("erase", ann)]


def test_merging_two_companies_moves_contacts_and_domains(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    with sessions() as session:
        acme, corp = _company(session, "acme.example"), _company(session, "acme-corp.example")
        carl = _contact(session, CARL)
        carl_version = session.scalar(select(Contact.version).where(Contact.id == carl))
    before = snapshot(engine)

    with transaction(sessions) as session:
        result = merge_companies(session, acme, corp, actor="user:bea")

    assert result.merged and result.moved == {"contacts": 1, "domains": 1}
    with sessions() as session:
        domains = session.execute(
            select(CompanyDomain.domain, CompanyDomain.company_id).order_by(CompanyDomain.domain)
        ).all()
        assert domains == [("acme-corp.example", acme), ("acme.example", acme)]
        moved = session.get(Contact, carl)
        assert moved is not None and moved.company_id == acme
        assert carl_version is not None and moved.version == carl_version + 1
        entries = session.scalars(
            select(AuditLog).where(AuditLog.actor == "user:bea").order_by(AuditLog.id)
        ).all()
    assert [(e.action, e.entity, e.entity_id) for e in entries] == [
        ("merge", "company", acme),
        ("merged_into", "company", corp),
        ("update", "contact", carl),
    ]
    changes = diff(before, snapshot(engine))
    assert changes.keys() == {
        "companies",
        "company_domains",
        "contacts",
        "audit_log",
        "company_figures",
    }
    assert changes["companies"] == ({(corp,)}, set(), set())
    assert changes["company_figures"][:2] == ({(corp,)}, set())  # Acme's now counts Carl
    assert changes["contacts"] == (set(), set(), {(carl,)})

    with transaction(sessions) as session:
        assert not merge_companies(session, acme, corp, actor="u").merged
    _sync(sessions, [_mail("new", 6, ME, ["Dan <dan@acme-corp.example>"])], name="bob-mail")
    with sessions() as session:
        dan = session.get(Contact, _contact(session, "dan@acme-corp.example"))
        assert dan is not None and dan.company_id == acme


def _subjects(session: Session, contact_id: int) -> set[str | None]:
    everything = Viewer.cli(include_private=True)
    found = history.timeline(session, everything, history.contact_interactions(contact_id))
    return {entry.subject for entry in found.entries}
