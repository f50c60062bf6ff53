"""The bounds of ``config.limits``, one at a time, and the sync that never gets stuck on one item.

``tests/agent/runtime/test_hostile.py`` runs the whole hostile corpus end to end; these
tests pin each bound down where it is decided: recurrence rules, the
envelope, the pipeline's contact policy, the database's text check, and the
sync loop's handling of an item the database refuses.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from agent.mail.envelope import build_envelope
from agent.mail.text import parse_mime
from agent.pipeline.batch import plan_batch
from agent.pipeline.emails import plan_mail
from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from config.limits import MAX_ID_CHARS, MAX_NAME_CHARS, Limits
from connectors.errors import BadItem, ConnectorError
from connectors.ical.bounded_rules import ExpansionBudget
from connectors.ical.parts import parse_calendar
from connectors.ical.recurrence import expand
from connectors.memory import MemoryConnector
from connectors.records import MailMessage
from storage.db import session_factory
from storage.models import Interaction, InteractionSource, Quarantine, SyncState
from tests.support.mailbuilder import message

ME = "alice@northwind.example"
WINDOW = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC))


def _calendar(rule: str, start: str = "20260101T100000Z", count: int = 1) -> Any:
    events = "".join(
        f"BEGIN:VEVENT\r\nUID:u{i}\r\nDTSTART:{start}\r\nDURATION:PT30M\r\n"
        f"RRULE:{rule}\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
        for i in range(count)
    )
    return parse_calendar(
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\n{events}END:VCALENDAR\r\n".encode()
    )


@pytest.mark.parametrize(
    ("rule", "start", "expected", "capped"),
    [
        ("FREQ=WEEKLY;BYDAY=MO,WE", "20260101T100000Z", 121, None),
        ("FREQ=DAILY;COUNT=3000", "20260101T100000Z", 424, None),
        ("FREQ=DAILY", "20100101T100000Z", 5_000, "newest 5000"),
        ("FREQ=SECONDLY", "20260101T100000Z", 5_000, "more than 100000 steps"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "20260101T100000Z", 1, "matches no date"),
        ("FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30", "20260101T100000Z", 1, "matches no date"),
        ("FREQ=MINUTELY;INTERVAL=10080;BYDAY=TU", "20260101T100000Z", 1, "matches no date"),
        (
            "FREQ=YEARLY;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;BYMONTHDAY=1,5,9,13,17,21,25;"
            "BYHOUR=0,2,4,6,8,10,12,14,16,18,20,22;BYMINUTE=0,10,20,30,40,50",
            "20260101T100000Z",
            5_000,
            "newest 5000",
        ),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", "20240229T100000Z", 1, None),
        ("FREQ=DAILY;UNTIL=20260110T000000Z", "20260101T100000Z", 9, None),
    ],
    ids=[
        "weekly",
        "count",
        "daily-for-years",
        "secondly",
        "impossible-daily",
        "impossible-secondly",
        "interval-skips-the-day",
        "dense",
        "leap-day",
        "until",
    ],
)
def test_a_rule_expands_within_its_bounds(
    rule: str, start: str, expected: int, capped: str | None
) -> None:
    budget = ExpansionBudget()
    occurrences = list(expand(_calendar(rule, start), *WINDOW, budget=budget))
    assert len(occurrences) == expected
    if capped is None:
        assert budget.capped == {}
    else:
        assert capped in budget.capped["u0"]


def test_a_series_cut_to_its_newest_occurrences_keeps_the_latest() -> None:
    occurrences = list(expand(_calendar("FREQ=DAILY", "20100101T100000Z"), *WINDOW))
    starts = sorted(o.decoded("DTSTART") for o in occurrences)
    assert starts[-1] == datetime(2027, 2, 28, 10, tzinfo=UTC)
    assert starts[0] == starts[-1] - timedelta(days=4_999)


def test_a_pass_expands_at_most_its_share_and_an_invitation_its_series() -> None:
    budget = ExpansionBudget(Limits(occurrences_per_sync=1_000))
    found = list(expand(_calendar("FREQ=DAILY", count=4), *WINDOW, budget=budget))
    assert len(found) == 1_000  # 424 + 424 + 152
    assert budget.capped == {
        "u2": "logged up to 152 occurrences",
        "u3": "the pass expanded 1000 occurrences already",
    }

    budget = ExpansionBudget()
    found = list(expand(_calendar("FREQ=WEEKLY", count=4), *WINDOW, budget=budget, max_series=2))
    assert len(found) == 2 * 61
    assert sorted(budget.capped) == ["u2", "u3"]


def _dated(date: str) -> bytes:
    """Written by hand: the stdlib's message builder would re-render the Date header."""
    return (
        f"From: bob@acme.example\r\nTo: {ME}\r\nDate: {date}\r\nSubject: x\r\n\r\nHi\r\n"
    ).encode()


