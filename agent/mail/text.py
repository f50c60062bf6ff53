"""Text from email: MIME parsing that never raises, decoded headers, readable bodies, snippets.

Every function here is pure and total: mail is hostile input (truncated MIME,
broken transfer encodings, unknown charsets, raw 8-bit headers, endless
nesting), and one bad message must cost a quarantine entry at most, never a
crashed sync. Walks over the MIME tree are bounded in depth and breadth, do
not enter attached messages, and text is clipped, so the cost of a message
does not grow with its malice.

Headers are read through ``policy.default`` where it copes, and otherwise
decoded from the raw value: RFC 2047 encoded words by their charset, raw
8-bit bytes by ``agent.mail.charsets``. A body is the first text/plain part that
is not an attachment (format=flowed paragraphs joined), else the first
text/html as text (``agent.mail.html_text``). ``reply_body`` takes the new text of
a message from the same parts: the plain-text rules of ``agent.mail.replies`` on
text/plain, or the HTML quote markers and then those rules on text/html.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value

from agent.mail.charsets import decode_bytes, read_otherwise, scrub
from agent.mail.html_text import html_reply_text, html_to_text
from agent.mail.replies import normalize_newlines, reply_text
from config.limits import (
    MAX_MESSAGE_BYTES,
    MAX_MIME_DEPTH,
    MAX_MIME_PARTS,
    MAX_STRUCTURED_HEADER_CHARS,
    MAX_TEXT_CHARS,
)

__all__ = [
    "CALENDAR_TYPES",
    "body_text",
    "calendar_part",
    "content_type",
    "header_str",
    "parse_mime",
    "reply_body",
    "snippet",
    "unfold",
]


# --- headers ----------------------------------------------------------------


def parse_mime(raw: bytes) -> Message:
    """Parse RFC 5322 bytes into a MIME tree whose headers stay raw; defects are recorded.

    The tree is built with ``compat32``: the modern policy parses the
    Content-Type of every part again each time the parser or a reader asks
    for it, which made it most of the cost of a message. Headers are decoded
    when read (``header_str``), through ``policy.default``'s header objects
    where a value needs them.

    The stdlib parser is lenient, but it is not proven total on hostile
    input; a failure falls back to the headers alone, then to an empty
    message, so callers always get something to read headers from. Only the
    first ``config.limits.MAX_MESSAGE_BYTES`` are parsed: the headers and the
    first parts, which is all the agent reads.
    """
    raw = raw[:MAX_MESSAGE_BYTES]
    for headers_only in (False, True):
        try:
            return BytesParser(policy=policy.compat32).parsebytes(raw, headersonly=headers_only)
        except Exception:
            continue
    return Message(policy=policy.compat32)


def header_str(message: Message, name: str) -> str:
    """A header as decoded text, or "" -- never an exception.

    Plain ASCII values need no parsing and are only unfolded. Values with
    encoded words are decoded by ``policy.default``'s header object; it
    raises on some malformed ones and turns raw 8-bit bytes into U+FFFD, so
    in those cases, and for absurdly long values, the raw value is decoded
    instead: RFC 2047 words by their charset; raw 8-bit bytes as UTF-8, else
    in the charset the message declares for its text, else as Windows-1252.
    """
    try:
        raw = _raw_header(message, name)
        if raw is None:
            return ""
        if not raw.isascii():
            return _decode_raw_header(raw, _charset_hint(message))
        if len(raw) > MAX_STRUCTURED_HEADER_CHARS:
            return _decode_raw_header(raw, None)
        if "=?" not in raw:
            return scrub(unfold(raw))
        if _any_word_read_otherwise(raw):
            return _decode_raw_header(raw, None)
        try:
            value = policy.default.header_fetch_parse(name, raw)
            if not getattr(value, "defects", None):
                return scrub(str(value))
        except Exception:
            pass
        return _decode_raw_header(raw, None)
    except Exception:
        return ""


def _any_word_read_otherwise(raw: str) -> bool:
    """Whether an encoded word's charset is one browsers read with another codec than
    Python's (``gb2312`` as GBK): the ``email`` package would decode it Python's way,
    with U+FFFD for a GBK-only character and no defect to say so. ``raw`` is already
    bounded by ``MAX_STRUCTURED_HEADER_CHARS``."""
    return any(read_otherwise(match.group(1)) for match in _ENCODED_WORD.finditer(raw))


def unfold(value: str) -> str:
    """A raw header value on one line: folding line breaks removed, the whitespace kept."""
    return value.replace("\r", "").replace("\n", "")


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
    if len(raw) > MAX_STRUCTURED_HEADER_CHARS:
        cut = raw.rfind(" ", 0, MAX_STRUCTURED_HEADER_CHARS)
        raw = raw[: cut if cut > 0 else MAX_STRUCTURED_HEADER_CHARS]
    text = decode_bytes(raw.encode("utf-8", "surrogateescape"), hint, prefer_utf8=True)
    text = re.sub(r"\r?\n(?=[ \t])", "", text).replace("\r", "").replace("\n", " ")
    pieces: list[str] = []
    pending: list[tuple[str, bytes]] = []
    position = 0

    def flush() -> None:
        for charset, data in _merge_runs(pending):
            pieces.append(decode_bytes(data, charset))
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
    return scrub("".join(pieces))


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


def _safe(read: Callable[[], object], default: str = "") -> str:
    """Call a header-reading method that may raise on malformed input."""
    try:
        value = read()
    except Exception:
        return default
    return value if isinstance(value, str) else default


# --- bodies -----------------------------------------------------------------


def _walk(message: Message, limit: int = MAX_MIME_PARTS) -> Iterator[Message]:
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
            if depth < MAX_MIME_DEPTH and maintype == "multipart":
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
    """A part with ``Content-Disposition: attachment`` or a file name is not the body."""
    disposition = _raw_header(part, "content-disposition")
    if disposition is not None:
        if disposition.split(";", 1)[0].strip().lower() == "attachment":
            return True
        if _param(part, "filename", "content-disposition").strip():
            return True
    return bool(_param(part, "name").strip())


def _part_text(part: Message) -> str:
    """A leaf part's decoded text, clipped: transfer encoding, then charset, never raising."""
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if not isinstance(data, bytes):
        data = b""
    text = decode_bytes(data[: MAX_TEXT_CHARS * 4], _param(part, "charset") or None)
    return scrub(text[:MAX_TEXT_CHARS])


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


