"""Mailboxes: folders, messages made from raw RFC 5322 bytes, and every change as a delta entry.

Folders ("List mailFolders", "mailFolder resource type"): the well-known
names ``msgfolderroot``, ``inbox``, ``sentitems``, ``deleteditems``,
``drafts``, ``junkemail``, ``archive``, ``outbox`` work wherever a folder id
does; custom folders hang under any folder. A message's JSON ("message
resource type") is parsed from its raw bytes with the ``email`` package; the
bytes themselves are ``$value`` ("Get MIME content of a message").

Ids: Outlook item ids change when an item moves to another folder unless the
client asks for immutable ids (``Prefer: IdType="ImmutableId"``, "Obtain
immutable identifiers for Outlook resources"); the fake keeps both and writes
whichever the request prefers. Lookups accept either.

Changes (test hooks, not HTTP): :meth:`Mailbox.deliver`, :meth:`Mailbox.move`,
:meth:`Mailbox.delete` (hard delete), :meth:`Mailbox.soft_delete` (a move to
Deleted Items), :meth:`Mailbox.mark_read`. Each bumps the mailbox's change
counter; a folder keeps a tombstone for every message that left it, which the
next delta round reports as ``@removed`` (reason ``deleted`` unless the hook
is told otherwise; the docs show ``deleted`` for messages and define
``changed`` for directory objects).
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import html
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.message import Message as RawMessage
from email.utils import getaddresses, parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from tests.support.fake_graph.common import bad_request, graph_time, parse_time

if TYPE_CHECKING:
    from tests.support.fake_graph.calendar import Calendar
    from tests.support.fake_graph.server import User

WELL_KNOWN_FOLDERS = {
    "msgfolderroot": "Top of Information Store",
    "inbox": "Inbox",
    "sentitems": "Sent Items",
    "deleteditems": "Deleted Items",
    "drafts": "Drafts",
    "junkemail": "Junk Email",
    "archive": "Archive",
    "outbox": "Outbox",
}

MESSAGE_PROPERTIES = (
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "categories",
    "receivedDateTime",
    "sentDateTime",
    "hasAttachments",
    "internetMessageId",
    "subject",
    "bodyPreview",
    "importance",
    "parentFolderId",
    "conversationId",
    "conversationIndex",
    "isDeliveryReceiptRequested",
    "isReadReceiptRequested",
    "isRead",
    "isDraft",
    "webLink",
    "inferenceClassification",
    "body",
    "sender",
    "from",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "flag",
    "uniqueBody",
    "internetMessageHeaders",
)
SELECT_ONLY = frozenset({"uniqueBody", "internetMessageHeaders"})
"""Returned only when ``$select`` names them (message resource type)."""
BASIC_EXCLUDED = frozenset({"body", "bodyPreview", "uniqueBody"})
"""What Mail.ReadBasic(.All) does not give ("... except for body, bodyPreview,
uniqueBody, attachments, extensions, and any extended properties")."""


def new_id(prefix: str = "AAMkAD") -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(30)).decode()


@dataclass
class Tombstone:
    seq: int
    rest_id: str
    immutable_id: str
    reason: str


@dataclass
class Folder:
    id: str
    display_name: str
    parent_id: str | None
    well_known: str | None = None
    tombstones: list[Tombstone] = field(default_factory=list)


@dataclass
class Parsed:
    """What a raw message says, parsed once."""

    subject: str | None
    internet_message_id: str | None
    sender: dict[str, Any] | None
    from_: dict[str, Any] | None
    to: list[dict[str, Any]]
    cc: list[dict[str, Any]]
    bcc: list[dict[str, Any]]
    reply_to: list[dict[str, Any]]
    sent: datetime | None
    html_body: str | None
    text_body: str | None
    has_attachments: bool
    headers: list[dict[str, str]]
    conversation_root: str


