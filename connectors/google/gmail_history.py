"""What one window of Gmail history means for each message: the pure part of incremental sync.

``users.history.list`` reports changes, not states: a message added, deleted,
or relabelled, each record naming the message and (usually) its labels after
the change. :func:`net_changes` folds one page of records into one
:class:`Change` per message; :func:`needs_fetch` says which must be fetched to
be yielded again, and :func:`resolve_change` what each becomes.

A label change matters when it can change what the agent does with the
message: its scope (INBOX, SENT, SPAM, TRASH, CHAT), the privacy labels
(any user label, and any label the connector is told the filters read),
and Gmail's categories (``CATEGORY_*``), since the filters skip Promotions,
Social, Updates and Forums: a message moved from Promotions to Primary must
be evaluated again, or it stays unlogged until a full resync. Only read and
star flags and Gmail's importance guess are cosmetic.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.records import Item, MailMessage, SourceRemoved

EXCLUDED_LABELS = frozenset({"SPAM", "TRASH", "CHAT"})
COSMETIC_LABELS = frozenset({"UNREAD", "STARRED", "IMPORTANT"})
"""Label changes no filter reads, unless configured as a private or share label."""


def in_scope(labels: frozenset[str], synced: Sequence[str]) -> bool:
    """Whether a message with ``labels`` belongs to the synced scope."""
    return not labels & EXCLUDED_LABELS and any(label in labels for label in synced)


def relevant(changed: Sequence[str], watched: Collection[str] = ()) -> bool:
    """Whether a change of ``changed`` labels can alter the scope or a filter's verdict.

    ``watched`` holds label ids the filters read although they are otherwise
    cosmetic (a share label set to ``IMPORTANT``)."""
    return any(label not in COSMETIC_LABELS or label in watched for label in changed)


@dataclass
class Change:
    """The net effect of one history window on one message."""

    added: bool = False
    deleted: bool = False
    relabelled: bool = False
    labels: frozenset[str] | None = None


def net_changes(
    records: Sequence[Mapping[str, Any]], watched: Collection[str] = ()
) -> dict[str, Change]:
    """Fold history records into one :class:`Change` per message, in first-seen order."""
    changes: dict[str, Change] = {}

    def entry(item: Mapping[str, Any]) -> Change:
        message = item.get("message") or {}
        change = changes.setdefault(str(message.get("id")), Change())
        if "labelIds" in message:
            change.labels = frozenset(message["labelIds"])
        return change

    for record in records:
        for item in record.get("messagesAdded", ()):
            entry(item).added = True
        for item in record.get("messagesDeleted", ()):
            entry(item).deleted = True
        for kind in ("labelsAdded", "labelsRemoved"):
            for item in record.get(kind, ()):
                change = entry(item)
                if relevant(item.get("labelIds", ()), watched):
                    change.relabelled = True
    changes.pop("None", None)
    return changes


def needs_fetch(change: Change, synced: Sequence[str]) -> bool:
    """Whether a changed message must be fetched: it was added or relabelled and, as
    far as history's latest ``labelIds`` tell, is in scope now. A message that
    history already shows out of scope needs no fetch to be removed."""
    if change.deleted or not (change.added or change.relabelled):
        return False
    return change.labels is None or in_scope(change.labels, synced)


def resolve_change(
    message_id: str,
    change: Change,
    fetched: MailMessage | None,
    synced: Sequence[str],
) -> Item | None:
    """What one changed message becomes: re-yielded, removed, or nothing.

    ``fetched`` is the message as fetched now; ``None`` when it is gone (404)
    or was not fetched because history shows it deleted or out of scope. A
    message first seen in this window and already out of scope was never
    delivered, so there is nothing to remove.
    """
    if change.deleted:
        return None if change.added else SourceRemoved(message_id)
    if fetched is not None and in_scope(fetched.labels, synced):
        return fetched
    if change.added:
        return None
    return SourceRemoved(message_id)
