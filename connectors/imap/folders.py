"""The folder sync engine: from a session and a cursor to batches of items.

One run:

1. One LIST (with LIST-STATUS where offered) names the folders to sync:
   INBOX and the ``\\Sent`` folder unless left out, plus the folders named.
   A folder whose status proves nothing changed since the cursor costs
   nothing more, so an unchanged mailbox costs one round trip beyond login.
2. A changed folder is EXAMINEd. Where the cursor has a modseq and the
   folder's moved on, expunged UIDs become ``SourceRemoved`` and messages
   whose flags changed are fetched again, since their labels changed (with
   QRESYNC both come with the EXAMINE; with CONDSTORE alone flag changes come
   from a MODSEQ search and expunges go unseen; without CONDSTORE only new
   mail is seen). Listing every UID to find expunges would cost as much as
   the folder is large on every run, and an expunge only drops a source row
   (the interaction stays), so it is not done.
3. New mail, in UID chunks of ``batch_size``. A chunk's outline (sizes and
   structure) comes first; its headers and text are then fetched, and
   yielded, in batches whose bytes stay within ``batch_bytes``, counted
   from those sizes before a byte is fetched (a message larger than that
   alone is a batch of its own). Each batch carries the cursor up to its
   last UID, so a run cut short resumes after the last batch committed.

A folder whose UIDVALIDITY changed is synced again from nothing; the third
change in a row raises a ``ConnectorError``, because a server that renumbers
on every visit would otherwise have its folder downloaded again on every run.
A message whose FETCH response cannot be used is yielded as ``Unreadable``
in its batch, for the agent to quarantine, so one broken message never stops
the sync.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, TypeVar

from connectors.batching import within
from connectors.errors import BadItem, ConnectorError
from connectors.imap.cursor import FolderState, dump_cursor
from connectors.imap.message import build_message, first_text_part, raw_size_bound
from connectors.imap.session import Examined, FolderStatus, ImapSession, Listing
from connectors.records import Batch, Item, SourceRemoved, Unreadable

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_UIDVALIDITY_CHANGES = 3


@dataclass(frozen=True)
class Scope:
    """What one connector syncs, and how much of it per batch."""

    name: str
    address: str
    folders: tuple[str, ...]
    default_folders: bool
    since: date | None
    batch_size: int
    text_bytes: int
    batch_bytes: int

    def targets(self, listed: Listing) -> list[str]:
        """The folders to sync, in order: INBOX, the ``\\Sent`` folder, then those named."""
        names: list[str] = []
        if self.default_folders:
            names.append("INBOX")
            names += [name for name, (special, _) in listed.items() if special == "\\Sent"][:1]
        for name in self.folders:
            if name not in listed:
                log.warning("%s: folder %r does not exist on the server; skipped", self.name, name)
            elif name not in names:
                names.append(name)
        return names


def unchanged(state: FolderState | None, status: FolderStatus | None) -> bool:
    """Whether a folder's status proves nothing happened since ``state``."""
    if state is None or status is None or status.uidnext is None:
        return False
    return (
        status.uidvalidity == state.uidvalidity
        and status.uidnext <= state.last_uid + 1
        and (status.highestmodseq is None or status.highestmodseq == state.highestmodseq)
    )


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _mark_last(items: Iterable[T]) -> Iterator[tuple[bool, T]]:
    """Each item with whether it is the last, looking one ahead (the items stay lazy)."""
    iterator = iter(items)
    try:
        held = next(iterator)
    except StopIteration:
        return
    for item in iterator:
        yield False, held
        held = item
    yield True, held