@dataclass
class Message:
    immutable_id: str
    rest_id: str
    folder_id: str
    raw: bytes
    parsed: Parsed
    received: datetime
    created: datetime
    modified: datetime
    arrived_seq: int
    modified_seq: int
    is_read: bool = False
    is_draft: bool = False
    categories: tuple[str, ...] = ()
    version: int = 1

    def json(self, *, immutable: bool, body_type: str | None, base_url: str) -> dict[str, Any]:
        """The full message resource (select-only properties included)."""
        p = self.parsed
        content_type, content = _body(p, body_type)
        etag_src = f"{self.immutable_id}:{self.version}".encode()
        change_key = base64.b64encode(hashlib.sha1(etag_src).digest()[:15]).decode()
        conversation = base64.urlsafe_b64encode(
            hashlib.sha256(p.conversation_root.encode()).digest()[:30]
        ).decode()
        return {
            "@odata.etag": f'W/"{change_key}"',
            "id": self.immutable_id if immutable else self.rest_id,
            "createdDateTime": graph_time(self.created),
            "lastModifiedDateTime": graph_time(self.modified),
            "changeKey": change_key,
            "categories": list(self.categories),
            "receivedDateTime": graph_time(self.received),
            "sentDateTime": graph_time(p.sent or self.received),
            "hasAttachments": p.has_attachments,
            "internetMessageId": p.internet_message_id,
            "subject": p.subject,
            "bodyPreview": _preview(p),
            "importance": "normal",
            "parentFolderId": self.folder_id,
            "conversationId": "AAQkAD" + conversation,
            "conversationIndex": base64.b64encode(
                hashlib.md5(p.conversation_root.encode()).digest()[:22]
            ).decode(),
            "isDeliveryReceiptRequested": False,
            "isReadReceiptRequested": False,
            "isRead": self.is_read,
            "isDraft": self.is_draft,
            "webLink": f"https://outlook.office365.com/owa/?ItemID={self.rest_id}&exvsurl=1&viewmodel=ReadMessageItem",
            "inferenceClassification": "focused",
            "body": {"contentType": content_type, "content": content},
            "sender": p.sender,
            "from": p.from_,
            "toRecipients": p.to,
            "ccRecipients": p.cc,
            "bccRecipients": p.bcc,
            "replyTo": p.reply_to,
            "flag": {"flagStatus": "notFlagged"},
            "uniqueBody": {"contentType": content_type, "content": content},
            "internetMessageHeaders": p.headers,
        }


