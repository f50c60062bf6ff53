"""HTML mail as text, and the new text of an HTML reply (the quote markers clients use).

The talon corpus of HTML replies is exercised in tests/agent/mail/test_text_corpora.py.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.mail.html_text import html_reply_text, html_to_text


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


# --- hostile input ----------------------------------------------------------


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


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/ab =\"'&;#divbrpqt\n\x00\ud800")), max_size=300))
def test_html_never_raises(html: str) -> None:
    html_to_text(html).encode("utf-8")
    html_reply_text(html).encode("utf-8")
