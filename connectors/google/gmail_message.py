"""A fetched Gmail ``Message`` resource as the agent's :class:`~connectors.records.MailMessage`.

``readonly`` mode fetches ``format=raw``: the RFC 822 bytes, padded base64url.
``metadata`` mode fetches ``payload.headers`` only, and
:func:`connectors.headers.header_block` writes them back as a header-only RFC
5322 message, so that the agent's one MIME parser reads Gmail like every other
source.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from connectors.errors import BadItem
from connectors.headers import header_block
from connectors.records import MailMessage

Mode = Literal["metadata", "readonly"]


def decode_base64url(data: str) -> bytes:
    """Gmail's base64url, padded or not (``raw`` is padded, ``body.data`` is not);
    binascii.Error for anything outside the alphabet."""
    padded = data.rstrip("=") + "=" * (-len(data.rstrip("=")) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True)


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