class Mailbox:
    """One user's mail. Test hooks change it; the server reads it.

    ``user`` is its owner and ``calendar`` the owner's primary calendar."""

    user: User
    calendar: Calendar

    def __init__(self, user_id: str, *, lock: threading.RLock) -> None:
        self.user_id = user_id
        self.lock = lock
        self.seq = 0
        self.folders: dict[str, Folder] = {}
        self.messages: dict[str, Message] = {}
        """By immutable id."""
        root = self._make_folder("msgfolderroot", None, "msgfolderroot")
        for name in WELL_KNOWN_FOLDERS:
            if name != "msgfolderroot":
                self._make_folder(WELL_KNOWN_FOLDERS[name], root.id, name)

    # -- folders

    def _make_folder(
        self, display_name: str, parent_id: str | None, well_known: str | None
    ) -> Folder:
        if well_known == "msgfolderroot":
            display_name = WELL_KNOWN_FOLDERS["msgfolderroot"]
        folder = Folder(new_id("AAMkAGI"), display_name, parent_id, well_known)
        self.folders[folder.id] = folder
        return folder

    def add_folder(self, display_name: str, parent: str = "msgfolderroot") -> Folder:
        """A custom folder under ``parent`` (an id or a well-known name)."""
        with self.lock:
            return self._make_folder(display_name, self.folder(parent).id, None)

    def folder(self, ref: str) -> Folder:
        """A folder by id or well-known name (case-insensitive); ``KeyError`` if none."""
        found = self.find_folder(ref)
        if found is None:
            raise KeyError(ref)
        return found

    def find_folder(self, ref: str) -> Folder | None:
        if ref in self.folders:
            return self.folders[ref]
        lower = ref.lower()
        return next((f for f in self.folders.values() if f.well_known == lower), None)

    def children(self, folder_id: str) -> list[Folder]:
        return [f for f in self.folders.values() if f.parent_id == folder_id]

    def in_folder(self, folder_id: str) -> list[Message]:
        return [m for m in self.messages.values() if m.folder_id == folder_id]

    def folder_json(self, folder: Folder) -> dict[str, Any]:
        inside = self.in_folder(folder.id)
        return {
            "id": folder.id,
            "displayName": folder.display_name,
            "parentFolderId": folder.parent_id,
            "childFolderCount": len(self.children(folder.id)),
            "unreadItemCount": sum(1 for m in inside if not m.is_read),
            "totalItemCount": len(inside),
            "sizeInBytes": sum(len(m.raw) for m in inside),
            "isHidden": False,
        }

    # -- messages

    def message(self, ref: str) -> Message | None:
        """A message by either of its ids."""
        found = self.messages.get(ref)
        if found is not None:
            return found
        return next((m for m in self.messages.values() if m.rest_id == ref), None)

    def _bump(self) -> int:
        self.seq += 1
        return self.seq

    def deliver(
        self,
        raw: bytes,
        folder: str = "inbox",
        *,
        received: datetime | None = None,
        is_read: bool = False,
        is_draft: bool | None = None,
        categories: tuple[str, ...] = (),
    ) -> Message:
        """Put ``raw`` (RFC 5322 bytes) in ``folder``; ``received`` defaults to
        the first ``Received:`` header's date, then ``Date:``, then now."""
        parsed = parse_message(raw)
        with self.lock:
            target = self.folder(folder)
            seq = self._bump()
            now = datetime.now(UTC)
            message = Message(
                immutable_id=new_id("AAkALg"),
                rest_id=new_id(),
                folder_id=target.id,
                raw=raw,
                parsed=parsed,
                received=received or _received(raw) or parsed.sent or now,
                created=now,
                modified=now,
                arrived_seq=seq,
                modified_seq=seq,
                is_read=is_read,
                is_draft=(target.well_known == "drafts") if is_draft is None else is_draft,
                categories=categories,
            )
            self.messages[message.immutable_id] = message
            return message

    def mark_read(self, ref: str, read: bool = True) -> Message:
        with self.lock:
            message = self._get(ref)
            message.is_read = read
            self._touch(message)
            return message

    def set_categories(self, ref: str, categories: tuple[str, ...]) -> Message:
        with self.lock:
            message = self._get(ref)
            message.categories = categories
            self._touch(message)
            return message

    def move(self, ref: str, folder: str, *, reason: str = "deleted") -> Message:
        """Move to ``folder``: the old folder gets a tombstone (``@removed`` with
        ``reason``), the message a new REST id, the new folder a new arrival."""
        with self.lock:
            message = self._get(ref)
            target = self.folder(folder)
            if target.id == message.folder_id:
                return message
            seq = self._bump()
            self.folders[message.folder_id].tombstones.append(
                Tombstone(seq, message.rest_id, message.immutable_id, reason)
            )
            message.folder_id = target.id
            message.rest_id = new_id()
            message.arrived_seq = seq
            self._touch(message, seq)
            return message

    def soft_delete(self, ref: str) -> Message:
        """Delete as Outlook does by default: a move to Deleted Items."""
        return self.move(ref, "deleteditems")

    def delete(self, ref: str, *, reason: str = "deleted") -> None:
        """Delete for good (or purge from Deleted Items)."""
        with self.lock:
            message = self._get(ref)
            seq = self._bump()
            self.folders[message.folder_id].tombstones.append(
                Tombstone(seq, message.rest_id, message.immutable_id, reason)
            )
            del self.messages[message.immutable_id]

    def _get(self, ref: str) -> Message:
        message = self.message(ref)
        if message is None:
            raise KeyError(ref)
        return message

    def _touch(self, message: Message, seq: int | None = None) -> None:
        message.modified_seq = seq if seq is not None else self._bump()
        message.modified = datetime.now(UTC)
        message.version += 1

    # -- delta

    def delta_keys(
        self, folder_id: str, query: dict[str, str], since: int | None
    ) -> list[tuple[str, ...]]:
        """The entries of a round: ``("live", immutable_id)`` or
        ``("removed", rest_id, immutable_id, reason)``."""
        folder = self.folders[folder_id]
        change_type = query.get("changetype")
        live = [m for m in self.in_folder(folder_id) if _passes(m, query.get("filter"))]
        if query.get("orderby", "").replace("+", " ").strip().lower() == "receiveddatetime desc":
            live.sort(key=lambda m: m.received, reverse=True)
        else:
            live.sort(key=lambda m: m.arrived_seq)
        keys: list[tuple[str, ...]] = []
        if since is None:
            return [("live", m.immutable_id) for m in live]
        for m in live:
            if m.modified_seq <= since:
                continue
            kind = "created" if m.arrived_seq > since else "updated"
            if change_type in (None, kind):
                keys.append(("live", m.immutable_id))
        if change_type in (None, "deleted"):
            present = {m.immutable_id for m in live}
            for stone in folder.tombstones:
                if stone.seq > since and stone.immutable_id not in present:
                    keys.append(("removed", stone.rest_id, stone.immutable_id, stone.reason))
        return keys

    def __iter__(self) -> Iterator[Message]:
        return iter(list(self.messages.values()))


