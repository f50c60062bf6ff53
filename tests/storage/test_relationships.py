"""Relationship figures: exact on a hand-built history, and always a full recomputation's equal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.memory import MemoryConnector
from connectors.records import Item, MailMessage
from storage import relationship_rules as rules
from storage import relationships
from storage.db import session_factory, upgrade
from storage.ingest import BatchWrite, InteractionRecord, NewContact, ParticipantRecord, write_batch
from storage.models import (
    Company,
    CompanyFigures,
    Contact,
    ContactEmail,
    ContactFigures,
    Interaction,
    SyncState,
)
from storage.relationship_rules import DECAY
from tests.support.mailbuilder import message

AS_OF = date(2026, 6, 30)
END = datetime.combine(AS_OF + timedelta(days=1), time(0), tzinfo=timezone.utc)
TEAM = ("alice@ours.example", "bob@ours.example")


def _ago(days: float, hour: int = 0) -> datetime:
    return END - timedelta(days=days) + timedelta(hours=hour)


def _mail(
    key: str,
    at: datetime,
    them: str,
    mate: str,
    *,
    outbound: bool,
    thread: str | None,
    private: bool = False,
    internal: bool = False,
) -> InteractionRecord:
    sender, recipient = (mate, them) if outbound else (them, mate)
    return InteractionRecord(
        kind="email",
        dedupe_key=f"<{key}@test>",
        occurred_at=at,
        direction="internal" if internal else ("outbound" if outbound else "inbound"),
        connector=f"{mate.split('@')[0]}-mail",
        source_id=key,
        participants=(
            ParticipantRecord(sender, "", "from"),
            ParticipantRecord(recipient, "", "to"),
        ),
        subject=f"subject {key}",
        thread=thread,
        visibility="private" if private else "shared",
    )


def _meeting(
    key: str, at: datetime, people: tuple[str, ...], declined: str | None = None
) -> InteractionRecord:
    return InteractionRecord(
        kind="meeting",
        dedupe_key=f"meeting-{key}",
        occurred_at=at,
        ends_at=at + timedelta(hours=1),
        direction="outbound",
        connector="alice-calendar",
        source_id=key,
        participants=(
            ParticipantRecord("alice@ours.example", "", "organizer"),
            *(
                ParticipantRecord(p, "", "attendee", "declined" if p == declined else "accepted")
                for p in people
            ),
        ),
        subject=f"meeting {key}",
    )


def _history() -> list[InteractionRecord]:
    carol, dave = "carol@acme.example", "dave@acme.example"
    alice, bob = TEAM
    return [
        # Carol: answered by Alice in 2 hours, answers back in 21 hours; an older thread
        # Bob answered in a day; a meeting five days ago.
        _mail("c1", _ago(2, 10), carol, alice, outbound=False, thread="t1"),
        _mail("c2", _ago(2, 12), carol, alice, outbound=True, thread="t1"),
        _mail("c3", _ago(1, 9), carol, alice, outbound=False, thread="t1"),
        _mail("c4", _ago(40), carol, bob, outbound=False, thread="t2"),
        _mail("c5", _ago(39), carol, bob, outbound=True, thread="t2"),
        _meeting("m1", _ago(5), (carol, "frank@acme.example"), declined="frank@acme.example"),
        # Dave: six emails with Bob 35 to 60 days ago, nothing since.
        *(
            _mail(f"d{i}", _ago(35 + 5 * i), dave, bob, outbound=i % 2 == 1, thread="t3")
            for i in range(6)
        ),
        # Erin: one private thread only.
        _mail("e1", _ago(3), "erin@other.example", alice, outbound=True, thread="t4", private=True),
    ]


def _batch(records: list[InteractionRecord], *, sent_only: bool = False) -> BatchWrite:
    """The records, with their outsiders as new contacts (only those written to, as
    ``auto_create = "sent"`` does: the others' mail is linked to them when they are)."""
    chosen = [r for r in records if r.direction == "outbound"] if sent_only else records
    emails = sorted({p.email for r in chosen for p in r.participants} - set(TEAM))
    return BatchWrite(
        interactions=records,
        new_contacts=[NewContact(e, e.split("@")[1], e.split("@")[1].title()) for e in emails],
    )


def _seed(engine: Engine) -> None:
    upgrade(engine)
    with Session(engine) as session, session.begin():
        for mate in TEAM:
            name = mate.split("@")[0]
            session.add(SyncState(connector=f"{name}-mail", kind="mbox", account=mate))


def _write(engine: Engine, records: list[InteractionRecord]) -> None:
    """Write a batch, then compute every row for the fixed day the assertions are for (the
    writer keeps them for today)."""
    with Session(engine) as session, session.begin():
        write_batch(session, _batch(records), propagate_deletes=True)
        relationships.refresh(
            session,
            contacts=session.scalars(select(Contact.id)).all(),
            companies=session.scalars(select(Company.id)).all(),
            as_of=AS_OF,
        )


def _figures(session: Session, email: str) -> ContactFigures:
    contact_id = session.scalar(select(ContactEmail.contact_id).where(ContactEmail.email == email))
    row = session.get(ContactFigures, contact_id)
    assert row is not None
    return row


@pytest.fixture
def history(engine: Engine) -> Iterator[Engine]:
    _seed(engine)
    _write(engine, _history())
    yield engine


def test_counts_reply_times_strength_and_trend_on_a_known_history(history: Engine) -> None:
    with Session(history) as session:
        carol = _figures(session, "carol@acme.example")
        assert (carol.emails_in_30, carol.emails_out_30, carol.meetings_30) == (2, 1, 1)
        assert (carol.emails_in_90, carol.emails_out_90, carol.meetings_90) == (3, 2, 1)
        assert carol.before_90 == 2
        inbound = 2 * DECAY[30] + DECAY[90]
        outbound = DECAY[30] + DECAY[90]
        assert carol.strength == pytest.approx(inbound + outbound + 3 + min(inbound, outbound))
        assert (carol.level, carol.trend) == ("medium", "warming")
        assert (carol.closest_teammate, carol.teammates) == ("alice@ours.example", 2)
        assert carol.last_at == _ago(1, 9) and carol.first_at == _ago(40)
        shown = relationships.standing(session, ContactFigures, carol.contact_id)
        assert shown.our_reply_seconds == (2 * 3600 + 86400) // 2  # Alice 2 h, Bob a day
        assert shown.their_reply_seconds == 21 * 3600
        assert shown.last is not None and shown.first is not None
        assert (shown.last.kind, shown.last.topic, shown.last.teammates) == (
            "email",
            "subject c3",
            ("alice@ours.example",),
        )
        assert (shown.first.topic, shown.first.teammates) == ("subject c4", ("bob@ours.example",))

        dave = _figures(session, "dave@acme.example")
        assert (dave.emails_in_30 + dave.emails_out_30, dave.before_90) == (0, 6)
        assert (dave.level, dave.trend, dave.closest_teammate) == ("weak", "cooling", TEAM[1])

        erin = _figures(session, "erin@other.example")  # private: nobody else's business
        assert (erin.level, erin.last_at, erin.emails_out_365) == ("none", None, 0)
        frank = _figures(session, "frank@acme.example")  # declined the one meeting
        assert (frank.meetings_365, frank.level) == (0, "none")

        assert carol.strength > dave.strength > erin.strength
        acme = session.scalars(
            select(CompanyFigures).join(Company).where(Company.name == "Acme.Example")
        ).one()
        assert acme.emails_in_365 == carol.emails_in_365 + dave.emails_in_365
        assert acme.meetings_365 == 1 and acme.teammates == 2
        assert relationships.explanation(carol, AS_OF + timedelta(days=2)) == (
            "medium: 5 two-way emails and 1 meeting in 90 days, last 2 days ago"
        )


def test_the_writer_keeps_figures_current_and_redelivery_changes_nothing(engine: Engine) -> None:
    _seed(engine)
    records = _history()
    with Session(engine) as session, session.begin():
        write_batch(session, _batch(records[:3]), propagate_deletes=True)
    with Session(engine) as session:
        carol = _figures(session, "carol@acme.example")
        assert carol.as_of == relationships.today()
        assert carol.emails_in_365 + carol.emails_out_365 == 3
    with Session(engine) as session, session.begin():
        write_batch(session, _batch(records), propagate_deletes=True)
        write_batch(session, _batch(records[:3]), propagate_deletes=True)
    with Session(engine) as session:
        carol = _figures(session, "carol@acme.example")
        assert carol.emails_in_365 + carol.emails_out_365 == 5
        assert _snapshot(session) == _recomputed(session, relationships.today())


def test_a_removed_message_leaves_the_figures(engine: Engine) -> None:
    _seed(engine)
    records = _history()
    _write(engine, records)
    with Session(engine) as session, session.begin():
        write_batch(session, BatchWrite(removed=[("alice-mail", "c3")]), propagate_deletes=True)
    with Session(engine) as session:
        carol = _figures(session, "carol@acme.example")
        assert carol.emails_in_365 + carol.emails_out_365 == 4
        assert carol.last_at == _ago(2, 12)


# -- figures equal a full recomputation after any sequence of batches -------------------------

CUSTOMERS = ("p@one.example", "q@one.example", "r@two.example")


@st.composite
def _records(draw: st.DrawFn) -> InteractionRecord:
    n = draw(st.integers(0, 40))
    them = draw(st.sampled_from(CUSTOMERS))
    mate = draw(st.sampled_from(TEAM))
    at = END - timedelta(days=draw(st.integers(0, 400)), hours=draw(st.integers(0, 23)))
    if draw(st.booleans()):
        return _meeting(f"h{n}", at, (them,))
    return _mail(
        f"h{n}",
        at,
        them,
        mate,
        outbound=draw(st.booleans()),
        thread=draw(st.sampled_from(("a", "b", None))),
        private=draw(st.integers(0, 5)) == 0,
    )


def _snapshot(session: Session) -> dict[tuple[str, int], tuple[object, ...]]:
    snapshot = {}
    for model, key in ((ContactFigures, "contact_id"), (CompanyFigures, "company_id")):
        for row in session.scalars(select(model)):
            values = {c.key: getattr(row, c.key) for c in model.__table__.columns}
            snapshot[(model.__tablename__, values.pop(key))] = tuple(sorted(values.items()))
    return snapshot


def _recomputed(session: Session, day: date) -> dict[tuple[str, int], tuple[object, ...]]:
    """Every row computed afresh in a transaction that is then rolled back."""
    with session.begin_nested() as nested:
        session.execute(delete(ContactFigures))
        session.execute(delete(CompanyFigures))
        relationships.refresh(
            session,
            contacts=session.scalars(select(Contact.id)).all(),
            companies=session.scalars(select(Company.id)).all(),
            as_of=day,
        )
        snapshot = _snapshot(session)
        nested.rollback()
    return snapshot


def _reset(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        for model in (Interaction, Contact, Company):
            session.execute(delete(model))


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_figures_equal_a_full_recomputation_after_any_batches(
    db: str, request: pytest.FixtureRequest
) -> None:
    engine = request.getfixturevalue("sqlite_engine" if db == "sqlite" else "pg_engine")
    _seed(engine)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        st.lists(st.lists(_records(), min_size=1, max_size=6), min_size=1, max_size=5),
        st.booleans(),
    )
    def check(batches: list[list[InteractionRecord]], sent_only: bool) -> None:
        _reset(engine)
        for records in [*batches, *batches[:2]]:  # the first batches come again
            with Session(engine) as session, session.begin():
                unique = list({r.dedupe_key: r for r in records}.values())
                write_batch(session, _batch(unique, sent_only=sent_only), propagate_deletes=True)
        with Session(engine) as session:
            assert not _differences(_snapshot(session), _recomputed(session, relationships.today()))

    check()


def _differences(
    kept: dict[tuple[str, int], tuple[object, ...]], full: dict[tuple[str, int], tuple[object, ...]]
) -> dict[tuple[str, int], object]:
    """The rows (and columns) where the kept figures differ from a full recomputation."""
    found: dict[tuple[str, int], object] = {}
    for key in kept.keys() | full.keys():
        a, b = dict(kept.get(key, ())), dict(full.get(key, ()))
        if a != b:
            found[key] = {
                c: (a.get(c), b.get(c)) for c in a.keys() | b.keys() if a.get(c) != b.get(c)
            }
    return found


# -- the rules' promises ------------------------------------------------------------------------

_window_counts = st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50)).map(
    lambda t: dict(zip((30, 90, 365), (t[0], t[0] + t[1], t[0] + t[1] + t[2]), strict=True))
)


