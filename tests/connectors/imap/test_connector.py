"""The IMAP connector against a real Dovecot over loopback, plus its pure parts by table.

Each test gets a mailbox of its own (``imap_user``) on one Dovecot per module
(``dovecot``); the server variants with fewer capabilities play servers without
LIST-STATUS, QRESYNC or CONDSTORE. The connector contract it shares with every
source is in ``tests/connectors/test_contract.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError, ProtocolError
from imapclient.response_parser import parse_fetch_response
from imapclient.response_types import BodyData

from agent.mail.text import header_str, parse_mime
from connectors.errors import AuthError, ConnectorError, CursorInvalid, TransientError
from connectors.imap.connector import ImapConnector
from connectors.imap.cursor import FolderState, dump_cursor, load_cursor
from connectors.imap.fetch import parse_fetch, uid_fetch
from connectors.imap.message import (
    TextPart,
    assemble_raw,
    build_message,
    first_text_part,
    raw_size_bound,
)
from connectors.imap.session import ImapSession, classify_error, parse_uid_set
from connectors.records import Batch, Cursor, MailMessage, SourceRemoved, Unreadable
from tests.support.dovecot import DovecotServer, ImapUser
from tests.support.paths import FIXTURES
from tests.support.server_fixtures import DovecotServers

# Dovecot's default list less LIST-STATUS / QRESYNC / CONDSTORE, for older servers.
CAPABILITIES = {
    "dovecot": None,
    "condstore-only": "IMAP4rev1 SASL-IR LITERAL+ ENABLE IDLE UIDPLUS UNSELECT SPECIAL-USE "
    "CONDSTORE",
    "no-condstore": "IMAP4rev1 SASL-IR LITERAL+ IDLE UIDPLUS UNSELECT SPECIAL-USE",
}

CORPUS = sorted(
    path
    for folder in ("flanker/messages", "mikel-mail")
    for path in (FIXTURES / folder).rglob("*.eml")
)


def _modern(raw: bytes) -> EmailMessage:
    """The connector's output as a MIME reader with the modern API sees it."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def _message(n: int, *, subject: str = "", body: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {n} <customer{n}@acme.test>"
    message["To"] = "user@example.com"
    message["Subject"] = subject or f"Order {n}"
    message["Message-ID"] = f"<order-{n}@acme.test>"
    message["Date"] = "Mon, 06 May 2024 10:00:00 +0000"
    message.set_content(body or f"Hello, about order {n}.\n")
    return message.as_bytes()


def _alternative(n: int) -> bytes:
    """multipart/mixed > multipart/alternative > text/plain: the text part is 1.1."""
    message = EmailMessage()
    message["From"] = f"c{n}@acme.test"
    message["To"] = "user@example.com"
    message["Subject"] = f"Quote {n}"
    message.set_content(f"Plain quote {n}\n")
    message.add_alternative(f"<p>HTML quote {n}</p>", subtype="html")
    message.add_attachment(b"%PDF-1.4 " * 500, maintype="application", subtype="pdf")
    return message.as_bytes()


def _connector(dovecot: DovecotServer, imap_user: ImapUser, **options: object) -> ImapConnector:
    return ImapConnector(
        "test-imap",
        host=dovecot.host,
        port=dovecot.port,
        username=imap_user.login,
        password=imap_user.password,
        security="plain",
        **options,  # type: ignore[arg-type]
    )


def _sync(connector: ImapConnector, cursor: Cursor | None) -> tuple[list[Batch], Cursor | None]:
    batches = list(connector.fetch(cursor))
    return batches, batches[-1].cursor if batches else cursor


def _mail(batches: list[Batch]) -> list[MailMessage]:
    return [item for batch in batches for item in batch.items if isinstance(item, MailMessage)]


def _subjects(batches: list[Batch]) -> list[str]:
    return [str(parse_mime(m.raw)["Subject"]) for m in _mail(batches)]


# -- against Dovecot ----------------------------------------------------------------------


