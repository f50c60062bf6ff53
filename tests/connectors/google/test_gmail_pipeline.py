"""Gmail through the whole pipeline: the real client, the fake server, a real database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, select

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import SyncResult, sync_connector
from config import parse_settings
from connectors.google.auth import gmail_scopes, user_credentials
from connectors.google.gmail import GmailConnector
from storage.db import session_factory
from storage.models import Interaction, InteractionSource
from tests.support.fake_google.server import FakeGoogle
from tests.support.mailbuilder import message

ALICE = "alice@northwind.example"
DAN = "dan@northwind.example"
SETTINGS = parse_settings(
    {
        "agent": {"internal_domains": ["northwind.example"]},
        "privacy": {"private_label": "Private"},
    },
    None,
)


def connector(fake_google: FakeGoogle, account: str, **options: Any) -> GmailConnector:
    mode = options.pop("mode", "readonly")
    scopes = gmail_scopes(mode)
    info = {
        "refresh_token": fake_google.issue_refresh_token(account, scopes),
        "client_id": "test-client",
        "client_secret": "test-secret",
    }
    credentials = user_credentials(info, scopes, token_uri=fake_google.token_uri)
    name = account.split("@")[0] + "-gmail"
    return GmailConnector(
        name,
        account,
        credentials,
        mode=mode,
        api_endpoint=fake_google.url,
        sleep=lambda _: None,
        **options,
    )


def run(engine: Engine, gmail: GmailConnector) -> SyncResult:
    policy = Policy.from_settings(SETTINGS, gmail.name, gmail.account)
    result = sync_connector(session_factory(engine), gmail, policy, kind="gmail")
    assert result.status == "ok", result.error
    return result


def test_one_message_in_two_mailboxes_is_one_interaction_with_two_sources(
    fake_google: FakeGoogle, engine: Engine
) -> None:
    raw = message(
        sender="Ann Lee <ann@acme.example>",
        to=[ALICE, DAN],
        subject="Contract",
        body="Signed copy attached.",
        message_id="<contract@acme.example>",
    )
    alice_id = fake_google.add_mailbox(ALICE).add_message(raw, ["INBOX"])
    dan_id = fake_google.add_mailbox(DAN).add_message(raw, ["INBOX"])
    run(engine, connector(fake_google, ALICE))
    run(engine, connector(fake_google, DAN))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 1
        sources = session.execute(
            select(InteractionSource.connector, InteractionSource.source_id)
        ).all()
        interaction = session.scalar(select(Interaction))
    assert sorted(sources) == [("alice-gmail", alice_id), ("dan-gmail", dan_id)]
    assert interaction is not None and interaction.summary == "Signed copy attached."


def test_metadata_mode_logs_without_any_text(fake_google: FakeGoogle, engine: Engine) -> None:
    raw = message(
        sender="Ann <ann@acme.example>",
        to=[ALICE],
        body="secret terms",
        message_id="<m@acme.example>",
    )
    fake_google.add_mailbox(ALICE).add_message(raw, ["INBOX"])
    result = run(engine, connector(fake_google, ALICE, mode="metadata"))
    assert result.logged == 1
    formats = {call.format for call in fake_google.api_calls("users.messages.get")}
    assert formats == {"metadata"}
    with session_factory(engine)() as session:
        interaction = session.scalar(select(Interaction))
    assert interaction is not None
    assert interaction.summary is None and interaction.body is None


def test_a_deleted_message_loses_its_source_and_keeps_the_interaction(
    fake_google: FakeGoogle, engine: Engine
) -> None:
    mailbox = fake_google.add_mailbox(ALICE)
    gmail_id = mailbox.add_message(
        message(sender="Ann <ann@acme.example>", to=[ALICE], message_id="<d@acme.example>"),
        ["INBOX"],
    )
    gmail = connector(fake_google, ALICE)
    run(engine, gmail)
    mailbox.delete_message(gmail_id)
    run(engine, gmail)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Interaction)) == 1
        assert session.scalar(select(func.count()).select_from(InteractionSource)) == 0


def test_the_private_label_withdraws_a_message_also_when_added_later(
    fake_google: FakeGoogle, engine: Engine
) -> None:
    mailbox = fake_google.add_mailbox(ALICE)
    private = mailbox.create_label("Private")
    kept = mailbox.add_message(
        message(sender="Ann <ann@acme.example>", to=[ALICE], message_id="<k@acme.example>"),
        ["INBOX"],
    )
    hidden_now = mailbox.add_message(
        message(sender="Ann <ann@acme.example>", to=[ALICE], message_id="<h1@acme.example>"),
        ["INBOX", private],
    )
    hidden_later = mailbox.add_message(
        message(sender="Ann <ann@acme.example>", to=[ALICE], message_id="<h2@acme.example>"),
        ["INBOX"],
    )
    gmail = connector(fake_google, ALICE)
    first = run(engine, gmail)
    assert first.logged == 2 and first.skipped["private_label"] == 1

    mailbox.modify(hidden_later, add=[private])
    second = run(engine, gmail)
    assert second.skipped["private_label"] == 1
    with session_factory(engine)() as session:
        keys = set(session.scalars(select(Interaction.dedupe_key)))
    assert keys == {"k@acme.example"}
    assert {kept, hidden_now, hidden_later} <= set(mailbox.messages)
