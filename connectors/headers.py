"""The message headers the agent reads: what a source that fetches headers alone must
ask for.

Gmail's ``metadata`` scope returns only the headers named in the request, so a
header a filter reads but the request omits is silently absent there and present
in ``readonly`` mode: the same message would be skipped in one mode and logged
in the other. Every reader of headers in the agent takes its names from here.

Sources that give headers as name/value pairs (Gmail's ``payload.headers``,
Graph's ``internetMessageHeaders``) become a header-only message through
:func:`header_block`. Neither provider says whether the values keep RFC 2047
encoded words or come decoded (``MessagePartHeader.value`` is "the
value of the header after the ``:`` separator"), so both must read alike. A
decoded display name can hold the characters that structure an address list:
``=?utf-8?q?M=C3=BCller=2C_Hans?= <h@x>`` decoded is ``Müller, Hans <h@x>``,
which an address parser reads as two entries, ``Müller`` and ``Hans <h@x>``.
:func:`address_list` puts such a name back in a form that parses as one
mailbox (RFC 2047 for non-ASCII, a quoted string otherwise); a value that
already parses is left as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from email.utils import formataddr
from typing import Any

SPAM_HEADERS: tuple[str, ...] = (
    "X-Spam-Flag",
    "X-Spam-Status",
    "X-Spam-Score",
    "X-Spam-Level",
    "X-Spam",
    "X-MS-Exchange-Organization-SCL",
    "X-Forefront-Antispam-Report",
    "Authentication-Results",
)
"""The verdicts receiving servers write (SpamAssassin, rspamd, Microsoft's filters) and
RFC 8601's Authentication-Results: what the spam filter (``agent.pipeline.spam``) reads.
Microsoft documents the spam confidence level in ``X-Forefront-Antispam-Report`` and
``X-MS-Exchange-Organization-SCL``; ``X-Microsoft-Antispam`` holds the bulk level (BCL)
only, so it is not read."""

HEADERS_READ: tuple[str, ...] = (
    "From",
    "To",
    "Cc",
    "Bcc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "Precedence",
    "Auto-Submitted",
    "Content-Type",
    *SPAM_HEADERS,
    "X-Autoreply",
    "X-Autorespond",
    "Return-Path",
    "Sender",
    "Content-Class",
)

ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})
"""Headers holding address lists (Return-Path holds one bare address, never a name)."""
_NAME_ADDR = re.compile(r"\s*(.*?)\s*<([^<>]*)>\s*", re.DOTALL)
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


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
