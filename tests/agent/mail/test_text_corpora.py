"""Reply extraction and parsing measured on real mail from other projects' test suites.

talon (Mailgun) and email-reply-parser (Zapier) come with expected results;
each corpus has one test that measures the exact-match rate (after stripping
surrounding whitespace), prints it and holds it above a floor, and one test
per case, where the known misses are strict xfails so that a fix shows up.
flanker, mikel-mail and cpython's test_email hold broken and exotic MIME with
no expected text: every file must parse and give text without an exception.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.mail.html_text import html_reply_text
from agent.mail.replies import reply_text, split_signature, strip_quotes
from agent.mail.text import body_text, header_str, parse_mime, reply_body, snippet
from tests.support.paths import FIXTURES

TALON = FIXTURES / "talon"
ZAPIER = FIXTURES / "email-reply-parser-zapier"
TALON_EXPECTED: dict[str, Any] = json.loads((TALON / "expected.json").read_text("utf-8"))
ZAPIER_REPLIES: dict[str, str] = json.loads((ZAPIER / "reply_text.json").read_text("utf-8"))[
    "by_file"
]


def _rate(cases: list[tuple[str, bool]], label: str) -> float:
    """The share of cases that match; printed, with the misses, for the record."""
    rate = sum(ok for _, ok in cases) / len(cases)
    misses = [name for name, ok in cases if not ok]
    print(f"{label}: {sum(ok for _, ok in cases)}/{len(cases)} = {rate:.1%}; misses: {misses}")
    return rate


def _params(names: list[str], misses: dict[str, str]) -> list[Any]:
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=misses[name]), id=name)
        if name in misses
        else pytest.param(name, id=name)
        for name in names
    ]


# --- talon: standard replies from a dozen clients ---------------------------

STANDARD: dict[str, str] = TALON_EXPECTED["standard_replies"]["expected"]


def _talon_plain(name: str) -> str:
    return body_text(parse_mime((TALON / "standard_replies" / name).read_bytes()))


def _standard_quotes_ok(name: str) -> bool:
    """talon's expectation is quote removal only: its expected text keeps the signature."""
    return strip_quotes(_talon_plain(name)).strip() == STANDARD[name].strip()


def _standard_reply_ok(name: str) -> bool:
    """Every client's reply is "Hello"; ``reply_text`` also drops the signature talon keeps."""
    return reply_text(_talon_plain(name)) == "Hello"


def test_talon_standard_replies_rate() -> None:
    names = sorted(STANDARD)
    assert _rate([(n, _standard_quotes_ok(n)) for n in names], "talon standard (quotes)") >= 0.9
    assert _rate([(n, _standard_reply_ok(n)) for n in names], "talon standard (reply)") >= 0.9


@pytest.mark.parametrize("name", _params(sorted(STANDARD), {}))
def test_talon_standard_reply(name: str) -> None:
    assert _standard_quotes_ok(name)
    assert _standard_reply_ok(name)


# --- talon: HTML replies ----------------------------------------------------

HTML_FILES: list[str] = TALON_EXPECTED["html_replies"]["files"]
HTML_EXPECTED = "".join(TALON_EXPECTED["html_replies"]["expected_text"].split())
# talon gives the reply as HTML here; its text, whitespace removed.
OTHER_HTML = {"OLK_SRC_BODY_SECTION.html": "Reply", "reply-separated-by-hr.html": "Hithere"}
HTML_MISSES = {
    "reply-separated-by-hr.html": (
        "talon drops the whole block holding the <hr> that starts the quote, and with it the "
        "sign-off 'Bob' written above the rule; a rule inside the reply is no evidence"
    ),
}


def _html_ok(path: Path, expected: str) -> bool:
    """talon compares with all whitespace removed: line breaks in HTML are the client's choice."""
    return "".join(html_reply_text(path.read_text("utf-8")).split()) == expected


def _html_cases() -> list[tuple[str, Path, str]]:
    cases = [(name, TALON / "html_replies" / name, HTML_EXPECTED) for name in HTML_FILES]
    cases += [(name, TALON / name, expected) for name, expected in OTHER_HTML.items()]
    return cases


def test_talon_html_replies_rate() -> None:
    cases = [(name, _html_ok(path, expected)) for name, path, expected in _html_cases()]
    assert _rate(cases, "talon html") >= 0.85


