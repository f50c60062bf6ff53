"""Outlook mail through the whole agent: config, registry, MSAL, the connector, the database.

Two mailboxes of one tenant, read by two connectors built from a config as an
admin writes it, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from agent.pipeline.policy import Policy
from agent.runtime.health import connector_health
from agent.runtime.registry import build_connector, token_store
from agent.runtime.sync_pass import SyncResult, sync_connector
from config import Settings, parse_settings
from config.secrets import ensure_key_file
from connectors.microsoft.auth import MAIL_SCOPES, device_code_grant
from connectors.records import Connector
from storage.db import session_factory
from storage.models import Interaction, InteractionSource
from tests.support.fake_graph import FakeGraph
from tests.support.graph_connectors import (
    ALICE,
    APP,
    BOB,
    PUBLIC_APP,
    SECRET,
    approve_when_asked,
    tenant,
)
from tests.support.mailbuilder import message


def settings_for(fake: FakeGraph, tmp_path: Path, *connectors: dict[str, Any]) -> Settings:
    common = {
        "tenant": fake.tenant_id,
        "authority_host": fake.url,
        "graph_endpoint": fake.graph_url,
        "scope": "readonly",
    }
    data = {
        "agent": {"internal_domains": ["contoso.com"]},
        "secrets": {"key_file": str(tmp_path / "key"), "token_dir": str(tmp_path / "tokens")},
        "connectors": [common | c for c in connectors],
    }
    return parse_settings(data, tmp_path / "crm-sync.toml", env={"M365_SECRET": SECRET})


def app_mailbox(name: str, account: str) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "microsoft_mail",
        "account": account,
        "client_id": APP,
        "client_secret": "${M365_SECRET}",
    }


def sync(engine: Engine, connector: Connector, settings: Settings, account: str) -> SyncResult:
    policy = Policy.from_settings(settings, connector.name, account)
    return sync_connector(session_factory(engine), connector, policy, kind="microsoft_mail")


def customer_mail() -> bytes:
    return message(
        sender="Ann Lee <ann@fabrikam.example>",
        to=[ALICE, BOB],
        subject="Our order",
        body="Both of you, please.",
        message_id="<order-1@fabrikam.example>",
    )


def test_one_message_in_two_mailboxes_is_one_interaction_with_two_sources(
    graph: FakeGraph, engine: Engine, tmp_path: Path
) -> None:
    raw = customer_mail()
    graph.add_user(ALICE, "Alice").deliver(raw)
    graph.add_user(BOB, "Bob").deliver(raw)
    settings = settings_for(
        graph, tmp_path, app_mailbox("alice-mail", ALICE), app_mailbox("bob-mail", BOB)
    )
    for config in settings.connectors:
        result = sync(engine, build_connector(config, settings, tmp_path), settings, config.account)
        assert result.status == "ok", result.error
        assert result.logged == 1

    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 1
        sources = session.execute(select(InteractionSource.connector)).scalars().all()
    assert sorted(sources) == ["alice-mail", "bob-mail"]


def grant_by_device_code(fake: FakeGraph, upn: str) -> dict[str, Any]:
    approve_when_asked(fake, upn)
    return device_code_grant(tenant(fake, PUBLIC_APP), MAIL_SCOPES["readonly"], say=print)


def test_a_revoked_grant_parks_its_connector_while_another_keeps_syncing(
    graph: FakeGraph, engine: Engine, tmp_path: Path
) -> None:
    alice = graph.add_user(ALICE, "Alice")
    bob = graph.add_user(BOB, "Bob")
    delegated = {
        "name": "alice-mail",
        "kind": "microsoft_mail",
        "account": ALICE,
        "client_id": PUBLIC_APP,
        "auth": "delegated",
    }
    settings = settings_for(graph, tmp_path, delegated, app_mailbox("bob-mail", BOB))
    ensure_key_file(tmp_path / "key")
    token_store(settings, tmp_path).save("alice-mail", grant_by_device_code(graph, ALICE))
    alice_config, bob_config = settings.connectors
    alice_mail = build_connector(alice_config, settings, tmp_path)
    bob_mail = build_connector(bob_config, settings, tmp_path)
    alice.deliver(customer_mail())
    assert sync(engine, alice_mail, settings, ALICE).status == "ok"

    graph.revoke(ALICE)
    bob.deliver(customer_mail())
    parked = sync(engine, build_connector(alice_config, settings, tmp_path), settings, ALICE)
    going_on = sync(engine, bob_mail, settings, BOB)

    assert parked.status == "needs_auth"
    assert "run `crm-sync connectors auth alice-mail`" in (parked.error or "")
    assert going_on.status == "ok" and going_on.logged == 1


def test_retries_under_throttling_are_counted_in_status(
    graph: FakeGraph, engine: Engine, tmp_path: Path
) -> None:
    alice = graph.add_user(ALICE, "Alice")
    for n in range(30):
        alice.deliver(
            message(sender=f"c{n}@fabrikam.example", to=[ALICE], message_id=f"<t{n}@f.example>")
        )
    settings = settings_for(graph, tmp_path, app_mailbox("alice-mail", ALICE))
    (config,) = settings.connectors
    graph.throttle(0.2, retry_after=0, seed=5)
    result = sync(engine, build_connector(config, settings, tmp_path), settings, ALICE)
    assert result.status == "ok" and result.logged == 30

    with session_factory(engine)() as session:
        (row,) = connector_health(settings, session, datetime.now(UTC))
    throttled = len(graph.calls(status=429)) + len(graph.calls(status=503))
    assert row.retries_last_run == throttled > 0
    assert row.as_row()["retries_last_run"] == throttled
