"""What ``status`` derives from a ``sync_state`` row, the config and the clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from agent.runtime.health import connector_health, connector_status, derive_state, fix_for
from config import Settings
from config.schema import (
    AgentConfig,
    ConnectorConfig,
    GmailConnector,
    ImapConnector,
    MboxConnector,
)
from storage.db import session_factory
from storage.models import SyncState
from storage.sync_state import ConnectorHealth

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
MINUTE = timedelta(minutes=1)
INTERVAL = 5 * MINUTE


def _row(**values: Any) -> SyncState:
    values.setdefault("status", "ok")
    values.setdefault("last_success_at", NOW - MINUTE)
    return SyncState(connector="c", counters={}, **values)


def _mbox(**options: Any) -> MboxConnector:
    return MboxConnector(
        name="c", kind="mbox", account="a@example.com", path=Path("c.mbox"), **options
    )


HELD = {"lease_owner": "host:1:ab", "lease_expires_at": NOW + MINUTE}
EXPIRED = {"lease_owner": "host:1:ab", "lease_expires_at": NOW - MINUTE}


@pytest.mark.parametrize(
    ("row", "config", "state"),
    [
        (_row(), None, "removed"),
        (_row(), _mbox(enabled=False), "paused"),
        (_row(status="paused"), _mbox(), "paused"),
        (_row(status="needs_auth", **EXPIRED), _mbox(), "needs_auth"),
        (_row(status="stuck"), _mbox(), "stuck"),
        (_row(status="syncing", **EXPIRED), _mbox(), "stuck"),
        (_row(status="failing"), _mbox(), "failing"),
        (_row(status="syncing", **HELD), _mbox(), "syncing"),
        (_row(status="syncing", last_success_at=None), _mbox(), "stuck"),
        (None, _mbox(), "never_synced"),
        (_row(status="new", last_success_at=None), _mbox(), "never_synced"),
        (_row(status="ok", last_success_at=None), _mbox(), "never_synced"),
        (_row(last_success_at=NOW - 3 * INTERVAL - MINUTE), _mbox(), "lagging"),
        (_row(last_success_at=NOW - 3 * INTERVAL + MINUTE), _mbox(), "ok"),
        (_row(last_success_at=NOW - 16 * MINUTE), _mbox(interval="1h"), "ok"),
    ],
    ids=[
        "not-in-config",
        "disabled-in-config",
        "paused-by-admin",
        "needs-auth-beats-stuck",
        "stuck-stored",
        "lease-expired",
        "failing",
        "syncing",
        "syncing-without-a-lease",
        "no-row",
        "new",
        "interrupted-first-sync",
        "lagging",
        "just-in-time",
        "own-interval",
    ],
)
def test_derived_state(row: SyncState | None, config: ConnectorConfig | None, state: str) -> None:
    interval = config.interval if config is not None and config.interval else INTERVAL
    assert derive_state(row, config, interval, NOW) == state


GMAIL_OAUTH = GmailConnector(name="g", kind="gmail", account="a@example.com")
GMAIL_SA = GmailConnector(name="g", kind="gmail", account="a@example.com", auth="service_account")
IMAP = ImapConnector(name="i", kind="imap", account="a@example.com", host="mail.example")


@pytest.mark.parametrize(
    ("state", "config", "row", "fix"),
    [
        ("needs_auth", GMAIL_OAUTH, None, "run `crm-sync connectors auth g`"),
        ("needs_auth", GMAIL_SA, None, "domain-wide delegation"),
        ("needs_auth", IMAP, None, "correct the password"),
        (
            "stuck",
            _mbox(),
            _row(status="syncing", **EXPIRED),
            "make sure `crm-sync run` is running",
        ),
        ("stuck", _mbox(), _row(status="stuck"), "`crm-sync sync --connector c`"),
        ("stuck", _mbox(), _row(status="syncing"), "ended without recording its outcome"),
        ("failing", _mbox(), None, "`crm-sync sync --connector c` to retry now"),
        ("lagging", _mbox(), None, "check that `crm-sync run` is running"),
        ("paused", _mbox(enabled=False), None, "set enabled = true"),
        ("paused", _mbox(), None, "`crm-sync connectors resume c`"),
        ("never_synced", _mbox(), None, "next tick"),
        ("removed", None, None, "no longer in the config"),
        ("ok", _mbox(), None, ""),
        ("syncing", _mbox(), None, ""),
    ],
    ids=[
        "oauth",
        "service-account",
        "imap-password",
        "agent-died",
        "stalled",
        "run-cut-short",
        "failing",
        "lagging",
        "disabled",
        "paused",
        "never-synced",
        "removed",
        "ok",
        "syncing",
    ],
)
def test_each_state_that_needs_a_person_says_what_to_try(
    state: str, config: ConnectorConfig | None, row: SyncState | None, fix: str
) -> None:
    name = config.name if config is not None else "c"
    text = fix_for(state, name, row, config, NOW)
    assert fix in text if fix else text == ""
    assert "\n" not in text


def test_a_lease_whose_holder_is_gone_is_stuck_before_it_expires() -> None:
    row = _row(status="syncing", **HELD)
    gone = {"host:1:ab"}.__contains__
    assert derive_state(row, _mbox(), INTERVAL, NOW, gone) == "stuck"
    fix = fix_for("stuck", "c", row, _mbox(), NOW, gone)
    assert "host:1:ab" in fix and "no longer runs" in fix
    assert derive_state(row, _mbox(), INTERVAL, NOW, lambda _owner: False) == "syncing"


def test_status_rows_name_configured_and_removed_connectors(sqlite_engine: Engine) -> None:
    sessions = session_factory(sqlite_engine)
    with sessions.begin() as session:
        session.add(
            SyncState(
                connector="c",
                status="failing",
                last_error="FileNotFoundError: c.mbox:\n  no such mbox file",
                counters={"items": 7, "failures": 3, "consecutive_failures": 2},
            )
        )
        session.add(SyncState(connector="old", status="ok", counters={}))
    settings = Settings(agent=AgentConfig(interval="5m"), connectors=[_mbox()])  # type: ignore[arg-type]
    with sessions() as session:
        rows = {r["connector"]: r for r in connector_status(settings, session, NOW)}
    assert list(rows) == ["c", "old"]
    assert rows["c"]["state"] == "failing"
    assert rows["c"]["last_error"] == "FileNotFoundError: c.mbox: no such mbox file"
    assert (rows["c"]["items"], rows["c"]["failures"], rows["c"]["consecutive_failures"]) == (
        7,
        3,
        2,
    )
    assert rows["old"]["state"] == "removed"
    assert rows["old"]["fix"] == "no longer in the config; the mail it logged stays"


STATUS_KEYS = [
    "connector",
    "kind",
    "state",
    "last_success",
    "lag",
    "items",
    "skipped",
    "limited",
    "quarantined",
    "last_error",
    "fix",
    "lease_owner",
    "lease_expires_at",
    "needs_auth",
    "failures",
    "consecutive_failures",
    "quota_units_last_run",
    "retries_last_run",
    "counters",
]
"""The keys of ``status --json``, which scripts read."""


def test_health_records_are_typed_and_print_as_the_same_rows(sqlite_engine: Engine) -> None:
    sessions = session_factory(sqlite_engine)
    counters = {
        "items": 12,
        "logged": 9,
        "quarantined": 1,
        "skipped": {"automated_bulk": 2},
        "last_run": {"items": 3, "logged": 2, "seconds": 0.5, "quota_units": {"a": 4, "b": 1}},
        "shipped_by_a_newer_version": [1, 2],
    }
    with sessions.begin() as session:
        session.add(
            SyncState(
                connector="c",
                status="needs_auth",
                last_success_at=NOW - 2 * MINUTE,
                counters=counters,
                **HELD,
            )
        )
    settings = Settings(agent=AgentConfig(interval="5m"), connectors=[_mbox()])  # type: ignore[arg-type]
    with sessions() as session:
        (health,) = connector_health(settings, session, NOW)
        (row,) = connector_status(settings, session, NOW)

    assert (health.state, health.needs_auth, health.lag) == ("needs_auth", True, 2 * MINUTE)
    assert (health.items, health.logged, health.quarantined) == (12, 9, 1)
    assert (health.skipped, health.limited) == ({"automated_bulk": 2}, {})
    assert (health.quota_units, health.quota_units_last_run) == ({"a": 4, "b": 1}, 5)
    assert health.lease_owner == HELD["lease_owner"]
    assert list(row) == STATUS_KEYS
    assert row == health.as_row()
    assert row["counters"]["shipped_by_a_newer_version"] == [1, 2]
    assert row["counters"]["last_run"]["quota_units"] == {"a": 4, "b": 1}


def test_a_connector_without_a_row_has_counted_nothing() -> None:
    health = ConnectorHealth("c", "mbox", "never_synced")
    row = health.as_row()
    assert list(row) == STATUS_KEYS
    assert (row["items"], row["skipped"], row["failures"], row["quota_units_last_run"]) == (
        0,
        {},
        0,
        None,
    )
