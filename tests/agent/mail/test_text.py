"""The MIME layer: parsing that never raises, headers, bodies and charsets, snippets.

HTML and reply extraction have their own files (test_html_text.py,
test_replies.py); the corpora (talon, zapier, flanker, mikel-mail, cpython)
are exercised in tests/agent/mail/test_text_corpora.py. These are the rules one by one,
and hypothesis feeding hostile bytes through the whole chain.
"""

from __future__ import annotations

import base64
import email
import time
from email import policy
from email.message import Message

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.mail.replies import reply_text
from agent.mail.text import body_text, header_str, parse_mime, reply_body, snippet
from config.limits import MAX_TEXT_CHARS
from tests.support.paths import FIXTURES

MIKEL = FIXTURES / "mikel-mail"


def _message(headers: str, body: bytes) -> Message:
    return parse_mime(headers.replace("\n", "\r\n").encode("ascii") + b"\r\n\r\n" + body)


# --- headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "name", "expected"),
    [
        (b"Subject: plain words\r\n", "Subject", "plain words"),
        (b"Subject: =?utf-8?q?caf=C3=A9?=\r\n", "subject", "café"),
        (b"Subject: =?iso-8859-1?b?Y2Fm6Q==?= ok\r\n", "Subject", "café ok"),
        (b"Subject: caf\xc3\xa9\r\n", "Subject", "café"),
        (b"Subject: caf\xe9 ol\xe9\r\n", "Subject", "café olé"),
        (b"From: Jos\xc3\xa9 <jose@example.com>\r\n", "From", "José <jose@example.com>"),
        (b"To: a@@b, <<x\r\n", "To", "a@@b, <<x"),
        (b"Subject: =?x-unknown?q?abc?=\r\n", "Subject", "abc"),
        (b"Subject: =?utf-8?b?Zm9v!?=\r\n", "Subject", "foo"),
        (b"Subject: a\r\n", "Missing", ""),
        (b"Subject: one\r\n two\r\n", "Subject", "one two"),
    ],
    ids=[
        "ascii",
        "encoded-word-q",
        "encoded-word-b-latin1",
        "raw-utf8",
        "raw-latin1",
        "raw-8bit-address",
        "malformed-address-kept-raw",
        "unknown-charset",
        "broken-base64-word",
        "missing",
        "folded",
    ],
)
def test_header_str(raw: bytes, name: str, expected: str) -> None:
    message = parse_mime(raw + b"\r\nbody\r\n")
    assert header_str(message, name) == expected


def test_header_str_joins_multibyte_characters_split_across_encoded_words() -> None:
    """ISO-2022-JP subjects are split into words mid-character; the raw fallback joins them."""
    first, second = "テスト".encode("iso-2022-jp")[:5], "テスト".encode("iso-2022-jp")[5:]
    words = " ".join(
        f"=?ISO-2022-JP?B?{base64.b64encode(part).decode()}?=" for part in (first, second)
    )
    message = parse_mime(f"Subject: {words} \xe9\r\n\r\n".encode("latin-1"))
    assert header_str(message, "Subject") == "テスト é"


def test_header_str_bounds_an_absurd_header() -> None:
    value = "=?utf-8?q?Die_hei=C3=9Fe_Sonne?= " * 20_000
    message = parse_mime(f"Subject: {value}\r\n\r\nbody".encode())
    started = time.perf_counter()
    subject = header_str(message, "Subject")
    assert time.perf_counter() - started < 1
    assert subject.startswith("Die heiße Sonne")
    assert len(subject) < 20_000


@pytest.mark.parametrize(
    ("raw", "name", "expected"),
    [
        (b"To: a@[", "To", "a@["),
        (b"To: =?utf-8?q?J=C3=B6rg?= x<", "To", "Jörg x<"),
        (b"Message-ID: <[>", "Message-ID", "<[>"),
    ],
    ids=["domain-literal", "open-angle", "message-id"],
)
def test_header_str_reads_headers_the_factory_raises_on(
    raw: bytes, name: str, expected: str
) -> None:
    data = raw + b"\r\n\r\nbody"
    with pytest.raises(Exception):  # noqa: B017 -- the stdlib's own failure
        str(email.message_from_bytes(data, policy=policy.default)[name])
    assert header_str(parse_mime(data), name) == expected


# --- bodies and charsets ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "word"),
    [
        ("multi_charset/japanese_iso_2022.eml", "すみません。"),
        ("multi_charset/japanese_shift_jis.eml", "このメールはテスト用のメールです。"),
        ("multi_charset/ks_c_5601-1987.eml", "스티해"),
        ("plain_emails/raw_email.eml", "하나님을 믿습니다"),
        ("multi_charset/japanese.eml", "かきくえこ"),
    ],
    ids=["iso-2022-jp", "shift_jis", "ks_c_5601-1987", "euc-kr-base64", "utf8-japanese"],
)
def test_body_text_decodes_the_declared_charset(path: str, word: str) -> None:
    assert word in body_text(parse_mime((MIKEL / path).read_bytes()))


