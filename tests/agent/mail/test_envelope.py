"""Envelope extraction: participants, dates, dedupe and thread keys, real and small messages."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.mail.envelope import FILTER_HEADERS, Envelope, build_envelope, normalize_message_id
from agent.mail.text import parse_mime
from connectors.errors import BadItem
from connectors.records import Address, MailMessage
from tests.support.paths import FIXTURES

INTERNAL = frozenset({"example.com"})
FALLBACK_DATE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _mail(headers: str, body: str = "Hello.\n") -> bytes:
    return (textwrap.dedent(headers).strip() + "\n\n" + body).encode("utf-8")


def _envelope(
    raw: bytes,
    *,
    mailbox: str = "me@example.com",
    labels: frozenset[str] = frozenset(),
    thread_id: str | None = None,
    internal_date: datetime | None = None,
) -> Envelope:
    message = MailMessage(
        source_id="src-1",
        mailbox=mailbox,
        raw=raw,
        labels=labels,
        thread_id=thread_id,
        internal_date=internal_date,
    )
    return build_envelope(message, parse_mime(raw), INTERNAL)


def _fixture(path: str, **kwargs: object) -> Envelope:
    return _envelope((FIXTURES / path).read_bytes(), **kwargs)  # type: ignore[arg-type]


def _roles(envelope: Envelope) -> list[tuple[str, str]]:
    return [(address.email, role) for address, role in envelope.participants]


BASIC = """
    From: Client Person <client@customer.org>
    To: Me <me@example.com>
    Subject: Proposal
    Date: Tue, 05 Mar 2024 09:30:00 +0100
    Message-ID: <ABC.123@mail.customer.org>
