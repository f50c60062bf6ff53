"""The text layer: MIME parsing that never raises, bodies, HTML, replies, snippets.

The corpora (talon, zapier, flanker, mikel-mail, cpython) are exercised in
tests/test_text_corpora.py; these are the rules one by one, and hypothesis
feeding hostile bytes through the whole chain.
"""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.text import (
    MAX_TEXT,
    body_text,
    header_str,
    html_reply_text,
    html_to_text,
    parse_mime,
    reply_body,
    reply_text,
    snippet,
    split_signature,
    strip_quotes,
)

FIXTURES = Path(__file__).parent / "fixtures"
MIKEL = FIXTURES / "mikel-mail"


def _message(headers: str, body: bytes) -> EmailMessage:
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
    message = parse_mime(raw + b"\r\n\r\nbody")
    with pytest.raises(Exception):  # noqa: B017 -- the stdlib's own failure
        str(message[name])
    assert header_str(message, name) == expected


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
    huge = _message("Content-Type: text/plain", b"word " * (MAX_TEXT // 2))
    assert len(body_text(huge)) <= MAX_TEXT


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


# --- HTML -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>one</p><p>two</p>", "one\n\ntwo"),
        ("a<br>b<br><br>c", "a\nb\n\nc"),
        ("<div>a</div>\n   <div>b</div>", "a\nb"),
        ("<div>a<div><br></div>b</div>", "a\n\nb"),
        ("<ul><li>x</li><li>y</li></ul>", "x\ny"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<h1>Title</h1>text", "Title\n\ntext"),
        ("line one\n  continues <b>bold</b>", "line one continues bold"),
        ("&lt;tag&gt; &amp; caf&eacute; &#x263A;", "<tag> & café ☺"),
        ("<head><title>x</title></head><style>a{}</style><script>b</script>body", "body"),
        ("<!-- comment -->visible<!--[if mso]>hidden<![endif]-->", "visible"),
        ("<p>a</p>\n\n\n<p></p><p></p><p>b</p>", "a\n\nb"),
        (
            '<p class="MsoNormal">one</p><p class="MsoNormal">&nbsp;</p>'
            '<p class="MsoNormal">two</p>',
            "one\n\ntwo",
        ),
        ("<pre>keep\nlines</pre>", "keep\nlines"),
        ("", ""),
        ("just text", "just text"),
    ],
    ids=[
        "paragraphs",
        "br",
        "source-whitespace-between-divs",
        "gmail-blank-line",
        "list",
        "table",
        "heading",
        "source-newlines-are-spaces",
        "entities",
        "dropped-elements",
        "comments",
        "blank-runs-collapse",
        "word-msonormal",
        "pre",
        "empty",
        "no-tags",
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            '<div>New</div><blockquote type="cite">old</blockquote><div>after</div>',
            "New\nafter",
        ),
        ('<div>New</div><div class="yahoo_quoted">old</div>', "New"),
        (
            '<div>New</div><div id="divRplyFwdMsg"><b>From:</b> a</div><div>old body</div>',
            "New",
        ),
        ('<div>New</div><div id="appendonsend"></div><div>old</div>', "New"),
        (
            '<div>New</div><blockquote style="margin: 0 0 0 40px; border: none; padding: 0px">'
            "indented</blockquote>",
            "New\n\nindented",
        ),
        (
            '<div>New</div><div style="border:none;border-top:solid #B5C4DF 1.0pt">'
            "<p><b>Von:</b> a<br><b>Gesendet:</b> b<br><b>An:</b> c</p></div><p>alt</p>",
            "New",
        ),
        (
            '<div>New</div><div style="border-top: 1px solid">Not a header</div>',
            "New\nNot a header",
        ),
    ],
    ids=[
        "blockquote-cite-bottom-post",
        "yahoo",
        "outlook-divRplyFwdMsg",
        "outlook-web-appendonsend",
        "gmail-indent-kept",
        "outlook-border-top-german",
        "border-top-without-header-kept",
    ],
)
def test_html_reply_text(html: str, expected: str) -> None:
    assert html_reply_text(html) == expected


