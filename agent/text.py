"""Text from email: MIME parsing that never raises, readable bodies, reply text, snippets.

Every function here is pure and total: mail is hostile input (truncated MIME,
broken transfer encodings, unknown charsets, raw 8-bit headers, endless
nesting), and one bad message must cost a quarantine entry at most, never a
crashed sync. Walks over the MIME tree are bounded in depth and breadth, and
text is clipped, so the cost of a message does not grow with its malice.

Reply extraction works on lines, in one pass, without backtracking regexes:

1. Quoted history is removed. ``>`` lines go wherever they are, so inline
   answers between quotes survive. An attribution line ("On ... wrote:", in a
   dozen languages and clients, possibly wrapped over three lines) goes with
   the quote that follows it; with no ``>`` quote after it, the history was
   pasted unmarked and everything from it on goes. Outlook's "-----Original
   Message-----" and forward markers, and blocks of From/Sent/To/Subject
   header lines, also cut everything below them.
2. The signature is removed from what is left: the ``-- `` delimiter, "Sent
   from my ..." lines, a separator line followed by a short block of contact
   details, a "-Name" sign-off, and a trailing paragraph that holds contact
   details (or, given the sender, names them).

HTML mail is converted to text after the quote containers that clients mark
(Gmail, Thunderbird, Outlook, Yahoo, Apple Mail) are removed or cut at, and
the plain-text rules then run on the result.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value, parseaddr
from html import unescape

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

__all__ = [
    "body_text",
    "header_str",
    "html_reply_text",
    "html_to_text",
    "parse_mime",
    "reply_body",
    "reply_text",
    "snippet",
    "split_signature",
    "strip_quotes",
]

MAX_DEPTH = 20
"""How deep the MIME walk goes; real mail nests a handful of levels."""

MAX_PARTS = 1000
"""How many MIME parts the walk visits before it gives up looking for text."""

MAX_TEXT = 1_000_000
"""Characters of text kept from one body: far beyond any human reply."""

MAX_HTML = 2_000_000
"""Characters of HTML handed to the HTML parser."""

MAX_TAGS = 20_000
"""Tags handed to the HTML parser (a long newsletter has a few thousand); it costs per tag."""

MAX_HEADER = 16_384
"""A header value longer than this skips the structured parser, which is slow on it."""


def _phrases(table: str) -> tuple[str, ...]:
    """A vocabulary written as "a | b | c" across lines, for tables that stay readable."""
    return tuple(phrase.strip() for phrase in table.split("|") if phrase.strip())


# --- MIME -------------------------------------------------------------------


def parse_mime(raw: bytes) -> EmailMessage:
    """Parse RFC 5322 bytes with the modern policy; defects are recorded, not raised.

    The stdlib parser is lenient, but it is not proven total on hostile
    input; a failure falls back to the headers alone, then to an empty
    message, so callers always get something to read headers from.
    """
    for headers_only in (False, True):
        try:
            message = BytesParser(policy=policy.default).parsebytes(raw, headersonly=headers_only)
        except Exception:
            continue
        if isinstance(message, EmailMessage):
            return message
    return EmailMessage()


def header_str(message: Message, name: str) -> str:
    """A header as decoded text, or "" -- never an exception.

    ``policy.default`` parses structured headers lazily and raises on some
    malformed ones when read, turns raw 8-bit bytes into U+FFFD, and drops
    what it cannot parse from address lists. In those cases, and for absurdly
    long values, the raw value is decoded instead: RFC 2047 words by their
    charset; raw 8-bit bytes as UTF-8, else in the charset the message
    declares for its text, else as Windows-1252.
    """
    try:
        raw = _raw_header(message, name)
        if raw is None:
            return ""
        if not raw.isascii():
            return _decode_raw_header(raw, _charset_hint(message))
        if len(raw) > MAX_HEADER:
            return _decode_raw_header(raw, None)
        try:
            value = message.get(name)
            if value is not None and not getattr(value, "defects", None):
                return _scrub(str(value))
        except Exception:
            pass
        return _decode_raw_header(raw, None)
    except Exception:
        return ""


def _charset_hint(message: Message) -> str | None:
    """The charset a message declares for its text: the best guess for its raw 8-bit headers."""
    for part in _walk(message, limit=10):
        charset = _safe(part.get_content_charset)
        if charset:
            return charset
    return None


def content_type(part: Message) -> str:
    """A part's lower-case MIME type, read from the raw header.

    The same answer as ``get_content_type()`` (an invalid value means
    text/plain; a missing one, the part's default type), without building
    ``policy.default``'s header object on every call -- the walk asks for
    every part's type several times.
    """
    raw = _raw_header(part, "content-type")
    if raw is None:
        return part.get_default_type()
    value = raw.split(";", 1)[0].strip().lower()
    maintype, _, subtype = value.partition("/")
    if not maintype or not subtype or "/" in subtype or any(c.isspace() for c in value):
        return "text/plain"
    return value


def _raw_header(message: Message, name: str) -> str | None:
    """The first raw value of header ``name``, read without the header factory."""
    wanted = name.lower()
    for key, value in message.raw_items():
        if key.lower() == wanted:
            return str(value)
    return None


_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


def _decode_raw_header(raw: str, hint: str | None) -> str:
    """Decode a raw header value: unfold, decode RFC 2047 words, repair 8-bit bytes.

    Adjacent encoded words in one charset are joined before decoding, since
    clients split multi-byte characters across words.
    """
    if len(raw) > MAX_HEADER:
        cut = raw.rfind(" ", 0, MAX_HEADER)
        raw = raw[: cut if cut > 0 else MAX_HEADER]
    text = _decode_bytes(raw.encode("utf-8", "surrogateescape"), hint, prefer_utf8=True)
    text = re.sub(r"\r?\n(?=[ \t])", "", text).replace("\r", "").replace("\n", " ")
    pieces: list[str] = []
    pending: list[tuple[str, bytes]] = []
    position = 0

    def flush() -> None:
        for charset, data in _merge_runs(pending):
            pieces.append(_decode_bytes(data, charset))
        pending.clear()

    for match in _ENCODED_WORD.finditer(text):
        between = text[position : match.start()]
        if between and not (pending and between.isspace()):
            flush()
            pieces.append(between)
        charset, encoding, payload = match.groups()
        data = _decode_word(encoding, payload)
        if data is None:
            flush()
            pieces.append(match.group(0))
        else:
            pending.append((charset, data))
        position = match.end()
    flush()
    pieces.append(text[position:])
    return _scrub("".join(pieces))


def _merge_runs(words: list[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    charset, data = "", b""
    for word_charset, word_data in words:
        if data and word_charset.lower() != charset.lower():
            yield charset, data
            data = b""
        charset, data = word_charset, data + word_data
    if data:
        yield charset, data


def _decode_word(encoding: str, payload: str) -> bytes | None:
    try:
        raw = payload.encode("ascii")
        if encoding in "bB":
            return base64.b64decode(raw + b"=" * (-len(raw) % 4))
        return binascii.a2b_qp(raw, header=True)
    except (ValueError, binascii.Error):
        return None


# Labels whose usual content is a superset the label does not admit to
# (the WHATWG encoding standard makes the same substitutions).
_CHARSET_SUPERSETS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "big5": "big5hkscs",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-6-i": "iso-8859-6",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "latin-9": "iso-8859-15",
    "x-mac-roman": "mac-roman",
    "ucs-2": "utf-16",
    "unicode-1-1-utf-8": "utf-8",
}
_WESTERN_SINGLE_BYTE = frozenset({"cp1252", "iso8859-15", "latin-1", "iso8859-1"})
_NOT_MAIL_CHARSETS = frozenset(
    {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined"}
)


def _codec(charset: str | None) -> str | None:
    """The Python codec for a declared charset, or None where there is no usable one."""
    if not charset:
        return None
    name = charset.strip().strip("\"'").lower()
    name = _CHARSET_SUPERSETS.get(name, name)
    if name.startswith("cp-"):
        name = "cp" + name[3:]
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_MAIL_CHARSETS:
        return None
    return info.name


def _utf8_or_cp1252(error: UnicodeError) -> tuple[str, int]:
    """Decode error handler: a byte that is not UTF-8 is read as Windows-1252."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    return bytes(bad).decode("cp1252", errors="replace"), error.end


codecs.register_error("crm_sync_cp1252", _utf8_or_cp1252)


def _decode_bytes(data: bytes, charset: str | None, *, prefer_utf8: bool = False) -> str:
    """Decode with the declared charset, else UTF-8, else Windows-1252: never raises.

    UTF-8 goes first where a label is often wrong: raw 8-bit headers, which
    have no label, and Western single-byte labels, which UTF-8 text often
    carries by mistake (the reverse, Latin-1 text that happens to be valid
    UTF-8, is rare).
    """
    codec = _codec(charset)
    candidates = [codec] if codec else []
    if prefer_utf8 or codec in _WESTERN_SINGLE_BYTE:
        candidates.insert(0, "utf-8")
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except Exception:
            continue
    return data.decode("utf-8", errors="crm_sync_cp1252")


_SURROGATES = re.compile("[\ud800-\udfff]")


def _scrub(text: str) -> str:
    """Text safe to store: no NUL (PostgreSQL refuses it), no lone surrogates, no BOM."""
    if _SURROGATES.search(text):
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text.replace("\x00", "").lstrip("\ufeff")


def _safe(read: Callable[[], object], default: str = "") -> str:
    """Call a header-reading method that may raise on malformed input."""
    try:
        value = read()
    except Exception:
        return default
    return value if isinstance(value, str) else default


def _walk(message: Message, limit: int = MAX_PARTS) -> Iterator[Message]:
    """Leaf parts in document order, not inside message/* parts, bounded in depth and count.

    A forwarded or bounced message (message/rfc822, a digest's children) is
    someone else's text, so the walk does not enter it.
    """
    stack: list[tuple[Message, int]] = [(message, 0)]
    visited = 0
    while stack and visited < limit:
        part, depth = stack.pop()
        visited += 1
        maintype = content_type(part).partition("/")[0]
        if maintype == "message" and depth > 0:
            continue
        if part.is_multipart():
            if depth < MAX_DEPTH and maintype == "multipart":
                stack.extend((child, depth + 1) for child in reversed(_children(part)))
            continue
        yield part


def _children(part: Message) -> list[Message]:
    """A multipart's parts; reading a payload can raise (the stdlib decodes some with the
    declared charset, and a charset name holding a NUL raises)."""
    try:
        payload = part.get_payload()
    except Exception:
        return []
    if not isinstance(payload, list):
        return []
    return [child for child in payload if isinstance(child, Message)]


def _is_attachment(part: Message) -> bool:
    if _safe(part.get_content_disposition) == "attachment":
        return True
    return bool(_safe(part.get_filename))


def _part_text(part: Message) -> str:
    """A leaf part's decoded text, clipped: transfer encoding, then charset, never raising."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        data = b""
    text = _decode_bytes(data[: MAX_TEXT * 4], _param(part, "charset") or None)
    return _scrub(text[:MAX_TEXT])


CALENDAR_TYPES = frozenset({"text/calendar", "application/ics"})


def calendar_part(message: Message) -> bytes | None:
    """The first iCalendar part's bytes (an invitation), or None."""
    for part in _walk(message):
        if content_type(part) in CALENDAR_TYPES:
            try:
                data = part.get_payload(decode=True)
            except Exception:
                return None
            return data if isinstance(data, bytes) and data.strip() else None
    return None


def _text_parts(message: Message) -> tuple[str | None, str | None]:
    """The first readable text/plain and text/html of a message, decoded."""
    plain: str | None = None
    html: str | None = None
    for part in _walk(message):
        kind = content_type(part)
        if kind not in ("text/plain", "text/html") or _is_attachment(part):
            continue
        if kind == "text/plain" and plain is None:
            plain = _part_text(part)
            if _param(part, "format").lower() == "flowed":
                plain = _unflow(plain, delete_space=_param(part, "delsp").lower() == "yes")
            if plain.strip():
                break
        elif kind == "text/html" and html is None:
            html = _part_text(part)
    return plain, html


def _param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:
        return ""
    return str(collapse_rfc2231_value(value)) if value else ""


def _unflow(text: str, *, delete_space: bool) -> str:
    """Undo RFC 3676 format=flowed: a line ending in a space continues on the next.

    Thunderbird and Apple Mail wrap paragraphs this way; joined, a paragraph
    is one line again. Quote depth must match for lines to join, space
    stuffing is removed, and the signature delimiter "-- " never flows.
    """
    out: list[str] = []
    paragraph = ""
    paragraph_depth: int | None = None
    for line in _normalize_newlines(text).split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        if paragraph_depth is not None and depth != paragraph_depth:
            out.append(_quoted(paragraph_depth, paragraph))
            paragraph, paragraph_depth = "", None
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delete_space:
            content = content[:-1]
        paragraph, paragraph_depth = paragraph + content, depth
        if not flowed:
            out.append(_quoted(depth, paragraph))
            paragraph, paragraph_depth = "", None
    if paragraph_depth is not None:
        out.append(_quoted(paragraph_depth, paragraph))
    return "\n".join(out)


def _quoted(depth: int, text: str) -> str:
    return f"{'>' * depth} {text}".rstrip() if depth else text


def body_text(message: EmailMessage) -> str:
    """The message's readable text: its first text/plain, else its first HTML as text.

    A blank text/plain next to an HTML part (some clients send one) counts
    as missing.
    """
    try:
        plain, html = _text_parts(message)
        if plain and plain.strip():
            return _normalize_newlines(plain).strip("\n")
        if html is not None:
            return html_to_text(html)
        return ""
    except Exception:
        return ""


def reply_body(message: EmailMessage, *, sender: str = "") -> str:
    """The new text of a message: ``reply_text`` of its text/plain, else ``html_reply_text``.

    HTML is the better source only when there is no plain text: the quote
    markers clients put in HTML are lost once it is flattened.
    """
    try:
        plain, html = _text_parts(message)
        if plain and plain.strip():
            return reply_text(plain, sender=sender)
        if html is not None:
            return html_reply_text(html, sender=sender)
        return ""
    except Exception:
        return ""


# --- HTML -------------------------------------------------------------------

_DROP_TAGS = frozenset(
    {"head", "style", "script", "title", "template", "noscript", "xml", "svg", "object"}
)
_LINE_TAGS = frozenset(
    _phrases(
        """
        div | li | tr | dt | dd | hr | address | center | section | article | header | footer |
        nav | aside | main | figure | figcaption | form | fieldset | caption | tbody | thead |
        tfoot | body | html
        """
    )
)
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
    html = html[:MAX_HTML]
    position = -1
    for _ in range(MAX_TAGS):
        position = html.find("<", position + 1)
        if position < 0:
            break
    else:
        html = html[:position]
    return _scrub(html).replace("\x01", "").replace("\x02", "")


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
    return text[:MAX_TEXT]


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
    return _header_key(start) is not None


# --- plain-text replies -----------------------------------------------------


# Attribution lines end with the verb "wrote" in the client's language.
_WROTE_ENDINGS = _phrases(
    """
    wrote: | writes: | schrieb: | a écrit : | a écrit: | escribió: | escribio: | schreef: |
    geschreven: | napisał: | napisała: | napisał(a): | pisze: | skrev: | escreveu: |
    ha scritto: | scrisse: | написал: | написала: | написал(а): | kirjoitti: | írta: |
    napsal: | napsala: | napsal(a): | yazdı: | έγραψε: | kirjutas: | rašė: | rakstīja: |
    a scris: | написа: | napisao je: | napísal:
    """
)
# Languages that put the verb before the name: "Am ... schrieb Max <max@x>:".
_WROTE_MIDDLES = tuple(f" {verb} " for verb in _phrases("schrieb | schreef | skrev | scrisse"))
_ATTRIBUTION_STARTS = tuple(
    f"{word} "
    for word in _phrases(
        "on | am | le | el | op | w dniu | dnia | den | em | il | il giorno | în | dne | päivänä"
    )
)
_ORIGINAL_MARKERS = frozenset(
    _phrases(
        """
        original message | forwarded message | begin forwarded message |
        ursprüngliche nachricht | original-nachricht | originalnachricht |
        weitergeleitete nachricht | anfang der weitergeleiteten nachricht |
        message d'origine | message original | message transféré |
        début du message réexpédié | début du message transféré |
        mensaje original | mensaje reenviado | inicio del mensaje reenviado |
        mensagem original | mensagem encaminhada | início da mensagem reencaminhada |
        messaggio originale | messaggio inoltrato | inizio messaggio inoltrato |
        oorspronkelijk bericht | origineel bericht | doorgestuurd bericht |
        begin doorgestuurd bericht | wiadomość oryginalna | oryginalna wiadomość |
        przekazana wiadomość | ursprungligt meddelande | vidarebefordrat meddelande |
        original meddelelse | videresendt meddelelse | opprinnelig melding |
        videresendt melding | alkuperäinen viesti | välitetty viesti |
        исходное сообщение | пересылаемое сообщение | переадресованное сообщение |
        reply message | original email | forwarded email
        """
    )
)
# Header names as clients write them above a pasted message, by what they mean.
_HEADER_KEYS = {
    "from": _phrases(
        """
        from | von | de | van | od | från | fra | da | от | lähettäjä | feladó | expéditeur |
        remitente | mittente | afzender | nadawca | avsändare | afsender | kimden | od koga
        """
    ),
    "date": _phrases(
        """
        sent | date | datum | gesendet | envoyé | enviado | fecha | data | verzonden | wysłano |
        wysłane | skickat | sendt | отправлено | дата | lähetetty | päivämäärä | inviato |
        dátum | küldve | tarih | gönderildi | sent at | date d'envoi | enviada em
        """
    ),
    "to": _phrases(
        """
        to | an | à | a | para | aan | do | till | til | кому | vastaanottaja | címzett |
        destinataire | destinatario | kime | adresat
        """
    ),
    "cc": _phrases("cc | kopie | copie | cópia | kopia | копия | bcc | cco | kopio"),
    "subject": _phrases(
        """
        subject | betreff | objet | asunto | assunto | onderwerp | temat | ämne | oggetto |
        тема | emne | aihe | tárgy | sujet | konu | předmět
        """
    ),
}
_HEADER_CATEGORY = {key: category for category, keys in _HEADER_KEYS.items() for key in keys}

_MOBILE_SIGNATURES = re.compile(
    r"sent (?:from|with|via|using) (?:my |the |a |an )?\S+(?: \S+){0,4}"
    r"|get outlook for \S+(?: \S+)?"
    r"|(?:envoyé|envoye) (?:de|depuis) (?:mon |ma )?\S+(?: \S+){0,3}"
    r"|von (?:meinem |meiner |mein )?\S+(?: \S+){0,2} gesendet"
    r"|gesendet von (?:meinem |meiner |mein )?\S+(?: \S+){0,3}"
    r"|enviado (?:desde|do|de|con|com) (?:mi |meu |o |el )?\S+(?: \S+){0,3}"
    r"|(?:verzonden|verstuurd) (?:vanaf|met|van) (?:mijn )?\S+(?: \S+){0,3}"
    r"|inviato da(?:l mio)? \S+(?: \S+){0,3}"
    r"|skickat från (?:min )?\S+(?: \S+){0,3}"
    r"|sendt fra (?:min )?\S+(?: \S+){0,3}"
    r"|wysłane z (?:mojego |mojej )?\S+(?: \S+){0,3}"
    r"|отправлено (?:с|из) \S+(?: \S+){0,3}"
    r"|lähetetty \S+(?: \S+){0,3}"
)
_SENT_VERBS = _phrases(
    """
    sent | get | envoy | von | gesendet | enviado | verzonden | verstuurd | inviato | skickat |
    sendt | wysłane | отправлено | lähetetty
    """
)
_PHONE = re.compile(r"\+?\(?\d[\d ().\-/]{5,}\d")
_NOT_PHONE = re.compile(
    r"\d{4}-\d\d-\d\d|\d\d?[./-]\d\d?[./-]\d\d|\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
)


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _is_blank(line: str) -> bool:
    return not line.strip()


def _header_key(line: str) -> str | None:
    """The header category ("from", "date", "to", "cc", "subject") a line starts with, if any."""
    colon = line.find(":", 0, 40)
    if colon <= 0:
        return None
    key = " ".join(line[:colon].strip(" \t*_").split()).casefold()
    return _HEADER_CATEGORY.get(key)


def _is_header_block(lines: list[str], start: int) -> bool:
    """Whether a pasted header block (From/Sent/To/Subject ...) starts at ``start``.

    Three different header names, one of them the sender, within a few
    lines with no blank line between them: a form or a table in the reply
    rarely looks like that.
    """
    if _header_key(lines[start]) not in ("from", "date"):
        return False
    categories: set[str] = set()
    for line in lines[start : start + 10]:
        if _is_blank(line):
            break
        category = _header_key(line)
        if category is not None:
            categories.add(category)
    return "from" in categories and len(categories) >= 3


def _is_original_marker(line: str) -> bool:
    """Whether a line opens a pasted message: "-----Original Message-----", "Begin forwarded
    message:", "---------- Forwarded message ---------" and their translations."""
    if len(line) > 120:
        return False
    core = line.strip().strip("-_=*~<>[]() \t").rstrip(":").strip().casefold()
    return core in _ORIGINAL_MARKERS


def _attribution_length(lines: list[str], start: int, quote_follows: bool) -> int:
    """How many lines (1-3) an attribution ("On ... wrote:") starting at ``start`` spans; 0 if none.

    A wrapped attribution is only taken when its first line starts like one
    (a preposition or a date), so the end of a paragraph is not swallowed.
    """
    first = lines[start]
    if len(first) > 1000 or _is_blank(first) or _is_quoted(first):
        return 0
    joined = ""
    for length in range(1, 4):
        index = start + length - 1
        if index >= len(lines):
            return 0
        line = lines[index]
        if length > 1 and (_is_blank(line) or _is_quoted(line) or len(line) > 1000):
            return 0
        joined = " ".join((joined + " " + line).split()) if joined else " ".join(line.split())
        if len(joined) > 400:
            return 0
        candidate = joined.lstrip("-*_ ").casefold()
        if length > 1 and not _starts_like_attribution(candidate):
            return 0
        if length == 2 and first.rstrip().endswith((".", "!", "?")):
            return 0
        if _is_attribution(candidate, quote_follows):
            return length
    return 0


def _starts_like_attribution(candidate: str) -> bool:
    return candidate.startswith(_ATTRIBUTION_STARTS) or candidate[:1].isdigit()


def _is_attribution(candidate: str, quote_follows: bool) -> bool:
    evidence = quote_follows or "@" in candidate or any(ch.isdigit() for ch in candidate)
    if not evidence:
        return False
    if candidate.endswith(_WROTE_ENDINGS):
        return True
    if candidate.endswith(":") and any(verb in candidate for verb in _WROTE_MIDDLES):
        return candidate.startswith(_ATTRIBUTION_STARTS) or "@" in candidate
    if candidate.endswith((">:", "> :")) and "@" in candidate:
        return any(ch.isdigit() for ch in candidate)
    return False


def _next_content(lines: list[str], start: int) -> int:
    index = start
    while index < len(lines) and _is_blank(lines[index]):
        index += 1
    return index


def strip_quotes(text: str) -> str:
    """``text`` without quoted history; the signature stays (see ``split_signature``).

    Lines are kept verbatim. Where quoted lines were removed between two
    pieces of the reply, the pieces are joined by one blank line.
    """
    lines = _normalize_newlines(text[:MAX_TEXT]).split("\n")
    keep = [True] * len(lines)
    end = len(lines)
    index = 0
    while index < end:
        line = lines[index]
        if _is_quoted(line):
            keep[index] = False
            index += 1
            continue
        if _is_blank(line):
            index += 1
            continue
        if _is_original_marker(line) or _is_header_block(lines, index):
            end = index
            break
        after = _next_content(lines, index + 1)
        quote_follows = after < len(lines) and _is_quoted(lines[after])
        length = _attribution_length(lines, index, quote_follows=False)
        if length == 0 and quote_follows:
            length = _attribution_length(lines, index, quote_follows=True)
        if length:
            following = _next_content(lines, index + length)
            if following < len(lines) and _is_quoted(lines[following]):
                for dropped in range(index, index + length):
                    keep[dropped] = False
                index += length
                continue
            end = index
            break
        index += 1
    return _join_kept(lines[:end], keep[:end])


def _join_kept(lines: list[str], keep: list[bool]) -> str:
    segments: list[list[str]] = [[]]
    for line, kept in zip(lines, keep, strict=True):
        if kept:
            segments[-1].append(line)
        elif segments[-1]:
            segments.append([])
    pieces = []
    for segment in segments:
        start, end = 0, len(segment)
        while start < end and _is_blank(segment[start]):
            start += 1
        while end > start and (_is_blank(segment[end - 1]) or _is_separator(segment[end - 1])):
            end -= 1
        if start < end:
            pieces.append("\n".join(segment[start:end]))
    return "\n\n".join(pieces)


def _is_separator(line: str) -> bool:
    """A line drawn with dashes, underscores or equals signs (the ``-- `` delimiter too)."""
    core = line.strip()
    return len(core) >= 2 and not core.strip("-_=") and len(set(core)) <= 2


# --- signatures -------------------------------------------------------------


def _is_mobile_signature(line: str) -> bool:
    core = " ".join(line.split()).strip("*_ ").rstrip(".!").casefold()
    if not core or len(core) > 80 or not core.startswith(_SENT_VERBS):
        return False
    if "," in core and "(" not in core:
        return False
    return _MOBILE_SIGNATURES.fullmatch(core) is not None


def _has_contact(line: str) -> bool:
    """An e-mail address, a web address or a phone number on a short line."""
    if len(line) > 100:
        return False
    lowered = line.casefold()
    if "http://" in lowered or "https://" in lowered or "www." in lowered:
        return True
    at = lowered.find("@")
    if 0 < at < len(lowered) - 3 and "." in lowered[at:]:
        return True
    return any(_is_phone(match.group(0)) for match in _PHONE.finditer(line))


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    return 7 <= digits <= 15 and _NOT_PHONE.search(candidate) is None


def _is_dash_signoff(line: str, previous: str | None) -> bool:
    """Whether the last line signs off with a dash ("-Abhishek Kona", "-- Tim").

    The line above must not be a list item, or the last item would be taken.
    """
    core = line.strip()
    if not core.startswith("-") or len(core) > 40 or line[:1].isspace():
        return False
    name = core.lstrip("-")
    if len(core) - len(name) > 2:
        return False
    words = name.strip().split()
    if not 1 <= len(words) <= 4 or not all(word[:1].isupper() for word in words):
        return False
    return previous is None or not previous.lstrip().startswith(("-", "*", "•"))


def _sender_names(sender: str) -> tuple[list[str], str]:
    name, address = parseaddr(sender) if "@" in sender else (sender, "")
    words = [word.strip(".,\"'()") for word in name.replace(",", " ").split()]
    return [word for word in words if len(word) >= 2], address.casefold()


def _names_sender(line: str, names: list[str], address: str) -> bool:
    """Whether a short line is essentially the sender's name or address."""
    lowered = line.casefold()
    if address and (address in lowered or address.split("@")[0] in lowered.split()):
        return True
    if not names:
        return False
    words = [word.strip(".,;:!-#|()\"'").casefold() for word in line.split()]
    words = [word for word in words if word]
    wanted = {name.casefold() for name in names}
    hits = [word for word in words if word in wanted]
    return bool(hits) and len(words) - len(hits) <= 2


def _signature_start(lines: list[str], sender: str) -> int | None:
    """Where a signature starts in ``lines`` (the body above it must keep some text)."""
    content = [index for index, line in enumerate(lines) if not _is_blank(line)]
    if len(content) < 2:
        return None
    first = content[0]
    for position, index in enumerate(content[1:], start=1):
        if lines[index].rstrip() == "--":
            below = len(content) - position - 1
            if lines[index].startswith("-- ") or below <= 15:
                return index
    for index in content[-3:]:
        if index > first and _is_mobile_signature(lines[index]):
            return index
    for position in range(len(content) - 1, 0, -1):
        index = content[position]
        if _is_separator(lines[index]) and len(lines[index].strip()) >= 4:
            tail = [lines[i] for i in content[position + 1 :]]
            if 1 <= len(tail) <= 12 and all(len(line) <= 100 for line in tail):
                words = " ".join(tail).casefold()
                if any(_has_contact(line) for line in tail) or "unsubscribe" in words:
                    return index
            break
    last = content[-1]
    previous = lines[content[-2]]
    if _is_dash_signoff(lines[last], previous):
        return last
    return _paragraph_signature(lines, content, sender)


def _paragraph_signature(lines: list[str], content: list[int], sender: str) -> int | None:
    """A trailing paragraph of short lines holding contact details or the sender's name.

    Signature lines are short (a name, a title, a number); a paragraph of
    prose that mentions an address and a URL is not one.
    """
    last = content[-1]
    start = last
    while start > 0 and not _is_blank(lines[start - 1]):
        start -= 1
    if start <= content[0]:
        return None
    paragraph = [line.strip() for line in lines[start : last + 1]]
    lengths = [len(line) for line in paragraph]
    if len(paragraph) > 8 or max(lengths) > 80 or sum(lengths) > 45 * len(paragraph):
        return None
    if sum(_has_contact(line) for line in paragraph) >= 2:
        return start
    if sender:
        names, address = _sender_names(sender)
        if any(_names_sender(line, names, address) for line in paragraph):
            return start
    return None


def split_signature(text: str, sender: str = "") -> tuple[str, str]:
    """Split ``text`` into (body, signature); the signature is "" when none is found.

    ``sender`` ("Name <address>", a name or an address) lets a trailing
    paragraph that names the sender count as a signature. Signatures stack
    (a sign-off above a mailing-list footer), so the rules repeat on the
    body until none applies.
    """
    lines = _normalize_newlines(text[:MAX_TEXT]).split("\n")
    cut = len(lines)
    for _ in range(5):
        start = _signature_start(lines[:cut], sender)
        if start is None:
            break
        cut = start
    end = cut
    if cut < len(lines):
        while end > 0 and (_is_blank(lines[end - 1]) or _is_separator(lines[end - 1])):
            end -= 1
    body = "\n".join(lines[:end]).rstrip()
    signature = "\n".join(lines[end:]).strip("\n")
    return body, signature


def reply_text(text: str, *, sender: str = "") -> str:
    """The new text of a reply: quoted history and signature removed, trailing spaces stripped.

    ``sender`` is optional; see ``split_signature``.
    """
    try:
        body, _ = split_signature(strip_quotes(text), sender)
        lines = [line.rstrip() for line in body.split("\n")]
        return "\n".join(lines).strip("\n")
    except Exception:
        return ""


def snippet(text: str, limit: int = 200) -> str:
    """``text`` on one line, at most ``limit`` characters, cut between words with "…"."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    if limit <= 1:
        return "…"[: max(limit, 0)]
    head = flat[: limit - 1]
    if flat[limit - 1] != " ":
        space = head.rfind(" ")
        if space > 0:
            head = head[:space]
    return head.rstrip() + "…"
