"""The IMAP connector's cursor: how far each folder's sync has come.

Terms. A folder's messages carry UIDs that only grow; ``UIDVALIDITY`` names
the numbering, and when it changes every UID the client knew is void.
``UIDNEXT`` is the UID the next message will get. Where the server offers
CONDSTORE (RFC 7162) every change to a folder raises its ``HIGHESTMODSEQ``.

Cursor::

    {"v": 1, "folders": {name: {"uidvalidity": n, "last_uid": n, "highestmodseq": n | None}}}

``last_uid`` moves to ``UIDNEXT - 1`` once a folder is done, so mail
expunged at its top does not look like news on the next run.
Every message of the folder with a UID up to ``last_uid`` has been handed
over (or lies outside the ``since`` window), and its flags and expunges are
known up to ``highestmodseq``. A folder whose UIDVALIDITY changed starts again
from nothing inside the same run (the agent's writes are idempotent); the key
``uidvalidity_changes`` counts such runs in a row (see
:mod:`connectors.imap.folders`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.errors import CursorInvalid
from connectors.records import Cursor

CURSOR_VERSION = 1


@dataclass(frozen=True)
class FolderState:
    """What one folder's sync has covered; see the module docstring."""

    uidvalidity: int
    last_uid: int = 0
    highestmodseq: int | None = None
    uidvalidity_changes: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "uidvalidity": self.uidvalidity,
            "last_uid": self.last_uid,
            "highestmodseq": self.highestmodseq,
        }
        if self.uidvalidity_changes:
            out["uidvalidity_changes"] = self.uidvalidity_changes
        return out


def load_cursor(cursor: Cursor | None) -> dict[str, FolderState]:
    """Folder states from a stored cursor; one that does not parse means a full resync."""
    if cursor is None:
        return {}
    try:
        if cursor["v"] != CURSOR_VERSION:
            raise ValueError(f"version {cursor['v']!r}")
        states = {}
        for name, raw in cursor["folders"].items():
            modseq = raw.get("highestmodseq")
            states[str(name)] = FolderState(
                uidvalidity=int(raw["uidvalidity"]),
                last_uid=int(raw["last_uid"]),
                highestmodseq=None if modseq is None else int(modseq),
                uidvalidity_changes=int(raw.get("uidvalidity_changes", 0)),
            )
        return states
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CursorInvalid(f"unreadable IMAP cursor ({exc!r}); a full sync follows") from exc


def dump_cursor(states: Mapping[str, FolderState]) -> Cursor:
    return {"v": CURSOR_VERSION, "folders": {name: s.to_json() for name, s in states.items()}}
