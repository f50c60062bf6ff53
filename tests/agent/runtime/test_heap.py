"""Handing freed memory back: only after a batch that held enough mail, and never failing."""

from __future__ import annotations

import pytest

from agent.runtime import heap


def test_a_small_batch_costs_no_trim() -> None:
    assert heap.release_freed(heap.TRIM_AFTER_BYTES - 1) is False


def test_a_big_batch_trims_where_the_c_library_can() -> None:
    assert heap.release_freed(heap.TRIM_AFTER_BYTES) is (heap._malloc_trim() is not None)


def test_without_malloc_trim_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap, "_malloc_trim", lambda: None)
    assert heap.release_freed(10 * heap.TRIM_AFTER_BYTES) is False