# --- replies ----------------------------------------------------------------

REPLIES = [
    (
        "Danke!\n\nAm 02.04.2012 um 14:20 schrieb Max Mustermann <max@example.com>:\n\n> Hallo",
        "Danke!",
        "german",
    ),
    (
        "Danke!\n\nMax Mustermann <max@example.com> schrieb am Mo., 2. Apr. 2012, 14:20:\n"
        "\n> Hallo",
        "Danke!",
        "german-gmail",
    ),
    (
        "Merci\n\nLe lun. 2 avr. 2012 à 14:20, Jean Dupont <jean@example.fr> a écrit :\n> Bonjour",
        "Merci",
        "french",
    ),
    (
        "Merci\n\nLe 2 avr. 2012 à 14:20, Jean <jean@example.fr> a\u202fécrit\u202f:\n> Bonjour",
        "Merci",
        "french-narrow-spaces",
    ),
    (
        "Gracias\n\nEl 2 abr. 2012, a las 14:20, Ana <ana@example.es> escribió:\n> Hola",
        "Gracias",
        "spanish",
    ),
    ("Bedankt\n\nOp 2 apr. 2012 om 14:20 schreef Jan <jan@example.nl>:\n> Hoi", "Bedankt", "dutch"),
    (
        "Bedankt\n\nOp 2 apr. 2012, om 14:20 heeft Jan <jan@example.nl> het volgende geschreven:\n"
        "\n> Hoi",
        "Bedankt",
        "dutch-apple",
    ),
    (
        "Dzięki\n\nW dniu 02.04.2012 14:20, Jan Kowalski pisze:\n> Cześć",
        "Dzięki",
        "polish-thunderbird",
    ),
    (
        "Dzięki\n\npon., 2 kwi 2012 o 14:20 Jan Kowalski <jan@example.pl> napisał(a):\n> Cześć",
        "Dzięki",
        "polish-gmail",
    ),
    ("Tack\n\nDen 2 apr. 2012 kl. 14:20 skrev Anna <anna@example.se>:\n> Hej", "Tack", "swedish"),
    (
        "Tack\n\nmån 2 apr. 2012 kl 14:20 skrev Anna <anna@example.se>:\n> Hej",
        "Tack",
        "swedish-gmail",
    ),
    (
        "Obrigado\n\nEm 2 de abr. de 2012, às 14:20, João <joao@example.pt> escreveu:\n> Olá",
        "Obrigado",
        "portuguese",
    ),
    (
        "Grazie\n\nIl giorno lun 2 apr 2012 alle ore 14:20 Marco <marco@example.it> ha scritto:\n"
        "> Ciao",
        "Grazie",
        "italian",
    ),
    (
        "Спасибо\n\n02.04.2012 14:20, Иван <ivan@example.ru> написал:\n> Привет",
        "Спасибо",
        "russian",
    ),
    (
        "Thanks\n\nOn Mon, Apr 2, 2012 at 6:26 PM, Megan One <\nxxx@gmail.com> wrote:\n\n> Hi",
        "Thanks",
        "english-split-over-two-lines",
    ),
    (
        "Thanks\n\nOn Dec 16, 2011, at 12:47 PM, Corey\n<reply@example.com>\nwrote:\n> Hi",
        "Thanks",
        "english-split-over-three-lines",
    ),
    (
        "Thanks\n\n--- On Wed, 4/4/12, Joe <joe@example.com> wrote:\n\nFrom: Joe\nold text",
        "Thanks",
        "yahoo-unquoted-history",
    ),
    (
        "Thanks\n\nOn Mon, Apr 2, 2012, Bob wrote:\nold text pasted without quote marks\nmore",
        "Thanks",
        "attribution-without-quotes-cuts",
    ),
    (
        "On Mon, Apr 2, 2012 at 6:26 PM, Bob <bob@example.com> wrote:\n> question?\n\nanswer",
        "answer",
        "bottom-post",
    ),
    (
        "> first question\nfirst answer\n> second question\nsecond answer",
        "first answer\n\nsecond answer",
        "inline-answers",
    ),
    (
        "Sure.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nTo: Ann\nSubject: Hi\n\nold",
        "Sure.",
        "outlook-original-message",
    ),
    (
        "Sure.\n\n________________________________\nFrom: Bob <bob@example.com>\nSent: Monday, "
        "April 2, 2012 5:44 PM\nTo: Ann\nSubject: Hi\n\nold",
        "Sure.",
        "outlook-header-block",
    ),
    (
        "Sure.\n\nVon: Bob [mailto:bob@example.com]\nGesendet: Montag, 2. April 2012 17:44\n"
        "An: Ann\nBetreff: Hallo\n\nalt",
        "Sure.",
        "outlook-german-header-block",
    ),
    (
        "Sure.\n\nDe : Bob\nEnvoyé : lundi 2 avril 2012 17:44\nÀ : Ann\nObjet : Salut\n\nvieux",
        "Sure.",
        "outlook-french-header-block",
    ),
    (
        "FYI\n\n---------- Forwarded message ---------\nFrom: Bob <bob@example.com>\n"
        "Date: Mon, Apr 2, 2012\nSubject: Hi\nTo: Ann\n\nold",
        "FYI",
        "gmail-forward",
    ),
    (
        "See below.\n\nBegin forwarded message:\n\nFrom: Bob\nSubject: x\n\nold",
        "See below.",
        "apple-forward",
    ),
    ("Hello\n\n-- \nAnn Example\nACME Inc.", "Hello", "sig-delimiter"),
    ("Hello\n\nSent from my iPhone", "Hello", "sent-from-iphone"),
    ("Hello\n\nVon meinem iPhone gesendet", "Hello", "german-iphone"),
    ("Hello\n\nEnvoyé de mon iPhone", "Hello", "french-iphone"),
    ("Hello\n\nGet Outlook for iOS", "Hello", "outlook-mobile"),
    ("Hello\n\nSent from my Samsung Galaxy smartphone.", "Hello", "samsung"),
    (
        "Hello\n\nBest,\nAnn\n\nann@example.com\n+1 555 123 4567\nwww.example.com",
        "Hello\n\nBest,\nAnn",
        "contact-block",
    ),
    (
        "Hello,\nline two   \n\nparagraph two\t",
        "Hello,\nline two\n\nparagraph two",
        "trailing-whitespace-stripped-breaks-kept",
    ),
    (
        "On the topic of pricing, here is my view:\n\nWe can do 10%.",
        "On the topic of pricing, here is my view:\n\nWe can do 10%.",
        "on-but-not-attribution",
    ),
    (
        "One question: when?\n\nOn Tuesday we meet.",
        "One question: when?\n\nOn Tuesday we meet.",
        "one-is-not-on",
    ),
    (
        "From: the whole team, thanks!\n\nSee you.",
        "From: the whole team, thanks!\n\nSee you.",
        "single-from-line-kept",
    ),
    ("Use a -- b for options.\n\nBye", "Use a -- b for options.\n\nBye", "dashes-mid-line"),
    ("Sent the contract yesterday.", "Sent the contract yesterday.", "sent-is-not-a-signature"),
    ("", "", "empty"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [case[:2] for case in REPLIES],
    ids=[case[2] for case in REPLIES],
)
def test_reply_text(text: str, expected: str) -> None:
    assert reply_text(text) == expected


def test_reply_text_keeps_crlf_replies_as_lines() -> None:
    assert reply_text("a\r\nb\r\n\r\nOn 1 Jan 2020, X <x@example.com> wrote:\r\n> c") == "a\nb"


def test_strip_quotes_keeps_the_signature() -> None:
    text = "Hello\n\n-- \nAnn\n\nOn 1 Jan 2020, X <x@example.com> wrote:\n> old"
    assert strip_quotes(text) == "Hello\n\n-- \nAnn"


@pytest.mark.parametrize(
    ("text", "sender", "signature"),
    [
        ("Thanks for the call.\n\nCheers,\nAnn", "Ann Example <ann@example.com>", "Cheers,\nAnn"),
        ("Thanks for the call.\n\nCheers,\nAnn", "", ""),
        ("See you.\n\n-Bob", "", "-Bob"),
        ("- apples\n- Pears", "", ""),
        (
            "Hi\n\n____\nlist mailing list\nhttp://lists.example.com/x",
            "",
            "____\nlist mailing list\nhttp://lists.example.com/x",
        ),
        ("Only a name\n\nAnn", "Ann", "Ann"),
        (
            "Bounced.\n\nThe server at mx.example.com refused the message that you sent\n"
            "to ann@example.com; https://example.com/help says what the error means.",
            "",
            "",
        ),
        ("Warning\n\n**********\nfrom host.example.com [60.0.0.61]\nwww.example.com", "", ""),
        ("Ann", "Ann", ""),
    ],
    ids=[
        "valediction-and-sender-name",
        "no-sender-no-guess",
        "dash-signoff",
        "list-is-not-a-signoff",
        "mailing-list-footer",
        "sender-name-alone",
        "prose-with-addresses-is-not-a-signature",
        "asterisk-banner-is-not-a-separator",
        "whole-text-is-never-a-signature",
    ],
)
def test_split_signature(text: str, sender: str, signature: str) -> None:
    body, found = split_signature(text, sender)
    assert found == signature
    assert body == text[: len(text) - len(signature)].rstrip()


@pytest.mark.parametrize(
    "text",
    [
        "On " * 100_000,
        "On 1 Jan 2020 x\n" * 60_000,
        "\n" * 300_000 + "x",
        "> a\n" * 200_000,
        "From: a\nTo: b\nSent: c\n" * 30_000,
        "x\n" + "--\n" * 100_000,
        "x\n\n" + "a@b.example 555-555-5555\n" * 50_000,
        "Sent from my " + "a " * 400_000,
        "=?utf-8?b?" * 100_000,
    ],
    ids=[
        "one-long-on-line",
        "many-attribution-starts",
        "blank-lines",
        "quotes",
        "header-lines",
        "delimiters",
        "contact-lines",
        "long-mobile-line",
        "encoded-word-openers",
    ],
)
def test_reply_text_is_linear_on_hostile_text(text: str) -> None:
    started = time.perf_counter()
    reply_text(text)
    split_signature(text, "Ann <ann@example.com>")
    snippet(text)
    assert time.perf_counter() - started < 3


@pytest.mark.parametrize(
    "html",
    [
        "<div>" * 100_000 + "x",
        "a<br>" * 100_000,
        '<div style="border-top:solid 1px">' * 30_000,
        '<div class="gmail_quote">q</div>x' * 30_000,
        "<blockquote>" * 30_000,
    ],
    ids=["deep-nesting", "many-breaks", "nested-border-top", "many-quote-siblings", "deep-quotes"],
)
def test_html_is_bounded_on_hostile_markup(html: str) -> None:
    started = time.perf_counter()
    html_to_text(html)
    html_reply_text(html)
    assert time.perf_counter() - started < 5


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


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    ">",
                    "> quoted",
                    "On Mon, 1 Jan 2020, A <a@b.c> wrote:",
                    "-- ",
                    "--",
                    "-----Original Message-----",
                    "From: A",
                    "Sent: B",
                    "To: C",
                    "Subject: D",
                    "Sent from my iPhone",
                    "____",
                    "-Ann",
                    "",
                    "   ",
                    "wrote:",
                    "a@b.example",
                ]
            ),
        ),
        max_size=30,
    ),
    st.sampled_from(["", "Ann <a@b.c>", "Ann", "@"]),
)
def test_reply_rules_never_raise(lines: list[str], sender: str) -> None:
    text = "\n".join(lines)
    reply = reply_text(text, sender=sender)
    assert all(line == line.rstrip() for line in reply.split("\n"))
    body, _ = split_signature(text, sender)
    assert text.replace("\r\n", "\n").replace("\r", "\n").startswith(body)
    strip_quotes(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/ab =\"'&;#divbrpqt\n\x00\ud800")), max_size=300))
def test_html_never_raises(html: str) -> None:
    html_to_text(html).encode("utf-8")
    html_reply_text(html).encode("utf-8")