"""


def test_basic_envelope() -> None:
    envelope = _envelope(_mail(BASIC))
    assert envelope.source_id == "src-1"
    assert envelope.mailbox == "me@example.com"
    assert envelope.message_id == "abc.123@mail.customer.org"
    assert envelope.dedupe_key == "abc.123@mail.customer.org"
    assert envelope.thread_key == "abc.123@mail.customer.org"
    assert envelope.subject == "Proposal"
    assert envelope.occurred_at == datetime(2024, 3, 5, 8, 30, tzinfo=UTC)
    assert envelope.sender == Address("client@customer.org", "Client Person")
    assert _roles(envelope) == [("client@customer.org", "from"), ("me@example.com", "to")]
    assert envelope.direction == "inbound"
    assert envelope.recipients == (Address("me@example.com", "Me"),)
    assert envelope.has_calendar_part is False
    assert dict(envelope.headers) == {}


@pytest.mark.parametrize(
    ("path", "sender", "roles", "thread_key"),
    [
        (
            "mikel-mail/rfc2822/example03.eml",
            Address("john.q.public@example.com", "Joe Q. Public"),
            [
                ("john.q.public@example.com", "from"),
                ("mary@x.test", "to"),
                ("jdoe@example.org", "to"),
                ("one@y.test", "to"),
                ("boss@nil.test", "cc"),
                ("sysservices@example.net", "cc"),
            ],
            "5678.21-nov-1997@example.com",
        ),
        (
            "mikel-mail/rfc2822/example06.eml",
            Address("mary@example.net", "Mary Smith"),
            [
                ("mary@example.net", "from"),
                ("smith@home.example", "from"),
                ("jdoe@machine.example", "to"),
            ],
            "1234@local.machine.example",
        ),
        (
            "mikel-mail/rfc2822/example07.eml",
            Address("jdoe@machine.example", "John Doe"),
            [("jdoe@machine.example", "from"), ("smith@home.example", "to")],
            "1234@local.machine.example",
        ),
        (
            "talon/standard_replies/apple_mail_2.eml",
            Address("adam@tictail.com", "Adam Renberg"),
            [("adam@tictail.com", "from"), ("tgwizard@gmail.com", "to")],
            "cabzqghkmxdxut_tsvqcg=43aniuhtsvfczvzu-pg0kws_uzqmw@mail.gmail.com",
        ),
        (
            "cpython-test_email/msg_20.txt",
            Address("bbb@ddd.com", "John X. Doe"),
            [
                ("bbb@ddd.com", "from"),
                ("bbb@zzz.org", "to"),
                ("ccc@zzz.org", "cc"),
                ("ddd@zzz.org", "cc"),
                ("eee@zzz.org", "cc"),
            ],
            "15090.61304.110929.45684@aaa.zzz.org",
        ),
        (
            "cpython-test_email/msg_25.txt",
            Address("mailer-daemon@zinfandel.lacita.com", "Mail Delivery Subsystem"),
            [
                ("mailer-daemon@zinfandel.lacita.com", "from"),
                ("linuxuser-admin@www.linux.org.uk", "to"),
                ("postmaster@zinfandel.lacita.com", "to"),
            ],
            "200104061723.jab03225@zinfandel.lacita.com",
        ),
        (
            "mikel-mail/plain_emails/raw_email_with_at_display_name.eml",
            Address("test@lindsaar.net", "Mikel Lindsaar"),
            [
                ("test@lindsaar.net", "from"),
                ("jack@lindsar.com", "from"),
                ("smith@gmail.com", "to"),
                ("raasdnil@gmail.com", "to"),
                ("tom@gmail.com", "to"),
            ],
            "6b7ec235-5b17-4ca8-b2b8-39290deb43a3@test.lindsaar.net",
        ),
        (
            "mikel-mail/mime_emails/raw_email_encoded_stack_level_too_deep.eml",
            Address("gmail-noreply@google.com", "Gmail Team"),
            [
                ("gmail-noreply@google.com", "from"),
                ("xy@gmail.com", "from"),
                ("ab@gmail.com", "to"),
            ],
            "89d7557c0506280102495d555f@mail.gmail.com",
        ),
    ],
    ids=[
        "rfc2822-several-recipients",
        "rfc2822-reply-to-is-a-participant",
        "rfc2822-reply-threads-to-root",
        "apple-mail-reply",
        "repeated-cc-headers",
        "repeated-to-headers",
        "at-sign-in-display-name",
        "gmail-folding-and-latin1-name",
    ],
)
def test_real_messages(
    path: str, sender: Address, roles: list[tuple[str, str]], thread_key: str
) -> None:
    envelope = _fixture(path)
    assert envelope.sender == sender
    assert _roles(envelope) == roles
    assert envelope.thread_key == thread_key


def test_rfc2047_display_name_with_comma_stays_one_address() -> None:
    envelope = _fixture("flanker/messages/encoded-header.eml", internal_date=FALLBACK_DATE)
    assert envelope.sender == Address("foo.bar@example.com", "Foo, Bar")
    assert envelope.direction == "internal"


def test_latin1_encoded_word_in_recipient_name() -> None:
    envelope = _fixture("mikel-mail/mime_emails/raw_email_encoded_stack_level_too_deep.eml")
    assert envelope.recipients == (Address("ab@gmail.com", "Nicolas Fouché"),)


def test_utf8_headers_get_idna_domains() -> None:
    envelope = _fixture("mikel-mail/rfc6532/utf8_headers.eml", internal_date=FALLBACK_DATE)
    assert envelope.sender == Address("jdöe@xn--mchine-bua.example", "Jöhn Doe")
    assert envelope.recipients == (Address("märy@xn--exmple-cua.net", "Märy Smith"),)
    assert envelope.subject == "Säying Hello"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<ABC.123@Example.COM>", "abc.123@example.com"),
        ("  <abc@example.com>  ", "abc@example.com"),
        ("<abc\n @example.com>", "abc@example.com"),
        ("abc@example.com", "abc@example.com"),
        ("<first@example.com> <second@example.com>", "first@example.com"),
        ("", None),
        ("<>", None),
    ],
    ids=[
        "brackets-and-case",
        "outer-space",
        "folded",
        "no-brackets",
        "first-of-several",
        "empty",
        "empty-brackets",
    ],
)
def test_normalize_message_id(value: str, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


NO_ID = """
    From: client@customer.org
    To: me@example.com, Other <other@customer.org>
    Cc: boss@customer.org
    Subject: No   id
    Date: Tue, 05 Mar 2024 09:30:00 +0100
