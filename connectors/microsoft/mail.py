"""Outlook mail connector (kind ``microsoft_mail``): one mailbox through Microsoft Graph.

Terms. Graph keeps mail in folders; ``inbox`` and ``sentitems`` are
well-known names usable in place of a folder's id. Every request asks for
immutable ids (``Prefer: IdType="ImmutableId"``), so a message keeps its id
when it moves. A *delta round* ("Get incremental changes to messages in a
folder") is a chain of pages linked by ``@odata.nextLink`` that ends with an
``@odata.deltaLink``; the next round starts from that link and returns what
changed since. Each folder has its own rounds.

Scope. Inbox and Sent Items (``default_folders``) and the ``folders`` named
in the config (by display name; ``Parent/Child`` for a subfolder). A
message's source id is ``<folder key>/<immutable id>``, the folder key being
the well-known name or the folder's id: the same message in two synced
folders is two sources of one interaction, and moving it between them
removes one source and adds the other, whatever order the folders are read
in.

Cursor. The link each folder's next request starts from, committed with the
batch of the page it follows::

    {"v": 1, "folders": {"inbox": "<nextLink or deltaLink>", "sentitems": "..."}}

A folder not in the map starts a first round (with ``since`` as
``$filter=receivedDateTime ge ...``, the one filter message delta takes).
Every page is one batch (or several, bounded by ``batch_bytes``, those before
its last carrying the link that fetches the page again), so a first sync of a
large mailbox that stops resumes at the page it was on. With nothing new, a
run is one request per folder.

Changes. Created and updated messages come whole (as selected) and are
yielded again, which the agent's idempotent writes absorb; a message read,
flagged or recategorised comes back the same way. ``@removed`` entries
become :class:`~connectors.records.SourceRemoved`. A delta link Graph no
longer holds (410, or the codes ``syncStateNotFound``, ``syncStateInvalid``,
``resyncRequired``) makes that folder alone start a new first round; what it
yields again has the same source ids, so nothing is logged twice.

Modes. ``metadata`` (permission Mail.ReadBasic) selects the headers
(``internetMessageHeaders``) and the addressing properties, never ``body``
or ``bodyPreview``, and writes them as a header-only RFC 5322 message
(``truncated=True``); a message without internet headers (one sent from
Outlook itself) is written from its properties. ``readonly`` (Mail.Read)
fetches each message's MIME (``/$value``) in JSON batches of 20, so the
agent's one MIME parser reads Outlook like every other source. Categories
travel as labels, so an Outlook category can be the privacy label.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr
from typing import Any, Literal
from urllib.parse import quote

from config.schema import DEFAULT_BATCH_BYTES
from connectors.batching import check_batch_bytes, item_bytes, within
from connectors.capabilities import ScopeSize
from connectors.errors import BadItem, ConnectorError, CursorInvalid
from connectors.headers import HEADERS_READ, header_block
from connectors.microsoft.graph import GraphClient, GraphConnector, Part
from connectors.records import Batch, Cursor, Item, MailMessage, SourceRemoved, Unreadable

log = logging.getLogger(__name__)

Mode = Literal["metadata", "readonly"]
CURSOR_VERSION = 1
DEFAULT_FOLDERS = {"inbox": "Inbox", "sentitems": "Sent Items"}
"""Well-known name -> display name of the folders ``default_folders`` syncs."""
PAGE_SIZE = 100
"""``Prefer: odata.maxpagesize``: messages per delta page (Graph may send fewer)."""
ADDRESSING = (
    "internetMessageId",
    "subject",
    "from",
    "sender",
    "toRecipients",
    "ccRecipients",
    "bccRecipients",
    "replyTo",
    "sentDateTime",
)
SELECT: Mapping[Mode, tuple[str, ...]] = {
    "metadata": (
        "internetMessageHeaders",
        *ADDRESSING,
        "receivedDateTime",
        "conversationId",
        "categories",
        "isDraft",
    ),
    "readonly": ("receivedDateTime", "conversationId", "categories", "isDraft"),
}
"""Exactly the properties the pipeline needs; ``metadata`` never names a body."""
_HEADERS_READ = frozenset(name.lower() for name in HEADERS_READ)


@dataclass(frozen=True)
class Folder:
    key: str
    """The well-known name or the folder's id: the path segment and the source id prefix."""
    name: str


def parse_cursor(cursor: Cursor | None) -> dict[str, str]:
    """The folder -> link map of a cursor this connector wrote; CursorInvalid otherwise."""
    if cursor is None:
        return {}
    folders = cursor.get("folders")
    if cursor.get("v") != CURSOR_VERSION or not isinstance(folders, Mapping):
        raise CursorInvalid(f"not a microsoft_mail cursor: {sorted(cursor)}")
    links = {str(k): v for k, v in folders.items() if isinstance(v, str)}
    if any(not link.startswith("https://") for link in links.values()):
        raise CursorInvalid("a microsoft_mail cursor link is not an https URL")
    return links


