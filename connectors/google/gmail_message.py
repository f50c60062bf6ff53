"""A fetched Gmail ``Message`` resource as the agent's :class:`~connectors.records.MailMessage`.

``readonly`` mode fetches ``format=raw``: the RFC 822 bytes, padded base64url.
``metadata`` mode fetches ``payload.headers`` only, and :func:`header_block`
writes them back as a header-only RFC 5322 message, so that the agent's one
MIME parser reads Gmail like every other source.

Google's documentation does not say whether ``payload.headers`` values keep
RFC 2047 encoded words or come decoded (``MessagePartHeader.value`` is "the
value of the header after the ``:`` separator"), so both must read alike. A
decoded display name can hold the characters that structure an address list:
``=?utf-8?q?M=C3=BCller=2C_Hans?= <h@x>`` decoded is ``Müller, Hans <h@x>``,
which an address parser reads as two entries, ``Müller`` and ``Hans <h@x>``.
:func:`address_list` puts such a name back in a form that parses as one
mailbox (RFC 2047 for non-ASCII, a quoted string otherwise); a value that
already parses is left as it is.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import formataddr
from typing import Any, Literal

from connectors.errors import BadItem
from connectors.records import MailMessage

Mode = Literal["metadata", "readonly"]
ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})
"""Headers holding address lists (Return-Path holds one bare address, never a name)."""
_NAME_ADDR = re.compile(r"\s*(.*?)\s*<([^<>]*)>\s*", re.DOTALL)
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


def decode_base64url(data: str) -> bytes:
    """Gmail's base64url, padded or not (``raw`` is padded, ``body.data`` is not);
    binascii.Error for anything outside the alphabet."""
    padded = data.rstrip("=") + "=" * (-len(data.rstrip("=")) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


def split_top_level(value: str) -> list[str]:
    """``value`` split at the commas outside quoted strings, angle brackets and comments."""
    parts: list[str] = []
    start, quoted, escaped, angle, paren = 0, False, False, 0, 0
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "<>":
            angle = max(0, angle + (1 if char == "<" else -1))
        elif char in "()":
            paren = max(0, paren + (1 if char == "(" else -1))
        elif char == "," and not angle and not paren:
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    return parts


def _mailbox(entry: str) -> str:
    """One mailbox with a display name that parses as one: quoted or RFC 2047 encoded
    when it holds specials or non-ASCII; unchanged when already quoted or encoded."""
    match = _NAME_ADDR.fullmatch(entry)
    if match is None:
        return entry.strip()
    name, address = match.groups()
    plain = name.isascii() and not _SPECIALS.search(name)
    if not name or plain or "=?" in name or (name.startswith('"') and name.endswith('"')):
        return entry.strip()
    if not address.isascii():  # an internationalized address (RFC 6532): quote the name only
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{address}>'
    return formataddr((name, address), charset="utf-8")


def address_list(value: str) -> str:
    """An address-list value that parses into the mailboxes it names.

    An entry with no ``@`` before another entry is the first half of a display
    name cut at a comma (no address is without one), so it is joined to the
    next entry again; then each mailbox's name is made safe (:func:`_mailbox`).
    """
    entries: list[str] = []
    pending = ""
    for part in split_top_level(value):
        text = f"{pending},{part}" if pending else part
        if "@" not in text and text.strip():
            pending = text
            continue
        pending = ""
        if text.strip():
            entries.append(_mailbox(text))
    if pending:
        entries.append(pending.strip())
    return ", ".join(entries)


def header_block(headers: Sequence[Mapping[str, Any]]) -> bytes:
    """A header-only RFC 5322 message from ``payload.headers`` (metadata format)."""
    lines = []
    for header in headers:
        name = str(header.get("name", ""))
        if not name or any(c in name for c in ": \r\n\t"):
            continue
        value = " ".join(str(header.get("value", "")).split())
        if name.lower() in ADDRESS_HEADERS and "@" in value:
            value = address_list(value)
        lines.append(f"{name}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode("utf-8")


def to_mail_message(resource: Mapping[str, Any], *, mailbox: str, mode: Mode) -> MailMessage:
    """A fetched ``Message`` resource as the agent's record; BadItem if it cannot be read."""
    source_id = str(resource.get("id", ""))
    labels = frozenset(resource.get("labelIds") or ())
    internal_date: datetime | None = None
    try:
        if resource.get("internalDate") is not None:
            internal_date = datetime.fromtimestamp(int(resource["internalDate"]) / 1000, tz=UTC)
        if mode == "readonly":
            raw = decode_base64url(str(resource["raw"]))
        else:
            raw = header_block(resource.get("payload", {}).get("headers", []))
    except (KeyError, ValueError, TypeError, binascii.Error, OverflowError) as exc:
        raise BadItem(source_id, f"unreadable Gmail message resource: {exc!r}") from exc
    return MailMessage(
        source_id=source_id,
        mailbox=mailbox,
        raw=raw,
        labels=labels,
        thread_id=resource.get("threadId"),
        internal_date=internal_date,
        truncated=mode == "metadata",
    )
