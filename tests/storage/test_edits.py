"""People's edits on both databases: manual values, suggestions, races, conflicts, audit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from storage import audit, edits
from storage.db import session_factory, transaction
from storage.ingest import BatchWrite, Fact, NewContact, write_batch
from storage.models import CONTRACT_TABLES, AuditLog, Company, Conflict, Contact

ANN = "ann@acme.example"
EARLIER = datetime(2025, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    yield session_factory(engine)


def seed(sessions: sessionmaker[Session], *facts: Fact, email: str = ANN) -> None:
    """A contact the agent created, with the facts it observed."""
    with transaction(sessions) as session:
        write_batch(
            session,
            BatchWrite(new_contacts=[NewContact(email, "acme.example", "Acme")], facts=list(facts)),
            propagate_deletes=False,
            actor=audit.connector("alice-mail"),
        )


def agent_saw(
    sessions: sessionmaker[Session], field: str, value: str, at: datetime, email: str = ANN
) -> None:
    with transaction(sessions) as session:
        write_batch(
            session,
            BatchWrite(facts=[Fact(email, field, value, "alice-mail", at)]),
            propagate_deletes=False,
        )


def contact(sessions: sessionmaker[Session], email: str = ANN) -> Contact:
    with sessions() as session:
        base = edits.snapshot(session, email)
        assert base is not None
        found = session.get(Contact, base.contact_id)
        assert found is not None
        return found


def base(sessions: sessionmaker[Session], email: str = ANN) -> edits.Snapshot:
    with sessions() as session:
        found = edits.snapshot(session, email)
    assert found is not None
    return found


def open_conflicts(sessions: sessionmaker[Session]) -> list[edits.ConflictView]:
    with sessions() as session:
        return edits.list_conflicts(session)


def test_a_manual_value_beats_the_agent_and_newer_automatic_values_are_suggestions(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, Fact(ANN, "display_name", "Annie", "alice-mail", EARLIER))
    assert contact(sessions).display_name == "Annie"

    outcome = edits.set_fields(sessions, ANN, {"display_name": "Ann Lee"}, user="carol")
    assert outcome.changed == (edits.FieldChange("display_name", "Annie", "Ann Lee"),)

    agent_saw(sessions, "display_name", "A. Lee", EARLIER + timedelta(days=1))
    assert contact(sessions).display_name == "Ann Lee"
    with sessions() as session:
        assert edits.suggestions(session, contact(sessions).id) == []

    newer = datetime.now(timezone.utc) + timedelta(minutes=1)
    agent_saw(sessions, "display_name", "Ann Lee-Smith", newer)
    assert contact(sessions).display_name == "Ann Lee"
    with sessions() as session:
        (suggestion,) = edits.suggestions(session, contact(sessions).id)
    assert (suggestion.field, suggestion.current, suggestion.value, suggestion.source) == (
        "display_name",
        "Ann Lee",
        "Ann Lee-Smith",
        "alice-mail",
    )


def test_a_blank_value_clears_the_field_and_the_agent_does_not_refill_it(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, Fact(ANN, "title", "CTO", "alice-mail", EARLIER))
    edits.set_fields(sessions, ANN, {"phone": "+1 555 0100"}, user="carol")
    assert (contact(sessions).title, contact(sessions).phone) == ("CTO", "+1 555 0100")

    outcome = edits.set_fields(sessions, ANN, {"title": "", "phone": None}, user="carol")
    assert {c.field: (c.before, c.after) for c in outcome.applied} == {
        "title": ("CTO", None),
        "phone": ("+1 555 0100", None),
    }
    agent_saw(sessions, "title", "CEO", EARLIER + timedelta(days=1))
    agent_saw(sessions, "phone", "+1 555 0199", EARLIER + timedelta(days=1))
    assert (contact(sessions).title, contact(sessions).phone) == (None, None)


def test_every_kind_of_field_is_stored_in_its_column(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    outcome = edits.set_fields(
        sessions,
        ANN,
        {
            "birthday": "1984-02-29",
            "do_not_contact": "yes",
            "company": "globex.example",
            "extra.tier": "gold",
            "address": "1 Main St\nSpringfield",
            "owner": "carol",
        },
        user="carol",
        company_name=lambda domain: "Globex Corporation",
    )
    assert {c.field: c.after for c in outcome.changed} == {
        "birthday": "1984-02-29",
        "do_not_contact": "true",
        "company": "globex.example",
        "extra.tier": "gold",
        "address": "1 Main St\nSpringfield",
        "owner": "carol",
    }
    with sessions() as session:
        held = session.get(Contact, outcome.contact_id)
        assert held is not None and held.company is not None
        assert held.birthday == date(1984, 2, 29)
        assert held.do_not_contact is True
        assert held.company.name == "Globex Corporation"
        assert held.extra == {"tier": "gold"}

    edits.set_fields(sessions, ANN, {"do_not_contact": "", "extra.tier": ""}, user="carol")
    assert (contact(sessions).do_not_contact, contact(sessions).extra) == (False, {})


def test_a_person_phone_stays_primary_whatever_numbers_the_agent_sees(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, Fact(ANN, "phone", "+1 555 0100", "alice-mail", EARLIER))
    edits.set_fields(sessions, ANN, {"phone": "+1 555 0199"}, user="carol")
    agent_saw(sessions, "phone", "+1 555 0000", datetime.now(timezone.utc) + timedelta(1))
    agent_saw(sessions, "display_name", "Ann Lee", datetime.now(timezone.utc))
    assert contact(sessions).phone == "+1 555 0199"


@pytest.mark.parametrize(
    ("mine", "conflict"),
    [({"title": "VP Sales"}, True), ({"phone": "+1 555 0100"}, False)],
    ids=["same-field-conflicts", "other-field-merges"],
)
def test_two_editors_from_the_same_base(
    sessions: sessionmaker[Session], mine: dict[str, str], conflict: bool
) -> None:
    seed(sessions, Fact(ANN, "title", "Engineer", "alice-mail", EARLIER))
    carol_saw, bob_saw = base(sessions), base(sessions)
    assert carol_saw.version == bob_saw.version

    edits.set_fields(sessions, ANN, {"title": "CTO"}, user="carol", base=carol_saw)
    outcome = edits.set_fields(sessions, ANN, mine, user="bob", base=bob_saw)

    held = contact(sessions)
    assert held.title == "CTO"
    if conflict:
        assert outcome.applied == ()
        (row,) = open_conflicts(sessions)
        assert (row.field, row.base, row.manual, row.manual_by, row.latest, row.latest_by) == (
            "title",
            "Engineer",
            "CTO",
            "carol",
            "VP Sales",
            "bob",
        )
        assert outcome.conflicts[0].id == row.id
    else:
        assert held.phone == "+1 555 0100"
        assert open_conflicts(sessions) == []


def test_the_agent_changing_a_field_since_the_base_is_no_conflict(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, Fact(ANN, "title", "Engineer", "alice-mail", EARLIER))
    bob_saw = base(sessions)
    agent_saw(sessions, "title", "Staff Engineer", EARLIER + timedelta(days=1))
    assert contact(sessions).version > bob_saw.version

    outcome = edits.set_fields(sessions, ANN, {"title": "CTO"}, user="bob", base=bob_saw)
    assert outcome.changed == (edits.FieldChange("title", "Staff Engineer", "CTO"),)
    assert open_conflicts(sessions) == []


def test_an_edit_that_repeats_the_base_leaves_a_newer_value_alone(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions, Fact(ANN, "title", "Engineer", "alice-mail", EARLIER))
    carol_saw, form = base(sessions), base(sessions)
    edits.set_fields(sessions, ANN, {"title": "CTO"}, user="carol", base=carol_saw)

    # a form that submits every field it showed, changed or not
    outcome = edits.set_fields(
        sessions, ANN, {"title": "Engineer", "owner": "bob"}, user="bob", base=form
    )
    assert outcome.kept == ("title",)
    assert (contact(sessions).title, contact(sessions).owner) == ("CTO", "bob")
    assert open_conflicts(sessions) == []


def test_the_same_stale_edit_twice_opens_one_conflict(sessions: sessionmaker[Session]) -> None:
    seed(sessions)
    carol_saw, bob_saw = base(sessions), base(sessions)
    edits.set_fields(sessions, ANN, {"title": "CTO"}, user="carol", base=carol_saw)
    first = edits.set_fields(sessions, ANN, {"title": "VP"}, user="bob", base=bob_saw)
    again = edits.set_fields(sessions, ANN, {"title": "VP"}, user="bob", base=bob_saw)
    assert first.conflicts == again.conflicts
    assert len(open_conflicts(sessions)) == 1


def _when_blocked(engine: Engine, timeout: float = 20) -> None:
    """Wait until another session of this database waits for a row lock (PostgreSQL)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar()
            if waiting:
                return
            connection.rollback()
            time.sleep(0.02)
    raise AssertionError("the second writer never waited for the first one's lock")