class MicrosoftMailConnector(GraphConnector):
    """Outlook mail by delta query, per folder (module docstring)."""

    def __init__(
        self,
        name: str,
        account: str,
        client: GraphClient,
        *,
        mode: Mode = "metadata",
        folders: Sequence[str] = (),
        default_folders: bool = True,
        since: datetime | None = None,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        page_size: int = PAGE_SIZE,
    ) -> None:
        super().__init__(name, account, client)
        self.mode: Mode = mode
        self.folder_names = list(folders)
        self.default_folders = default_folders
        self.since = since
        self.batch_bytes = check_batch_bytes(batch_bytes)
        self.page_size = page_size
        self._folders: list[Folder] | None = None

    def __repr__(self) -> str:
        return f"MicrosoftMailConnector({self.name!r}, {self.account}, {self.mode})"

    def first_sync_size(self) -> list[ScopeSize]:
        """Messages per synced folder (``totalItemCount``; with ``since``, the most a first
        sync reads). One request per folder; it moves no cursor."""
        sizes = []
        for folder in self.folders():
            url = f"{self._user()}/mailFolders/{quote(folder.key, safe='')}"
            found = self.client.get(f"{url}?$select=displayName,totalItemCount")
            count = int(found.get("totalItemCount") or 0)
            sizes.append(ScopeSize(folder.name, count, "messages"))
        return sizes

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        links = parse_cursor(cursor)
        self.client.start_run()
        for folder in self.folders():
            yield from self._folder(folder, links)

    def folders(self) -> list[Folder]:
        """The synced folders; configured names are looked up once per connector."""
        if self._folders is None:
            defaults = DEFAULT_FOLDERS.items() if self.default_folders else ()
            found = [Folder(key, name) for key, name in defaults]
            found += [self._find_folder(name) for name in self.folder_names]
            self._folders = list({f.key: f for f in found}.values())
        return self._folders

    # ----------------------------------------------------------------- rounds

    def _folder(self, folder: Folder, links: dict[str, str]) -> Iterator[Batch]:
        url = links.get(folder.key) or self._first_round(folder)
        while True:
            try:
                page = self.client.get(url, headers=self._prefer())
            except CursorInvalid as exc:
                if folder.key not in links:
                    raise
                log.warning(
                    "%s: Graph no longer holds the delta state of %s (%s); that folder starts "
                    "over, and what it yields again replaces what was logged",
                    self.name,
                    folder.name,
                    exc,
                )
                del links[folder.key]
                url = self._first_round(folder)
                continue
            before = dict(links)
            following = page.get("@odata.nextLink") or page.get("@odata.deltaLink")
            if not isinstance(following, str):
                raise ConnectorError(f"{folder.name}: a delta page without a next or delta link")
            links[folder.key] = following
            yield from self._batches(folder, page.get("value") or [], before, links)
            if "@odata.nextLink" not in page:
                return
            url = following

    def _first_round(self, folder: Folder) -> str:
        query = f"$select={','.join(SELECT[self.mode])}"
        if self.since is not None:
            query += f"&$filter=receivedDateTime+ge+{self.since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        return f"{self._user()}/mailFolders/{quote(folder.key, safe='')}/messages/delta?{query}"

    def _batches(
        self,
        folder: Folder,
        entries: Sequence[Mapping[str, Any]],
        before: Mapping[str, str],
        after: Mapping[str, str],
    ) -> Iterator[Batch]:
        """One page's items in batches bounded by bytes; all but the last carry ``before``,
        which fetches the page again."""
        items = self._items(folder, entries)
        runs = list(within(items, item_bytes, self.batch_bytes)) or [[]]
        for index, run in enumerate(runs):
            links = after if index == len(runs) - 1 else before
            yield Batch(run, {"v": CURSOR_VERSION, "folders": dict(links)})

    def _items(self, folder: Folder, entries: Sequence[Mapping[str, Any]]) -> list[Item]:
        items: list[Item] = []
        wanted: list[Mapping[str, Any]] = []
        for entry in entries:
            source_id = f"{folder.key}/{entry.get('id', '')}"
            if "@removed" in entry:
                items.append(SourceRemoved(source_id))
            elif entry.get("isDraft"):
                continue
            else:
                wanted.append(entry)
        contents = (
            self._mime([str(entry.get("id", "")) for entry in wanted])
            if self.mode == "readonly"
            else {}
        )
        for entry in wanted:
            message_id = str(entry.get("id", ""))
            source_id = f"{folder.key}/{message_id}"
            if self.mode == "readonly" and message_id not in contents:
                items.append(SourceRemoved(source_id))  # deleted since the page was read
                continue
            try:
                items.append(self._message(folder, entry, source_id, contents.get(message_id)))
            except BadItem as exc:
                items.append(Unreadable(source_id, exc.reason))
        return items

    def _mime(self, ids: Sequence[str]) -> dict[str, bytes | BadItem]:
        """Each message's MIME by id, in JSON batches; a message deleted since the delta
        page was read is left out."""
        parts = [
            Part(str(n), f"{self._user()}/messages/{quote(i, safe='')}/$value", self._prefer())
            for n, i in enumerate(ids)
        ]
        found: dict[str, bytes | BadItem] = {}
        for part_id, answer in self.client.batch(parts).items():
            message_id = ids[int(part_id)]
            if answer.status == 404:
                continue
            if answer.status >= 400:
                found[message_id] = BadItem(message_id, f"Graph answered {answer.status}")
                continue
            try:
                found[message_id] = answer.content()
            except ValueError as exc:
                found[message_id] = BadItem(message_id, f"unreadable MIME content: {exc}")
        return found

    def _message(
        self,
        folder: Folder,
        entry: Mapping[str, Any],
        source_id: str,
        raw: bytes | BadItem | None,
    ) -> MailMessage:
        if isinstance(raw, BadItem):
            raise BadItem(source_id, raw.reason)
        try:
            received = _instant(entry.get("receivedDateTime"))
            data = raw if raw is not None else header_only(entry)
        except (ValueError, TypeError, AttributeError) as exc:
            raise BadItem(source_id, f"unreadable Graph message: {exc!r}") from exc
        categories = [str(c) for c in entry.get("categories") or () if isinstance(c, str)]
        return MailMessage(
            source_id=source_id,
            mailbox=self.account,
            raw=data,
            labels=frozenset([folder.name, *categories]),
            thread_id=entry.get("conversationId"),
            internal_date=received,
            truncated=raw is None,
        )

    # ----------------------------------------------------------------- folders

    def _find_folder(self, path: str) -> Folder:
        """A configured folder by display name (``Parent/Child`` below the top level)."""
        parent = f"{self._user()}/mailFolders"
        folder: Folder | None = None
        for name in [p for p in path.split("/") if p]:
            folder = self._child(parent, name, path)
            parent = f"{self._user()}/mailFolders/{quote(folder.key, safe='')}/childFolders"
        if folder is None:
            raise ConnectorError(f"{self.name}: an empty folder name in the config")
        return Folder(folder.key, path)

    def _child(self, parent: str, name: str, path: str) -> Folder:
        url: str | None = f"{parent}?$select=id,displayName&$top=100"
        while url:
            page = self.client.get(url)
            for entry in page.get("value") or []:
                if str(entry.get("displayName", "")).casefold() == name.casefold():
                    return Folder(str(entry["id"]), name)
            url = page.get("@odata.nextLink")
        raise ConnectorError(
            f"{self.name}: no folder {path!r} in {self.account}'s mailbox; "
            "check `folders` in the config"
        )

    def _prefer(self) -> dict[str, str]:
        return {"Prefer": f'IdType="ImmutableId", odata.maxpagesize={self.page_size}'}


