"""HTML mail as text, and the new text of an HTML reply.

``html_to_text`` parses with lxml (through BeautifulSoup) and walks the tree
with its own stack, since hostile nesting is deeper than Python's recursion
limit. The walk emits text and three kinds of break: a ``<br>`` always ends a
line, a line block (``div``, ``li``, ``tr`` ...) ends a non-empty one, a
paragraph block (``p``, headings, lists, tables) also leaves a blank line.
Whitespace in the source collapses to one space except inside ``<pre>``.
Input is clipped to ``MAX_HTML_CHARS`` characters and ``MAX_HTML_TAGS`` tags first, so
the parser's cost is bounded; markup it cannot parse falls back to crude tag
stripping, and no input raises.

``html_reply_text`` first finds the quote containers that clients mark
(Gmail, Thunderbird, Outlook, Yahoo, Apple Mail): some are skipped by the
walk, others mark where the history starts and cut the text there. The
plain-text rules of ``agent.mail.replies`` then run on the result.
"""

from __future__ import annotations

import re
from html import unescape

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

from agent.mail.charsets import scrub
from agent.mail.replies import header_key, reply_text
from config.limits import MAX_HTML_CHARS, MAX_HTML_TAGS, MAX_TEXT_CHARS

__all__ = ["html_reply_text", "html_to_text"]


_DROP_TAGS = frozenset(
    {"head", "style", "script", "title", "template", "noscript", "xml", "svg", "object"}
)
_LINE_TAGS = frozenset(
    {
        "div", "li", "tr", "dt", "dd", "hr", "address", "center", "section", "article",
        "header", "footer", "nav", "aside", "main", "figure", "figcaption", "form", "fieldset",
        "caption", "tbody", "thead", "tfoot", "body", "html",
    }
)  # fmt: skip
_PARAGRAPH_TAGS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "dl"}
)
_CELL_TAGS = frozenset({"td", "th"})

_BREAK = "\n"
_LINE = "\x01"
_PARAGRAPH = "\x02"


_XML_DECLARATION = re.compile(r"\s*<\?xml[^<>]{0,500}\?>")


def _soup(html: str) -> BeautifulSoup | None:
    """Parse with lxml; None for markup without a tag, which needs no parser.

    Hotmail starts its HTML with an XML declaration, which is dropped: bs4
    warns about it, and HTML parsers ignore it anyway.
    """
    if "<" not in html:
        return None
    declaration = _XML_DECLARATION.match(html)
    if declaration:
        html = html[declaration.end() :]
    try:
        return BeautifulSoup(html, "lxml")
    except Exception:
        return None


