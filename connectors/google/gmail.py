"""Gmail connector (kind ``gmail``): one mailbox through the Gmail API.

Terms. A message ``id`` is Gmail's immutable id within one mailbox and
``threadId`` its conversation there. ``labelIds`` are Gmail's folders and flags
(INBOX, SENT, TRASH, user labels ``Label_N``). Every change to the mailbox gets
a ``historyId``; ids increase but are not contiguous, and ``users.history.list``
returns the changes after a given one. The *synced scope* is every message
carrying one of the connector's labels (INBOX and SENT by default) and none of
SPAM, TRASH or CHAT.

First sync (no cursor). The mailbox's ``historyId`` is read with
``users.getProfile`` *before* listing, so whatever changes while the listing
runs is replayed by the incremental sync that follows (the agent's writes are
idempotent). ``users.messages.list`` then runs per label, page by page, and each
page's ids are fetched with batch requests of at most 50 ``users.messages.get``
calls. A message listed under an earlier label in the same run (a note to self
in INBOX and SENT) is not fetched again. Each page becomes one
:class:`~connectors.records.Batch` whose cursor names the next page, so an
interrupted first sync resumes where it stopped::

    {"v": 1, "phase": "full", "label_index": i, "page_token": t, "history_id": h}

Batches are bounded by bytes as well (``batch_bytes``, by the raw bytes
received): a page whose messages hold more is yielded in several batches,
those before the page's last carrying the cursor that lists the page again,
so a run cut short between them fetches that page once more (writes are
idempotent). In ``readonly`` mode each batch request asks for as many
messages as a quarter of ``batch_bytes`` holds at the typical size received
so far, so that one response, attachments and all, stays a fraction of a
batch (Gmail's list and history give no sizes before the fetch).

Incremental sync. ``users.history.list(startHistoryId=h)`` with the four change
types, page by page; each page is one Batch (or several, as above, those before
its last carrying the cursor of the page before) and the last page's cursor is
the response's ``historyId``::

    {"v": 1, "phase": "incremental", "history_id": h}

With nothing new that is exactly one API call. A 404 means Google no longer
holds history that old: :class:`~connectors.errors.CursorInvalid`, and the agent
starts a full sync. Within one history page a message added and deleted again is
dropped; a deleted message, or one that left the scope (relabelled, trashed,
marked spam), becomes :class:`~connectors.records.SourceRemoved`; any other
change of a relevant label is refetched and yielded again, so the agent can
re-evaluate labels (a private label added later, a move between Gmail's
category tabs: see :mod:`connectors.google.gmail_history`). A message that
history names but ``messages.get`` answers 404 is gone, not a failure.

Formats. In ``readonly`` mode (scope ``gmail.readonly``) messages are fetched
with ``format=raw``: the whole RFC 822 message (padded base64url), so the agent's
one MIME parser serves Gmail like every other source. Google's sync guide names
FULL or RAW for the first fetch; RAW avoids rebuilding a message from FULL's part
tree. In ``metadata`` mode (scope ``gmail.metadata``) messages are fetched with
``format=metadata`` and the headers in :data:`METADATA_HEADERS`, and ``raw`` is a
header-only message (``truncated=True``; see :mod:`connectors.google.gmail_message`
for header values Gmail may return decoded). That scope forbids ``q`` and the
``full``/``raw`` formats, so the backfill window ``since`` is applied by
``internalDate`` there: listings come newest first and give no dates, so the
last message of each page is looked at with a ``minimal`` get, and the page
that crosses ``since`` is cut by a binary search of such gets, which ends the
label; only messages within the window are fetched. In ``readonly`` mode an
``after:`` query bounds the listing itself.

Errors and quota. Calls are retried per :mod:`connectors.google.errors`; parts of
a batch that fail with a retryable error are re-sent (the client library only
re-sends 401 parts). Every answer renews the retry budget, so it lasts as long
as work gets done. :class:`~connectors.google.quota.QuotaMeter` counts the units
spent per method (only calls and batch parts that got an answer) and paces the
run under the per-user rate. A connector object
owns one ``httplib2.Http``, which is not thread-safe: use it from one thread at
a time.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import google.auth.credentials
from googleapiclient.errors import HttpError

from config.schema import DEFAULT_BATCH_BYTES
from connectors.batching import Budget, check_batch_bytes, item_bytes
from connectors.capabilities import ScopeSize
from connectors.errors import BadItem, ConnectorError, CursorInvalid
from connectors.google.errors import classify_exception
from connectors.google.gmail_history import (
    EXCLUDED_LABELS,
    Change,
    in_scope,
    needs_fetch,
    net_changes,
    resolve_change,
)
from connectors.google.gmail_message import (
    Mode,
    decode_base64url,
    to_mail_message,
)
from connectors.google.quota import DEFAULT_RATE, GMAIL_UNITS
from connectors.google.service import GoogleApiClient
from connectors.headers import HEADERS_READ, header_block
from connectors.records import Batch, Cursor, Item, MailMessage, Unreadable
from connectors.retry import Action, RetryPolicy, Verdict

log = logging.getLogger(__name__)

__all__ = [
    "EXCLUDED_LABELS",
    "METADATA_HEADERS",
    "Change",
    "FullCursor",
    "GmailConnector",
    "IncrementalCursor",
    "Mode",
    "decode_base64url",
    "header_block",
    "in_scope",
    "needs_fetch",
    "net_changes",
    "parse_cursor",
    "resolve_change",
    "to_mail_message",
]

KIND = "gmail"
DEFAULT_LABELS = ("INBOX", "SENT")
DEFAULT_API_ENDPOINT = "https://gmail.googleapis.com/"
METADATA_HEADERS = HEADERS_READ
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
MAX_BATCH = 50
"""Google advises against batches of more than 50 calls (rate limiting)."""
CURSOR_VERSION = 1
FIRST_SIZE_GUESS = 1024 * 1024
"""What a message is taken to weigh in ``readonly`` mode before any has been received."""
SIZE_WEIGHT = 0.1
"""How much each message received moves the typical size: a mailbox's size mix shows
within a few dozen messages, and one big attachment does not shrink requests for long."""


# --------------------------------------------------------------------------- cursors


@dataclass(frozen=True)
class FullCursor:
    """A first sync in progress: the next page to list, and the history id to go on from."""

    label_index: int
    page_token: str | None
    history_id: str

    def to_json(self) -> Cursor:
        return {
            "v": CURSOR_VERSION,
            "phase": "full",
            "label_index": self.label_index,
            "page_token": self.page_token,
            "history_id": self.history_id,
        }


@dataclass(frozen=True)
class IncrementalCursor:
    """Every change up to ``history_id`` has been delivered."""

    history_id: str

    def to_json(self) -> Cursor:
        return {"v": CURSOR_VERSION, "phase": "incremental", "history_id": self.history_id}


def parse_cursor(cursor: Cursor | None, label_count: int) -> FullCursor | IncrementalCursor | None:
    """A stored cursor back into its type; anything unexpected is CursorInvalid."""
    if cursor is None:
        return None
    if not isinstance(cursor, Mapping) or cursor.get("v") != CURSOR_VERSION:
        raise CursorInvalid(f"not a version-{CURSOR_VERSION} Gmail cursor: {cursor!r}")
    history_id = cursor.get("history_id")
    if not isinstance(history_id, str) or not history_id.isdigit():
        raise CursorInvalid(f"Gmail cursor has no valid history_id: {cursor!r}")
    phase = cursor.get("phase")
    if phase == "incremental":
        return IncrementalCursor(history_id)
    if phase == "full":
        index = cursor.get("label_index")
        token = cursor.get("page_token")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < label_count:
            raise CursorInvalid(f"Gmail cursor's label_index is out of range: {cursor!r}")
        if token is not None and not isinstance(token, str):
            raise CursorInvalid(f"Gmail cursor's page_token is not a string: {cursor!r}")
        return FullCursor(index, token, history_id)
    raise CursorInvalid(f"Gmail cursor has an unknown phase: {cursor!r}")


def _after_page(
    label_index: int, next_token: str | None, label_count: int, history_id: str
) -> FullCursor | IncrementalCursor:
    """The cursor that follows a listed page."""
    if next_token:
        return FullCursor(label_index, next_token, history_id)
    if label_index + 1 < label_count:
        return FullCursor(label_index + 1, None, history_id)
    return IncrementalCursor(history_id)


# --------------------------------------------------------------------------- connector


class _Gone(ConnectorError):
    """A message that no longer exists (404), where that is news and not a failure."""


def _id_key(message_id: str) -> int | str:
    """A message id as kept in memory: Gmail's hex ids as ints, half the size of strings."""
    try:
        return int(message_id, 16)
    except ValueError:
        return message_id