class FolderSync:
    """The sync of a :class:`Scope`'s folders over one session (module docstring).

    ``on_inbox`` hears INBOX's status whenever a run looks at it, so an IDLE
    watch can tell whether mail arrived since.
    """

    def __init__(
        self,
        scope: Scope,
        session: ImapSession,
        on_inbox: Callable[[FolderStatus | None], None] = lambda _status: None,
    ) -> None:
        self.scope = scope
        self.session = session
        self._on_inbox = on_inbox

    def run(self, states: dict[str, FolderState]) -> Iterator[Batch]:
        """Batches of new, changed and removed messages since ``states``, which it updates."""
        listed = self.session.list_folders()
        targets = self.scope.targets(listed)
        for gone in set(states) - set(targets):
            del states[gone]
        for folder in targets:
            special, status = listed[folder]
            yield from self._sync_folder(folder, special, status, states)

    def held(self, states: Mapping[str, FolderState] | None) -> Iterator[tuple[str, list[str]]]:
        """Per synced folder, the source ids of the messages in it (within ``since``).

        With ``states``, only what they cover: the folders they know, under the
        same UIDVALIDITY, up to their ``last_uid``. One EXAMINE and one UID
        SEARCH per folder; no message is fetched.
        """
        session = self.session
        for folder in self.scope.targets(session.list_folders()):
            state = states.get(folder) if states is not None else None
            if states is not None and state is None:
                continue
            uidvalidity = session.examine(folder, None).status.uidvalidity
            if state is not None and state.uidvalidity != uidvalidity:
                continue
            yield (
                folder,
                [
                    f"{folder}/{uidvalidity}/{uid}"
                    for uid in session.search_new(0, self.scope.since)
                    if state is None or uid <= state.last_uid
                ],
            )

    def lookup(self, wanted: Mapping[tuple[str, int], list[int]]) -> Iterator[Item]:
        """The messages of ``(folder, uidvalidity) -> uids``; a folder gone or renumbered
        yields nothing."""
        listed = self.session.list_folders()
        for (folder, uidvalidity), uids in wanted.items():
            if folder not in listed:
                continue
            if self.session.examine(folder, None).status.uidvalidity != uidvalidity:
                continue
            special = listed[folder][0]
            for chunk in chunks(sorted(uids), self.scope.batch_size):
                for _last, items in self.groups(folder, special, uidvalidity, chunk, known=False):
                    yield from items

    def _sync_folder(
        self,
        folder: str,
        special: str | None,
        status: FolderStatus | None,
        states: dict[str, FolderState],
    ) -> Iterator[Batch]:
        old = states.get(folder)
        examined = None if unchanged(old, status) else self.session.examine(folder, old)
        if examined is not None:
            status = examined.status
        if folder == "INBOX":
            self._on_inbox(status)
        if old is not None and unchanged(old, status):
            if old.uidvalidity_changes:
                states[folder] = replace(old, uidvalidity_changes=0)
                yield Batch([], dump_cursor(states))
            return
        assert examined is not None
        current = examined.status
        state = self._restart_if_renumbered(folder, old, current)

        def emit(items: Sequence[Item], new_state: FolderState) -> Batch:
            states[folder] = new_state
            return Batch(list(items), dump_cursor(states))

        committed = old
        after_changes = replace(state, highestmodseq=current.highestmodseq)
        if state.highestmodseq is not None and current.highestmodseq != state.highestmodseq:
            for last, items in _mark_last(self._changes(folder, special, state, examined)):
                committed = after_changes if last else state
                yield emit(items, committed)
        state = after_changes

        new = self.session.search_new(state.last_uid, self.scope.since)
        for chunk in chunks(new, self.scope.batch_size):
            for last_uid, items in self.groups(
                folder, special, state.uidvalidity, chunk, known=False
            ):
                state = replace(state, last_uid=last_uid)
                committed = state
                yield emit(items, state)
                del items  # not held while the next group is fetched

        if current.uidnext:
            state = replace(state, last_uid=max(state.last_uid, current.uidnext - 1))
        if state != committed:
            yield emit([], state)

    def _restart_if_renumbered(
        self, folder: str, old: FolderState | None, current: FolderStatus
    ) -> FolderState:
        if old is None:
            return FolderState(uidvalidity=current.uidvalidity)
        if old.uidvalidity == current.uidvalidity:
            return replace(old, uidvalidity_changes=0)
        changes = old.uidvalidity_changes + 1
        name = self.scope.name
        if changes >= MAX_UIDVALIDITY_CHANGES:
            raise ConnectorError(
                f"{name}: UIDVALIDITY of folder {folder!r} changed on {changes} syncs in a "
                "row, so every sync downloads it again; the server is not keeping its UIDs "
                "(check its index files), then run a full sync of this connector"
            )
        log.warning(
            "%s: UIDVALIDITY of %r changed (%s -> %s); syncing the folder again",
            name, folder, old.uidvalidity, current.uidvalidity,
        )  # fmt: skip
        return FolderState(uidvalidity=current.uidvalidity, uidvalidity_changes=changes)

    def _changes(
        self, folder: str, special: str | None, state: FolderState, examined: Examined
    ) -> Iterator[list[Item]]:
        """Item lists for the expunges and flag changes of already-synced messages."""
        assert state.highestmodseq is not None
        session = self.session
        if session.qresync:
            vanished, changed = set(examined.vanished), examined.changed
        elif session.condstore and state.last_uid:
            vanished = set()
            changed = tuple(session.changed_since(state.last_uid, state.highestmodseq))
        else:
            return
        for chunk in chunks(sorted(vanished), self.scope.batch_size):
            yield [SourceRemoved(f"{folder}/{state.uidvalidity}/{uid}") for uid in chunk]
        refetch = [uid for uid in changed if uid not in vanished]
        for chunk in chunks(refetch, self.scope.batch_size):
            for _last, items in self.groups(folder, special, state.uidvalidity, chunk, known=True):
                yield items

    def groups(
        self,
        folder: str,
        special: str | None,
        uidvalidity: int,
        chunk: Sequence[int],
        *,
        known: bool,
    ) -> Iterator[tuple[int, list[Item]]]:
        """The chunk's messages in groups within ``batch_bytes``, each with the last UID
        it covers (the last group's is the chunk's last).

        The outline's sizes bound each message's bytes before it is fetched
        (:func:`~connectors.imap.message.raw_size_bound`); a group's header and
        text are fetched only when the group before it has been taken.
        """
        outline = self.session.outline(chunk)
        text_bytes = self.scope.text_bytes

        def size(uid: int) -> int:
            got = outline.get(uid)
            if got is None:
                return 0
            return raw_size_bound(got.get(b"RFC822.SIZE"), got.get(b"BODYSTRUCTURE"), text_bytes)

        for group in within(chunk, size, self.scope.batch_bytes):
            yield group[-1], self._messages(folder, special, uidvalidity, group, outline, known)

    def _messages(
        self,
        folder: str,
        special: str | None,
        uidvalidity: int,
        uids: Sequence[int],
        outline: Mapping[int, Mapping[bytes, Any]],
        known: bool,
    ) -> list[Item]:
        """The messages of ``uids``; one the server no longer has is removed if ``known``.

        An unusable response becomes an ``Unreadable`` item.
        """
        paths = {}
        for uid in uids:
            if uid in outline:
                part = first_text_part(outline[uid].get(b"BODYSTRUCTURE"))
                paths[uid] = part.path if part else ""
        texts = self.session.texts(paths, self.scope.text_bytes)
        items: list[Item] = []
        for uid in uids:
            if uid not in texts:
                if known:
                    items.append(SourceRemoved(f"{folder}/{uidvalidity}/{uid}"))
                continue
            try:
                items.append(
                    build_message(
                        folder=folder,
                        uidvalidity=uidvalidity,
                        uid=uid,
                        data={**outline[uid], **texts.pop(uid)},
                        mailbox=self.scope.address,
                        special_use=special,
                        text_bytes=self.scope.text_bytes,
                    )
                )
            except BadItem as bad:
                log.warning(
                    "imap %s: unreadable message %s: %s", self.scope.name, bad.source_id, bad
                )
                items.append(Unreadable(bad.source_id, bad.reason))
        return items