def _envelope(raw: bytes) -> Any:
    return build_envelope(MailMessage("m1", ME, raw), parse_mime(raw), ["northwind.example"])


@pytest.mark.parametrize(
    ("date", "reason"),
    [
        ("Sat, 7 Jun 0 09:12:00 +0000", "Date header year '0' is not a year"),
        ("Sat, 7 Jun 0000 09:12:00 +0000", "Date header year '0000' is not a year"),
        ("Sat, 7 Jun 099 09:12:00 +0000", "Date header year '099' is not a year"),
        ("Mon, 7 Jun 2999 09:12:00 +0000", "date 2999-06-07T09:12:00+00:00 is outside"),
        ("Mon, 7 Jun 1960 09:12:00 +0000", "date 1960-06-07T09:12:00+00:00 is outside"),
    ],
    ids=["one-digit-year", "year-zero", "three-digit-year", "far-future", "before-1970"],
)
def test_a_date_that_is_not_one_is_quarantined_never_redated(date: str, reason: str) -> None:
    with pytest.raises(BadItem) as raised:
        _envelope(_dated(date))
    assert raised.value.reason.startswith(reason)


def test_a_two_digit_year_is_the_obsolete_form_rfc_5322_allows() -> None:
    assert _envelope(_dated("7 Jun 91 09:12")).occurred_at == datetime(
        1991, 6, 7, 9, 12, tzinfo=UTC
    )


def test_long_identifiers_are_hashed_and_long_names_cut() -> None:
    long_id = "x" * 600 + "@acme.example"
    raw = message(
        sender='"' + "Bob " * 100 + '" <bob@acme.example>',
        to=[ME],
        message_id=f"<{long_id}>",
        headers={"References": f"<{long_id}.root>"},
    )
    envelope = _envelope(raw)
    assert envelope.dedupe_key.startswith("sha256:") and len(envelope.dedupe_key) <= MAX_ID_CHARS
    assert envelope.thread_key is not None and envelope.thread_key.startswith("sha256:")
    assert envelope.thread_key != envelope.dedupe_key
    assert _envelope(raw).dedupe_key == envelope.dedupe_key  # the same message, the same key
    assert envelope.sender is not None and len(envelope.sender.name) == MAX_NAME_CHARS


def test_a_message_to_more_people_than_the_limit_creates_no_contact() -> None:
    settings = parse_settings(
        {"agent": {"internal_domains": ["northwind.example"]}, "limits": {"contact_recipients": 2}},
        None,
    )
    policy = Policy.from_settings(settings, "alice", ME)
    few = message(sender=ME, to=["a@one.example", "b@two.example"], message_id="<few@x>")
    many = message(sender=ME, to=[f"p{i}@c{i}.example" for i in range(3)], message_id="<many@x>")
    plan = plan_batch([MailMessage("1", ME, few), MailMessage("2", ME, many)], policy)
    assert plan.logged == 2
    assert sorted(c.email for c in plan.write.new_contacts) == ["a@one.example", "b@two.example"]
    assert [(n.source_id, n.reason) for n in plan.limited] == [("2", "too_many_recipients")]
    outcome = plan_mail(MailMessage("2", ME, many), policy)
    assert not isinstance(outcome, list) and len(outcome.record.participants) == 4


