"""The Outlook mail connector against the fake Graph server: MSAL and the connector unchanged,
over real HTTPS."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from connectors.microsoft.mail import MicrosoftMailConnector
from connectors.records import Batch, Cursor, MailMessage, SourceRemoved
from tests.support.fake_graph import FakeGraph, Mailbox
from tests.support.graph_connectors import ALICE, BASIC_APP, app_client
from tests.support.mailbuilder import message


def mail(n: int, *, to: str = ALICE, sender: str | None = None) -> bytes:
    return message(
        sender=sender or f"Customer {n} <c{n}@fabrikam.example>",
        to=[to],
        subject=f"Quote {n}",
        body=f"About quote {n}.",
        message_id=f"<quote-{n}@fabrikam.example>",
        date=datetime(2026, 3, 2, 9, n % 60, tzinfo=UTC),
    )


@pytest.fixture
def alice(graph: FakeGraph) -> Mailbox:
    return graph.add_user(ALICE, "Alice Liddell")


def connector(
    graph: FakeGraph, *, mode: str = "readonly", **options: object
) -> MicrosoftMailConnector:
    client = app_client(graph, BASIC_APP) if mode == "metadata" else app_client(graph)
    return MicrosoftMailConnector("alice-mail", ALICE, client, mode=mode, **options)  # type: ignore[arg-type]


def run(
    connector: MicrosoftMailConnector, cursor: Cursor | None
) -> tuple[list[Batch], Cursor | None]:
    batches = list(connector.fetch(cursor))
    return batches, (batches[-1].cursor if batches else cursor)


def ids(batches: Iterable[Batch]) -> list[str]:
    return [item.source_id for batch in batches for item in batch.items]


def test_first_sync_reads_inbox_and_sent_items_page_by_page(
    graph: FakeGraph, alice: Mailbox
) -> None:
    inbox = [alice.deliver(mail(n)) for n in range(25)]
    sent = [
        alice.deliver(mail(100 + n, to="c@fabrikam.example", sender=ALICE), "sentitems")
        for n in range(3)
    ]
    alice.deliver(mail(200), "junkemail")
    batches, _ = run(connector(graph, page_size=10), None)
    assert Counter(ids(batches)) == Counter(
        [f"inbox/{m.immutable_id}" for m in inbox] + [f"sentitems/{m.immutable_id}" for m in sent]
    )
    first = batches[0].items[0]
    assert isinstance(first, MailMessage) and first.raw == inbox[0].raw and not first.truncated


def test_incremental_sync_sees_new_moved_deleted_and_reread_messages(
    graph: FakeGraph, alice: Mailbox
) -> None:
    kept, read, moved, deleted = (alice.deliver(mail(n)) for n in range(4))
    mail_connector = connector(graph)
    _, cursor = run(mail_connector, None)

    fresh = alice.deliver(mail(10))
    alice.mark_read(read.immutable_id)
    alice.move(moved.immutable_id, "sentitems")
    alice.delete(deleted.immutable_id)
    batches, cursor = run(mail_connector, cursor)

    items = [item for batch in batches for item in batch.items]
    added = {i.source_id for i in items if isinstance(i, MailMessage)}
    removed = {i.source_id for i in items if isinstance(i, SourceRemoved)}
    assert added == {
        f"inbox/{fresh.immutable_id}",
        f"inbox/{read.immutable_id}",
        f"sentitems/{moved.immutable_id}",
    }
    assert removed == {f"inbox/{moved.immutable_id}", f"inbox/{deleted.immutable_id}"}
    assert f"inbox/{kept.immutable_id}" not in added | removed


def test_an_idle_incremental_sync_is_one_request_per_folder(
    graph: FakeGraph, alice: Mailbox
) -> None:
    for n in range(12):
        alice.deliver(mail(n))
    mail_connector = connector(graph, page_size=5)
    _, cursor = run(mail_connector, None)
    graph.reset_log()
    batches, _ = run(mail_connector, cursor)
    assert ids(batches) == []
    delta_calls = graph.calls("messages.delta")
    assert len(delta_calls) == 2 and graph.round_trips == 2  # inbox and sent items, no token call
    assert mail_connector.units_spent() == {"requests": 2}
    assert mail_connector.client.round_trips == 2


def test_an_expired_delta_link_starts_that_folder_over_without_duplicates(
    graph: FakeGraph, alice: Mailbox
) -> None:
    first = [alice.deliver(mail(n)) for n in range(5)]
    sent = alice.deliver(mail(50, to="c@fabrikam.example", sender=ALICE), "sentitems")
    mail_connector = connector(graph, page_size=2)
    _, cursor = run(mail_connector, None)
    later = alice.deliver(mail(6))
    graph.expire_delta_tokens(ALICE, resource="messages")

    batches, cursor = run(mail_connector, cursor)
    again = ids(batches)
    assert Counter(again) == Counter(
        [f"inbox/{m.immutable_id}" for m in [*first, later]] + [f"sentitems/{sent.immutable_id}"]
    )
    assert ids(mail_connector.fetch(cursor)) == []


@pytest.mark.parametrize("mode", ["metadata", "readonly"])
def test_throttling_at_a_fifth_of_calls_still_yields_every_message_once(
    graph: FakeGraph, alice: Mailbox, mode: str
) -> None:
    messages = [alice.deliver(mail(n)) for n in range(60)]
    graph.throttle(0.2, retry_after=0, seed=3)
    mail_connector = connector(graph, mode=mode, page_size=10)
    batches, cursor = run(mail_connector, None)
    assert Counter(ids(batches)) == Counter(f"inbox/{m.immutable_id}" for m in messages)
    assert mail_connector.retries > 0
    assert graph.calls(status=429) or graph.calls(status=503)
    assert ids(mail_connector.fetch(cursor)) == []


def test_metadata_scope_never_asks_for_a_body(graph: FakeGraph, alice: Mailbox) -> None:
    graph.read_basic_body = "deny"  # any body request would be refused outright
    messages = [alice.deliver(mail(n)) for n in range(15)]
    mail_connector = connector(graph, mode="metadata", page_size=4)
    batches, cursor = run(mail_connector, None)
    alice.deliver(mail(20))
    run(mail_connector, cursor)

    calls = graph.calls()
    assert not [c for c in calls if c.endpoint in ("messages.value", "messages.get")]
    assert not [c for c in calls if c.status >= 400]
    for call in calls:
        assert not {"body", "bodyPreview", "uniqueBody"} & set(call.select or ()), call
    received = [i for b in batches for i in b.items if isinstance(i, MailMessage)]
    assert len(received) == len(messages) and all(m.truncated for m in received)
    first = received[0]
    assert b"Subject: Quote 0" in first.raw and b"About quote" not in first.raw
    assert b"Message-ID: <quote-0@fabrikam.example>" in first.raw


def test_a_configured_folder_is_found_by_name_and_synced(graph: FakeGraph, alice: Mailbox) -> None:
    clients = alice.add_folder("Clients")
    acme = alice.add_folder("Acme", parent=clients.id)
    filed = alice.deliver(mail(1), acme.id)
    batches, _ = run(connector(graph, folders=["Clients/Acme"], default_folders=False), None)
    assert ids(batches) == [f"{acme.id}/{filed.immutable_id}"]
    message_ = batches[0].items[0]
    assert isinstance(message_, MailMessage) and "Clients/Acme" in message_.labels


def test_an_unknown_folder_is_an_error_that_names_it(graph: FakeGraph, alice: Mailbox) -> None:
    with pytest.raises(Exception, match="no folder 'Nowhere'"):
        list(connector(graph, folders=["Nowhere"]).fetch(None))