@given(_window_counts, _window_counts, _window_counts, st.sampled_from(("in", "out", "meeting")))
def test_strength_never_decreases_when_an_interaction_is_added_today(
    emails_in: dict[int, int], emails_out: dict[int, int], meetings: dict[int, int], kind: str
) -> None:
    before = rules.Counts(emails_in, emails_out, meetings)
    plus_one = {"in": emails_in, "out": emails_out, "meeting": meetings}[kind]
    grown = {days: n + 1 for days, n in plus_one.items()}
    after = rules.Counts(
        grown if kind == "in" else emails_in,
        grown if kind == "out" else emails_out,
        grown if kind == "meeting" else meetings,
    )
    assert rules.strength(after) >= rules.strength(before)
    assert rules.LEVELS.index(rules.level(rules.strength(after))) >= rules.LEVELS.index(
        rules.level(rules.strength(before))
    )


OWNER = "owner@ours.example"


def _thread_mail(n: int, sender: str, to: str, at: datetime, **headers: str) -> MailMessage:
    raw = message(
        sender=sender,
        to=[to],
        subject="Re: pricing" if n else "pricing",
        body=f"message {n}",
        date=at,
        message_id=f"<t{n}@thread.example>",
        headers={"References": "<t0@thread.example>", **headers} if n else headers,
    )
    return MailMessage(f"m{n}", OWNER, raw)