def _clean_html(html: str) -> str:
    """HTML clipped to what the parser may cost, without the characters used as markers here."""
    html = html[:MAX_HTML_CHARS]
    position = -1
    for _ in range(MAX_HTML_TAGS):
        position = html.find("<", position + 1)
        if position < 0:
            break
    else:
        html = html[:position]
    return scrub(html).replace("\x01", "").replace("\x02", "")


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: blocks and ``<br>`` become line breaks.

    Whitespace in the HTML source is not a line break, so it collapses to a
    single space; only ``<pre>`` keeps its line breaks.
    """
    try:
        soup = _soup(_clean_html(html))
        text = _soup_text(soup) if soup is not None else _crude_text(html)
    except Exception:
        text = _crude_text(html)
    return text[:MAX_TEXT_CHARS]


def _crude_text(html: str) -> str:
    """Tags dropped, entities decoded: for markup without tags, or when the parser fails."""
    try:
        text = _CRUDE_BREAK.sub(_LINE, _clean_html(html))
        text = unescape(_CRUDE_TAG.sub(" ", text))
        return _collapse_blank_lines([" ".join(line.split()) for line in text.split(_LINE)])
    except Exception:
        return ""


_CRUDE_BREAK = re.compile(r"<(?:br|/p|/div|/tr|/li|/h\d)\b[^<>]{0,1000}>", re.IGNORECASE)
_CRUDE_TAG = re.compile(r"<[^<>]{0,10000}>")


def _soup_text(
    soup: BeautifulSoup, skip: frozenset[int] = frozenset(), cut: frozenset[int] = frozenset()
) -> str:
    """The text of a parsed document, leaving out the elements in ``skip`` (by ``id``)
    and everything from the first element in ``cut`` on.

    The walk keeps its own stack: nesting in hostile HTML is deeper than
    Python's recursion limit.
    """
    tokens: list[str] = []
    stack: list[tuple[PageElement, bool]] = [(soup, False)]
    in_pre = 0
    while stack:
        node, closing = stack.pop()
        if isinstance(node, Tag):
            name = (node.name or "").lower()
            opening, ending = _block_kind(node, name)
            if closing:
                if name == "pre":
                    in_pre -= 1
                tokens.append(ending)
                continue
            if id(node) in cut:
                break
            if name in _DROP_TAGS or id(node) in skip:
                continue
            if name == "br":
                tokens.append(_BREAK)
                continue
            if name in _CELL_TAGS:
                tokens.append(" ")
            if name == "pre":
                in_pre += 1
            tokens.append(opening)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            text = str(node)
            if in_pre:
                tokens.append(text.replace("\n", _BREAK))
            else:
                tokens.append(re.sub(r"[ \t\r\n\f\v]+", " ", text))
    return _assemble(tokens)


def _block_kind(tag: Tag, name: str) -> tuple[str, str]:
    """The break a tag makes where it opens and where it closes.

    Word's HTML writes every line as a ``p.MsoNormal`` without margins and a
    blank line as one holding only ``&nbsp;``: a line that always ends.
    """
    if name in _PARAGRAPH_TAGS:
        if name == "p" and "msonormal" in str(tag.get("class") or "").lower():
            return _LINE, _BREAK
        return _PARAGRAPH, _PARAGRAPH
    if name in _LINE_TAGS:
        return _LINE, _LINE
    return "", ""


def _assemble(tokens: list[str]) -> str:
    """Join text tokens into lines: a ``<br>`` always ends a line, a block only a non-empty one."""
    lines: list[str] = []
    current: list[str] = []

    def end_line(always: bool) -> None:
        line = " ".join("".join(current).split())
        if line or always:
            lines.append(line)
        current.clear()

    for token in tokens:
        if token == _BREAK:
            end_line(always=True)
        elif token == _LINE:
            end_line(always=False)
        elif token == _PARAGRAPH:
            end_line(always=False)
            if lines and lines[-1]:
                lines.append("")
        elif token:
            if _BREAK in token:
                first, *rest = token.split(_BREAK)
                current.append(first)
                for piece in rest:
                    end_line(always=True)
                    current.append(piece)
            else:
                current.append(token)
    end_line(always=False)
    return _collapse_blank_lines(lines)


def _collapse_blank_lines(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


# --- replies ----------------------------------------------------------------


# Containers clients put quoted history in, removed whole.
_QUOTE_SELECTORS = (
    "div.gmail_quote",
    "blockquote.gmail_quote",
    "div.gmail_quote_container",
    "blockquote[type=cite]",
    "div.moz-cite-prefix",
    ".yahoo_quoted",
    "div.protonmail_quote",
    "div.zmail_extra",
)
# Elements where clients start the quoted history: everything from them on is cut.
_CUT_SELECTORS = (
    "#divRplyFwdMsg",
    "div#appendonsend",
    "#OLK_SRC_BODY_SECTION",
    "hr#stopSpelling",
    "hr#zwchr",
    "#mail-editor-reference-message-container",
    "div.ms-outlook-mobile-reference-message",
    "div#isForwardContent",
)


def html_reply_text(html: str, *, sender: str = "") -> str:
    """The new text of an HTML reply: marked quotes removed, then the plain-text rules.

    Marked containers (Gmail ``div.gmail_quote``, ``blockquote[type=cite]``,
    Thunderbird ``moz-cite-prefix``, Yahoo ``yahoo_quoted``, any quoting
    ``<blockquote>``) are removed; where a client only marks where the
    history starts (Outlook ``#divRplyFwdMsg`` or its border-top "From:"
    block, Hotmail ``hr#stopSpelling``, ``#OLK_SRC_BODY_SECTION``) the text
    is cut there. Gmail's indent button also makes a ``<blockquote>``, but
    one without a border, which is kept.
    """
    try:
        soup = _soup(_clean_html(html))
        if soup is None:
            return reply_text(_crude_text(html), sender=sender)
        skip, cut = _html_quotes(soup)
        text = _soup_text(soup, skip, cut)
    except Exception:
        text = _crude_text(html)
    return reply_text(text, sender=sender)


def _html_quotes(soup: BeautifulSoup) -> tuple[frozenset[int], frozenset[int]]:
    """The ids of the elements that hold quoted history, and of those where it starts.

    Found first and skipped by the text walk, not removed: removing many
    siblings from a bs4 tree costs time quadratic in their number.
    """
    skip = {id(element) for element in soup.select(", ".join(_QUOTE_SELECTORS))}
    for element in soup.find_all("blockquote"):
        if "border:none" not in _style(element):
            skip.add(id(element))
    cut = {id(element) for element in soup.select(", ".join(_CUT_SELECTORS))}
    for element in soup.find_all("div"):
        style = _style(element)
        if "border-top" in style and "solid" in style and _opens_header_block(element):
            cut.add(id(element))
    return frozenset(skip), frozenset(cut)


def _style(element: Tag) -> str:
    return str(element.get("style") or "").replace(" ", "").lower()


def _opens_header_block(element: Tag) -> bool:
    """Whether an element's text starts with a header name ("From:", "Von:", "От:" ...)."""
    start = ""
    stack: list[PageElement] = [element]
    for _ in range(50):
        if not stack or len(start) >= 40:
            break
        node = stack.pop()
        if isinstance(node, Tag):
            stack.extend(reversed(node.contents))
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            start = " ".join((start + " " + node).split())
    return header_key(start) is not None
