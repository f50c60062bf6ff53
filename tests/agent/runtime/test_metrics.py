"""Prometheus metrics: the figures `status` shows, scraped over HTTP on a loopback port."""

from __future__ import annotations

import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from agent.pipeline.policy import Policy
from agent.runtime.health import connector_status
from agent.runtime.metrics import STATES, families, start_metrics_server
from agent.runtime.reconcile import record_result, verify_connector
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.mbox import MboxConnector
from storage.db import make_engine, session_factory
from storage.models import SyncState
from storage.sync_state import ConnectorHealth, Counters, LastRun, Verification
from tests.support.mailbuilder import message, write_mbox

ME = "alice@northwind.example"
MAILS = [
    message(sender="Ann <ann@acme.example>", to=[ME], message_id="<1@acme.example>"),
    message(sender="Bob <bob@acme.example>", to=[ME], message_id="<2@acme.example>"),
    message(sender="news@shop.example", to=[ME], headers={"Precedence": "bulk"}),
    message(sender="Cy <cy@acme.example>", to=[ME], date=None, message_id="<3@acme.example>"),
]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(port: int) -> Samples:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode("utf-8")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_scrape_shows_the_figures_of_status(engine: Engine, tmp_path: Path) -> None:
    mbox = write_mbox(tmp_path / "a.mbox", MAILS)
    settings = parse_settings(
        {
            "agent": {"internal_domains": ["northwind.example"]},
            "connectors": [
                {"name": "alice-mail", "kind": "mbox", "account": ME, "path": str(mbox)},
                {"name": "idle-mail", "kind": "mbox", "account": ME, "path": str(mbox)},
            ],
        },
        None,
    )
    sessions = session_factory(engine)
    connector = MboxConnector("alice-mail", mbox, ME)
    policy = Policy.from_settings(settings, "alice-mail", ME)
    sync_connector(sessions, connector, policy, kind="mbox")
    record_result(sessions, verify_connector(sessions, connector, policy))
    with sessions() as session, session.begin():
        state = session.get(SyncState, "alice-mail")
        assert state is not None
        state.counters = dict(state.counters) | {
            "last_run": {"quota_units": {"users.messages.get": 250, "users.history.list": 2}}
        }

    server = start_metrics_server(0, sessions, settings)
    try:
        samples = scrape(server.port)
    finally:
        server.close()
    with sessions() as session:
        status = {row["connector"]: row for row in connector_status(settings, session, now=_now())}

    alice = status["alice-mail"]
    assert value(samples, "crm_sync_database_up") == 1
    assert value(samples, "crm_sync_connector_items_total", connector="alice-mail") == 4
    assert value(samples, "crm_sync_connector_logged_total", connector="alice-mail") == 2
    assert alice["skipped"] == {"automated_bulk": 1}
    assert (
        value(
            samples,
            "crm_sync_connector_skipped_total",
            connector="alice-mail",
            reason="automated_bulk",
        )
        == 1
    )
    assert value(samples, "crm_sync_connector_quarantined_total", connector="alice-mail") == 1
    assert (
        value(samples, "crm_sync_connector_last_success_timestamp_seconds", connector="alice-mail")
        == alice["last_success"].timestamp()
    )
    assert 0 <= value(samples, "crm_sync_connector_lag_seconds", connector="alice-mail") < 60
    assert value(samples, "crm_sync_connector_state", connector="alice-mail", state="ok") == 1
    assert value(samples, "crm_sync_connector_state", connector="alice-mail", state="failing") == 0
    assert (
        value(samples, "crm_sync_connector_state", connector="idle-mail", state="never_synced") == 1
    )
    assert (
        value(
            samples,
            "crm_sync_connector_quota_units_last_run",
            connector="alice-mail",
            method="users.messages.get",
        )
        == 250
    )
    assert value(samples, "crm_sync_connector_verify_unexplained", connector="alice-mail") == 0
    assert (
        "crm_sync_connector_lag_seconds",
        frozenset({("connector", "idle-mail")}),
    ) not in samples


def test_a_database_that_does_not_answer_is_reported_not_raised(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'no-schema.db'}")
    server = start_metrics_server(0, session_factory(engine), parse_settings({}, None))
    try:
        samples = scrape(server.port)
    finally:
        server.close()
        engine.dispose()
    assert samples == {("crm_sync_database_up", frozenset()): 0.0}


def test_every_state_has_a_series_and_unknown_states_are_kept() -> None:
    row = ConnectorHealth("c", "mbox", "warming_up", lag=timedelta(seconds=5))
    (state,) = [f for f in families([row]) if f.name == "crm_sync_connector_state"]
    current = {s.labels["state"]: s.value for s in state.samples}
    assert set(current) == {*STATES, "warming_up"}
    assert [name for name, v in current.items() if v == 1] == ["warming_up"]


def test_families_read_the_typed_counters() -> None:
    checked = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)
    counters = Counters(
        items=9,
        logged=4,
        skipped={"automated_bulk": 2},
        last_run=LastRun(quota_units={"users.messages.get": 5}),
        verify=Verification(checked_at=checked, unexplained=1),
    )
    found = {
        family.name: {tuple(sorted(s.labels.items())): s.value for s in family.samples}
        for family in families([ConnectorHealth("c", "gmail", "ok", counters=counters)])
    }
    assert found["crm_sync_connector_items"] == {(("connector", "c"),): 9}
    assert found["crm_sync_connector_logged"] == {(("connector", "c"),): 4}
    assert found["crm_sync_connector_skipped"] == {
        (("connector", "c"), ("reason", "automated_bulk")): 2
    }
    assert found["crm_sync_connector_quota_units_last_run"] == {
        (("connector", "c"), ("method", "users.messages.get")): 5
    }
    assert found["crm_sync_connector_verify_unexplained"] == {(("connector", "c"),): 1}
    assert found["crm_sync_connector_verify_timestamp_seconds"] == {
        (("connector", "c"),): checked.timestamp()
    }
    assert found["crm_sync_connector_lag_seconds"] == {}


def _now() -> datetime:
    return datetime.now(timezone.utc)