def test_reply_times_ignore_auto_replies_and_internal_mail(engine: Engine) -> None:
    """Ours at 9:00; an out-of-office answer at 9:01 and a colleague's internal note at 9:30
    are no replies; the customer answers at 13:00 and we answer at 14:00."""
    upgrade(engine)
    start = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=3)
    customer, colleague = "Pat <pat@customer.example>", "kim@ours.example"
    items: list[Item] = [
        _thread_mail(0, OWNER, customer, start),
        _thread_mail(1, customer, OWNER, start + timedelta(minutes=1), **AUTO_REPLY),
        _thread_mail(2, OWNER, colleague, start + timedelta(minutes=30)),
        _thread_mail(3, customer, OWNER, start + timedelta(hours=4)),
        _thread_mail(4, OWNER, customer, start + timedelta(hours=5)),
    ]
    settings_ = parse_settings({"agent": {"internal_domains": ["ours.example"]}}, None)
    policy = Policy.from_settings(settings_, "owner-mail", OWNER)
    result = sync_connector(
        session_factory(engine), MemoryConnector("owner-mail", items), policy, kind="t"
    )
    assert result.skipped["automated_auto_submitted"] == 1, result
    with Session(engine) as session:
        pat = _figures(session, "pat@customer.example")
        assert (pat.emails_in_30, pat.emails_out_30) == (1, 2)
        shown = relationships.standing(session, ContactFigures, pat.contact_id)
        assert (shown.their_reply_seconds, shown.our_reply_seconds) == (4 * 3600, 3600)


