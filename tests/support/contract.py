"""The contract every connector keeps, as a test suite to subclass.

A subclass provides ``source`` (a fixture returning a connector over a
populated source, and the source ids it must yield); these tests then hold
it to DESIGN.md's protocol: batches whose cursors resume exactly where they
point, nothing lost or repeated, JSON cursors, a garbage cursor refused as
``CursorInvalid``, and items that pickle (worker processes plan them).
"""

from __future__ import annotations

import json
import pickle
from collections import Counter
from collections.abc import Iterable

import pytest

from connectors.errors import CursorInvalid
from connectors.records import (
    Batch,
    CalendarEvent,
    Connector,
    MailMessage,
    SourceRemoved,
    Unreadable,
)

Source = tuple[Connector, set[str]]


def source_ids(batches: Iterable[Batch]) -> list[str]:
    return [
        item.source_id
        for batch in batches
        for item in batch.items
        if isinstance(item, MailMessage | CalendarEvent | SourceRemoved | Unreadable)
    ]


class ConnectorContract:
    @pytest.fixture
    def source(self) -> Source:
        raise NotImplementedError

    def test_full_fetch_yields_every_item_once(self, source: Source) -> None:
        connector, expected = source
        ids = source_ids(connector.fetch(None))
        assert Counter(ids) == Counter(expected)

    def test_cursors_are_json(self, source: Source) -> None:
        connector, _ = source
        for batch in connector.fetch(None):
            assert json.loads(json.dumps(batch.cursor)) == batch.cursor

    def test_resuming_from_any_cursor_loses_and_repeats_nothing(self, source: Source) -> None:
        connector, expected = source
        batches = list(connector.fetch(None))
        for index, batch in enumerate(batches):
            before = source_ids(batches[: index + 1])
            after = source_ids(connector.fetch(batch.cursor))
            assert Counter(before + after) == Counter(expected), f"resuming after batch {index}"

    def test_final_cursor_yields_nothing_new(self, source: Source) -> None:
        connector, _ = source
        final = list(connector.fetch(None))[-1].cursor
        assert source_ids(connector.fetch(final)) == []

    def test_garbage_cursor_is_cursor_invalid(self, source: Source) -> None:
        connector, _ = source
        with pytest.raises(CursorInvalid):
            list(connector.fetch({"v": -1, "nonsense": True}))

    def test_items_survive_pickling(self, source: Source) -> None:
        """Batches are planned in worker processes once a pass has a backlog
        (agent.pipeline.workers)."""
        connector, _ = source
        for batch in connector.fetch(None):
            assert pickle.loads(pickle.dumps(batch.items)) == batch.items