_SIMPLE_PARAM = re.compile(r';\s*([A-Za-z0-9_.-]+)\s*=\s*("([^"\\]*)"|[^;\s"]+)')


def _param(part: Message, name: str, header: str = "content-type") -> str:
    """A parameter of a Content-Type (or Content-Disposition) header. Plain ``name=value``
    pairs are read from the raw header; anything fancier (RFC 2231, escapes, 8-bit) goes
    through the stdlib."""
    raw = _raw_header(part, header)
    if raw is None:
        return ""
    if raw.isascii() and "*" not in raw and "\\" not in raw:
        for match in _SIMPLE_PARAM.finditer(raw):
            if match.group(1).lower() == name:
                quoted = match.group(3)
                return quoted if quoted is not None else match.group(2)
        if raw.count("=") == len(_SIMPLE_PARAM.findall(raw)):
            return ""
    try:
        value = part.get_param(name, header=header)
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
    for line in normalize_newlines(text).split("\n"):
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


def body_text(message: Message) -> str:
    """The message's readable text: its first text/plain, else its first HTML as text.

    A blank text/plain next to an HTML part (some clients send one) counts
    as missing.
    """
    try:
        plain, html = _text_parts(message)
        if plain and plain.strip():
            return normalize_newlines(plain).strip("\n")
        if html is not None:
            return html_to_text(html)
        return ""
    except Exception:
        return ""


def reply_body(message: Message, *, sender: str = "") -> str:
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


# --- snippets ---------------------------------------------------------------


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