AUTO_REPLY = {"Auto-Submitted": "auto-replied", "In-Reply-To": "<t0@thread.example>"}


def test_a_new_day_brings_stale_rows_forward_in_steps(history: Engine) -> None:
    """The history's rows are for a day long past; the agent's hourly turn brings all of them
    to today, a few per transaction."""
    with Session(history) as session:
        rows = len(session.scalars(select(ContactFigures)).all())
        rows += len(session.scalars(select(CompanyFigures)).all())
    assert relationships.refresh_stale_in_steps(session_factory(history), step=2) == rows
    with Session(history) as session:
        days = set(session.scalars(select(ContactFigures.as_of)))
        days |= set(session.scalars(select(CompanyFigures.as_of)))
        assert days == {relationships.today()}
        assert _snapshot(session) == _recomputed(session, relationships.today())


_utc_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)
)


@given(_utc_times, _utc_times)
def test_stored_times_order_as_text_as_they_do_as_times(a: datetime, b: datetime) -> None:
    """The team map keeps times as ISO text; the closest teammate compares them as text."""
    assert (a.isoformat() < b.isoformat()) == (a < b)


def test_the_closest_teammate_has_most_interactions_then_the_latest_then_the_first_address() -> (
    None
):
    early, late = "2026-01-01T09:00:00+00:00", "2026-01-01T09:00:00.500000+00:00"
    assert rules.closest({}) is None
    assert rules.closest({"b@x": [3, early], "a@x": [2, late]}) == "b@x"
    assert rules.closest({"b@x": [2, late], "a@x": [2, early]}) == "b@x"
    assert rules.closest({"b@x": [2, late], "a@x": [2, late]}) == "a@x"


def test_reply_times_are_read_from_the_newest_messages_only(
    history: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However busy a customer, a page reads a bounded number of messages: with room for two,
    Carol's newest two (ours, then her answer 21 hours later) are all that is timed."""
    monkeypatch.setattr(relationships, "REPLY_SAMPLE", 2)
    with Session(history) as session:
        carol = _figures(session, "carol@acme.example")
        shown = relationships.standing(session, ContactFigures, carol.contact_id)
        assert (shown.our_reply_seconds, shown.their_reply_seconds) == (None, 21 * 3600)