@pytest.mark.parametrize("name", _params([name for name, _, _ in _html_cases()], HTML_MISSES))
def test_talon_html_reply(name: str) -> None:
    path, expected = next((path, exp) for case, path, exp in _html_cases() if case == name)
    assert _html_ok(path, expected)


def test_talon_reply_above_a_quoted_share_block() -> None:
    message = parse_mime((TALON / "reply-quotations-share-block.eml").read_bytes())
    for text in (reply_body(message), html_reply_text(_html_part(message))):
        assert text.startswith("Hi Katharine.")
        assert "From" not in text


def _html_part(message: Any) -> str:
    html = next(part for part in message.walk() if part.get_content_type() == "text/html")
    payload = html.get_payload(decode=True)
    return str(payload.decode(html.get_content_charset() or "utf-8"))


# --- talon: signatures ------------------------------------------------------

STRIPPED = TALON / "signature" / "emails" / "stripped"
SIGNATURES = sorted(path.name.removesuffix("_body") for path in STRIPPED.glob("*_body"))


def _signature_ok(name: str) -> bool:
    """talon's rule: the signature matches and the body is the message without it."""
    body = (STRIPPED / f"{name}_body").read_text("utf-8")
    sender = (STRIPPED / f"{name}_sender").read_text("utf-8").strip()
    expected = (STRIPPED / f"{name}_signature").read_text("utf-8")
    text, signature = split_signature(body, sender)
    stripped = body.strip()[: len(body.strip()) - len(expected)]
    return signature.strip() == expected.strip() and text.strip() == stripped.strip()


def test_talon_signatures_rate() -> None:
    assert _rate([(name, _signature_ok(name)) for name in SIGNATURES], "talon signatures") >= 0.8


@pytest.mark.parametrize("name", _params(SIGNATURES, {}))
def test_talon_signature(name: str) -> None:
    assert _signature_ok(name)


# --- zapier: plain-text bodies ----------------------------------------------


def _zapier_text(name: str) -> str:
    return (ZAPIER / "emails" / name).read_bytes().decode("utf-8")


def _zapier_ok(name: str) -> bool:
    return reply_text(_zapier_text(name)) == ZAPIER_REPLIES[name].strip()


def test_zapier_replies_rate() -> None:
    names = sorted(ZAPIER_REPLIES)
    assert _rate([(name, _zapier_ok(name)) for name in names], "zapier reply text") >= 0.9


@pytest.mark.parametrize("name", _params(sorted(ZAPIER_REPLIES), {}))
def test_zapier_reply(name: str) -> None:
    assert _zapier_ok(name)


def _whole(name: str) -> str:
    lines = _zapier_text(name).replace("\r\n", "\n").strip().split("\n")
    return "\n".join(line.rstrip() for line in lines)


# Upstream's own assertions (expected.json), read for the visible reply: a
# fragment upstream hides must be gone, one it shows must be there, and a
# message of one fragment must come back whole.
ZAPIER_ASSERTIONS: list[tuple[str, str, Callable[[str], bool]]] = [
    ("email_1_1.txt", "fragment 0 (visible) has 'folks'", lambda r: "folks" in r),
    ("email_1_1.txt", "signature fragments hidden", lambda r: "riak-users" not in r),
    ("email_1_2.txt", "fragment 0 has 'Hi,'", lambda r: r.startswith("Hi,")),
    (
        "email_1_2.txt",
        "reply has the bucket answer",
        lambda r: "You can list the keys for the bucket" in r,
    ),
    ("email_1_2.txt", "quoted fragment 3 hidden", lambda r: "> " not in r),
    ("email_1_2.txt", "signature fragment 5 hidden", lambda r: "riak-users" not in r),
    ("email_1_8.txt", "signature hidden", lambda r: "this is my signature" not in r),
    ("correct_sig.txt", "signature hidden", lambda r: "rick" not in r),
    ("correct_sig.txt", "'--' in mid-line kept", lambda r: "correct -- signature" in r),
    ("email_1_6.txt", "fragment 0 has 'I get'", lambda r: "I get" in r),
    ("email_1_6.txt", "quote hidden", lambda r: "caching" not in r),
    ("email_1_4.txt", "fragment 0 has 'Awesome'", lambda r: "Awesome" in r),
    ("email_1_4.txt", "quote with 'Loader' hidden", lambda r: "Loader" not in r),
    ("email_1_5.txt", "one fragment", lambda r: r == _whole("email_1_5.txt")),
    ("email_1_7.txt", "fragment 0 has ':+1:'", lambda r: ":+1:" in r),
    ("email_1_7.txt", "quote hidden", lambda r: "Steps 0-2" not in r),
    (
        "email_gmail.txt",
        "parse_reply",
        lambda r: r == "This is a test for inbox replying to a github message.",
    ),
    ("email_2_1.txt", "parse_reply", lambda r: r == "Outlook with a reply"),
    ("email_2_2.txt", "parse_reply", lambda r: r == "Outlook with a reply directly above line"),
    (
        "email_2_3.txt",
        "parse_reply",
        lambda r: r == "Outlook with a reply above headers using unusual format",
    ),
    ("email_headers_no_delimiter.txt", "reply", lambda r: r == "And another reply!"),
    ("email_iPhone.txt", "no 'Sent from my iPhone'", lambda r: "Sent from my iPhone" not in r),
    (
        "email_one_is_not_on.txt",
        "attribution removed",
        lambda r: "On Oct 1, 2012, at 11:55 PM, Dave Tapley wrote:" not in r,
    ),
    (
        "email_partial_quote_header.txt",
        "reply kept",
        lambda r: all(
            part in r
            for part in (
                "On your remote host you can run:",
                "telnet 127.0.0.1 52698",
                "This should connect to TextMate",
            )
        ),
    ),
    (
        "email_sig_delimiter_in_middle_of_line.txt",
        "one fragment",
        lambda r: r == _whole("email_sig_delimiter_in_middle_of_line.txt"),
    ),
]