@pytest.fixture
def sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    yield session_factory(engine)


def _policy() -> Policy:
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    return Policy.from_settings(settings, "alice", ME)


def _mail(n: int, source_id: str | None = None) -> MailMessage:
    raw = message(sender="bob@acme.example", to=[ME], message_id=f"<m{n}@acme.example>")
    return MailMessage(source_id or f"id-{n}", ME, raw)


def test_an_item_the_database_refuses_is_quarantined_and_the_rest_commits(
    sessions: sessionmaker[Session],
) -> None:
    refused = "INBOX/" + "x" * 600  # longer than interaction_sources.source_id holds
    connector = MemoryConnector("alice", batch_size=10)
    connector.add(
        *(_mail(n) for n in range(4)), _mail(4, refused), *(_mail(n) for n in range(5, 9))
    )

    result = sync_connector(sessions, connector, _policy(), kind="test")

    assert (result.status, result.logged, result.quarantined) == ("ok", 8, 1)
    with sessions() as session:
        keys = set(session.scalars(select(Interaction.dedupe_key)))
        [reason] = session.scalars(select(Quarantine.reason)).all()
        state = session.get(SyncState, "alice")
        assert state is not None
        assert state.cursor == {"v": 1, "position": 9}
        assert session.scalar(select(InteractionSource.source_id).limit(1)) is not None
    assert keys == {f"m{n}@acme.example" for n in range(9) if n != 4}
    assert reason.startswith("the database refused it: ")
    assert "x" * 50 not in reason and "INSERT" not in reason

    again = sync_connector(sessions, connector, _policy(), kind="test")
    assert (again.status, again.items) == ("ok", 0)


def test_a_text_value_is_stored_the_same_on_both_databases(
    sessions: sessionmaker[Session],
) -> None:
    raw = message(
        sender="bob@acme.example", to=[ME], subject="Hi\x00there", message_id="<nul@acme.example>"
    )
    connector = MemoryConnector("alice", [MailMessage("nul", ME, raw)])
    assert sync_connector(sessions, connector, _policy(), kind="test").logged == 1
    with sessions() as session:
        assert session.scalar(select(Interaction.subject)) == "Hithere"


def test_a_stored_error_is_masked_like_the_logs(sessions: sessionmaker[Session]) -> None:
    connector = MemoryConnector("alice", [_mail(1)])
    connector.fail_at[0] = ConnectorError("no mailbox for ann.lee@acme.example (Ann Lee)")
    result = sync_connector(sessions, connector, _policy(), kind="test")
    assert result.status == "failing"
    with sessions() as session:
        state = session.get(SyncState, "alice")
        assert state is not None and state.last_error is not None
        assert "ann.lee@acme.example" not in state.last_error
        assert "a***@acme.example" in state.last_error


def test_two_messages_sharing_a_message_id_stay_two_in_one_batch(
    sessions: sessionmaker[Session],
) -> None:
    first = message(sender="bob@acme.example", to=[ME], subject="Quote", message_id="<same@x>")
    second = message(sender="carol@globex.example", to=[ME], subject="Hi", message_id="<same@x>")
    copy = MailMessage("copy", ME, first)  # the same message, filed in a second folder
    connector = MemoryConnector(
        "alice", [MailMessage("a", ME, first), MailMessage("b", ME, second), copy]
    )
    result = sync_connector(sessions, connector, _policy(), kind="test")
    assert result.limited == {"dedupe_collision": 1}
    with sessions() as session:
        rows = session.execute(select(Interaction.dedupe_key, Interaction.subject)).all()
        sources = session.execute(
            select(InteractionSource.source_id, Interaction.subject).join(Interaction)
        ).all()
    assert sorted(subject for _, subject in rows) == ["Hi", "Quote"]
    assert dict(sources) == {"a": "Quote", "b": "Hi", "copy": "Quote"}
