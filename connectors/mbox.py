"""Local mail files: mbox (Google Takeout, Thunderbird, mutt) and Maildir folders.

Terms. An *mbox* is one file of messages, each starting with a ``From ``
line; lines of the body that begin with ``From `` are quoted as ``>From ``
(mboxrd), and one ``>`` is removed again on reading. The cursor is the byte
offset of the next message, so an import stopped at message 40,000 resumes
there without re-reading the file. A *Maildir* is a folder with ``cur/`` and
``new/`` holding one file per message; its cursor is the last file name
processed in sorted order (Maildir names start with the delivery time).

Google Takeout writes Gmail's thread id as ``X-GM-THRID`` and the labels as
``X-Gmail-Labels``; both are passed on, and spam, trash and chats are left
to the agent's filters so each skip is counted with its reason.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from config.limits import MAX_MBOX_HEADER_BYTES
from connectors.capabilities import ScopeSize
from connectors.errors import CursorInvalid
from connectors.records import Batch, Cursor, MailMessage

KIND = "mbox"
CURSOR_VERSION = 1
_QUOTED_FROM = re.compile(rb"^>+From ")
_HEADER_LINE = re.compile(rb"^([A-Za-z0-9-]+):[ \t]*(.*)$")


class MboxConnector:
    """Reads an mbox file or a Maildir folder as a stream of ``MailMessage``."""

    def __init__(
        self,
        name: str,
        path: Path,
        mailbox: str,
        *,
        since: datetime | None = None,
        batch_size: int = 200,
    ) -> None:
        self.name = name
        self.path = path
        self.mailbox = mailbox.strip().lower()
        self.since = since
        self.batch_size = batch_size

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such mbox file or Maildir folder")
        if self.path.is_dir():
            yield from self._fetch_maildir(cursor)
        else:
            yield from self._fetch_mbox(cursor)

    def inventory(self, cursor: Cursor | None = None) -> Iterator[str]:
        """Source ids of the messages in scope (``since`` applies), as ``fetch`` names them.

        With ``cursor``, only the messages it has passed: an import stopped
        half-way has not read the rest, so they cannot be missing yet.
        """
        for message in self._scan(cursor):
            yield message.source_id

    def lookup(self, source_ids: Iterable[str]) -> Iterator[MailMessage]:
        """The messages with these source ids, as ``fetch`` yields them."""
        wanted = set(source_ids)
        for message in self._scan(None):
            if message.source_id in wanted:
                yield message

    def _scan(self, cursor: Cursor | None) -> Iterator[MailMessage]:
        """Every message in scope from the start, up to ``cursor`` when one is given."""
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such mbox file or Maildir folder")
        if self.path.is_dir():
            last = _maildir_last(cursor)
            for key, path in _maildir_files(self.path):
                if cursor is not None and (last is None or key > last):
                    return
                message = self._message(f"maildir:{key.split(':', 1)[0]}", path.read_bytes())
                if message is not None:
                    yield message
            return
        stop = _mbox_offset(cursor, self.path) if cursor is not None else None
        with self.path.open("rb") as handle:
            for _start, end, raw in _iter_mbox(handle, 0):
                if stop is not None and end > stop:
                    return
                message = self._message(f"mbox:{_digest(raw)}", raw)
                if message is not None:
                    yield message

    def first_sync_size(self) -> list[ScopeSize]:
        """The messages in scope (``since`` applies): what a first sync would read."""
        return [ScopeSize(str(self.path), sum(1 for _ in self.inventory()), "messages")]

    def progress_total(self) -> int | None:
        """The mbox file's size in bytes, which a cursor's offset counts; None for a
        Maildir, whose cursor is a file name and says nothing of how far it is."""
        return self.path.stat().st_size if self.path.is_file() else None

    def position(self, batch: Batch) -> int | None:
        """The byte offset the batch's cursor has reached in an mbox file."""
        offset = batch.cursor.get("offset")
        return offset if isinstance(offset, int) else None

    # mbox

    def _fetch_mbox(self, cursor: Cursor | None) -> Iterator[Batch]:
        offset = _mbox_offset(cursor, self.path)
        items: list[MailMessage] = []
        with self.path.open("rb") as handle:
            for _start, end, raw in _iter_mbox(handle, offset):
                message = self._message(f"mbox:{_digest(raw)}", raw)
                if message is not None:
                    items.append(message)
                if len(items) >= self.batch_size:
                    yield Batch(items, _mbox_cursor(end))
                    items = []
                offset = end
        yield Batch(items, _mbox_cursor(offset))

    # Maildir

    def _fetch_maildir(self, cursor: Cursor | None) -> Iterator[Batch]:
        last = _maildir_last(cursor)
        items: list[MailMessage] = []
        position = last
        for key, path in _maildir_files(self.path):
            if last is not None and key <= last:
                continue
            raw = path.read_bytes()
            message = self._message(f"maildir:{key.split(':', 1)[0]}", raw)
            if message is not None:
                items.append(message)
            position = key
            if len(items) >= self.batch_size:
                yield Batch(items, {"v": CURSOR_VERSION, "last": position})
                items = []
        yield Batch(items, {"v": CURSOR_VERSION, "last": position})

    def _message(self, source_id: str, raw: bytes) -> MailMessage | None:
        headers = _takeout_headers(raw)
        if self.since is not None:
            date = _header_date(headers.get(b"date"))
            if date is not None and date < self.since:
                return None
        labels = frozenset(
            label.strip()
            for label in headers.get(b"x-gmail-labels", b"").decode("utf-8", "replace").split(",")
            if label.strip()
        )
        thread = headers.get(b"x-gm-thrid", b"").decode("ascii", "replace").strip() or None
        return MailMessage(
            source_id=source_id, mailbox=self.mailbox, raw=raw, labels=labels, thread_id=thread
        )


