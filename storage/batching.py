"""Long lists of keys or rows cut into statements of bounded size.

A statement with one bind parameter per key fails past the driver's limit
(SQLite's is 32766, PostgreSQL's 65535) and grows slow well before it, so
every ``IN (...)`` and multi-row ``INSERT`` over a list of unknown length
takes it in chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

CHUNK = 500


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of at most ``size``, in order."""
    if size < 1:
        raise ValueError("size must be at least 1")
    for start in range(0, len(items), size):
        yield items[start : start + size]
