"""The Gmail connector against what Gmail really does, beyond the happy path.

Display names that Gmail may hand back decoded, label changes that change a
filter's verdict, the backfill window in metadata mode, a message listed
under two labels, quota charged only for what was answered, failures of a
whole batch, and a retry budget that lasts as long as work gets done.
"""

from __future__ import annotations

from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from agent.mail.envelope import build_envelope
from agent.mail.text import parse_mime
from agent.pipeline.policy import Policy
from agent.runtime.registry import build_connector, token_store
from agent.runtime.sync_pass import SyncResult, sync_connector
from config import Settings, parse_settings
from config.secrets import TokenStore
from connectors.errors import AuthError
from connectors.google.auth import gmail_scopes, user_credentials
from connectors.google.gmail import GmailConnector, Mode, net_changes
from connectors.headers import address_list, header_block
from connectors.records import Cursor, Item, MailMessage
from connectors.retry import RetryPolicy
from storage.db import session_factory
from storage.models import Interaction
from tests.support.fake_google.mailbox import Mailbox, make_email
from tests.support.fake_google.server import FakeGoogle, FaultPlan
from tests.support.google_connectors import gmail_connector, no_sleep

ACCOUNT = "alice@example.com"
GENEROUS = RetryPolicy(max_retries=10_000, max_seconds=1e9)


@pytest.fixture
def mailbox(fake_google: FakeGoogle) -> Mailbox:
    return fake_google.add_mailbox(ACCOUNT)


def sync(connector: GmailConnector, cursor: Cursor | None = None) -> tuple[list[Item], Cursor]:
    items: list[Item] = []
    last: Cursor = cursor or {}
    for batch in connector.fetch(cursor):
        items.extend(batch.items)
        last = batch.cursor
    return items, last


def messages(items: list[Item]) -> list[MailMessage]:
    return [item for item in items if isinstance(item, MailMessage)]


def deliver(mailbox: Mailbox, count: int, labels: tuple[str, ...] = ("INBOX",)) -> list[str]:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    return [
        mailbox.add_message(
            make_email(subject=f"Quote {i}", date=start + timedelta(hours=i)),
            labels,
            internal_date=start + timedelta(hours=i),
        )
        for i in range(count)
    ]


# --------------------------------------------------------------------------- display names

ENCODED_FROM = b"=?utf-8?q?M=C3=BCller=2C_Hans?= <hans@customer.example>"
ENCODED_TO = (
    b'alice@example.com, =?utf-8?q?Doe=2C_John?= <john@customer.example>, "Roe, R" <r@x.example>'
)


def comma_names() -> bytes:
    return (
        b"From: " + ENCODED_FROM + b"\r\n"
        b"To: " + ENCODED_TO + b"\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe=2C_Hans?=\r\n"
        b"Date: Wed, 01 May 2024 09:00:00 +0000\r\n"
        b"Message-ID: <names@customer.example>\r\n\r\nHello.\r\n"
    )


@pytest.mark.parametrize(
    ("mode", "decoded"),
    [("metadata", False), ("metadata", True), ("readonly", False)],
    ids=["metadata-encoded", "metadata-decoded", "readonly"],
)
def test_a_comma_in_a_display_name_never_splits_the_address(
    fake_google: FakeGoogle, mailbox: Mailbox, mode: Mode, decoded: bool
) -> None:
    mailbox.add_message(comma_names(), ["INBOX"])
    fake_google.decoded_headers = decoded

    (message,) = messages(sync(gmail_connector(fake_google, mode=mode))[0])
    envelope = build_envelope(message, parse_mime(message.raw), ["example.com"])

    assert envelope.subject == "Grüße, Hans"
    assert envelope.sender is not None
    assert envelope.sender.email == "hans@customer.example"
    assert envelope.sender.name == "Müller, Hans"
    assert [(a.email, a.name, role) for a, role in envelope.participants] == [
        ("hans@customer.example", "Müller, Hans", "from"),
        ("alice@example.com", "", "to"),
        ("john@customer.example", "Doe, John", "to"),
        ("r@x.example", "Roe, R", "to"),
    ]


