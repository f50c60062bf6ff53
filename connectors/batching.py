"""Batches bounded by bytes as well as by count.

A batch is what the agent holds of a source at once: fetched, planned, then
written with its cursor. Counting messages alone bounds it badly, since one
message may carry a 25 MB attachment and the next be a one-line reply, so
every connector also closes a batch by the raw bytes its messages hold
(``[agent] batch_bytes``). A message joins the open batch unless that would
take the batch past the bound; then the batch closes first. A batch thus
holds at most the bound, or one message that alone is larger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from connectors.records import Item, MailMessage

T = TypeVar("T")


def item_bytes(item: Item) -> int:
    """The raw bytes an item holds: a message's; other items hold next to none."""
    return len(item.raw) if isinstance(item, MailMessage) else 0


def raw_bytes(items: Iterable[Item]) -> int:
    return sum(map(item_bytes, items))


def check_batch_bytes(value: int) -> int:
    """``value`` if it can bound a batch; a ValueError that names the setting otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"batch_bytes must be a positive number of bytes, not {value!r}")
    return value


@dataclass
class Budget:
    """The open batch's bytes against the bound (module docstring)."""

    limit: int
    used: int = 0
    count: int = 0

    def admits(self, size: int) -> bool:
        """Whether a thing of ``size`` bytes may join; an empty batch takes anything."""
        return self.count == 0 or self.used + size <= self.limit

    def add(self, size: int) -> None:
        self.used += size
        self.count += 1

    def reset(self) -> None:
        self.used = self.count = 0


def within(things: Iterable[T], size: Callable[[T], int], limit: int) -> Iterator[list[T]]:
    """``things`` in order, cut into runs whose sizes add up to at most ``limit``
    (a thing larger than ``limit`` is a run of its own); none for no things."""
    budget = Budget(limit)
    run: list[T] = []
    for thing in things:
        bytes_ = size(thing)
        if not budget.admits(bytes_):
            yield run
            run = []
            budget.reset()
        run.append(thing)
        budget.add(bytes_)
    if run:
        yield run
