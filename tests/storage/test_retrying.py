"""The one retry-on-race loop and the one chunking helper, on plain values."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from storage.batching import chunks
from storage.db import retrying


class _Deadlock(Exception):
    sqlstate = "40P01"


def _work(failures: list[Exception]) -> Callable[[], str]:
    """Work that raises ``failures`` in turn, then succeeds."""

    def work() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    return work


@pytest.mark.parametrize(
    ("failures", "attempts", "outcome"),
    [
        ([], 5, ("done", 1)),
        ([StaleDataError("version")], 5, ("done", 2)),
        ([OperationalError("UPDATE", {}, _Deadlock("deadlock"))] * 2, 5, ("done", 3)),
        ([StaleDataError("version")] * 3, 3, StaleDataError),
        ([IntegrityError("INSERT", {}, Exception("unique"))], 5, IntegrityError),
        ([ValueError("not a race")], 5, ValueError),
    ],
    ids=[
        "first-time",
        "stale-version-retried",
        "deadlock-retried",
        "last-race-propagates",
        "data-error-not-retried",
        "other-error-not-retried",
    ],
)
def test_retrying_does_work_again_only_while_it_loses_races(
    failures: list[Exception], attempts: int, outcome: tuple[str, int] | type[Exception]
) -> None:
    heard: list[int] = []
    work = _work(list(failures))
    if isinstance(outcome, tuple):
        assert retrying(attempts, work, on_retry=lambda _exc, n: heard.append(n)) == outcome
        assert heard == list(range(1, outcome[1]))
    else:
        with pytest.raises(outcome):
            retrying(attempts, work, on_retry=lambda _exc, n: heard.append(n))
        assert len(heard) < attempts


def test_retrying_needs_an_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        retrying(0, lambda: None)


@pytest.mark.parametrize(
    ("items", "size", "expected"),
    [
        ([], 3, []),
        ([1, 2], 3, [[1, 2]]),
        ([1, 2, 3], 3, [[1, 2, 3]]),
        ([1, 2, 3, 4, 5, 6, 7], 3, [[1, 2, 3], [4, 5, 6], [7]]),
    ],
    ids=["empty", "short", "exact", "remainder"],
)
def test_chunks_keep_order_and_bound_size(
    items: list[int], size: int, expected: list[list[int]]
) -> None:
    assert [list(chunk) for chunk in chunks(items, size)] == expected


def test_chunks_default_to_statements_of_500() -> None:
    assert [len(chunk) for chunk in chunks(range(1201))] == [500, 500, 201]
