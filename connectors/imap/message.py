"""From one FETCH response to a ``MailMessage``: the MIME assembly, pure.

``MailMessage.raw`` is one parseable message: for a single-part message the
header and its body cut to N bytes; for a multipart message the header with
its Content-Type and Content-Transfer-Encoding replaced by those of the text
part (type, subtype and charset from BODYSTRUCTURE), followed by that part's
body cut to N bytes. A cut falls at the end of a line, so base64 and
quoted-printable stay decodable. ``truncated`` is set when anything was left
out. Labels are the message's flags (not the per-session ``\\Recent``) plus
the folder's special use.

How many bytes that makes is known before the header and text are fetched
(:func:`raw_size_bound`), from the sizes the server reports, so the
connector can fetch in groups bounded by bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from connectors.errors import BadItem
from connectors.records import MailMessage

_TOKEN = re.compile(rb"[^\x21-\x7e]|[()<>@,;:\\\"/\[\]?=]")
_CONTENT_FIELDS = frozenset({b"content-type", b"content-transfer-encoding"})


@dataclass(frozen=True)
class TextPart:
    """The first text part as BODYSTRUCTURE describes it; ``path`` is its IMAP part number."""

    path: str
    subtype: str
    charset: str
    encoding: str
    size: int


def as_text(value: object) -> str:
    """An IMAP string as text: imapclient gives bytes or str, and None for NIL."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _param(params: object, name: str) -> str:
    if not isinstance(params, tuple | list):
        return ""
    pairs = zip(params[::2], params[1::2], strict=False)
    return next((as_text(v) for k, v in pairs if as_text(k).lower() == name), "")


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _is_multipart(structure: Sequence[Any] | None) -> bool:
    return structure is not None and len(structure) > 0 and isinstance(structure[0], list)


def _bodies(structure: Sequence[Any]) -> int:
    """The octets of the bodies of the leaves, an attached message counting as one leaf."""
    total = 0
    stack = [structure]
    while stack:
        part = stack.pop()
        if _is_multipart(part):
            stack.extend(part[0])
        elif len(part) > 6:
            total += _int(part[6])
    return total


def first_text_part(structure: Sequence[Any] | None) -> TextPart | None:
    """The first ``text/*`` leaf, depth first, not looking inside attached messages."""
    if not structure:
        return None
    if _is_multipart(structure):
        return _first_in_multipart(structure[0], "")
    return _leaf(structure, "1")


def _first_in_multipart(parts: Sequence[Any], prefix: str) -> TextPart | None:
    for index, part in enumerate(parts, start=1):
        path = f"{prefix}{index}"
        if _is_multipart(part):
            found = _first_in_multipart(part[0], path + ".")
        else:
            found = _leaf(part, path)
        if found:
            return found
    return None


def _leaf(part: Sequence[Any], path: str) -> TextPart | None:
    if len(part) < 7 or as_text(part[0]).lower() != "text":
        return None
    return TextPart(
        path=path,
        subtype=as_text(part[1]).lower() or "plain",
        charset=_param(part[2], "charset"),
        encoding=as_text(part[5]).lower() or "7bit",
        size=_int(part[6]),
    )


def _newline(header: bytes) -> bytes:
    return b"\r\n" if b"\r\n" in header else b"\n"


def _header_fields(header: bytes) -> bytes:
    """The header without the blank line that ends it."""
    return header.rstrip(b"\r\n") + _newline(header) if header.strip() else b""


def _without_fields(header: bytes, names: frozenset[bytes]) -> bytes:
    """``header`` minus the fields in ``names`` (lower-case), continuation lines included."""
    kept: list[bytes] = []
    dropping = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = line.split(b":", 1)[0].strip().lower() in names
        if not dropping:
            kept.append(line)
    return b"".join(kept)


def _safe_token(value: str, default: str) -> str:
    cleaned = _TOKEN.sub(b"", value.encode("ascii", "ignore")).decode()
    return cleaned or default