"""


def test_dedupe_key_without_message_id_is_a_stable_hash() -> None:
    first = _envelope(_mail(NO_ID))
    again = _envelope(_mail(NO_ID))
    assert first.message_id is None
    assert re.fullmatch(r"hash:[0-9a-f]{64}", first.dedupe_key)
    assert again.dedupe_key == first.dedupe_key


@pytest.mark.parametrize(
    ("variant", "same"),
    [
        (
            NO_ID.replace(
                "me@example.com, Other <other@customer.org>", "other@customer.org, ME@example.com"
            ),
            True,
        ),
        (NO_ID + "    Bcc: secret@example.com\n", True),
        (NO_ID.replace("+0100", "+0000").replace("09:30", "08:30"), True),
        (NO_ID.replace("Subject: No   id", "Subject: No\n         id"), True),
        (NO_ID.replace("Subject: No   id", "Subject: Other"), False),
        (NO_ID.replace("09:30:00", "09:30:01"), False),
        (NO_ID.replace("From: client@customer.org", "From: someone@customer.org"), False),
        (NO_ID.replace("Cc: boss@customer.org", "Cc: boss2@customer.org"), False),
    ],
    ids=[
        "recipient-order-and-case",
        "bcc-ignored",
        "same-instant-other-zone",
        "subject-folding",
        "other-subject",
        "other-second",
        "other-sender",
        "other-cc",
    ],
)
def test_dedupe_hash_inputs(variant: str, same: bool) -> None:
    base = _envelope(_mail(NO_ID)).dedupe_key
    assert (_envelope(_mail(variant)).dedupe_key == base) is same


_THREADED = """
    From: client@customer.org
    To: me@example.com
    Subject: Re: Proposal
    Date: Tue, 05 Mar 2024 09:30:00 +0100