def test_zapier_upstream_assertions_rate() -> None:
    cases = [
        (f"{name}: {what}", check(reply_text(_zapier_text(name))))
        for name, what, check in ZAPIER_ASSERTIONS
    ]
    assert _rate(cases, "zapier upstream assertions") >= 0.9


@pytest.mark.parametrize(
    ("name", "check"),
    [pytest.param(name, check, id=f"{name}: {what}") for name, what, check in ZAPIER_ASSERTIONS],
)
def test_zapier_upstream_assertion(name: str, check: Callable[[str], bool]) -> None:
    assert check(reply_text(_zapier_text(name)))


def test_zapier_pathological_body_is_fast() -> None:
    """Upstream's regex-speed trap: long unbroken lines under an attribution."""
    text = _zapier_text("pathological.txt")
    started = time.perf_counter()
    for _ in range(10):
        reply_text(text)
    assert (time.perf_counter() - started) / 10 < 0.05


# --- broken and exotic MIME -------------------------------------------------

ROBUSTNESS_SOURCES = ("flanker", "mikel-mail", "cpython-test_email")
ROBUSTNESS_FILES = sorted(
    path.relative_to(FIXTURES).as_posix()
    for source in ROBUSTNESS_SOURCES
    for path in (FIXTURES / source).rglob("*")
    if path.is_file() and path.name not in ("LICENSE", "ATTRIBUTION.md")
)


@pytest.mark.parametrize("relative", ROBUSTNESS_FILES)
def test_real_mail_parses_and_gives_text(relative: str) -> None:
    started = time.perf_counter()
    message = parse_mime((FIXTURES / relative).read_bytes())
    for name in ("Subject", "From", "To", "Cc", "Date", "Message-ID"):
        header_str(message, name).encode("utf-8")
    text = body_text(message)
    reply = reply_body(message)
    assert len(snippet(reply or text)) <= 200
    text.encode("utf-8")
    reply.encode("utf-8")
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    ("relative", "subject", "text"),
    [
        ("flanker/messages/enclosed-endless.eml", "Wow", "Hello"),
        ("flanker/messages/torture.eml", "Multi-media mail demonstration", "demonstration"),
        ("flanker/messages/8bitmime.eml", "2 RCPT MIME", "Превел"),
        ("flanker/messages/bilingual-simple.eml", "Как ты поживаешь?", "по-русски"),
        ("flanker/messages/long-header.eml", "Die heiße Zypernsonne", "test"),
        ("mikel-mail/plain_emails/raw_email10.eml", "", "Test test. Hi. Waving."),
    ],
    ids=["endless-nesting", "torture", "8bit", "bilingual", "long-header", "unknown-charset"],
)
def test_real_mail_text(relative: str, subject: str, text: str) -> None:
    message = parse_mime((FIXTURES / relative).read_bytes())
    assert subject in header_str(message, "Subject")
    assert text in body_text(message)