def test_first_sync_reads_inbox_and_sent_in_batches(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "INBOX", [_message(n) for n in range(7)])
    dovecot.append(imap_user, "Sent", [_message(n) for n in range(100, 103)])
    dovecot.append(imap_user, "Drafts", [_message(999)])

    batches, cursor = _sync(_connector(dovecot, imap_user, batch_size=3), None)

    mail = _mail(batches)
    assert len(mail) == 10
    assert len({m.source_id for m in mail}) == 10
    assert {m.source_id.split("/")[0] for m in mail} == {"INBOX", "Sent"}
    assert all(m.mailbox == imap_user.address for m in mail)
    assert all("\\Sent" in m.labels for m in mail if m.source_id.startswith("Sent/"))
    assert all(m.internal_date is not None and m.internal_date.tzinfo for m in mail)
    assert [len(b.items) for b in batches if b.items] == [3, 3, 1, 3]
    assert cursor is not None
    assert cursor["folders"]["INBOX"]["last_uid"] == 7
    assert cursor["folders"]["Sent"]["last_uid"] == 3


def test_incremental_sync_returns_only_new_mail(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "INBOX", [_message(n) for n in range(3)])
    connector = _connector(dovecot, imap_user)
    _, cursor = _sync(connector, None)

    dovecot.append(imap_user, "INBOX", [_message(10), _message(11)])
    dovecot.append(imap_user, "Sent", [_message(12)])
    batches, cursor = _sync(connector, cursor)

    assert sorted(_subjects(batches)) == ["Order 10", "Order 11", "Order 12"]
    again, _ = _sync(connector, cursor)
    assert _mail(again) == []