def header_only(entry: Mapping[str, Any]) -> bytes:
    """A header-only RFC 5322 message from a Graph message: its internet headers where
    Graph has them (mail that came in from the internet), else its properties."""
    headers = entry.get("internetMessageHeaders")
    if isinstance(headers, list) and headers:
        kept = [
            h
            for h in headers
            if isinstance(h, Mapping) and str(h.get("name", "")).lower() in _HEADERS_READ
        ]
        if any(str(h.get("name", "")).lower() == "from" for h in kept):
            return header_block(kept)
    return header_block(_property_headers(entry))


def _property_headers(entry: Mapping[str, Any]) -> list[dict[str, str]]:
    pairs: list[dict[str, str]] = []

    def add(name: str, value: str | None) -> None:
        if value:
            pairs.append({"name": name, "value": value})

    add("From", _addresses([entry.get("from")]))
    add("Sender", _addresses([entry.get("sender")]))
    add("To", _addresses(entry.get("toRecipients")))
    add("Cc", _addresses(entry.get("ccRecipients")))
    add("Bcc", _addresses(entry.get("bccRecipients")))
    add("Reply-To", _addresses(entry.get("replyTo")))
    add("Subject", str(entry.get("subject") or ""))
    sent = _instant(entry.get("sentDateTime"))
    add("Date", format_datetime(sent) if sent else None)
    add("Message-ID", str(entry.get("internetMessageId") or ""))
    return pairs


def _addresses(recipients: Any) -> str:
    out = []
    for recipient in recipients or ():
        if not isinstance(recipient, Mapping):
            continue
        address = recipient.get("emailAddress") or {}
        email = str(address.get("address") or "").strip()
        if email:
            out.append(formataddr((str(address.get("name") or ""), email), charset="utf-8"))
    return ", ".join(out)


def _instant(value: Any) -> datetime | None:
    """Graph's ``DateTimeOffset`` (ISO 8601, UTC with ``Z``)."""
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