def _content_headers(part: TextPart, newline: bytes) -> bytes:
    charset = part.charset.replace("\\", "").replace('"', "").replace("\r", "").replace("\n", "")
    ctype = f"Content-Type: text/{_safe_token(part.subtype, 'plain')}"
    if charset:
        ctype += f'; charset="{charset}"'
    cte = f"Content-Transfer-Encoding: {_safe_token(part.encoding, '7bit')}"
    return ctype.encode("utf-8", "replace") + newline + cte.encode() + newline


def _cut(body: bytes, complete: bool) -> bytes:
    """A partial body up to its last whole line, so decoders do not meet half a token."""
    if complete:
        return body
    end = body.rfind(b"\n")
    return body[: end + 1] if end >= 0 else body


def assemble_raw(
    header: bytes,
    structure: Sequence[Any] | None,
    part: TextPart | None,
    body: bytes,
    text_bytes: int,
) -> tuple[bytes, bool]:
    """One parseable message from the header and the first text part: ``(raw, truncated)``."""
    multipart = _is_multipart(structure)
    fields = _header_fields(header)
    newline = _newline(header)
    if part is None:
        if multipart:
            stub = TextPart(path="", subtype="plain", charset="", encoding="7bit", size=0)
            fields = _without_fields(fields, _CONTENT_FIELDS) + _content_headers(stub, newline)
        return fields + newline, True
    complete = len(body) < text_bytes or (0 < part.size <= len(body))
    if multipart:
        fields = _without_fields(fields, _CONTENT_FIELDS) + _content_headers(part, newline)
    return fields + newline + _cut(body, complete), multipart or not complete


HEADER_GUESS = 64 * 1024
"""A header's size where the server reports no RFC822.SIZE to bound it."""


def raw_size_bound(size: object, structure: Sequence[Any] | None, text_bytes: int) -> int:
    """At most how long ``MailMessage.raw`` will be for a message of RFC822.SIZE ``size``.

    The header is at most what the size leaves once the bodies BODYSTRUCTURE
    lists are taken off (the rest are part headers and boundaries); then the
    first text part up to ``text_bytes`` and the content header fields put in
    place of the header's.
    """
    part = first_text_part(structure)
    text = min(part.size, text_bytes) if part else 0
    stub = part or TextPart(path="", subtype="plain", charset="", encoding="7bit", size=0)
    if isinstance(size, int):
        header = max(0, size - _bodies(structure)) if structure else size
    else:
        header = HEADER_GUESS
    return header + text + len(_content_headers(stub, b"\r\n")) + 2


def _labels(flags: Iterable[object], special_use: str | None) -> frozenset[str]:
    labels = {as_text(flag) for flag in flags} - {"\\Recent"}
    if special_use:
        labels.add(special_use)
    return frozenset(labels)


def _body_key(path: str) -> bytes:
    return f"BODY[{path}]<0>".encode()


def build_message(
    *,
    folder: str,
    uidvalidity: int,
    uid: int,
    data: Mapping[bytes, Any],
    mailbox: str,
    special_use: str | None,
    text_bytes: int,
) -> MailMessage:
    """A ``MailMessage`` from one FETCH response; ``BadItem`` when it cannot be used."""
    source_id = f"{folder}/{uidvalidity}/{uid}"
    header = data.get(b"BODY[HEADER]")
    if not isinstance(header, bytes):
        raise BadItem(source_id, "the server returned no header for this message")
    structure = data.get(b"BODYSTRUCTURE")
    part = first_text_part(structure)
    body = data.get(_body_key(part.path), b"") if part else b""
    raw, truncated = assemble_raw(
        header, structure, part, body if isinstance(body, bytes) else b"", text_bytes
    )
    internal_date = data.get(b"INTERNALDATE")
    return MailMessage(
        source_id=source_id,
        mailbox=mailbox,
        raw=raw,
        labels=_labels(data.get(b"FLAGS") or (), special_use),
        internal_date=_utc(internal_date) if isinstance(internal_date, datetime) else None,
        truncated=truncated,
    )


def _utc(value: datetime) -> datetime:
    """INTERNALDATE in UTC: imapclient's own zone type cannot be pickled (to a planning worker)."""
    return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
