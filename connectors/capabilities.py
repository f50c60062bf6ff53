"""What a connector can do beyond fetching: declared, so the agent never probes for it.

Every connector fetches (:class:`connectors.records.Connector`). Some can do
more, and each such ability is one small protocol here. A connector class
has an ability by having its methods (the protocols are runtime-checkable),
and the agent asks with ``isinstance`` at the one place that needs it,
never with ``hasattr`` or ``getattr``. The contract suite
(``tests/connectors/test_contract.py``) holds every connector that declares
an ability to what the ability promises.

=============  ==================================  ==============================
ability        what it adds                        the agent uses it for
=============  ==================================  ==============================
Sized          ``first_sync_size()``               ``connectors test``
Positioned     ``progress_total()``, ``position``  the progress bar of ``sync``
Inventoried    ``inventory()``, ``lookup()``       ``verify``
Watchable      ``wait_for_changes()``              the IDLE watch of ``run``
Metered        ``units_spent()``                   ``status``' API quota column
Retrying       ``retries``                         ``status``' retries column
Closeable      ``close()``                         ending a watch or a run
=============  ==================================  ==============================
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

from connectors.records import Batch, Cursor, Item


@dataclass(frozen=True)
class ScopeSize:
    """How much of one scope (a file, a folder, a label) a first sync would read."""

    scope: str
    count: int
    unit: str


@runtime_checkable
class Sized(Protocol):
    """Can say, before a first sync, how much it would read."""

    def first_sync_size(self) -> list[ScopeSize]: ...


@runtime_checkable
class Positioned(Protocol):
    """Can say how far through its source a batch is, for a progress bar."""

    def progress_total(self) -> int | None:
        """The size of the whole source in the unit :meth:`position` counts, if known."""
        ...

    def position(self, batch: Batch) -> int | None:
        """How far the source is read once ``batch`` is."""
        ...


@runtime_checkable
class Inventoried(Protocol):
    """Can list what its provider holds, for ``verify`` to compare with the database.

    ``since`` is the start of the synced window (None: everything); IMAP's is a
    date, as its SEARCH SINCE is.
    """

    name: str
    since: date | None

    def inventory(self, cursor: Cursor | None = None) -> Iterator[str]:
        """Source ids in the synced scope; with ``cursor``, only those it covers."""
        ...

    def lookup(self, source_ids: Iterable[str]) -> Iterator[Item]:
        """The items ``source_ids`` name, as ``fetch`` would give them; missing ones left out."""
        ...


@runtime_checkable
class Watchable(Protocol):
    """Can wait for a change on the server instead of polling (IMAP IDLE)."""

    def wait_for_changes(self, timeout: float) -> bool:
        """True when something changed within ``timeout`` seconds."""
        ...


@runtime_checkable
class Metered(Protocol):
    """Spends a provider's API quota, and counts it per kind of call."""

    def units_spent(self) -> Mapping[str, int]: ...


@runtime_checkable
class Retrying(Protocol):
    """Retries throttled and failed calls itself, and counts the retries of its last run."""

    @property
    def retries(self) -> int: ...


@runtime_checkable
class Closeable(Protocol):
    """Holds a connection to let go of when a run or a watch ends."""

    def close(self) -> None: ...
