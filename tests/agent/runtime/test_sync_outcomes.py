"""How a sync pass ends: each kind of error -> the row's status, its message, and whether the
pass completed (``agent.runtime.sync_pass.OUTCOMES``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import Outcome, Stopped, outcome_of, sync_connector
from config import parse_settings
from connectors.errors import AuthError, ConnectorError, CursorInvalid, TransientError
from connectors.memory import MemoryConnector
from connectors.records import Batch, Cursor, MailMessage
from storage.db import session_factory, transaction
from storage.leases import Lease, LeaseLost
from storage.models import SyncState
from storage.sync_state import (
    ConnectorStatus,
    counters_of,
    get_state,
    record_failure,
    update_counters,
)
from tests.support.mailbuilder import message

FAILING, NEEDS_AUTH, OK = ConnectorStatus.FAILING, ConnectorStatus.NEEDS_AUTH, ConnectorStatus.OK
LEASE = Lease("c", "host:1:ab", datetime(2026, 3, 2, tzinfo=timezone.utc))
UNIQUE = IntegrityError("INSERT INTO ...", {}, Exception("UNIQUE constraint failed: x"))
DOWN = OperationalError("SELECT 1", {}, Exception("connection refused"))


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (LeaseLost(LEASE, "host:2:cd"), None),
        (Stopped(), Outcome(OK, None, complete=False, reported="stopped")),
        (
            AuthError("grant revoked", hint="run `crm-sync connectors auth c`"),
            Outcome(NEEDS_AUTH, "grant revoked run `crm-sync connectors auth c`"),
        ),
        (AuthError("expired"), Outcome(NEEDS_AUTH, "expired")),
        (TransientError("503", retry_after=30), Outcome(FAILING, "temporary: 503")),
        (
            CursorInvalid("history id too old"),
            Outcome(FAILING, "CursorInvalid: history id too old", unexpected=True),
        ),
        (ConnectorError("a.mbox: no such file"), Outcome(FAILING, "a.mbox: no such file")),
        (ValueError("bad date"), Outcome(FAILING, "ValueError: bad date", unexpected=True)),
        (UNIQUE, Outcome(FAILING, "IntegrityError: UNIQUE constraint failed: x", unexpected=True)),
        (DOWN, None),
    ],
    ids=[
        "lease-lost",
        "stopped",
        "auth",
        "auth-without-hint",
        "transient",
        "cursor-invalid-again",
        "connector-error",
        "unexpected",
        "data-refused",
        "database-down",
    ],
)
def test_each_error_kind_has_one_outcome(error: Exception, outcome: Outcome | None) -> None:
    assert outcome_of(error) == outcome


class _Raising:
    """A connector whose fetch fails at once with ``error``."""

    def __init__(self, error: BaseException | None) -> None:
        self.name = "c"
        self.error = error

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        if self.error is not None:
            raise self.error
        return iter([Batch([], {"v": 1, "position": 0})])


@pytest.fixture
def sessions(sqlite_engine: Engine) -> sessionmaker[Session]:
    return session_factory(sqlite_engine)


def _policy() -> Policy:
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    return Policy.from_settings(settings, "c", "alice@northwind.example")


def _row(sessions: sessionmaker[Session]) -> SyncState:
    with sessions() as session:
        state = session.get(SyncState, "c")
        assert state is not None
        return state


@pytest.mark.parametrize(
    ("error", "reported", "stored", "last_error", "succeeded"),
    [
        (None, "ok", "ok", None, True),
        (
            AuthError("grant revoked", hint="run auth"),
            "needs_auth",
            "needs_auth",
            "grant revoked run auth",
            False,
        ),
        (TransientError("503"), "failing", "failing", "temporary: 503", False),
        (CursorInvalid("unreadable"), "failing", "failing", "CursorInvalid: unreadable", False),
        (ValueError("bad date"), "failing", "failing", "ValueError: bad date", False),
    ],
    ids=["completed", "auth", "transient", "cursor-invalid-without-a-cursor", "unexpected"],
)
def test_a_pass_records_its_outcome_on_the_row(
    sessions: sessionmaker[Session],
    error: Exception | None,
    reported: str,
    stored: str,
    last_error: str | None,
    succeeded: bool,
) -> None:
    result = sync_connector(sessions, _Raising(error), _policy(), kind="test")  # type: ignore[arg-type]
    row = _row(sessions)
    assert (result.status, result.error) == (reported, last_error)
    assert (row.status, row.last_error) == (stored, last_error)
    assert (row.last_success_at is not None) == succeeded
    assert row.counters["last_run"]["items"] == 0


def test_a_pass_asked_to_stop_leaves_the_row_ok_without_a_success(
    sessions: sessionmaker[Session],
) -> None:
    connector = MemoryConnector("c", [], batch_size=5)
    result = sync_connector(sessions, connector, _policy(), kind="test", stop=lambda: True)
    row = _row(sessions)
    assert (result.status, row.status, row.last_success_at) == ("stopped", "ok", None)


def test_an_admins_pause_outlives_the_pass(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        get_state(session, "c", "test").status = ConnectorStatus.PAUSED.value
    result = sync_connector(sessions, _Raising(TransientError("503")), _policy(), kind="test")  # type: ignore[arg-type]
    assert (result.status, _row(sessions).status) == ("failing", "paused")


def test_the_database_going_away_is_raised_for_the_caller_to_record(
    sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(OperationalError):
        sync_connector(sessions, _Raising(DOWN), _policy(), kind="test")  # type: ignore[arg-type]
    assert _row(sessions).status == "syncing"


BULK = {"Precedence": "bulk"}


def test_a_full_resync_starts_the_totals_over_and_keeps_the_failures(
    sessions: sessionmaker[Session],
) -> None:
    """Counting a resync's items on top of the first sync's showed 1,779 items for 886."""
    mail = [
        message(sender="ann@acme.example", to=["alice@northwind.example"], subject=f"s{n}")
        for n in range(3)
    ] + [message(sender="news@shop.example", to=["alice@northwind.example"], headers=BULK)]
    connector = MemoryConnector(
        "c", [MailMessage(f"m{n}", "alice@northwind.example", raw) for n, raw in enumerate(mail)]
    )
    with transaction(sessions) as session:
        update_counters(get_state(session, "c", "test"), record_failure)  # as the scheduler does
    for full in (False, True, True):
        sync_connector(sessions, connector, _policy(), kind="test", full=full)
        totals = counters_of(_row(sessions))
        assert (totals.items, totals.logged, sum(totals.skipped.values())) == (4, 3, 1)
        assert totals.failures == 1