def _race(
    engine: Engine,
    sessions: sessionmaker[Session],
    first: Callable[[Session], object],
    second: Callable[[], edits.EditOutcome],
) -> tuple[edits.EditOutcome, int]:
    """``second`` runs while ``first``'s transaction holds the contact, then ``first`` commits.

    On PostgreSQL ``second`` has read the contact and waits on the row lock
    at its flush, so its version check fails once ``first`` commits; SQLite
    queues it before it reads anything.
    """
    results: list[edits.EditOutcome] = []
    failures: list[BaseException] = []

    def run_second() -> None:
        try:
            results.append(second())
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run_second)
    with transaction(sessions) as session:
        first(session)
        thread.start()
        if engine.dialect.name == "postgresql":
            _when_blocked(engine)
        else:
            time.sleep(0.2)
    thread.join(timeout=60)
    assert not failures, failures
    attempts = 2 if engine.dialect.name == "postgresql" else 1
    return results[0], attempts


@pytest.mark.parametrize(
    ("mine", "conflict"),
    [({"title": "VP Sales"}, True), ({"phone": "+1 555 0100"}, False)],
    ids=["same-field-conflicts", "other-field-merges"],
)
def test_a_stale_write_is_retried_and_merged_again(
    engine: Engine, sessions: sessionmaker[Session], mine: dict[str, str], conflict: bool
) -> None:
    seed(sessions, Fact(ANN, "title", "Engineer", "alice-mail", EARLIER))
    bob_saw = base(sessions)
    attempts: list[int] = []

    def carol(session: Session) -> object:
        return edits.apply_edits(
            session,
            [edits.Edit(ANN, {"title": "CTO"})],
            user="carol",
            now=datetime.now(timezone.utc),
        )

    def bob() -> edits.EditOutcome:
        result = edits.edit_contacts(sessions, [edits.Edit(ANN, mine, bob_saw)], user="bob")
        attempts.append(result.attempts)
        return result.outcomes[0]

    outcome, expected_attempts = _race(engine, sessions, carol, bob)
    assert attempts == [expected_attempts]
    held = contact(sessions)
    assert held.title == "CTO"
    assert held.version == bob_saw.version + 2
    if conflict:
        (row,) = open_conflicts(sessions)
        assert (row.manual, row.latest) == ("CTO", "VP Sales")
        assert [c.id for c in outcome.conflicts] == [row.id]
    else:
        assert held.phone == "+1 555 0100"
        assert open_conflicts(sessions) == []


