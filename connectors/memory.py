"""An in-memory connector: the reference implementation of the protocol.

Tests use it where a real source would only add noise, and the contract
suite holds every other connector to the behaviour it shows: batches in
order, a cursor after each, resuming exactly where a cursor points.
Errors can be scheduled at positions to exercise the agent's handling.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from connectors.errors import ConnectorError, CursorInvalid
from connectors.records import Batch, Cursor, Item

CURSOR_VERSION = 1


@dataclass
class MemoryConnector:
    name: str
    items: list[Item] = field(default_factory=list)
    batch_size: int = 100
    fail_at: dict[int, ConnectorError] = field(default_factory=dict)
    """Position -> error raised when the fetch reaches that position (once)."""

    def add(self, *items: Item) -> None:
        self.items.extend(items)

    def fetch(self, cursor: Cursor | None) -> Iterator[Batch]:
        position = _position(cursor, len(self.items))
        while True:
            end = min(position + self.batch_size, len(self.items))
            for failing in sorted(self.fail_at):
                if position <= failing < max(end, position + 1):
                    raise self.fail_at.pop(failing)
            chunk: Sequence[Item] = self.items[position:end]
            yield Batch(list(chunk), {"v": CURSOR_VERSION, "position": end})
            position = end
            if position >= len(self.items):
                return


def _position(cursor: Cursor | None, size: int) -> int:
    if cursor is None:
        return 0
    position = cursor.get("position")
    if cursor.get("v") != CURSOR_VERSION or not isinstance(position, int) or position < 0:
        raise CursorInvalid(f"unreadable cursor: {cursor!r}")
    if position > size:
        raise CursorInvalid(f"cursor beyond the end ({position} > {size})")
    return position