@pytest.mark.parametrize(
    ("path", "header", "expected"),
    [
        ("multi_charset/japanese_iso_2022.eml", "Subject", "まみむめも"),
        ("rfc2822/example14.eml", "Subject", "Re: TEST \tテストテスト"),
        ("rfc6532/utf8_headers.eml", "From", '"Jöhn Doe" <jdöe@mächine.example>'),
    ],
    ids=["utf8-encoded-word", "iso-2022-jp-folded-words", "rfc6532-raw-utf8"],
)
def test_header_str_on_real_mail(path: str, header: str, expected: str) -> None:
    assert header_str(parse_mime((MIKEL / path).read_bytes()), header) == expected


@pytest.mark.parametrize(
    ("charset", "encoded", "expected"),
    [
        ("koi8-r", "Привет, мир".encode("koi8-r"), "Привет, мир"),
        ("windows-1251", "Добрый день".encode("cp1251"), "Добрый день"),
        ("iso-8859-1", "Grüße, “quoted”".encode("cp1252"), "Grüße, “quoted”"),
        ("iso-8859-1", "Grüße".encode(), "Grüße"),
        ("us-ascii", "naïve".encode(), "naïve"),
        ("utf-8", "caf\xe9".encode("latin-1"), "café"),
        ("x-unknown", b"plain", "plain"),
        ("base64", b"plain", "plain"),
        ('"utf-8"', "quoted label ✓".encode(), "quoted label ✓"),
        ("gb2312", "邮件".encode("gb18030"), "邮件"),
    ],
    ids=[
        "koi8-r",
        "windows-1251",
        "latin1-label-cp1252-bytes",
        "latin1-label-utf8-bytes",
        "ascii-label-utf8-bytes",
        "utf8-label-latin1-bytes",
        "unknown-charset",
        "bytes-codec-as-charset",
        "quoted-charset",
        "gb2312-as-gb18030",
    ],
)
def test_body_text_charset_fallbacks(charset: str, encoded: bytes, expected: str) -> None:
    message = _message(
        f"Content-Type: text/plain; charset={charset}\nContent-Transfer-Encoding: base64",
        base64.b64encode(encoded),
    )
    assert body_text(message) == expected


@pytest.mark.parametrize(
    "charset",
    [b"a\x00b", b"utf-8\xe9", b"unicode_escape"],
    ids=["nul-in-name", "8bit-in-name", "escape-codec"],
)
def test_body_text_survives_charset_names_the_stdlib_chokes_on(charset: bytes) -> None:
    raw = (
        b'Content-Type: text/plain; charset="' + charset + b'"\r\n'
        b"Content-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9 \\O\r\n"
    )
    assert body_text(parse_mime(raw)) == "café \\O"


def test_body_text_prefers_plain_then_html_and_skips_attachments_and_forwards() -> None:
    raw = b"""MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: message/rfc822

Content-Type: text/plain

forwarded text, not the sender's
--outer
Content-Type: text/plain; name="notes.txt"
Content-Disposition: attachment; filename="notes.txt"

attached file
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/html; charset=utf-8

<p>html body</p>
--inner
Content-Type: text/plain; charset=utf-8

plain body
--inner--
--outer--
"""
    assert body_text(parse_mime(raw)) == "plain body"


def test_body_text_falls_back_to_html() -> None:
    message = _message(
        "Content-Type: text/html; charset=utf-8",
        b"<html><head><title>t</title><style>p{}</style></head>"
        b"<body><p>Hello&nbsp;there</p><script>x()</script></body></html>",
    )
    assert body_text(message) == "Hello there"


def test_body_text_treats_a_blank_plain_part_as_missing() -> None:
    raw = b"""Content-Type: multipart/alternative; boundary="b"

--b
Content-Type: text/plain

\t
--b
Content-Type: text/html

<div>only here</div>
--b--
"""
    assert body_text(parse_mime(raw)) == "only here"