def _conflict(sessions: sessionmaker[Session]) -> int:
    seed(sessions, Fact(ANN, "title", "Engineer", "alice-mail", EARLIER))
    carol_saw, bob_saw = base(sessions), base(sessions)
    edits.set_fields(sessions, ANN, {"title": "CTO"}, user="carol", base=carol_saw)
    (opened,) = edits.set_fields(sessions, ANN, {"title": "VP"}, user="bob", base=bob_saw).conflicts
    return opened.id


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ({"keep": "manual"}, "CTO"),
        ({"keep": "latest"}, "VP"),
        ({"value": "Chief Technology Officer"}, "Chief Technology Officer"),
        ({"value": ""}, None),
    ],
    ids=["keep-manual", "keep-latest", "value", "value-clears"],
)
def test_a_conflict_resolves_each_way(
    sessions: sessionmaker[Session], how: dict[str, Any], expected: str | None
) -> None:
    conflict_id = _conflict(sessions)
    resolution = edits.resolve_conflict(sessions, conflict_id, user="dana", **how)
    assert resolution.value == expected
    assert contact(sessions).title == expected
    with sessions() as session:
        (row,) = edits.list_conflicts(session, include_resolved=True)
        observed = edits.provenance(session, row.contact_id)["title"]
    assert (row.status, row.resolved_by, row.resolved_value) == ("resolved", "user:dana", expected)
    assert row.resolution == ("value" if "value" in how else f"keep {how['keep']}")
    assert (observed.value, observed.source, observed.manual) == (expected, "dana", True)
    assert open_conflicts(sessions) == []

    with pytest.raises(edits.ConflictClosed):
        edits.resolve_conflict(sessions, conflict_id, user="erin", keep="manual")
    with pytest.raises(edits.NoSuchConflict):
        edits.resolve_conflict(sessions, conflict_id + 1, user="erin", keep="manual")


