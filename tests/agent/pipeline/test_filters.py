"""The filter chain: every skip reason, the chain order, the never-log list, real messages."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from agent.mail.envelope import Envelope, build_envelope
from agent.mail.text import parse_mime
from agent.pipeline.filters import (
    CHAIN,
    FilterPolicy,
    NeverLog,
    Skip,
    apply_filters,
    is_automated_address,
)
from connectors.records import MailMessage
from tests.support.paths import FIXTURES

INTERNAL = frozenset({"example.com"})
FALLBACK_DATE = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

HEAD = """\
From: Client <client@customer.org>
To: me@example.com
Subject: Proposal
Date: Tue, 05 Mar 2024 09:30:00 +0100
Message-ID: <p1@customer.org>
"""


def _envelope(
    raw: bytes, labels: frozenset[str] = frozenset(), mailbox: str = "me@example.com"
) -> Envelope:
    message = MailMessage(
        source_id="src-1", mailbox=mailbox, raw=raw, labels=labels, internal_date=FALLBACK_DATE
    )
    return build_envelope(message, parse_mime(raw), INTERNAL)


def _mail(extra_headers: str = "", head: str = HEAD, body: str = "Hello.\n") -> bytes:
    return (head + textwrap.dedent(extra_headers).strip("\n") + "\n\n" + body).encode("utf-8")


def _policy(**overrides: object) -> FilterPolicy:
    return FilterPolicy(internal_domains=INTERNAL, **overrides)  # type: ignore[arg-type]


def _reason(raw: bytes, labels: frozenset[str] = frozenset(), **policy: object) -> str | None:
    skip = apply_filters(_envelope(raw, labels), _policy(**policy))
    return skip.reason if skip else None


_CALENDAR_MAIL = """\
From: organizer@customer.org
To: me@example.com
Subject: Invitation: Kickoff @ Tue 5 Mar 2024
Date: Tue, 05 Mar 2024 09:30:00 +0100
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b"

--b
Content-Type: text/plain

Join us.
--b
Content-Type: text/calendar; method={method}