# --------------------------------------------------------------------------- parsing


def parse_message(raw: bytes) -> Parsed:
    modern = email.message_from_bytes(raw, policy=email.policy.default)
    legacy = email.message_from_bytes(raw)
    assert isinstance(modern, EmailMessage)
    from_ = _recipients(legacy, "From")
    sender = _recipients(legacy, "Sender") or from_
    message_id = legacy.get("Message-ID")
    refs = (legacy.get("References") or "").split()
    in_reply_to = (legacy.get("In-Reply-To") or "").split()
    root = (refs or in_reply_to or [str(message_id or secrets.token_hex(8))])[0]
    return Parsed(
        subject=_header_text(modern, "Subject"),
        internet_message_id=str(message_id).strip() if message_id else None,
        sender=sender[0] if sender else None,
        from_=from_[0] if from_ else None,
        to=_recipients(legacy, "To"),
        cc=_recipients(legacy, "Cc"),
        bcc=_recipients(legacy, "Bcc"),
        reply_to=_recipients(legacy, "Reply-To"),
        sent=_date(legacy.get("Date")),
        html_body=_part_text(modern, "html"),
        text_body=_part_text(modern, "plain"),
        has_attachments=any(
            part.get_content_disposition() == "attachment" for part in modern.walk()
        ),
        headers=[
            {"name": k, "value": re.sub(r"\r?\n[ \t]*", " ", str(v))} for k, v in legacy.items()
        ],
        conversation_root=root,
    )


def _header_text(message: EmailMessage, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # a header the modern parser cannot read
        return None
    return None if value is None else str(value)


def _recipients(message: RawMessage, name: str) -> list[dict[str, Any]]:
    from email.header import decode_header, make_header

    values = [str(make_header(decode_header(str(v)))) for v in message.get_all(name, [])]
    return [
        {"emailAddress": {"name": display or address, "address": address}}
        for display, address in getaddresses(values)
        if address
    ]


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _received(raw: bytes) -> datetime | None:
    first = email.message_from_bytes(raw).get("Received")
    if not first:
        return None
    return _date(str(first).rsplit(";", 1)[-1].strip())


def _part_text(message: EmailMessage, subtype: str) -> str | None:
    part = message.get_body(preferencelist=(subtype,))
    if part is None or part.get_content_subtype() != subtype:
        return None
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return str(content)


def _strip_html(text: str) -> str:
    text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def _body(p: Parsed, body_type: str | None) -> tuple[str, str]:
    """Graph's default body is HTML; ``Prefer: outlook.body-content-type="text"`` asks for text."""
    if body_type == "text":
        if p.text_body is not None:
            return "text", p.text_body
        return "text", _strip_html(p.html_body or "")
    if p.html_body is not None:
        return "html", p.html_body
    escaped = html.escape(p.text_body or "")
    return "html", f"<html><body><div>{escaped}</div></body></html>"


def _preview(p: Parsed) -> str:
    """The first 255 characters of the body as text (message resource type)."""
    text = p.text_body if p.text_body is not None else _strip_html(p.html_body or "")
    return " ".join(text.split())[:255]


_FILTER = re.compile(r"^receivedDateTime\s+(ge|gt)\s+(\S+)$", re.IGNORECASE)


def check_filter(text: str | None) -> None:
    """Message delta takes only ``receivedDateTime ge|gt {value}`` (delta-query-messages)."""
    if text is None:
        return
    match = _FILTER.match(text.replace("+", " ").strip())
    if match is None:
        raise bad_request(
            f"The filter '{text}' is not supported in a delta query.", "ErrorInvalidUrlQueryFilter"
        )
    try:
        parse_time(match.group(2))
    except ValueError as error:
        raise bad_request(
            f"Invalid date '{match.group(2)}'.", "ErrorInvalidUrlQueryFilter"
        ) from error


def _passes(message: Message, text: str | None) -> bool:
    if not text:
        return True
    match = _FILTER.match(text.replace("+", " ").strip())
    if match is None:
        return True
    bound = parse_time(match.group(2))
    return message.received >= bound if match.group(1).lower() == "ge" else message.received > bound
