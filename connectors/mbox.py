"""Local mail files: mbox (Google Takeout, Thunderbird, mutt) and Maildir trees.

Terms. An *mbox* is one file of messages, each starting with a ``From ``
line; lines of the body that begin with ``From `` are quoted as ``>From ``
(mboxrd), and one ``>`` is removed again on reading. The cursor is the byte
offset of the next message, so an import stopped at message 40,000 resumes
there without re-reading the file. A *Maildir* tree (INBOX and its Maildir++
or nested folders) is read folder by folder: :mod:`connectors.maildir` finds
the folders, knows which are sent, junk, trash or drafts, and keeps the
per-folder cursor.

A batch holds at most ``batch_size`` messages and at most ``batch_bytes`` of
them (:mod:`connectors.batching`: it closes before a message that would take
it past the bound), so a mailbox of large attachments holds no more in memory
per batch than one of short notes.

Google Takeout writes Gmail's thread id as ``X-GM-THRID`` and the labels as
``X-Gmail-Labels``; both are passed on, and spam, trash and chats are left
to the agent's filters so each skip is counted with its reason.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO

from config.limits import MAX_MBOX_HEADER_BYTES
from config.schema import DEFAULT_BATCH_BYTES
from connectors import maildir
from connectors.batching import Budget, item_bytes
from connectors.capabilities import ScopeSize
from connectors.errors import ConnectorError, CursorInvalid
from connectors.records import Batch, Cursor, MailMessage

KIND = "mbox"
CURSOR_VERSION = 1
"""The mbox file cursor's version; a Maildir's is ``maildir.CURSOR_VERSION``."""
_QUOTED_FROM = re.compile(rb"^>+From ")
_HEADER_LINE = re.compile(rb"^([A-Za-z0-9-]+):[ \t]*(.*)$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FolderCount:
    """One Maildir folder as an import summary names it: how many messages it holds,
    how many the last fetch read, and why it was left out (None: it was read)."""

    name: str
    role: maildir.Role | None
    messages: int
    read: int
    skipped: str | None = None


class MboxConnector:
    """Reads an mbox file or a Maildir tree as a stream of ``MailMessage``.

    ``folders`` names the Maildir folders to read (``INBOX``, ``Sent``,
    ``Archive/2023``); none named, every folder but junk, trash and drafts.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        mailbox: str,
        *,
        since: datetime | None = None,
        batch_size: int = 200,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        folders: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.path = path
        self.mailbox = mailbox.strip().lower()
        self.since = since
        self.batch_size = batch_size
        self.batch_bytes = batch_bytes
        self.folders = tuple(folders)
        self._read_now: Counter[str] = Counter()

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        self._exists()
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
        self._exists()
        if self.path.is_dir():
            done = maildir.positions(cursor) if cursor is not None else None
            for folder in self.selection().read:
                upto = None if done is None else done.get(folder.key, "")
                yield from self._held(folder, upto)
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
        """The messages in scope (``since`` applies): what a first sync would read,
        per folder of a Maildir."""
        if not self.path.is_dir():
            return [ScopeSize(str(self.path), sum(1 for _ in self.inventory()), "messages")]
        sizes = [
            ScopeSize(f"folder {folder.name}", sum(1 for _ in self._held(folder, None)), "messages")
            for folder in self.selection().read
        ]
        return sizes or [ScopeSize(str(self.path), 0, "messages")]

    def progress_total(self) -> int | None:
        """The mbox file's size in bytes, which a cursor's offset counts; None for a
        Maildir, whose cursor is a file name and says nothing of how far it is."""
        return self.path.stat().st_size if self.path.is_file() else None

    def position(self, batch: Batch) -> int | None:
        """The byte offset the batch's cursor has reached in an mbox file."""
        offset = batch.cursor.get("offset")
        return offset if isinstance(offset, int) else None

    def _exists(self) -> None:
        if not self.path.exists():
            raise ConnectorError(
                f"{self.path}: no such mbox file or Maildir folder; check the connector's path"
            )

    # mbox

    def _fetch_mbox(self, cursor: Cursor | None) -> Iterator[Batch]:
        offset = _mbox_offset(cursor, self.path)
        pending = _Pending(self.batch_size, self.batch_bytes)
        with self.path.open("rb") as handle:
            for start, end, raw in _iter_mbox(handle, offset):
                message = self._message(f"mbox:{_digest(raw)}", raw)
                if message is not None and not pending.admits(message):
                    yield Batch(pending.take(), _mbox_cursor(start))
                offset = end
                if message is not None and pending.add(message):
                    yield Batch(pending.take(), _mbox_cursor(end))
        yield Batch(pending.take(), _mbox_cursor(offset))

    # Maildir

    def selection(self) -> maildir.Selection:
        """The Maildir folders this connector reads and those it leaves out, and why."""
        return maildir.choose(maildir.folders(self.path), self.folders)

    def folder_counts(self) -> list[FolderCount]:
        """Every folder of the Maildir: read ones first, with what the last fetch read."""
        selection = self.selection()
        read = [
            FolderCount(f.name, f.role, len(maildir.messages(f)), self._read_now[f.key])
            for f in selection.read
        ]
        skipped = [
            FolderCount(f.name, f.role, len(maildir.messages(f)), 0, reason)
            for f, reason in selection.skipped
        ]
        return read + skipped

    def _fetch_maildir(self, cursor: Cursor | None) -> Iterator[Batch]:
        done = maildir.positions(cursor)
        selection = self._announced_selection()
        self._read_now = Counter()
        pending = _Pending(self.batch_size, self.batch_bytes)
        for folder in selection.read:
            for unique, path in maildir.messages(folder):
                if unique <= done.get(folder.key, ""):
                    continue
                message = self._maildir_message(folder, unique, maildir.read(folder, unique, path))
                if message is not None and not pending.admits(message):
                    yield Batch(pending.take(), maildir.cursor_of(done))
                done[folder.key] = unique
                self._read_now[folder.key] += 1
                if message is not None and pending.add(message):
                    yield Batch(pending.take(), maildir.cursor_of(done))
        yield Batch(pending.take(), maildir.cursor_of(done))

    def _announced_selection(self) -> maildir.Selection:
        """The selection, with the folders left out logged (and chosen ones not found)."""
        selection = self.selection()
        if selection.skipped:
            left_out = ", ".join(f"{folder.name} ({why})" for folder, why in selection.skipped)
            log.info("%s: Maildir folders not read: %s", self.name, left_out)
        if selection.missing:
            log.warning(
                "%s: no Maildir folder named %s in %s; skipped",
                self.name,
                ", ".join(selection.missing),
                self.path,
            )
        return selection

    def _held(self, folder: maildir.Folder, upto: str | None) -> Iterator[MailMessage]:
        """The folder's messages in scope, up to the unique name ``upto`` when given."""
        for unique, path in maildir.messages(folder):
            if upto is not None and unique > upto:
                return
            message = self._maildir_message(folder, unique, maildir.read(folder, unique, path))
            if message is not None:
                yield message

    def _maildir_message(
        self, folder: maildir.Folder, unique: str, raw: bytes | None
    ) -> MailMessage | None:
        if raw is None:
            return None
        return self._message(folder.source_id(unique), raw, folder.labels)

    def _message(
        self, source_id: str, raw: bytes, labels: frozenset[str] = frozenset()
    ) -> MailMessage | None:
        headers = _takeout_headers(raw)
        if self.since is not None:
            date = _header_date(headers.get(b"date"))
            if date is not None and date < self.since:
                return None
        takeout = frozenset(
            label.strip()
            for label in headers.get(b"x-gmail-labels", b"").decode("utf-8", "replace").split(",")
            if label.strip()
        )
        thread = headers.get(b"x-gm-thrid", b"").decode("ascii", "replace").strip() or None
        return MailMessage(
            source_id=source_id,
            mailbox=self.mailbox,
            raw=raw,
            labels=labels | takeout,
            thread_id=thread,
        )


class _Pending:
    """Messages gathered for the next batch, bounded by count and by bytes."""

    def __init__(self, size: int, max_bytes: int) -> None:
        self.size = size
        self.budget = Budget(max_bytes)
        self.items: list[MailMessage] = []

    def admits(self, message: MailMessage) -> bool:
        """Whether ``message`` fits; if not, the batch closes before it."""
        return self.budget.admits(item_bytes(message))

    def add(self, message: MailMessage) -> bool:
        """Add ``message``; True when the batch has its count and closes after it."""
        self.items.append(message)
        self.budget.add(item_bytes(message))
        return len(self.items) >= self.size

    def take(self) -> list[MailMessage]:
        items, self.items = self.items, []
        self.budget.reset()
        return items


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