def test_the_fake_serves_decoded_values_when_asked(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    mailbox.add_message(comma_names(), ["INBOX"])
    fake_google.decoded_headers = True
    connector = gmail_connector(fake_google)
    sync(connector)
    # what the connector received, before repair: the decoded form
    users = connector._users()
    (mid,) = mailbox.messages
    resource = users.messages().get(userId="me", id=mid, format="metadata").execute()
    values = {h["name"]: h["value"] for h in resource["payload"]["headers"]}
    assert values["From"] == "Müller, Hans <hans@customer.example>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a@x.example", "a@x.example"),
        ("Ann <a@x.example>, b@y.example", "Ann <a@x.example>, b@y.example"),
        ('"Doe, John" <j@x.example>', '"Doe, John" <j@x.example>'),
        ("Doe, John <j@x.example>", '"Doe, John" <j@x.example>'),
        ("=?utf-8?q?Doe=2C_J?= <j@x.example>", "=?utf-8?q?Doe=2C_J?= <j@x.example>"),
        ("undisclosed-recipients:;", "undisclosed-recipients:;"),
    ],
)
def test_address_list_repairs_only_what_would_split(value: str, expected: str) -> None:
    assert address_list(value) == expected


def test_header_block_encodes_a_decoded_non_ascii_name() -> None:
    block = header_block([{"name": "From", "value": "Müller, Hans <h@x.example>"}])
    assert block.startswith(b"From: =?utf-8?") and block.endswith(b" <h@x.example>\r\n\r\n")


# --------------------------------------------------------------------------- verdict labels


def test_label_changes_a_filter_reads_re_evaluate_the_message() -> None:
    def moved(*labels: str) -> list[dict[str, object]]:
        ref = {"id": "m", "threadId": "m", "labelIds": ["INBOX"]}
        return [{"id": "2", "labelsRemoved": [{"message": ref, "labelIds": list(labels)}]}]

    assert net_changes(moved("CATEGORY_PROMOTIONS"))["m"].relabelled
    assert net_changes(moved("SPAM"))["m"].relabelled
    assert net_changes(moved("Label_7"))["m"].relabelled
    assert not net_changes(moved("UNREAD"))["m"].relabelled
    assert not net_changes(moved("IMPORTANT"))["m"].relabelled
    assert net_changes(moved("IMPORTANT"), {"IMPORTANT"})["m"].relabelled


def pipeline_run(engine: Engine, gmail: GmailConnector, settings: Settings) -> SyncResult:
    policy = Policy.from_settings(settings, gmail.name, gmail.account)
    result = sync_connector(session_factory(engine), gmail, policy, kind="gmail")
    assert result.status == "ok", result.error
    return result


def customer_mail(tag: str) -> bytes:
    return make_email(
        subject=f"Offer {tag}",
        sender="Ann Lee <ann@acme.example>",
        to=ACCOUNT,
        message_id=f"<{tag}@acme.example>",
    )


@pytest.mark.parametrize("mode", ["metadata", "readonly"])
def test_a_message_moved_to_primary_is_logged_at_the_next_sync(
    fake_google: FakeGoogle, mailbox: Mailbox, engine: Engine, mode: Mode
) -> None:
    settings = parse_settings({"agent": {"internal_domains": ["example.com"]}}, None)
    promoted = mailbox.add_message(customer_mail("p"), ["INBOX", "CATEGORY_PROMOTIONS"])
    gmail = gmail_connector(fake_google, mode=mode)
    first = pipeline_run(engine, gmail, settings)
    assert first.logged == 0 and first.skipped["gmail_category_promotions"] == 1

    mailbox.modify(promoted, add=["CATEGORY_PERSONAL"], remove=["CATEGORY_PROMOTIONS"])
    second = pipeline_run(engine, gmail, settings)

    assert second.logged == 1
    with session_factory(engine)() as session:
        assert set(session.scalars(select(Interaction.dedupe_key))) == {"p@acme.example"}


def test_a_watched_flag_re_evaluates_the_message(
    fake_google: FakeGoogle, mailbox: Mailbox, engine: Engine
) -> None:
    """A share label set to a flag Gmail keeps (IMPORTANT) is a verdict label too."""
    settings = parse_settings(
        {"agent": {"internal_domains": ["example.com"]}, "privacy": {"share_label": "IMPORTANT"}},
        None,
    )
    shared_later = mailbox.add_message(customer_mail("s"), ["INBOX"])
    gmail = gmail_connector(fake_google, watched_labels=["important"])
    assert pipeline_run(engine, gmail, settings).skipped["not_shared"] == 1

    mailbox.modify(shared_later, add=["IMPORTANT"])

    assert pipeline_run(engine, gmail, settings).logged == 1


# --------------------------------------------------------------------------- what is fetched