BEGIN:VCALENDAR
METHOD:{method}
END:VCALENDAR
--b--
"""


def _head(sender: str, to: str = "me@example.com") -> str:
    return HEAD.replace("Client <client@customer.org>", sender).replace(
        "To: me@example.com", f"To: {to}"
    )


@pytest.mark.parametrize(
    ("raw", "labels", "policy", "expected"),
    [
        (_mail(), frozenset({"INBOX"}), {}, None),
        (_mail(), frozenset({"Private"}), {"private_label": "private"}, "private_label"),
        (_mail(), frozenset({"INBOX"}), {"share_label": "CRM"}, "not_shared"),
        (_mail(), frozenset({"crm"}), {"share_label": "CRM"}, None),
        (_mail(), frozenset({"SPAM"}), {}, "spam_or_trash"),
        (_mail(), frozenset({"Trash"}), {}, "spam_or_trash"),
        (_mail(), frozenset({"[Gmail]/Spam"}), {}, "spam_or_trash"),
        (_mail(), frozenset({"Junk E-mail"}), {}, "spam_or_trash"),
        (_mail(), frozenset({"CHAT"}), {}, "chat"),
        (_mail(), frozenset({"Chat"}), {}, "chat"),
        (
            _mail(),
            frozenset(),
            {"never_log": NeverLog.from_patterns(["*@customer.org"])},
            "never_log",
        ),
        (_mail(head=_head("ann@example.com")), frozenset(), {}, "internal_only"),
        (_mail(head=_head("ann@example.com")), frozenset(), {"log_internal": True}, None),
        (
            _CALENDAR_MAIL.format(method="REQUEST").encode(),
            frozenset(),
            {},
            "calendar_notification",
        ),
        (_CALENDAR_MAIL.format(method="REPLY").encode(), frozenset(), {}, "calendar_notification"),
        (
            _mail("Content-Class: urn:content-classes:calendarmessage"),
            frozenset(),
            {},
            "calendar_notification",
        ),
        (
            _mail("Sender: Google Calendar <calendar-notification@google.com>"),
            frozenset(),
            {},
            "calendar_notification",
        ),
        (
            _mail(head=_head("Google Calendar <calendar-notification@google.com>")),
            frozenset(),
            {},
            "calendar_notification",
        ),
        (_mail("Auto-Submitted: auto-replied"), frozenset(), {}, "automated_auto_submitted"),
        (
            _mail("Auto-Submitted: auto-generated (failure)"),
            frozenset(),
            {},
            "automated_auto_submitted",
        ),
        (_mail("Auto-Submitted: no"), frozenset(), {}, None),
        (_mail("Auto-Submitted: No (a person)"), frozenset(), {}, None),
        (_mail("X-Autoreply: yes"), frozenset(), {}, "automated_auto_submitted"),
        (_mail("Return-Path: <>"), frozenset(), {}, "automated_auto_submitted"),
        (_mail("Return-Path: <client@customer.org>"), frozenset(), {}, None),
        (_mail("List-Id: Announcements <news.customer.org>"), frozenset(), {}, "automated_list"),
        (_mail("List-Unsubscribe: <mailto:leave@customer.org>"), frozenset(), {}, "automated_list"),
        (_mail("Precedence: bulk"), frozenset(), {}, "automated_bulk"),
        (_mail("Precedence: List"), frozenset(), {}, "automated_bulk"),
        (_mail("Precedence: junk"), frozenset(), {}, "automated_bulk"),
        (_mail("Precedence: first-class"), frozenset(), {}, None),
        (_mail("X-Auto-Response-Suppress: All"), frozenset(), {}, None),
        (
            _mail(head=_head("No Reply <no-reply@customer.org>")),
            frozenset(),
            {},
            "automated_sender",
        ),
        (_mail(head=_head("MAILER-DAEMON@customer.org")), frozenset(), {}, "automated_sender"),
        (_mail(head=_head("Alerts <alerts@customer.org>")), frozenset(), {}, None),
        (_mail(), frozenset({"CATEGORY_PROMOTIONS"}), {}, "gmail_category_promotions"),
        (_mail(), frozenset({"Category Promotions"}), {}, "gmail_category_promotions"),
        (_mail(), frozenset({"CATEGORY_SOCIAL"}), {}, "gmail_category_social"),
        (_mail(), frozenset({"Category Updates"}), {}, "gmail_category_updates"),
        (_mail(), frozenset({"CATEGORY_FORUMS"}), {}, "gmail_category_forums"),
        (_mail(), frozenset({"CATEGORY_PERSONAL"}), {}, None),
    ],
    ids=[
        "plain-customer-mail-is-logged",
        "private-label",
        "share-label-missing",
        "share-label-present",
        "gmail-spam",
        "takeout-trash",
        "imap-gmail-spam-folder",
        "outlook-junk-folder",
        "gmail-chat",
        "takeout-chat",
        "never-log-domain",
        "internal-only",
        "internal-logged-when-asked",
        "calendar-request",
        "calendar-reply",
        "exchange-meeting-message",
        "google-calendar-sender-header",
        "google-calendar-from",
        "auto-replied",
        "auto-generated-with-comment",
        "auto-submitted-no",
        "auto-submitted-no-with-comment",
        "x-autoreply",
        "null-return-path",
        "ordinary-return-path",
        "list-id",
        "list-unsubscribe",
        "precedence-bulk",
        "precedence-list",
        "precedence-junk",
        "precedence-other",
        "auto-response-suppress-alone-is-kept",
        "no-reply-sender",
        "mailer-daemon-sender",
        "alerts-sender-is-kept",
        "gmail-promotions",
        "takeout-promotions",
        "gmail-social",
        "takeout-updates",
        "gmail-forums",
        "gmail-primary-is-kept",
    ],
)
def test_every_reason(
    raw: bytes, labels: frozenset[str], policy: dict[str, object], expected: str | None
) -> None:
    assert _reason(raw, labels, **policy) == expected


def test_skip_carries_a_detail_for_people() -> None:
    skip = apply_filters(_envelope(_mail("Precedence: bulk")), _policy())
    assert skip == Skip("automated_bulk", "Precedence: bulk")


def test_calendar_detail_names_the_method() -> None:
    skip = apply_filters(_envelope(_CALENDAR_MAIL.format(method="REQUEST").encode()), _policy())
    assert skip == Skip("calendar_notification", "text/calendar part, METHOD:REQUEST")


def test_subject_alone_does_not_make_a_calendar_notification() -> None:
    raw = _mail(head=HEAD.replace("Subject: Proposal", "Subject: Accepted: your proposal"))
    assert _reason(raw) is None


def test_chain_order_is_the_documented_one() -> None:
    assert [step.__name__ for step in CHAIN] == [
        "skip_private_label",
        "skip_not_shared",
        "skip_spam_or_trash",
        "skip_chat",
        "skip_never_log",
        "skip_internal_only",
        "skip_calendar_notification",
        "skip_auto_submitted",
        "skip_list",
        "skip_bulk",
        "skip_automated_sender",
        "skip_gmail_category",
    ]


@pytest.mark.parametrize(
    ("extra_headers", "labels", "expected"),
    [
        ("List-Id: x <x.customer.org>\nPrecedence: bulk", frozenset({"SPAM"}), "spam_or_trash"),
        (
            "List-Id: x <x.customer.org>\nPrecedence: bulk",
            frozenset({"CATEGORY_FORUMS"}),
            "automated_list",
        ),
        (
            "Auto-Submitted: auto-generated\nList-Id: x <x.customer.org>",
            frozenset(),
            "automated_auto_submitted",
        ),
        ("Precedence: bulk", frozenset({"Private", "CATEGORY_UPDATES"}), "private_label"),
    ],
    ids=[
        "spam-before-list",
        "list-before-category",
        "auto-submitted-before-list",
        "private-before-everything",
    ],
)
def test_first_reason_in_chain_order_wins(
    extra_headers: str, labels: frozenset[str], expected: str
) -> None:
    assert _reason(_mail(extra_headers), labels, private_label="Private") == expected


@pytest.mark.parametrize(
    ("to", "patterns", "expected"),
    [
        ("me@example.com", ["client@customer.org"], "never_log"),
        ("me@example.com", ["*@customer.org"], "never_log"),
        ("me@example.com", ["customer.org"], "never_log"),
        ("me@example.com, other@vendor.net", ["*@customer.org"], None),
        ("me@example.com, other@vendor.net", ["*@customer.org", "*@vendor.net"], "never_log"),
        ("me@example.com, hr@example.com", ["hr@example.com"], "never_log"),
        ("me@example.com", ["bob@customer.org"], None),
        ("me@example.com", [], None),
    ],
    ids=[
        "the-only-outsider-listed",
        "outsider-domain-listed",
        "bare-domain-pattern",
        "one-outsider-of-two-listed-keeps-mail",
        "every-outsider-listed",
        "internal-address-listed",
        "someone-else-listed",
        "empty-list",
    ],
)
def test_never_log_rule(to: str, patterns: list[str], expected: str | None) -> None:
    raw = _mail(head=HEAD.replace("To: me@example.com", f"To: {to}"))
    assert _reason(raw, never_log=NeverLog.from_patterns(patterns)) == expected


@pytest.mark.parametrize(
    ("pattern", "email", "expected"),
    [
        ("bob@x.com", "bob@x.com", True),
        ("Bob@X.com", "BOB@x.COM", True),
        ("bob@x.com", "bob+news@x.com", True),
        ("bob@x.com", "bobby@x.com", False),
        ("first.last@gmail.com", "firstlast@googlemail.com", True),
        ("*@mybank.com", "alerts@mybank.com", True),
        ("*@mybank.com", "alerts@mail.mybank.com", True),
        ("*@mybank.com", "alerts@notmybank.com", False),
        ("*@*.mybank.com", "alerts@mail.mybank.com", True),
        ("*@*.mybank.com", "alerts@mybank.com", False),
        ("mybank.com", "x@mybank.com", True),
        ("@mybank.com", "x@mybank.com", True),
        ("*@bänk.de", "x@xn--bnk-qla.de", True),
        ("*@mybank.com", "not an address", False),
    ],
    ids=[
        "exact",
        "case",
        "plus-tag",
        "other-local",
        "gmail-folding",
        "domain",
        "domain-covers-subdomains",
        "suffix-is-not-domain",
        "subdomain-pattern",
        "subdomain-pattern-not-domain",
        "bare-domain",
        "at-domain",
        "idna",
        "invalid-address",
    ],
)
def test_never_log_matches(pattern: str, email: str, expected: bool) -> None:
    assert NeverLog.from_patterns([pattern]).matches(email) is expected


@pytest.mark.parametrize(
    "pattern",
    ["bob*@x.com", "*@", "*@localhost", "not an address@x.com", "b@*.x.com", "*"],
    ids=str,
)
def test_never_log_rejects_bad_patterns(pattern: str) -> None:
    with pytest.raises(ValueError, match="never-log pattern"):
        NeverLog.from_patterns([pattern])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("cpython-test_email/msg_16.txt", "automated_auto_submitted"),
        ("cpython-test_email/msg_25.txt", "automated_auto_submitted"),
        ("mikel-mail/multipart_report_emails/report_422.eml", "automated_auto_submitted"),
        ("mikel-mail/error_emails/empty_in_reply_to.eml", "automated_list"),
        ("mikel-mail/error_emails/bad_date_header.eml", "automated_bulk"),
        ("mikel-mail/mime_emails/raw_email_encoded_stack_level_too_deep.eml", "automated_sender"),
        ("talon/standard_replies/gmail.eml", None),
        ("talon/standard_replies/apple_mail_2.eml", None),
        ("mikel-mail/rfc2822/example06.eml", None),
    ],
    ids=[
        "mailman-bounce",
        "sendmail-bounce",
        "delay-warning",
        "list-id",
        "precedence-junk-spam",
        "gmail-invitation-notice",
        "gmail-reply",
        "apple-mail-reply",
        "rfc2822-reply",
    ],
)
def test_real_messages(path: str, expected: str | None) -> None:
    assert _reason((FIXTURES / path).read_bytes()) == expected


def test_is_automated_address_is_exposed_for_contact_creation() -> None:
    assert is_automated_address("noreply@customer.org")
    assert not is_automated_address("client@customer.org")