def _iter_mbox(handle: BinaryIO, offset: int) -> Iterator[tuple[int, int, bytes]]:
    """``(start, end, message bytes)`` for each message from ``offset`` on, streaming."""
    handle.seek(offset)
    start: int | None = None
    lines: list[bytes] = []
    position = offset
    for line in handle:
        # Like the stdlib, any "From " line starts a message: real mboxes
        # (Netscape, some Takeouts) omit the blank line before it.
        if line.startswith(b"From "):
            if start is not None:
                yield start, position, _unquote(lines)
            start, lines = position, []
        elif start is not None:
            lines.append(line)
        position += len(line)
    if start is not None:
        yield start, position, _unquote(lines)


def _unquote(lines: list[bytes]) -> bytes:
    # The blank line before the next "From " belongs to the mbox framing.
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(line[1:] if _QUOTED_FROM.match(line) else line for line in lines)


def _mbox_offset(cursor: Cursor | None, path: Path) -> int:
    if not cursor:
        return 0
    if cursor.get("v") != CURSOR_VERSION or not isinstance(cursor.get("offset"), int):
        raise CursorInvalid(f"unreadable mbox cursor: {cursor!r}")
    offset = int(cursor["offset"])
    size = path.stat().st_size
    if offset > size:
        raise CursorInvalid(f"{path} is shorter than the cursor ({size} < {offset} bytes)")
    if offset and offset < size:
        with path.open("rb") as handle:
            handle.seek(offset)
            if not handle.read(5) == b"From ":
                raise CursorInvalid(f"{path} changed: no message starts at byte {offset}")
    return offset


def _mbox_cursor(offset: int) -> Cursor:
    return {"v": CURSOR_VERSION, "offset": offset}


def _maildir_files(root: Path) -> Iterator[tuple[str, Path]]:
    entries: list[tuple[str, Path]] = []
    for sub in ("cur", "new"):
        folder = root / sub
        if folder.is_dir():
            entries.extend((entry.name, Path(entry.path)) for entry in os.scandir(folder))
    yield from sorted(entries)


def _maildir_last(cursor: Cursor | None) -> str | None:
    if not cursor:
        return None
    if cursor.get("v") != CURSOR_VERSION or "last" not in cursor:
        raise CursorInvalid(f"unreadable Maildir cursor: {cursor!r}")
    last = cursor["last"]
    return str(last) if last is not None else None


def _digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


def _takeout_headers(raw: bytes) -> dict[bytes, bytes]:
    """The few top-level headers the connector needs, without a full MIME parse."""
    wanted = {b"date", b"x-gmail-labels", b"x-gm-thrid"}
    found: dict[bytes, bytes] = {}
    current: bytes | None = None
    for line in raw[:MAX_MBOX_HEADER_BYTES].splitlines():
        if not line.strip():
            break
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                found[current] += b" " + line.strip()
            continue
        match = _HEADER_LINE.match(line)
        current = None
        if match:
            name = match.group(1).lower()
            if name in wanted and name not in found:
                found[name] = match.group(2).strip()
                current = name
    return found


def _header_date(value: bytes | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value.decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