class GmailConnector(GoogleApiClient):
    """Changes in one Gmail mailbox since a cursor (see the module docstring).

    ``labels`` are label ids. ``since`` (aware) bounds the first sync.
    ``api_endpoint`` defaults to Google's. The retry budget and the quota rate
    (units per second; ``None`` counts without pacing) apply per run; ``sleep``,
    ``clock`` and ``rand`` are injectable so tests run fast and deterministically.
    A batch holds at most one page of messages and ``batch_bytes`` of raw mail (or
    one larger message alone). ``watched_labels`` names labels the filters read
    that history would otherwise take as cosmetic (a private or share label set
    to ``STARRED`` or ``IMPORTANT``): a change of one re-evaluates the message.
    """

    kind = KIND

    def __init__(
        self,
        name: str,
        account: str,
        credentials: google.auth.credentials.Credentials,
        *,
        mode: Mode = "metadata",
        labels: Sequence[str] = DEFAULT_LABELS,
        since: datetime | None = None,
        api_endpoint: str | None = None,
        quota_rate: float | None = DEFAULT_RATE,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        timeout: float = 60.0,
        page_size: int = 500,
        batch_size: int = MAX_BATCH,
        batch_bytes: int = DEFAULT_BATCH_BYTES,
        watched_labels: Collection[str] = (),
    ) -> None:
        if mode not in ("metadata", "readonly"):
            raise ValueError(f"Gmail mode must be 'metadata' or 'readonly', not {mode!r}")
        if not labels:
            raise ValueError("a Gmail connector needs at least one label")
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be within 1..{MAX_BATCH}")
        if not 1 <= page_size <= 500:
            raise ValueError("page_size must be within 1..500")
        super().__init__(
            name,
            credentials,
            api="gmail",
            version="v1",
            api_endpoint=api_endpoint or DEFAULT_API_ENDPOINT,
            units=GMAIL_UNITS,
            quota_rate=quota_rate,
            retry_policy=retry_policy,
            sleep=sleep,
            clock=clock,
            rand=rand,
            timeout=timeout,
        )
        self.account = account
        self.mode: Mode = mode
        self.labels = tuple(labels)
        self.since = since
        self.watched_labels = frozenset(label.upper() for label in watched_labels)
        self._unreadable: list[Unreadable] = []
        self._page_size = page_size
        self._batch_size = batch_size
        self.batch_bytes = check_batch_bytes(batch_bytes)
        self._typical_size = float(FIRST_SIZE_GUESS)

    def __repr__(self) -> str:
        return f"GmailConnector(name={self.name!r}, account={self.account!r}, mode={self.mode!r})"

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        """Batches of changes since ``cursor``; ``None`` means a first (full) sync."""
        position = parse_cursor(cursor, len(self.labels))
        self._start_run()
        if isinstance(position, IncrementalCursor):
            yield from self._incremental(position.history_id)
        else:
            yield from self._full(position)

    def _start_run(self) -> None:
        super()._start_run()
        self._label_map: dict[str, str] | None = None
        self._unreadable = []
        self._listed: set[int | str] = set()
        self._fetched: set[str] = set()
        """Messages fetched in this run: a fetch returns a message as it is now, so a
        later history page of the same run that changes it again needs no second one."""

    # -- what the mailbox holds (connectors test, verify)

    def first_sync_size(self) -> list[ScopeSize]:
        """What a first sync would read, without reading it: per label, then the mailbox.

        ``users.getProfile`` gives the address and the mailbox's total, one
        ``users.messages.list`` per label with ``maxResults=1`` Google's
        ``resultSizeEstimate``; one listed message is then fetched in the format
        the sync uses, which proves the grant covers the connector's scope.
        """
        self._start_run()
        profile = self._execute("users.getProfile", self._users().getProfile(userId="me"))
        labels: dict[str, int] = {}
        sample: str | None = None
        for label in self.labels:
            response = self._execute(
                "users.messages.list", self._list_request(label, None, page_size=1)
            )
            labels[label] = int(response.get("resultSizeEstimate", 0))
            listed = [str(m["id"]) for m in response.get("messages", ())]
            sample = sample or next(iter(listed), None)
        if sample is not None:
            self._fetch_messages([sample])
            self._take_unreadable()
        sizes = [
            ScopeSize(f"label {label}", count, "messages (Google's estimate)")
            for label, count in labels.items()
        ]
        account = str(profile.get("emailAddress", ""))
        total = int(profile.get("messagesTotal", 0))
        return [*sizes, ScopeSize(f"mailbox {account}", total, "messages in all labels")]

    def inventory(self, cursor: Cursor | None = None) -> Iterator[str]:
        """Ids of the messages in the synced scope, listed per label without fetching them.

        With a first-sync cursor, only the labels that sync has finished. The
        window ``since`` applies as in the first sync: by query in ``readonly``
        mode; in ``metadata`` mode the listing stops after the first page whose
        oldest message (one ``minimal`` get) is older than ``since``, and older
        messages on that page are left for the caller to judge by their date.
        """
        position = parse_cursor(cursor, len(self.labels))
        self._start_run()
        done = position.label_index if isinstance(position, FullCursor) else len(self.labels)
        seen: set[str] = set()
        for label in self.labels[:done]:
            page_token: str | None = None
            while True:
                response = self._list_page(label, page_token)
                ids = [str(m["id"]) for m in response.get("messages", ())]
                yield from (i for i in ids if i not in seen)
                seen.update(ids)
                page_token = response.get("nextPageToken") or None
                if page_token is None or (ids and self._older_than_window(ids[-1])):
                    break

    def lookup(self, source_ids: Iterable[str]) -> Iterator[Item]:
        """The messages with these ids, fetched as the sync does; gone ones yield nothing."""
        ids = list(dict.fromkeys(source_ids))
        for start in range(0, len(ids), self._page_size):
            for fetched, _last in self._fetch_groups(ids[start : start + self._page_size]):
                yield from (message for message in fetched.values() if message is not None)
                yield from self._take_unreadable()

    def _older_than_window(self, message_id: str) -> bool:
        """Whether the message arrived before ``since`` (one ``minimal`` get); one gone
        meanwhile is not (the fetch will find it gone)."""
        if self.since is None or self.mode == "readonly":
            return False
        request = self._users().messages().get(userId="me", id=message_id, format="minimal")
        try:
            resource = self._execute("users.messages.get", request, missing=_Gone)
        except _Gone:
            return False
        millis = resource.get("internalDate")
        return millis is not None and int(millis) < self.since.timestamp() * 1000

    def _with_label_names(self, message: MailMessage) -> MailMessage:
        """Add the names of user labels to their ids.

        Admins configure labels by name (``privacy.private_label = "Private"``)
        while Gmail reports ids (``Label_12``); the scope checks keep using the
        ids. The names are read once per run, and only when a user label shows up.
        """
        user_labels = [label for label in message.labels if label.startswith("Label_")]
        if not user_labels:
            return message
        if self._label_map is None:
            self._label_map = self.label_names()
        names = {self._label_map[label] for label in user_labels if label in self._label_map}
        return replace(message, labels=message.labels | names)

    def label_names(self) -> dict[str, str]:
        """Label id -> name (``users.labels.list``, one unit).

        ``MailMessage.labels`` holds ids (``Label_12``); this lets the agent find
        the id of a label configured by name, such as the private label.
        """
        response = self._execute("users.labels.list", self._users().labels().list(userId="me"))
        labels = response.get("labels", ())
        return {str(label["id"]): str(label.get("name", label["id"])) for label in labels}

    # -- first sync

    def _full(self, start: FullCursor | None) -> Iterator[Batch]:
        if start is None:
            profile = self._execute("users.getProfile", self._users().getProfile(userId="me"))
            start = FullCursor(0, None, str(profile["historyId"]))
        page_token = start.page_token
        for index in range(start.label_index, len(self.labels)):
            while True:
                response = self._list_page(self.labels[index], page_token)
                here = FullCursor(index, page_token, start.history_id)
                page_token = yield from self._page(index, response, here)
                if page_token is None:
                    break

    def _page(
        self, index: int, response: Mapping[str, Any], here: FullCursor
    ) -> Generator[Batch, None, str | None]:
        """The batches of one listed page, ``here`` the cursor that lists it; returns the
        token of the next page (None: the label is done).

        Messages listed under an earlier label in this run were fetched there and are
        not fetched again; in ``metadata`` mode the page is cut where the window
        ``since`` ends (:meth:`_within_window`), and the listing of the label with it.
        """
        ids = [str(m["id"]) for m in response.get("messages", ())]
        next_token: str | None = response.get("nextPageToken") or None
        within = self._within_window(ids)
        if within < len(ids):
            ids, next_token = ids[:within], None  # newest first: the rest, and later pages, older
        ids = self._not_listed_before(ids, index)
        for group, last in self._fetch_groups(ids):
            fetched = [m for m in group.values() if m is not None]
            items: list[Item] = [m for m in fetched if self._keep_in_full_sync(m, index)]
            items += self._take_unreadable()
            del group, fetched
            if not last:
                yield Batch(items, here.to_json())
                del items  # let go before the next group is fetched
                continue
            after = _after_page(index, next_token, len(self.labels), here.history_id)
            yield Batch(items, after.to_json())
        return next_token

    def _not_listed_before(self, ids: Sequence[str], index: int) -> list[str]:
        """``ids`` less those listed under an earlier label in this run (a message in
        INBOX and SENT is fetched once); remembers them for the labels still to come."""
        fresh = [i for i in ids if _id_key(i) not in self._listed]
        if index < len(self.labels) - 1:
            self._listed.update(_id_key(i) for i in fresh)
        return fresh

    def _within_window(self, ids: Sequence[str]) -> int:
        """How many of a listed page's ``ids`` (newest first) are not older than ``since``.

        Only ``metadata`` mode needs it (``readonly`` lists with an ``after:``
        query, which that scope forbids), and ``messages.list`` gives no dates: the
        page's last message is looked at (one ``minimal`` get), and only when it is
        older, a binary search finds the first older one. So a page inside the window
        costs one get more, and the page that crosses it a handful, where fetching
        the whole page in the sync's format would cost them all.
        """
        if self.since is None or self.mode == "readonly" or not ids:
            return len(ids)
        if not self._older_than_window(ids[-1]):
            return len(ids)
        low, high = 0, len(ids) - 1
        while low < high:
            middle = (low + high) // 2
            if self._older_than_window(ids[middle]):
                high = middle
            else:
                low = middle + 1
        return low

    def _list_page(self, label: str, page_token: str | None) -> dict[str, Any]:
        """One ``messages.list`` page. A page token Google no longer accepts (a 400
        on a resumed cursor) means the listing must start again: CursorInvalid."""
        request = self._list_request(label, page_token)
        try:
            return self._execute("users.messages.list", request)
        except ConnectorError as exc:
            if page_token and type(exc) is ConnectorError:
                raise CursorInvalid(f"Gmail rejected the saved page token: {exc}") from exc
            raise

    def _list_request(
        self, label: str, page_token: str | None, *, page_size: int | None = None
    ) -> Any:
        query = None
        if self.since is not None and self.mode == "readonly":
            query = f"after:{int(self.since.timestamp()) - 1}"
        return (
            self._users()
            .messages()
            .list(
                userId="me",
                labelIds=[label],
                includeSpamTrash=False,
                maxResults=page_size or self._page_size,
                pageToken=page_token,
                q=query,
            )
        )

    def _keep_in_full_sync(self, message: MailMessage, index: int) -> bool:
        """In scope, within the window, and not already yielded under an earlier label."""
        if not in_scope(message.labels, self.labels):
            return False
        if any(label in message.labels for label in self.labels[:index]):
            return False
        return not self._before_since(message)

    def _before_since(self, message: MailMessage) -> bool:
        return (
            self.since is not None
            and message.internal_date is not None
            and message.internal_date < self.since
        )

    # -- incremental sync

    def _incremental(self, start: str) -> Iterator[Batch]:
        position = start
        page_token: str | None = None
        while True:
            request = (
                self._users()
                .history()
                .list(
                    userId="me",
                    startHistoryId=start,
                    historyTypes=list(HISTORY_TYPES),
                    maxResults=self._page_size,
                    pageToken=page_token,
                )
            )
            response = self._execute("users.history.list", request, missing=CursorInvalid)
            records: list[Mapping[str, Any]] = response.get("history", [])
            page_token = response.get("nextPageToken") or None
            if page_token is None:
                reached = str(response.get("historyId") or position)
            else:
                reached = str(records[-1]["id"]) if records else position
            for items, last in self._apply_history(records):
                if not last and items:
                    yield Batch(items, IncrementalCursor(position).to_json())
                elif last and (items or reached != position):
                    yield Batch(items, IncrementalCursor(reached).to_json())
                del items  # let go before the next group is fetched
            position = reached
            if page_token is None:
                return

    def _apply_history(
        self, records: Sequence[Mapping[str, Any]]
    ) -> Iterator[tuple[list[Item], bool]]:
        """What one history page comes to, in parts within ``batch_bytes``, each with
        whether it is the page's last; the last also holds the changes fetched for nothing."""
        changes = {
            mid: change
            for mid, change in net_changes(records, self.watched_labels).items()
            if change.deleted or mid not in self._fetched
        }
        wanted = [mid for mid, change in changes.items() if needs_fetch(change, self.labels)]
        self._fetched.update(wanted)
        needed = set(wanted)
        given: set[str] = set()
        for fetched, last in self._fetch_groups(wanted):
            ids = [mid for mid in changes if mid not in given and (last or mid in fetched)]
            given.update(ids)
            items = self._resolved(ids, changes, needed, fetched)
            items.extend(self._take_unreadable())
            yield items, last

    def _resolved(
        self,
        ids: Sequence[str],
        changes: Mapping[str, Change],
        needed: set[str],
        fetched: Mapping[str, MailMessage | None],
    ) -> list[Item]:
        """The items the changes of ``ids`` become; one that needed a fetch and was not
        fetched (unreadable) is left to its ``Unreadable``."""
        items: list[Item] = []
        for message_id in ids:
            change = changes[message_id]
            if not (change.added or change.deleted or change.relabelled):
                continue
            if message_id in needed and message_id not in fetched:
                continue
            item = resolve_change(message_id, change, fetched.get(message_id), self.labels)
            if item is not None:
                items.append(item)
        return items

    def _take_unreadable(self) -> list[Unreadable]:
        """Messages that could not be read, to quarantine in the batch that passes them."""
        taken, self._unreadable = self._unreadable, []
        return taken

    # -- fetching messages

    def _get_request(self, message_id: str) -> Any:
        messages = self._users().messages()
        if self.mode == "readonly":
            return messages.get(userId="me", id=message_id, format="raw")
        return messages.get(
            userId="me",
            id=message_id,
            format="metadata",
            metadataHeaders=list(METADATA_HEADERS),
        )

    def _fetch_messages(self, ids: Sequence[str]) -> dict[str, MailMessage | None]:
        """``ids`` fetched, keyed in ``ids`` order (see :meth:`_fetch_groups`)."""
        messages: dict[str, MailMessage | None] = {}
        for group, _last in self._fetch_groups(ids):
            messages.update(group)
        return {i: messages[i] for i in dict.fromkeys(ids) if i in messages}

    def _fetch_groups(
        self, ids: Sequence[str]
    ) -> Iterator[tuple[dict[str, MailMessage | None], bool]]:
        """``ids`` fetched in groups within ``batch_bytes``, each with whether it is the last
        (there is always one, empty for no ids).

        Batch requests hold at most ``batch_size`` calls, fewer in ``readonly``
        mode (:meth:`_calls`). ``None`` marks a message that is gone (404); an
        unreadable one is left out and kept for ``_take_unreadable``. Parts that
        fail with a retryable error are re-sent after a backoff whose exponent is
        the number of times the same message has failed.
        """
        failures: Counter[str] = Counter()
        pending = list(dict.fromkeys(ids))
        group: dict[str, MailMessage | None] = {}
        budget = Budget(self.batch_bytes)
        while pending:
            calls = self._calls()
            chunk, pending = pending[:calls], pending[calls:]
            resources: dict[str, Mapping[str, Any] | None] = {}
            retry, verdict = self._run_batch(chunk, resources)
            if retry and verdict is not None:
                self._retrier.backoff(verdict, max(failures[i] for i in retry))
                failures.update(retry)
                pending = retry + pending
            for message_id in chunk:
                if message_id not in resources:
                    continue
                resource = resources.pop(message_id)
                message = None if resource is None else self._readable(resource)
                if resource is not None and message is None:
                    continue
                size = item_bytes(message) if message is not None else 0
                if not budget.admits(size):
                    yield group, False
                    group = {}
                    budget.reset()
                group[message_id] = message
                budget.add(size)
        yield group, True

    def _calls(self) -> int:
        """Calls in the next batch request: ``batch_size``; in ``readonly`` mode no more
        than a quarter of ``batch_bytes`` holds at the typical size of the messages
        received (a moving average, from :data:`FIRST_SIZE_GUESS`)."""
        if self.mode != "readonly":
            return self._batch_size
        per_call = self.batch_bytes / 4 / max(self._typical_size, 1.0)
        return max(1, min(self._batch_size, int(per_call)))

    def _readable(self, resource: Mapping[str, Any]) -> MailMessage | None:
        """The message, or None when it cannot be read (kept for ``_take_unreadable``)."""
        try:
            message = to_mail_message(resource, mailbox=self.account, mode=self.mode)
        except BadItem as bad:
            log.warning("gmail %s: unreadable message %s: %s", self.name, bad.source_id, bad)
            self._unreadable.append(Unreadable(bad.source_id, bad.reason))
            return None
        self._typical_size += (len(message.raw) - self._typical_size) * SIZE_WEIGHT
        return self._with_label_names(message)

    def _run_batch(
        self, ids: Sequence[str], resources: dict[str, Mapping[str, Any] | None]
    ) -> tuple[list[str], Verdict | None]:
        """One batch request; returns the ids to re-send and the failure to back off on.

        The quota meter paces the whole batch before it is sent, then takes back
        the parts that got no answer: Google meters the parts it answers, and an
        envelope that failed answered none. A part answered is progress
        (:meth:`~connectors.google.errors.Retrier.progress`).
        """
        self._ensure_token()
        self._quota.spend("users.messages.get", len(ids))
        answers: dict[str, tuple[Any, HttpError | None]] = {}

        def collect(request_id: str, response: Any, exception: HttpError | None) -> None:
            answers[request_id] = (response, exception)

        batch = self._service_object().new_batch_http_request(callback=collect)
        for message_id in ids:
            batch.add(self._get_request(message_id), request_id=message_id)
        try:
            batch.execute()
        except Exception as exc:
            unanswered = [i for i in ids if i not in answers]
            self._quota.refund("users.messages.get", len(unanswered))
            verdict = classify_exception(exc)
            if verdict is None:
                raise
            if verdict.action is not Action.RETRY:
                raise verdict.error(auth_hint=self._auth_hint()) from exc
            return unanswered, verdict
        self._quota.refund("users.messages.get", sum(1 for i in ids if i not in answers))
        return self._sort_answers(ids, answers, resources)

    def _sort_answers(
        self,
        ids: Sequence[str],
        answers: Mapping[str, tuple[Any, HttpError | None]],
        resources: dict[str, Mapping[str, Any] | None],
    ) -> tuple[list[str], Verdict | None]:
        """The parts of an answered batch into ``resources`` (``None``: gone); returns the
        ids to re-send and the failure to back off on; any other failure is raised."""
        retry: list[str] = []
        worst: Verdict | None = None
        for message_id in ids:
            response, error = answers.get(message_id, (None, None))
            if error is None and response is not None:
                resources[message_id] = response
                continue
            verdict = (
                classify_exception(error)
                if error is not None
                else Verdict(Action.RETRY, None, "noAnswer", "batch part without an answer")
            )
            if verdict is None or verdict.action is Action.MISSING:
                resources[message_id] = None
                continue
            if verdict.action is not Action.RETRY:
                raise verdict.error(auth_hint=self._auth_hint()) from error
            retry.append(message_id)
            if worst is None or (verdict.retry_after or 0) > (worst.retry_after or 0):
                worst = verdict
        if any(message_id in resources for message_id in ids):
            self._retrier.progress()
        return retry, worst

    # -- plumbing

    def _users(self) -> Any:
        return self._service_object().users()