def test_sync_never_changes_flags(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    uids = dovecot.append(imap_user, "INBOX", [_message(n) for n in range(4)] + [_alternative(5)])
    dovecot.set_flags(imap_user, "INBOX", uids[:1], ["\\Flagged", "$Customer"])
    before = dovecot.flags(imap_user, "INBOX")

    batches, _ = _sync(_connector(dovecot, imap_user), None)

    assert dovecot.flags(imap_user, "INBOX") == before
    assert all("\\Seen" not in flags for flags in before.values())
    labels = {m.source_id.rsplit("/", 1)[1]: m.labels for m in _mail(batches)}
    assert labels[str(uids[0])] == {"\\Flagged", "$Customer"}
    assert labels[str(uids[1])] == frozenset()


def test_first_text_part_of_nested_multipart_becomes_a_text_message(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "INBOX", [_alternative(1), _message(2, body="x" * 100 + "\n")])

    nested, plain = _mail(_sync(_connector(dovecot, imap_user), None)[0])

    parsed = _modern(nested.raw)
    assert parsed.get_content_type() == "text/plain"
    assert parsed.get_content().strip() == "Plain quote 1"
    assert str(parsed["Subject"]) == "Quote 1"
    assert nested.truncated
    assert b"%PDF" not in nested.raw
    assert _modern(plain.raw).get_content().rstrip() == "x" * 100
    assert not plain.truncated


def test_long_body_is_cut_at_a_line_end(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    body = "".join(f"line {n:05d} of a long letter\n" for n in range(3000))
    dovecot.append(imap_user, "INBOX", [_message(1, body=body)])

    (message,) = _mail(_sync(_connector(dovecot, imap_user, text_bytes=4096), None)[0])

    text = _modern(message.raw).get_content().replace("\r\n", "\n")
    assert message.truncated
    assert len(message.raw) < 4096 + 1024
    assert body.startswith(text)
    assert text.endswith("of a long letter\n")


def _with_attachment(n: int, size: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"c{n}@acme.test"
    message["To"] = "user@example.com"
    message["Subject"] = f"Contract {n}"
    message.set_content(f"The signed contract {n} is attached.\n")
    message.add_attachment(bytes(size), maintype="application", subtype="pdf")
    return message.as_bytes()


def _long_header(n: int, size: int) -> bytes:
    """A message whose header alone is ``size`` bytes: relays add a Received line each."""
    relays = "".join(
        f"Received: from relay{i}.acme.test by relay{i + 1}.acme.test; Mon, 6 May 2024\n"
        for i in range(size // 70)
    )
    return relays.encode() + _message(n)


def _raw_bytes(batch: Batch) -> int:
    return sum(len(item.raw) for item in batch.items if isinstance(item, MailMessage))


def test_batches_close_at_the_byte_bound(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    bound = 6_000
    raws = [_with_attachment(n, 300_000) for n in (20, 21, 22)]
    raws += [_message(n, body=f"note {n}\n" * (n * 40)) for n in range(12)]
    raws[8] = _long_header(5, 3 * bound)
    dovecot.append(imap_user, "INBOX", raws)
    connector = _connector(dovecot, imap_user, text_bytes=2048, batch_bytes=bound)

    batches, cursor = _sync(connector, None)

    mail = _mail(batches)
    assert len(mail) == len(raws)
    assert max(len(m.raw) for m in mail) > bound
    for batch in batches:
        if len(batch.items) > 1:
            assert _raw_bytes(batch) <= bound
    (alone,) = [b for b in batches if _raw_bytes(b) > bound]
    assert len(alone.items) == 1
    assert header_str(parse_mime(alone.items[0].raw), "Subject") == "Order 5"
    # what counts is what is kept: attachments are never fetched, so they batch together
    assert [b"Contract" in m.raw for m in _mail(batches[:1])][:3] == [True] * 3
    # each batch's cursor covers its own messages, so a run cut short resumes after it
    for batch in batches:
        uids = [int(m.source_id.rsplit("/", 1)[1]) for m in _mail([batch])]
        assert not uids or batch.cursor["folders"]["INBOX"]["last_uid"] == max(uids)
    assert len(batches) > 3
    assert cursor is not None


def test_the_size_bound_covers_what_every_message_becomes(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    """The bytes counted before the fetch are never fewer than the message's ``raw``."""
    raws = [path.read_bytes() for path in CORPUS]
    raws += [_alternative(1), _with_attachment(2, 50_000), _long_header(3, 20_000)]
    uids = dovecot.append(imap_user, "INBOX", raws)
    text_bytes = 1024
    with dovecot.client(imap_user) as client:
        client.select_folder("INBOX", readonly=True)
        session = ImapSession(client)
        outline = session.outline(uids)
        paths = {}
        for uid, got in outline.items():
            part = first_text_part(got.get(b"BODYSTRUCTURE"))
            paths[uid] = part.path if part else ""
        texts = session.texts(paths, text_bytes)

    checked = 0
    for uid in uids:
        data = {**outline[uid], **texts[uid]}
        if b"BODY[HEADER]" not in data:
            continue
        message = build_message(
            folder="INBOX",
            uidvalidity=1,
            uid=uid,
            data=data,
            mailbox="user@example.com",
            special_use=None,
            text_bytes=text_bytes,
        )
        bound = raw_size_bound(data[b"RFC822.SIZE"], data.get(b"BODYSTRUCTURE"), text_bytes)
        assert len(message.raw) <= bound, message.source_id
        checked += 1
    assert checked > 30


def test_flag_changes_are_seen_and_refetched(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    uids = dovecot.append(imap_user, "INBOX", [_message(n) for n in range(3)])
    connector = _connector(dovecot, imap_user)
    _, cursor = _sync(connector, None)

    dovecot.set_flags(imap_user, "INBOX", [uids[1]], ["\\Flagged"])
    batches, _ = _sync(connector, cursor)

    (changed,) = _mail(batches)
    assert changed.source_id.endswith(f"/{uids[1]}")
    assert changed.labels == {"\\Flagged"}


def test_expunged_messages_become_source_removed(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    uids = dovecot.append(imap_user, "INBOX", [_message(n) for n in range(5)])
    connector = _connector(dovecot, imap_user)
    first, cursor = _sync(connector, None)
    ids = {m.source_id.rsplit("/", 1)[1]: m.source_id for m in _mail(first)}

    dovecot.expunge(imap_user, "INBOX", [uids[1], uids[3]])
    batches, cursor = _sync(connector, cursor)

    removed = [item for b in batches for item in b.items if isinstance(item, SourceRemoved)]
    assert sorted(r.source_id for r in removed) == sorted([ids[str(uids[1])], ids[str(uids[3])]])
    assert _mail(batches) == []
    assert _sync(connector, cursor)[0] == []


def test_changed_uidvalidity_resyncs_that_folder_only(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "INBOX", [_message(1)])
    dovecot.append(imap_user, "Projects", [_message(2), _message(3)])
    connector = _connector(dovecot, imap_user, folders=["Projects"])
    _, cursor = _sync(connector, None)
    assert cursor is not None
    old_validity = cursor["folders"]["Projects"]["uidvalidity"]

    dovecot.recreate_folder(imap_user, "Projects")
    dovecot.append(imap_user, "Projects", [_message(4), _message(5)])
    batches, cursor = _sync(connector, cursor)

    assert sorted(_subjects(batches)) == ["Order 4", "Order 5"]
    assert all(m.source_id.startswith("Projects/") for m in _mail(batches))
    assert cursor is not None
    assert cursor["folders"]["Projects"]["uidvalidity"] != old_validity
    assert cursor["folders"]["Projects"]["uidvalidity_changes"] == 1
    settled, cursor = _sync(connector, cursor)
    assert _mail(settled) == []
    assert cursor is not None
    assert "uidvalidity_changes" not in cursor["folders"]["Projects"]


def test_uidvalidity_changing_on_every_sync_is_capped(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "Projects", [_message(1)])
    connector = _connector(dovecot, imap_user, folders=["Projects"], default_folders=False)
    _, cursor = _sync(connector, None)
    for _ in range(2):
        dovecot.recreate_folder(imap_user, "Projects")
        _, cursor = _sync(connector, cursor)

    dovecot.recreate_folder(imap_user, "Projects")
    with pytest.raises(ConnectorError, match="changed on 3 syncs in a row"):
        _sync(connector, cursor)
    assert _sync(connector, None)[1] is not None


def test_8bit_and_malformed_messages_all_arrive(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    raws = [path.read_bytes() for path in CORPUS]
    dovecot.append(imap_user, "Corpus", raws)
    connector = _connector(
        dovecot, imap_user, folders=["Corpus"], default_folders=False, batch_size=7
    )

    batches, _ = _sync(connector, None)

    mail = _mail(batches)
    assert len(mail) == len(CORPUS) > 30
    assert not [i for b in batches for i in b.items if isinstance(i, Unreadable)]
    for message, raw in zip(mail, raws, strict=True):
        # Dovecot serves CRLF line ends; the original is compared as it would be served.
        original = parse_mime(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
        parsed = parse_mime(message.raw)
        for name in ("Subject", "From", "Message-ID"):
            assert header_str(parsed, name) == header_str(original, name)
        header_size = len(raw.split(b"\n\n", 1)[0]) + 1000
        assert len(message.raw) <= header_size + 16384 + 200


def test_wrong_password_is_auth_error_and_others_go_on(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "INBOX", [_message(1)])
    wrong = ImapConnector(
        "wrong",
        host=dovecot.host,
        port=dovecot.port,
        username=imap_user.login,
        password="not-the-password",
        security="plain",
    )
    with pytest.raises(AuthError) as raised:
        list(wrong.fetch(None))
    assert "app password" in raised.value.hint
    assert len(_mail(_sync(_connector(dovecot, imap_user), None)[0])) == 1


@pytest.mark.parametrize(
    "fault",
    [DovecotServer.drop_connections, DovecotServer.restart],
    ids=["connection-killed", "server-restarted"],
)
def test_dropped_connection_mid_fetch_resumes_without_loss_or_duplicates(
    dovecot: DovecotServer, imap_user: ImapUser, fault: Callable[[DovecotServer], object]
) -> None:
    dovecot.append(imap_user, "INBOX", [_message(n) for n in range(23)])
    connector = _connector(dovecot, imap_user, batch_size=5, timeout=10)
    committed: list[str] = []
    cursor: Cursor | None = None

    run = connector.fetch(None)
    for _ in range(2):
        batch = next(run)
        committed += [m.source_id for m in _mail([batch])]
        cursor = batch.cursor
    fault(dovecot)
    with pytest.raises(TransientError):
        next(run)

    resumed, _ = _sync(connector, cursor)
    delivered = committed + [m.source_id for m in _mail(resumed)]
    assert len(delivered) == len(set(delivered)) == 23


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls(
    dovecot_servers: DovecotServers, imap_user: ImapUser, security: str
) -> None:
    tls_server = dovecot_servers(tls=True)
    tls_server.append(imap_user, "INBOX", [_message(1)])
    connector = ImapConnector(
        "tls",
        host="127.0.0.1",
        port=tls_server.tls_port if security == "tls" else tls_server.port,
        username=imap_user.login,
        password=imap_user.password,
        security=security,  # type: ignore[arg-type]
        ssl_context=tls_server.ssl_context(),
    )
    assert _subjects(_sync(connector, None)[0]) == ["Order 1"]


def test_untrusted_certificate_is_not_retried(
    dovecot_servers: DovecotServers, imap_user: ImapUser
) -> None:
    tls_server = dovecot_servers(tls=True)
    connector = ImapConnector(
        "tls",
        host="127.0.0.1",
        port=tls_server.tls_port,
        username=imap_user.login,
        password=imap_user.password,
    )
    with pytest.raises(ConnectorError, match="certificate") as raised:
        list(connector.fetch(None))
    assert not isinstance(raised.value, TransientError)


def test_since_window_bounds_the_backfill(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    dovecot.append(imap_user, "INBOX", [_message(1)], msg_time=datetime(2020, 3, 1, tzinfo=UTC))
    dovecot.append(imap_user, "INBOX", [_message(2)], msg_time=datetime(2024, 3, 1, tzinfo=UTC))
    connector = _connector(dovecot, imap_user, since=date(2023, 1, 1))

    batches, cursor = _sync(connector, None)
    assert _subjects(batches) == ["Order 2"]

    dovecot.append(imap_user, "INBOX", [_message(3)], msg_time=datetime(2019, 1, 1, tzinfo=UTC))
    dovecot.append(imap_user, "INBOX", [_message(4)])
    assert _subjects(_sync(connector, cursor)[0]) == ["Order 4"]


def _commands(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The IMAP commands the client sent, from imapclient's protocol log (``> TAG CMD ...``)."""
    names = []
    for record in caplog.records:
        text = record.getMessage()
        if record.name.startswith("imapclient") and text.startswith("> "):
            words = text[2:].strip("b'\"").split()
            names.append(" ".join(words[1:3]) if words[1] == "UID" else words[1])
    return names


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("dovecot", ["LOGIN", "LIST", "LOGOUT"]),
        ("condstore-only", ["LOGIN", "LIST", "EXAMINE", "EXAMINE", "LOGOUT"]),
        ("no-condstore", ["LOGIN", "LIST", "EXAMINE", "EXAMINE", "LOGOUT"]),
    ],
    ids=["list-status", "one-examine-per-folder", "uidnext-only"],
)
def test_unchanged_mailbox_costs_one_round_trip_per_folder(
    dovecot_servers: DovecotServers,
    imap_user: ImapUser,
    caplog: pytest.LogCaptureFixture,
    variant: str,
    expected: list[str],
) -> None:
    dovecot = dovecot_servers(CAPABILITIES[variant])
    dovecot.append(imap_user, "INBOX", [_message(n) for n in range(3)])
    dovecot.append(imap_user, "Sent", [_message(9)])
    connector = _connector(dovecot, imap_user)
    _, cursor = _sync(connector, None)

    with caplog.at_level(logging.DEBUG, logger="imapclient"):
        batches, after = _sync(connector, cursor)

    assert batches == []
    assert after == cursor
    assert _commands(caplog) == expected


@pytest.mark.parametrize("variant", ["condstore-only", "no-condstore"])
def test_older_servers_sync_new_mail(
    dovecot_servers: DovecotServers, imap_user: ImapUser, variant: str
) -> None:
    dovecot = dovecot_servers(CAPABILITIES[variant])
    uids = dovecot.append(imap_user, "INBOX", [_message(n) for n in range(3)])
    connector = _connector(dovecot, imap_user)
    _, cursor = _sync(connector, None)

    dovecot.set_flags(imap_user, "INBOX", [uids[0]], ["\\Flagged"])
    dovecot.append(imap_user, "INBOX", [_message(7)])
    batches, _ = _sync(connector, cursor)

    changed = {m.source_id.rsplit("/", 1)[1] for m in _mail(batches)}
    seen_flags = variant == "condstore-only"
    assert changed == ({str(uids[0])} if seen_flags else set()) | {str(uids[-1] + 1)}


def test_idle_wakes_on_new_mail(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    dovecot.append(imap_user, "INBOX", [_message(1)])
    connector = _connector(dovecot, imap_user, idle=True)
    _sync(connector, None)
    try:
        assert connector.wait_for_changes(0.3) is False
        threading.Timer(0.3, dovecot.append, (imap_user, "INBOX", [_message(2)])).start()
        started = time.monotonic()
        assert connector.wait_for_changes(20) is True
        assert time.monotonic() - started < 5
    finally:
        connector.close()


def test_idle_sees_mail_that_came_before_it_started(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    connector = _connector(dovecot, imap_user, idle=True)
    _sync(connector, None)
    dovecot.append(imap_user, "INBOX", [_message(1)])
    try:
        assert connector.wait_for_changes(5) is True
    finally:
        connector.close()


def test_without_idle_waiting_is_polling(dovecot: DovecotServer, imap_user: ImapUser) -> None:
    started = time.monotonic()
    assert _connector(dovecot, imap_user).wait_for_changes(0.2) is False
    assert time.monotonic() - started >= 0.2


# -- pure parts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("mail.example.com", False)],
    ids=["ipv4-loopback", "ipv6-loopback", "localhost", "remote"],
)
def test_plain_is_refused_off_loopback(host: str, allowed: bool) -> None:
    def make() -> ImapConnector:
        return ImapConnector("c", host=host, username="a@b.c", password="p", security="plain")

    if allowed:
        assert make().port == 143
    else:
        with pytest.raises(ValueError, match="loopback"):
            make()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (LoginError("b'[AUTHENTICATIONFAILED] Authentication failed.'"), AuthError),
        (LoginError("b'[UNAVAILABLE] Temporary authentication failure.'"), TransientError),
        (IMAPClientError("fetch failed: [EXPIRED] token"), AuthError),
        (IMAPClientAbortError("socket error: EOF"), TransientError),
        (IMAPClientAbortError("BYE Server shutting down."), TransientError),
        (ConnectionResetError(104, "Connection reset by peer"), TransientError),
        (TimeoutError("timed out"), TransientError),
        (IMAPClientError("select failed: [LIMIT] too many sessions"), TransientError),
        (IMAPClientError("select failed: Mailbox doesn't exist"), ConnectorError),
    ],
    ids=[
        "login-refused",
        "login-unavailable",
        "expired",
        "eof",
        "bye",
        "reset",
        "timeout",
        "limit",
        "other-no",
    ],
)
def test_classify_error(error: Exception, expected: type[ConnectorError]) -> None:
    assert type(classify_error(error)) is expected


@pytest.mark.parametrize(
    "cursor",
    [{"v": 2, "folders": {}}, {"folders": {}}, {"v": 1, "folders": {"INBOX": {"last_uid": 3}}}],
    ids=["future-version", "no-version", "no-uidvalidity"],
)
def test_unreadable_cursor_means_full_resync(cursor: Cursor) -> None:
    with pytest.raises(CursorInvalid):
        load_cursor(cursor)


def test_cursor_round_trips() -> None:
    states = {"INBOX": FolderState(7, 42, 99), "Sent": FolderState(8, 0, None, 2)}
    assert load_cursor(dump_cursor(states)) == states


@pytest.mark.parametrize(
    ("text", "uids"),
    [
        ("1:3,7", [1, 2, 3, 7]),
        ("5", [5]),
        ("9:7", [7, 8, 9]),
        ("", []),
        ("8:4000000000", [8, 9, 10]),
        ("11:20", []),
    ],
    ids=["range-and-single", "single", "reversed", "empty", "clipped", "beyond"],
)
def test_parse_uid_set(text: str, uids: list[int]) -> None:
    assert parse_uid_set(text, upto=10) == uids


def _leaf(kind: bytes, sub: bytes, charset: bytes | None = None, size: int = 10) -> BodyData:
    params = (b"charset", charset) if charset else None
    return BodyData((kind, sub, params, None, None, b"7bit", size, 1))


def _multi(*parts: BodyData, sub: bytes = b"mixed") -> BodyData:
    return BodyData(([*parts], sub, (b"boundary", b"x"), None, None, None))


@pytest.mark.parametrize(
    ("structure", "path"),
    [
        (_leaf(b"text", b"plain"), "1"),
        (_leaf(b"application", b"pdf"), None),
        (_multi(_leaf(b"text", b"plain"), _leaf(b"image", b"png")), "1"),
        (
            _multi(_multi(_leaf(b"text", b"plain"), _leaf(b"text", b"html")), _leaf(b"a", b"b")),
            "1.1",
        ),
        (_multi(_leaf(b"image", b"png"), _leaf(b"text", b"html")), "2"),
        (_multi(_leaf(b"message", b"rfc822"), _leaf(b"image", b"png")), None),
    ],
    ids=["single-text", "single-binary", "mixed", "nested-alternative", "html-second", "none"],
)
def test_first_text_part(structure: BodyData, path: str | None) -> None:
    found = first_text_part(structure)
    assert (found.path if found else None) == path


HEADER = (
    b"From: a@example.com\r\nSubject: hi\r\nContent-Type: multipart/mixed;\r\n"
    b' boundary="x"\r\nMIME-Version: 1.0\r\n\r\n'
)


@pytest.mark.parametrize(
    ("body", "text_bytes", "size", "expected_body", "truncated"),
    [
        (b"short\r\n", 100, 7, b"short\r\n", True),
        (b"line one\r\nline tw", 17, 40, b"line one\r\n", True),
    ],
    ids=["whole-part", "cut-at-line-end"],
)
def test_assemble_multipart_keeps_only_the_text_part(
    body: bytes, text_bytes: int, size: int, expected_body: bytes, truncated: bool
) -> None:
    part = TextPart("1", "plain", "iso-8859-1", "quoted-printable", size)
    raw, cut = assemble_raw(HEADER, _multi(_leaf(b"text", b"plain")), part, body, text_bytes)
    assert raw == (
        b"From: a@example.com\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: text/plain; charset="iso-8859-1"\r\n'
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n" + expected_body
    )
    assert cut is truncated


def test_assemble_single_part_is_the_message_itself() -> None:
    header = b"From: a@example.com\nSubject: hi\n\n"
    part = TextPart("1", "plain", "", "7bit", 5)
    assert assemble_raw(header, _leaf(b"text", b"plain"), part, b"body\n", 100) == (
        header + b"body\n",
        False,
    )


def test_response_without_header_is_a_bad_item() -> None:
    from connectors.errors import BadItem

    with pytest.raises(BadItem, match="INBOX/7/3"):
        build_message(
            folder="INBOX",
            uidvalidity=7,
            uid=3,
            data={b"FLAGS": ()},
            mailbox="a@b.c",
            special_use=None,
            text_bytes=100,
        )


# --------------------------------------------------------------------------- FETCH parser


FETCH_ITEMS = [
    "FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODYSTRUCTURE",
    "BODY.PEEK[HEADER]", "BODY.PEEK[1]<0.2048>", "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]",
]  # fmt: skip


def test_fetch_parser_reads_what_imapclient_reads_from_every_corpus_message(
    dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    raws = [path.read_bytes() for path in sorted(FIXTURES.rglob("*.eml"))]
    raws += [_alternative(n) for n in range(3)]
    uids = dovecot.append(imap_user, "INBOX", raws)
    with dovecot.client(imap_user) as client:
        client.select_folder("INBOX", readonly=True)
        typ, data = client._imap.uid("FETCH", f"1:{max(uids)}", f"({' '.join(FETCH_ITEMS)})")
        assert typ == "OK"
        ours = parse_fetch(data)
        reference = parse_fetch_response(data, False, True)
        assert ours == dict(reference)
        assert len(ours) == len(raws) > 150
        assert uid_fetch(client, uids[:3], FETCH_ITEMS) == {u: reference[u] for u in uids[:3]}


@pytest.mark.parametrize(
    "records",
    [
        [b'1 (UID 7 FLAGS (\\Seen $Label%1) X-Q "a\\"b\\\\c\\d" MODSEQ (0012) N 007 E "" Z NIL)'],
        [
            (
                b'2 (UID 8 BODYSTRUCTURE ("text" "plain" NIL NIL NIL "7bit" 3 1 NIL ("inline" '
                b'("filename" {9}',
                b"r\xe9sum\xe9 ??",
            ),
            b")) NIL NIL))",
        ],
        [(b"3 (UID 9 BODY[HEADER.FIELDS (FROM)] {5}", b"From:"), (b" BODY[1]<0> {0}", b""), b")"],
        [b"4 (FLAGS (\\Deleted))"],
    ],
    ids=["escapes-and-numbers", "literal-in-structure", "sections", "unsolicited-flags"],
)
def test_fetch_parser_agrees_with_imapclient_on_tricky_responses(records: list[Any]) -> None:
    assert parse_fetch(records) == dict(parse_fetch_response(records, False, True))


@pytest.mark.parametrize(
    "records",
    [
        [b"1 (UID 7 FLAGS (\\Seen)"],
        [b"1 (UID 7))"],
        [(b"1 (UID 7 BODY[] {10}", b"short"), b")"],
        [b'1 (UID 7 X "open)'],
        [b"1 (UID 7 FLAGS)"],
        [b"x (UID 7)"],
    ],
    ids=["unclosed", "extra-close", "short-literal", "open-string", "odd-items", "bad-id"],
)
def test_fetch_parser_refuses_malformed_responses(records: list[Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_fetch(records)
