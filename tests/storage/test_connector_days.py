"""What each connector brought per day: added up in the batch's transaction."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.memory import MemoryConnector
from connectors.records import MailMessage
from storage.connector_days import measures_of, record
from storage.db import session_factory, upgrade
from storage.models import ConnectorDay, utcnow
from tests.support.mailbuilder import message

DAY = date(2026, 3, 2)


def _rows(engine: Engine) -> dict[tuple[str, date, str], int]:
    with Session(engine) as session:
        rows = session.execute(
            select(ConnectorDay.connector, ConnectorDay.day, ConnectorDay.measure, ConnectorDay.n)
        )
        return {(c, d, m): n for c, d, m, n in rows}


def test_figures_add_up_per_connector_day_and_measure(engine: Engine) -> None:
    upgrade(engine)
    with Session(engine) as session, session.begin():
        record(session, "a", DAY, {"items": 3, "logged": 2, "skipped:automated": 1})
        record(session, "a", DAY, {"items": 2, "logged": 2, "quarantined": 0})
        record(session, "b", DAY, {"items": 1})
        record(session, "a", date(2026, 3, 3), {})
    assert _rows(engine) == {
        ("a", DAY, "items"): 5,
        ("a", DAY, "logged"): 4,
        ("a", DAY, "skipped:automated"): 1,
        ("b", DAY, "items"): 1,
    }


def test_reasons_become_prefixed_measures() -> None:
    measures = measures_of(
        items=4, logged=1, quarantined=1, skipped={"bulk": 2}, limited={"too_big": 1}
    )
    assert measures == {
        "items": 4,
        "logged": 1,
        "quarantined": 1,
        "skipped:bulk": 2,
        "limited:too_big": 1,
    }


def test_a_sync_pass_fills_the_day_of_its_connector(engine: Engine) -> None:
    upgrade(engine)
    sessions = session_factory(engine)
    mail = [
        message(sender="ann@acme.example", to=["alice@northwind.example"], subject=f"s{n}")
        for n in range(3)
    ] + [
        message(
            sender="news@shop.example",
            to=["alice@northwind.example"],
            headers={"Precedence": "bulk"},
        )
    ]
    connector = MemoryConnector(
        "c",
        [MailMessage(f"m{n}", "alice@northwind.example", raw) for n, raw in enumerate(mail)],
        batch_size=2,
    )
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    policy = Policy.from_settings(settings, "c", "alice@northwind.example")
    result = sync_connector(sessions, connector, policy, kind="test")
    assert (result.items, result.logged) == (4, 3)
    today = utcnow().date()
    rows = _rows(engine)
    skipped = {m: n for (_, _, m), n in rows.items() if m.startswith("skipped:")}
    assert rows[("c", today, "items")] == 4
    assert rows[("c", today, "logged")] == 3
    assert sum(skipped.values()) == 1
    assert {day for _, day, _ in rows} == {today}