def test_the_audit_trail_names_each_change_and_its_actor(sessions: sessionmaker[Session]) -> None:
    conflict_id = _conflict(sessions)
    edits.resolve_conflict(sessions, conflict_id, user="dana", keep="latest")
    with sessions() as session:
        trail = [
            (row.actor, row.action, row.before, row.after)
            for row in audit.history(session, "contact", contact(sessions).id)
        ]
    assert trail == [
        ("connector:alice-mail", "create", None, {"company_id": 1}),
        ("connector:alice-mail", "update", {"title": None}, {"title": "Engineer"}),
        ("user:carol", "update", {"title": "Engineer"}, {"title": "CTO"}),
        (
            "user:bob",
            "conflict_opened",
            {"field": "title", "value": "Engineer"},
            {"conflict": conflict_id, "field": "title", "manual": "CTO", "latest": "VP"},
        ),
        ("user:dana", "update", {"title": "CTO"}, {"title": "VP"}),
        (
            "user:dana",
            "conflict_resolved",
            {"conflict": conflict_id, "field": "title", "value": "CTO"},
            {"conflict": conflict_id, "field": "title", "value": "VP", "how": "keep latest"},
        ),
    ]


def _row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() or 0)
            for table in sorted(CONTRACT_TABLES)
        }


def test_an_import_creates_missing_contacts_and_its_dry_run_writes_nothing(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    seed(sessions, Fact(ANN, "title", "Engineer", "alice-mail", EARLIER))
    batch = [
        edits.Edit(ANN, {"title": "CTO"}, base(sessions)),
        edits.Edit(
            "zoe@globex.example",
            {"display_name": "Zoe Park", "company": "globex.example"},
            create=NewContact("zoe@globex.example", "globex.example", "Globex"),
        ),
    ]
    before = _row_counts(engine)
    dry = edits.edit_contacts(sessions, batch, user="carol", dry_run=True)
    assert _row_counts(engine) == before
    real = edits.edit_contacts(sessions, batch, user="carol")
    assert (dry.written, real.written) == (False, True)
    assert [(o.email, o.created, o.changed) for o in dry.outcomes] == [
        (o.email, o.created, o.changed) for o in real.outcomes
    ]
    assert [(o.created, [(c.field, c.after) for c in o.changed]) for o in real.outcomes] == [
        (False, [("title", "CTO")]),
        (True, [("display_name", "Zoe Park")]),  # its company came with it, by domain
    ]
    with sessions() as session:
        zoe = session.get(Contact, real.outcomes[1].contact_id)
        assert zoe is not None and zoe.company is not None
        assert (zoe.display_name, zoe.company.name) == ("Zoe Park", "Globex")
        created = session.scalars(
            select(AuditLog.actor).where(AuditLog.action == "create").order_by(AuditLog.id)
        ).all()
        assert created[-2:] == ["user:carol", "user:carol"]  # the company, then the contact
        assert session.scalar(select(func.count()).select_from(Company)) == 2


def test_nothing_is_written_for_an_unknown_contact_or_field(
    sessions: sessionmaker[Session],
) -> None:
    seed(sessions)
    with pytest.raises(edits.NoSuchContact, match=r"nobody@acme\.example"):
        edits.edit_contacts(
            sessions,
            [edits.Edit(ANN, {"title": "CTO"}), edits.Edit("nobody@acme.example", {"title": "x"})],
            user="carol",
        )
    with pytest.raises(edits.fields.FieldError, match=r"^shoe_size: unknown field"):
        edits.set_fields(sessions, ANN, {"title": "CTO", "shoe_size": "9"}, user="carol")
    assert contact(sessions).title is None
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Conflict)) == 0