def test_body_text_bounds_nesting_and_size() -> None:
    depth = 200
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    raw = opening + b"Content-Type: text/plain\r\n\r\ndeep text\r\n"
    started = time.perf_counter()
    assert body_text(parse_mime(raw)) == ""
    assert time.perf_counter() - started < 2
    huge = _message("Content-Type: text/plain", b"word " * (MAX_TEXT_CHARS // 2))
    assert len(body_text(huge)) <= MAX_TEXT_CHARS


def test_body_text_joins_format_flowed_paragraphs() -> None:
    message = _message(
        "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=no",
        b"A paragraph that \r\nwas wrapped \r\nby the client.\r\n \r\n>Quoted \r\n>text\r\n"
        b"-- \r\nAnn",
    )
    assert body_text(message) == (
        "A paragraph that was wrapped by the client.\n\n> Quoted text\n-- \nAnn"
    )


def test_reply_body_uses_html_markers_when_there_is_no_plain_text() -> None:
    message = _message(
        "Content-Type: text/html; charset=utf-8",
        b'<div>Sounds good.</div><div class="gmail_quote">On Mon, Apr 2, 2012 at 6:26 PM, '
        b"A &lt;a@example.com&gt; wrote:<blockquote>old</blockquote></div>",
    )
    assert reply_body(message) == "Sounds good."


# --- snippets ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short  text\n\nhere", 200, "short text here"),
        ("one two three four", 12, "one two…"),
        ("one two three four", 8, "one two…"),
        ("one two three four", 18, "one two three four"),
        ("abcdefghij", 5, "abcd…"),
        ("  ", 10, ""),
        ("abc def", 1, "…"),
        ("abc def", 0, ""),
    ],
    ids=["collapse", "word-boundary", "exact-word-end", "fits", "no-space", "blank", "one", "zero"],
)
def test_snippet(text: str, limit: int, expected: str) -> None:
    assert snippet(text, limit) == expected


@given(st.text(), st.integers(min_value=0, max_value=300))
def test_snippet_properties(text: str, limit: int) -> None:
    result = snippet(text, limit)
    assert len(result) <= limit
    assert "  " not in result
    assert "\n" not in result
    flat = " ".join(text.split())
    if len(flat) <= limit:
        assert result == flat
    elif limit > 0:
        assert result.endswith("…")
        assert flat.startswith(result[:-1])


# --- hostile input ----------------------------------------------------------

_HEADER_NAMES = st.sampled_from(
    [
        "Subject",
        "From",
        "To",
        "Cc",
        "Date",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "MIME-Version",
        "X-Junk",
    ]
)
_CHARSETS = st.sampled_from(
    [
        "utf-8",
        "iso-8859-1",
        "koi8-r",
        "shift_jis",
        "iso-2022-jp",
        "x-unknown",
        "base64",
        "utf-7",
        "unicode_escape",
        "",
        '"',
        "utf-16",
        "gb2312",
        "a\x00b",
        "utf-8\xe9",
    ]
)
_ENCODINGS = st.sampled_from(
    ["base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "garbage", ""]
)
_TYPES = st.sampled_from(
    ["text/plain", "text/html", "message/rfc822", "application/octet-stream", "text/calendar"]
)
_HEADER_VALUES = st.one_of(
    st.binary(max_size=80),
    st.text(max_size=60).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.builds(
        lambda charset, kind, payload: b"=?%s?%s?%s?=" % (charset.encode(), kind, payload),
        _CHARSETS,
        st.sampled_from([b"b", b"q", b"B", b"x"]),
        st.binary(max_size=30).map(lambda data: base64.b64encode(data)[: len(data)]),
    ),
    st.sampled_from([b"a@@b, <<x", b'"unterminated <a@b', b"=?utf-8?q?", b"Mon, 99 Foo 20x"]),
)


def _leaf(content_type: str, charset: str, encoding: str, body: bytes) -> bytes:
    return (
        f"Content-Type: {content_type}; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    ).encode() + body


def _multipart(subtype: str, boundary: str, parts: list[bytes], close: bool) -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    ending = b"--" + boundary.encode() + b"--\r\n" if close else b""
    head = f'Content-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'.encode()
    return head + body + ending


_LEAVES = st.builds(_leaf, _TYPES, _CHARSETS, _ENCODINGS, st.binary(max_size=200))
_MIME = st.recursive(
    _LEAVES,
    lambda children: st.builds(
        _multipart,
        st.sampled_from(["mixed", "alternative", "related", "digest", "x-junk"]),
        st.sampled_from(["b", "b1", "==x==", "", "a b"]),
        st.lists(children, max_size=4),
        st.booleans(),
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=6),
    mime=_MIME,
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=2000)),
)
def test_hostile_mail_never_raises(
    headers: list[tuple[str, bytes]], mime: bytes, cut: int | None
) -> None:
    raw = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers) + mime
    if cut is not None:
        raw = raw[:cut]
    message = parse_mime(raw)
    for name in ("Subject", "From", "To", "Date", "Content-Type"):
        value = header_str(message, name)
        assert isinstance(value, str)
        assert "\x00" not in value
        value.encode("utf-8")
    text = body_text(message)
    text.encode("utf-8")
    assert "\x00" not in text
    reply = reply_text(text)
    assert reply == reply.strip("\n")
    reply_body(message).encode("utf-8")
    assert len(snippet(reply)) <= 200
