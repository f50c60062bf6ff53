"""One Gmail user's mailbox as the fake holds it: messages, labels and the history of changes.

Tests fill a :class:`Mailbox` (``FakeGoogle.add_mailbox``) and change it
between syncs; :mod:`tests.support.fake_google.gmail` serves it. History ids
grow with every change but not one by one, as Gmail's do, so a client that
assumes contiguous ids is caught.
"""

from __future__ import annotations

import email.policy
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from typing import Any


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    labels: set[str]
    internal_date: int
    history_id: int


class Mailbox:
    """One Gmail user's mailbox: messages with labels, and the history of every change.

    Each change appends one history record with a new, larger id (ids increase
    but are not contiguous, as in Gmail).
    """

    def __init__(
        self, address: str, *, lock: threading.RLock, ids: Iterator[int], first_history_id: int
    ) -> None:
        self.address = address
        self.messages: dict[str, StoredMessage] = {}
        self.history: list[dict[str, Any]] = []
        self.history_id = first_history_id
        self.min_start_history_id = first_history_id
        self.history_limit: int | None = None
        self.user_labels: dict[str, str] = {}
        self._lock = lock
        self._ids = ids
        self._threads_by_msgid: dict[str, str] = {}

    # -- changes

    def add_message(
        self,
        raw: bytes,
        labels: Iterable[str] = ("INBOX",),
        *,
        internal_date: datetime | None = None,
        thread_id: str | None = None,
    ) -> str:
        """Deliver ``raw`` (RFC 5322 bytes) with ``labels``; returns the Gmail id."""
        with self._lock:
            message_id = f"{next(self._ids):016x}"
            headers = BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)
            thread = thread_id or self._thread_for(headers) or message_id
            msgid = _normalize_msgid(headers.get("Message-ID"))
            if msgid:
                self._threads_by_msgid.setdefault(msgid, thread)
            when = internal_date or _header_date(headers) or datetime.now(UTC)
            stored = StoredMessage(
                id=message_id,
                thread_id=thread,
                raw=raw,
                labels=set(labels),
                internal_date=int(when.timestamp() * 1000),
                history_id=0,
            )
            self.messages[message_id] = stored
            self._record("messagesAdded", stored)
            return message_id

    def delete_message(self, message_id: str) -> None:
        """Delete for good (not trash): a ``messagesDeleted`` history record."""
        with self._lock:
            stored = self.messages.pop(message_id)
            self._record("messagesDeleted", stored)

    def modify(self, message_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove labels; one history record with ``labelsAdded``/``labelsRemoved``."""
        with self._lock:
            stored = self.messages[message_id]
            added = sorted(set(add) - stored.labels)
            removed = sorted(set(remove) & stored.labels)
            if not added and not removed:
                return
            stored.labels |= set(added)
            stored.labels -= set(removed)
            record = self._new_record(stored)
            if added:
                record["labelsAdded"] = [{"message": _ref(stored), "labelIds": added}]
            if removed:
                record["labelsRemoved"] = [{"message": _ref(stored), "labelIds": removed}]
            self._append(record)

    def create_label(self, name: str) -> str:
        """A user label; returns its id (``Label_N``)."""
        with self._lock:
            label_id = f"Label_{len(self.user_labels) + 1}"
            self.user_labels[label_id] = name
            return label_id

    def expire_history(self) -> None:
        """Forget every history record: any earlier ``startHistoryId`` now gets 404."""
        with self._lock:
            self.history.clear()
            self.min_start_history_id = self.history_id

    # -- internals

    def _thread_for(self, headers: Message) -> str | None:
        refs = " ".join(str(headers.get(h, "")) for h in ("In-Reply-To", "References"))
        for ref in re.findall(r"<[^>]+>", refs):
            thread = self._threads_by_msgid.get(_normalize_msgid(ref))
            if thread:
                return thread
        return None

    def _new_record(self, stored: StoredMessage) -> dict[str, Any]:
        self.history_id += 1 + len(self.history) % 3
        stored.history_id = self.history_id
        return {"id": str(self.history_id), "messages": [_ref(stored, labels=False)]}

    def _record(self, kind: str, stored: StoredMessage) -> None:
        record = self._new_record(stored)
        record[kind] = [{"message": _ref(stored)}]
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.history_limit is not None and len(self.history) > self.history_limit:
            dropped = self.history[: len(self.history) - self.history_limit]
            del self.history[: len(dropped)]
            self.min_start_history_id = int(dropped[-1]["id"])


def _ref(stored: StoredMessage, *, labels: bool = True) -> dict[str, Any]:
    ref: dict[str, Any] = {"id": stored.id, "threadId": stored.thread_id}
    if labels:
        ref["labelIds"] = sorted(stored.labels)
    return ref


def _normalize_msgid(value: object) -> str:
    return str(value or "").strip().strip("<>").lower()


def _header_date(headers: Message) -> datetime | None:
    value = headers.get("Date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def make_email(
    *,
    subject: str,
    sender: str = "Carol Customer <carol@customer.example>",
    to: str = "alice@example.com",
    date: datetime | None = None,
    body: str = "Hello.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
) -> bytes:
    """Small RFC 5322 bytes for a test message."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    message["Message-ID"] = message_id or make_msgid(domain="mail.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)