"""


@pytest.mark.parametrize(
    ("headers", "thread_id", "expected"),
    [
        (
            "Message-ID: <c@x>\nReferences: <A@x> <b@x>\nIn-Reply-To: <b@x>",
            "18c2f0a1b2",
            "18c2f0a1b2",
        ),
        ("Message-ID: <c@x>\nReferences: <A@x>\n <b@x>\nIn-Reply-To: <b@x>", None, "a@x"),
        ("Message-ID: <c@x>\nIn-Reply-To: <B@x>", None, "b@x"),
        ("Message-ID: <C@x>", None, "c@x"),
        ("Message-ID: <c@x>", "  ", "c@x"),
        ("Message-ID: <c@x>\nReferences:\nIn-Reply-To:", None, "c@x"),
        ("", None, None),
    ],
    ids=[
        "provider-thread-id",
        "references-root",
        "in-reply-to",
        "message-id",
        "blank-thread-id",
        "empty-headers",
        "nothing",
    ],
)
def test_thread_key_precedence(headers: str, thread_id: str | None, expected: str | None) -> None:
    raw = _mail(_THREADED + textwrap.indent(headers, "    "))
    assert _envelope(raw, thread_id=thread_id).thread_key == expected


@pytest.mark.parametrize(
    ("date_header", "internal_date", "expected"),
    [
        (
            "Date: Tue, 05 Mar 2024 09:30:00 +0100",
            FALLBACK_DATE,
            datetime(2024, 3, 5, 8, 30, tzinfo=UTC),
        ),
        ("Date: Tue, 05 Mar 2024 09:30:00 -0000", None, datetime(2024, 3, 5, 9, 30, tzinfo=UTC)),
        ("Date: 5 Mar 2024 09:30 PST", None, datetime(2024, 3, 5, 17, 30, tzinfo=UTC)),
        (
            "Date: Sun, 23 Sep 2001 20:14:35 -0700 (PDT)",
            None,
            datetime(2001, 9, 24, 3, 14, 35, tzinfo=UTC),
        ),
        ("Date: ", FALLBACK_DATE, FALLBACK_DATE),
        ("Date: yesterday after lunch", FALLBACK_DATE, FALLBACK_DATE),
        ("", FALLBACK_DATE, FALLBACK_DATE),
        ("", datetime(2024, 3, 1, 12, 0), FALLBACK_DATE),
        ("", datetime(2024, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))), FALLBACK_DATE),
    ],
    ids=[
        "header-wins",
        "minus-zero-is-utc",
        "named-zone",
        "zone-comment",
        "empty-header",
        "unparseable-header",
        "missing-header",
        "naive-internal-date-is-utc",
        "aware-internal-date-converted",
    ],
)
def test_occurred_at(date_header: str, internal_date: datetime | None, expected: datetime) -> None:
    raw = _mail(f"From: client@customer.org\nTo: me@example.com\n{date_header}")
    occurred_at = _envelope(raw, internal_date=internal_date).occurred_at
    assert occurred_at == expected
    assert occurred_at.tzinfo == UTC


def test_real_message_with_empty_date_uses_the_connector_date() -> None:
    envelope = _fixture("mikel-mail/error_emails/bad_date_header.eml", internal_date=FALLBACK_DATE)
    assert envelope.occurred_at == FALLBACK_DATE


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_mail("From: client@customer.org\nTo: me@example.com"), "no usable Date header"),
        (
            _mail("From: client@customer.org\nTo: me@example.com\nDate: never"),
            "no usable Date header",
        ),
        (
            _mail("Subject: nobody\nDate: Tue, 05 Mar 2024 09:30:00 +0100"),
            "no sender and no recipients",
        ),
        (
            _mail(
                "From: not an address\nTo: undisclosed-recipients:;\n"
                "Date: Tue, 05 Mar 2024 09:30:00 +0100"
            ),
            "no sender and no recipients",
        ),
    ],
    ids=["no-date", "bad-date", "no-addresses", "only-unusable-addresses"],
)
def test_unusable_messages_raise_bad_item(raw: bytes, reason: str) -> None:
    with pytest.raises(BadItem) as caught:
        _envelope(raw)
    assert caught.value.source_id == "src-1"
    assert caught.value.reason == reason


def test_a_message_without_from_uses_sender_or_stays_anonymous() -> None:
    with_sender = _envelope(_mail("Sender: Ann <ann@customer.org>\nTo: me@example.com\n" + DATE))
    assert with_sender.sender == Address("ann@customer.org", "Ann")
    anonymous = _envelope(_mail("To: me@example.com\n" + DATE))
    assert anonymous.sender is None
    assert anonymous.direction == "inbound"


DATE = "Date: Tue, 05 Mar 2024 09:30:00 +0100"


@pytest.mark.parametrize(
    ("reply_to", "roles"),
    [
        (
            "assistant@customer.org",
            [("boss@customer.org", "from"), ("assistant@customer.org", "from")],
        ),
        ("Boss <BOSS@customer.org>", [("boss@customer.org", "from")]),
        ("noreply@customer.org", [("boss@customer.org", "from")]),
    ],
    ids=["different-address-joins-from", "same-as-from", "automated-ignored"],
)
def test_reply_to(reply_to: str, roles: list[tuple[str, str]]) -> None:
    raw = _mail(f"From: boss@customer.org\nReply-To: {reply_to}\nTo: me@example.com\n{DATE}")
    assert _roles(_envelope(raw)) == [*roles, ("me@example.com", "to")]


def test_participants_are_unique_per_address_and_role() -> None:
    raw = _mail(
        "From: me@example.com\n"
        "To: a@customer.org, A@Customer.org, b@customer.org\n"
        "Cc: a@customer.org\n"
        "Bcc: b@customer.org, me@example.com\n" + DATE
    )
    envelope = _envelope(raw)
    assert _roles(envelope) == [
        ("me@example.com", "from"),
        ("a@customer.org", "to"),
        ("b@customer.org", "to"),
        ("a@customer.org", "cc"),
        ("b@customer.org", "bcc"),
        ("me@example.com", "bcc"),
    ]
    assert [address.email for address in envelope.recipients] == [
        "a@customer.org",
        "b@customer.org",
        "me@example.com",
    ]
    assert envelope.direction == "outbound"


@pytest.mark.parametrize(
    ("mailbox", "from_to", "expected"),
    [
        ("me@example.com", "From: me@example.com\nTo: client@customer.org", "outbound"),
        ("me@example.com", "From: client@customer.org\nTo: me@example.com", "inbound"),
        ("me@example.com", "From: me@example.com\nTo: you@eu.example.com", "internal"),
        ("Seller@GMAIL.com", "From: seller@gmail.com\nTo: client@customer.org", "outbound"),
    ],
    ids=["sent", "received", "colleague", "owner-on-free-mail"],
)
def test_direction_from_the_mailbox(mailbox: str, from_to: str, expected: str) -> None:
    envelope = _envelope(_mail(f"{from_to}\n{DATE}"), mailbox=mailbox)
    assert envelope.direction == expected


def test_mailbox_is_normalized() -> None:
    assert (
        _envelope(_mail(BASIC), mailbox=" S.eller+x@GoogleMail.com ").mailbox == "seller@gmail.com"
    )


def test_labels_merge_the_record_and_takeout_header() -> None:
    raw = _mail(BASIC + '    X-Gmail-Labels: Inbox,"Clients, EU",Category Updates\n')
    envelope = _envelope(raw, labels=frozenset({"IMPORTANT"}))
    assert envelope.labels == {"IMPORTANT", "Inbox", "Clients, EU", "Category Updates"}
    assert envelope.headers["x-gmail-labels"] == 'Inbox,"Clients, EU",Category Updates'


def test_headers_keep_only_what_the_filters_read() -> None:
    raw = _mail(
        BASIC
        + """\
    List-Id: Sales <sales.customer.org>
    Precedence: Bulk
    X-Mailer: Something
    Received: from somewhere
    Auto-Submitted: auto-generated
    MIME-Version: 1.0
    Content-Type: text/plain; charset=utf-8
    """
    )
    headers = _envelope(raw).headers
    assert set(headers) <= set(FILTER_HEADERS)
    assert headers["list-id"] == "Sales <sales.customer.org>"
    assert headers["precedence"] == "Bulk"
    assert headers["auto-submitted"] == "auto-generated"
    assert headers["content-type"].startswith("text/plain; charset=")
    assert "x-mailer" not in headers


_INVITE = """\
From: organizer@customer.org
To: me@example.com
Subject: Invitation: Kickoff
Date: Tue, 05 Mar 2024 09:30:00 +0100
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b"