def test_metadata_mode_fetches_only_the_window(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    """Listings give no dates: the page that crosses ``since`` is cut by a few ``minimal``
    gets, not by fetching all of it, and the listing stops there."""
    ids = deliver(mailbox, 400)
    since = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=330)
    connector = gmail_connector(fake_google, since=since, labels=["INBOX"], page_size=50)

    items, _ = sync(connector)

    assert sorted(m.source_id for m in messages(items)) == sorted(ids[330:])
    gets = fake_google.api_calls("users.messages.get")
    assert Counter(c.format for c in gets) == {"metadata": 70, "minimal": 2 + 6}
    assert len(fake_google.api_calls("users.messages.list")) == 2


def test_a_message_under_two_labels_is_fetched_once(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    both = [
        mailbox.add_message(make_email(subject=f"self {i}"), ["INBOX", "SENT"]) for i in range(3)
    ]
    inbox = deliver(mailbox, 4)
    sent = deliver(mailbox, 2, ("SENT",))

    items, _ = sync(gmail_connector(fake_google, page_size=3))

    assert Counter(m.source_id for m in messages(items)) == Counter([*both, *inbox, *sent])
    fetched = Counter(c.path.rsplit("/", 1)[1] for c in fake_google.api_calls("users.messages.get"))
    assert set(fetched.values()) == {1}
    assert sum(fetched.values()) == 9


# --------------------------------------------------------------------------- failures and quota


def test_quota_counts_only_what_google_answered(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    """Whole batches that fail, failed parts, dropped connections: the connector's count
    of units is the fake's, which meters what it answers, part by part."""
    ids = deliver(mailbox, 240)
    fake_google.faults = FaultPlan(rate=0.1, batch_rate=0.3, statuses=(500, 503, 429), seed=5)
    fake_google.faults.batch_forced.extend([503, 503])
    fake_google.faults.drop_connections = 3
    connector = gmail_connector(fake_google, page_size=60, retry_policy=GENEROUS)

    items, _ = sync(connector)

    assert Counter(m.source_id for m in messages(items)) == Counter(ids)
    failed_batches = [c for c in fake_google.log if c.api_method == "batch" and c.status >= 400]
    assert len(failed_batches) == fake_google.faults.batches_failed >= 2
    assert connector.units_spent() == {k: v for k, v in fake_google.units.items() if v}
    assert connector.units_spent()["users.messages.get"] == 5 * len(
        fake_google.api_calls("users.messages.get")
    )


def test_a_user_rate_limit_403_waits_for_the_date_it_names(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    deliver(mailbox, 3)
    fake_google.faults = FaultPlan(forced=deque([403]), retry_after=40)
    slept: list[float] = []
    connector = gmail_connector(fake_google, sleep=slept.append, quota_rate=None)

    items, _ = sync(connector)

    assert len(messages(items)) == 3
    (error,) = [c for c in fake_google.api_calls() if c.status == 403]
    assert error.api_method == "users.getProfile"
    assert len(slept) == 1 and 35 <= slept[0] <= 40


def test_a_whole_batch_refused_for_the_user_rate_is_sent_again(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    ids = deliver(mailbox, 30)
    fake_google.faults = FaultPlan(statuses=(403,), retry_after=5)
    fake_google.faults.batch_forced.extend([403, 403])
    slept: list[float] = []
    connector = gmail_connector(fake_google, sleep=slept.append, quota_rate=None)

    items, _ = sync(connector)

    assert sorted(m.source_id for m in messages(items)) == sorted(ids)
    assert len(slept) == 2 and all(0 < s <= 5 for s in slept)
    assert connector.units_spent()["users.messages.get"] == 5 * 30


def test_a_long_first_sync_under_steady_faults_completes(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    """900 messages, a fifth of all calls, parts and batches failing: the default budget
    (30 retries) is renewed by every answer, so the run ends with every message."""
    ids = deliver(mailbox, 900)
    fake_google.faults = FaultPlan(rate=0.2, batch_rate=0.2, statuses=(500, 503, 429), seed=7)
    connector = gmail_connector(fake_google, labels=["INBOX"], quota_rate=None)

    items, cursor = sync(connector)

    assert Counter(m.source_id for m in messages(items)) == Counter(ids)
    assert cursor["phase"] == "incremental"
    assert connector.retries > RetryPolicy().max_retries


# --------------------------------------------------------------------------- the grant


def test_a_refreshed_token_is_stored_and_spares_the_next_run_a_token_call(
    fake_google: FakeGoogle, mailbox: Mailbox, tmp_path: Path
) -> None:
    deliver(mailbox, 2)
    store = TokenStore(tmp_path / "tokens", Fernet(Fernet.generate_key()))
    scopes = gmail_scopes("metadata")
    store.save(
        "alice-gmail",
        {
            "refresh_token": fake_google.issue_refresh_token(ACCOUNT, scopes),
            "client_id": "test-client",
            "client_secret": "test-secret",
            "granted_by": "admin@example.com",
        },
    )

    def connector() -> GmailConnector:
        record = store.load("alice-gmail")
        assert record is not None
        credentials = user_credentials(
            record,
            scopes,
            token_uri=fake_google.token_uri,
            on_refresh=lambda new: store.save("alice-gmail", new),
        )
        return GmailConnector(
            "alice-gmail", ACCOUNT, credentials, api_endpoint=fake_google.url, sleep=no_sleep
        )

    _, cursor = sync(connector())
    assert fake_google.calls["oauth2.token"] == 1
    stored = store.load("alice-gmail")
    assert stored is not None and stored["token"] and stored["refresh_token"]
    assert stored["granted_by"] == "admin@example.com"  # what else the record held stays

    fake_google.reset_counters()
    sync(connector(), cursor)
    assert [c.api_method for c in fake_google.log] == ["users.history.list"]


def test_a_revoked_grant_is_needs_auth_with_a_clean_message(
    fake_google: FakeGoogle, mailbox: Mailbox, engine: Engine
) -> None:
    deliver(mailbox, 1)
    gmail = gmail_connector(fake_google)
    settings = parse_settings({"agent": {"internal_domains": ["example.com"]}}, None)
    pipeline_run(engine, gmail, settings)
    for token in fake_google.refresh_tokens_of(ACCOUNT):
        fake_google.revoke(token)
    gmail.credentials.token = None

    with pytest.raises(AuthError) as raised:
        sync(gmail, {"v": 1, "phase": "incremental", "history_id": str(mailbox.history_id)})
    assert str(raised.value) == (
        "Google refused the grant: invalid_grant: Token has been expired or revoked."
    )

    policy = Policy.from_settings(settings, gmail.name, gmail.account)
    result = sync_connector(session_factory(engine), gmail, policy, kind="gmail")
    assert result.status == "needs_auth"
    assert "network" not in (result.error or "")


@given(st.text(max_size=80))
def test_any_address_header_value_makes_a_header_block(value: str) -> None:
    block = header_block([{"name": "To", "value": value}, {"name": "From", "value": value}])
    assert block.endswith(b"\r\n\r\n")


def test_an_internationalized_address_keeps_its_name_whole() -> None:
    value = address_list("Müller, Hans <hä@x.example>")
    assert value == '"Müller, Hans" <hä@x.example>'


def test_the_agent_stores_the_token_its_connector_refreshed(
    fake_google: FakeGoogle, mailbox: Mailbox, tmp_path: Path
) -> None:
    """Through the registry, as every run builds its connectors: the second run reads the
    access token the first one stored, and makes no token call."""
    deliver(mailbox, 2)
    (tmp_path / "crm-sync.key").write_bytes(Fernet.generate_key())
    (tmp_path / "crm-sync.key").chmod(0o600)
    settings = parse_settings(
        {
            "connectors": [
                {"name": "alice-gmail", "kind": "gmail", "account": ACCOUNT, "auth": "oauth",
                 "api_endpoint": fake_google.url}
            ]
        },
        None,
    )  # fmt: skip
    token_store(settings, tmp_path).save(
        "alice-gmail",
        {
            "refresh_token": fake_google.issue_refresh_token(ACCOUNT, gmail_scopes("metadata")),
            "client_id": "test-client",
            "client_secret": "test-secret",
            "token_uri": fake_google.token_uri,
        },
    )
    cursor = None
    for _run in range(2):
        connector = build_connector(settings.connectors[0], settings, tmp_path)
        assert isinstance(connector, GmailConnector)
        _, cursor = sync(connector, cursor)
    assert fake_google.calls["oauth2.token"] == 1


def test_a_message_changed_on_two_history_pages_is_fetched_once_in_a_run(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    """A fetch returns the message as it is now, so the second page's change of it is
    already in what the first page fetched."""
    deliver(mailbox, 1)
    connector = gmail_connector(fake_google, page_size=2)
    _, cursor = sync(connector)
    changed = deliver(mailbox, 3)
    mailbox.modify(changed[0], add=["STARRED", "CATEGORY_PERSONAL"])
    mailbox.modify(changed[0], add=["Label_7"])
    fake_google.reset_counters()

    items, _ = sync(connector, cursor)

    assert len(fake_google.api_calls("users.history.list")) > 1
    fetched = Counter(c.path.rsplit("/", 1)[1] for c in fake_google.api_calls("users.messages.get"))
    assert fetched == Counter(changed)
    assert Counter(m.source_id for m in messages(items)) == Counter(changed)