--b
Content-Type: text/plain; charset=utf-8

You are invited.
--b
Content-Type: text/calendar; charset=utf-8{param}

BEGIN:VCALENDAR
{method}BEGIN:VEVENT
UID:1
END:VEVENT
END:VCALENDAR
--b--
"""


@pytest.mark.parametrize(
    ("param", "method", "expected"),
    [
        ("; method=REQUEST", "METHOD:REQUEST\n", "REQUEST"),
        ("", "METHOD:reply\n", "REPLY"),
        ("; method=CANCEL", "", "CANCEL"),
        ("", "", None),
    ],
    ids=["param-and-body", "body-only", "param-only", "unstated"],
)
def test_calendar_part(param: str, method: str, expected: str | None) -> None:
    envelope = _envelope(_INVITE.format(param=param, method=method).encode())
    assert envelope.has_calendar_part is True
    assert envelope.calendar_method == expected


def test_no_calendar_part_in_ordinary_mail() -> None:
    envelope = _fixture("talon/standard_replies/gmail.eml")
    assert envelope.has_calendar_part is False
    assert envelope.calendar_method is None


def test_envelope_is_hashable_and_frozen() -> None:
    envelope = _envelope(_mail(BASIC))
    assert hash(envelope) == hash(_envelope(_mail(BASIC)))
    with pytest.raises(AttributeError):
        envelope.subject = "changed"  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(["From", "To", "Cc", "Reply-To", "Date", "Message-ID", "References",
                             "Subject", "Content-Type", "X-Gmail-Labels", "Sender"]),
            st.text(max_size=60),
        ),
        max_size=8,
    ),
    body=st.binary(max_size=200),
)  # fmt: skip
def test_arbitrary_headers_give_an_envelope_or_bad_item(
    headers: list[tuple[str, str]], body: bytes
) -> None:
    raw = b"".join(
        f"{name}: {value}".encode("utf-8", "surrogatepass") + b"\r\n" for name, value in headers
    )
    try:
        envelope = _envelope(raw + b"\r\n" + body, internal_date=FALLBACK_DATE)
    except BadItem:
        return
    assert envelope.dedupe_key
    assert envelope.occurred_at.tzinfo == UTC
