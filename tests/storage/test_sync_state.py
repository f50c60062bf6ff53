"""The ``sync_state`` bookkeeping on plain values: status words, counters read and written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from storage.models import SyncState
from storage.sync_state import (
    ConnectorStatus,
    Counters,
    LastRun,
    Verification,
    add_batch,
    counters_of,
    next_status,
    record_failure,
    record_outcome,
    record_run,
    record_verification,
    set_status,
    status_of,
    update_counters,
)

CHECKED = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)

FIRST_VERSION = {"items": 12, "logged": 9, "quarantined": 1, "skipped": {"automated_bulk": 2}}
"""A row exactly as the first version stored it: four keys, nothing else."""

WITH_LAST_RUN = FIRST_VERSION | {
    "last_run": {"items": 3, "logged": 2, "seconds": 0.412, "quota_units": None}
}
"""A row once each run's figures were kept; no failures counted yet."""

VERIFY_SUMMARY = {
    "checked_at": "2026-03-02T12:00:00+00:00",
    "synced": True,
    "held": 16,
    "logged": 12,
    "quarantined": 1,
    "missing": 3,
    "explained": 2,
    "unexplained": 1,
    "uncounted_skips": 0,
    "extra": 4,
}

CURRENT = {
    "items": 40,
    "logged": 31,
    "quarantined": 2,
    "skipped": {"automated_bulk": 5, "internal_only": 2},
    "limited": {"dedupe_collision": 1},
    "failures": 3,
    "consecutive_failures": 1,
    "last_run": {
        "items": 10,
        "logged": 8,
        "seconds": 1.5,
        "quota_units": {"users.history.list": 2, "users.messages.get": 250},
    },
    "verify": VERIFY_SUMMARY,
}
"""Every key the current code writes."""


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (None, Counters()),
        ({}, Counters()),
        (
            FIRST_VERSION,
            Counters(items=12, logged=9, quarantined=1, skipped={"automated_bulk": 2}),
        ),
        (
            WITH_LAST_RUN,
            Counters(
                items=12,
                logged=9,
                quarantined=1,
                skipped={"automated_bulk": 2},
                last_run=LastRun(items=3, logged=2, seconds=0.412),
            ),
        ),
        (
            CURRENT,
            Counters(
                items=40,
                logged=31,
                quarantined=2,
                skipped={"automated_bulk": 5, "internal_only": 2},
                limited={"dedupe_collision": 1},
                failures=3,
                consecutive_failures=1,
                last_run=LastRun(
                    items=10,
                    logged=8,
                    seconds=1.5,
                    quota_units={"users.history.list": 2, "users.messages.get": 250},
                ),
                verify=Verification(
                    checked_at=CHECKED,
                    held=16,
                    logged=12,
                    quarantined=1,
                    missing=3,
                    explained=2,
                    unexplained=1,
                    extra=4,
                ),
            ),
        ),
        (
            {"last_run": {"quota_units": {"users.messages.get": 250}}},
            Counters(last_run=LastRun(quota_units={"users.messages.get": 250})),
        ),
        ({"items": "7", "failures": 2.0}, Counters(items=7, failures=2)),
        (
            {"items": "many", "skipped": ["automated_bulk"], "limited": None},
            Counters(),
        ),
    ],
    ids=[
        "null",
        "new-row",
        "first-version",
        "with-last-run",
        "current",
        "quota-only-last-run",
        "numbers-as-text",
        "unreadable-counts-read-as-zero",
    ],
)
def test_stored_counters_read_back(stored: dict[str, Any] | None, expected: Counters) -> None:
    assert Counters.from_json(stored) == expected


@pytest.mark.parametrize(
    "stored",
    [FIRST_VERSION, WITH_LAST_RUN, CURRENT],
    ids=["first-version", "with-last-run", "current"],
)
def test_writing_back_keeps_every_stored_key_and_value(stored: dict[str, Any]) -> None:
    written = Counters.from_json(stored).to_json()
    assert {key: written[key] for key in stored} == stored


def test_the_current_shape_round_trips_exactly() -> None:
    assert Counters.from_json(CURRENT).to_json() == CURRENT


def test_every_count_is_written_under_its_key_even_when_zero() -> None:
    assert Counters().to_json() == {
        "items": 0,
        "logged": 0,
        "quarantined": 0,
        "skipped": {},
        "limited": {},
        "failures": 0,
        "consecutive_failures": 0,
    }


@pytest.mark.parametrize(
    "stored",
    [
        FIRST_VERSION | {"errors": 4, "notes": {"by": "admin"}},
        CURRENT | {"last_run": CURRENT["last_run"] | {"retries": 2}},
        CURRENT | {"verify": VERIFY_SUMMARY | {"window": "30d"}},
        FIRST_VERSION | {"last_run": None, "verify": "pending"},
        FIRST_VERSION | {"verify": VERIFY_SUMMARY | {"checked_at": "yesterday"}},
    ],
    ids=[
        "top-level",
        "inside-last-run",
        "inside-verify",
        "nested-values-that-are-not-objects",
        "unreadable-checked-at",
    ],
)
def test_unknown_keys_survive_a_change(stored: dict[str, Any]) -> None:
    read = Counters.from_json(stored)
    changed = record_failure(read).to_json()
    assert changed["failures"] == read.failures + 1
    for key, value in stored.items():
        if key not in ("failures", "consecutive_failures"):
            assert changed[key] == value, key


Change = Callable[[Counters], Counters]


def _batch(**figures: Any) -> Change:
    return lambda counters: add_batch(counters, **figures)


def _then(*changes: Change) -> Change:
    def apply(counters: Counters) -> Counters:
        for change in changes:
            counters = change(counters)
        return counters

    return apply


@pytest.mark.parametrize(
    ("stored", "change", "expected"),
    [
        (
            {},
            _batch(items=5, logged=3, quarantined=1, skipped={"automated_bulk": 1}),
            {
                "items": 5,
                "logged": 3,
                "quarantined": 1,
                "skipped": {"automated_bulk": 1},
                "limited": {},
                "failures": 0,
                "consecutive_failures": 0,
            },
        ),
        (
            FIRST_VERSION,
            _then(
                _batch(items=4, logged=1, quarantined=0, skipped={"internal_only": 2}),
                _batch(
                    items=2,
                    logged=2,
                    quarantined=1,
                    skipped={"automated_bulk": 1},
                    limited={"dedupe_collision": 1},
                ),
            ),
            {
                "items": 18,
                "logged": 12,
                "quarantined": 2,
                "skipped": {"automated_bulk": 3, "internal_only": 2},
                "limited": {"dedupe_collision": 1},
                "failures": 0,
                "consecutive_failures": 0,
            },
        ),
        (
            {},
            _then(record_failure, record_failure),
            {**Counters().to_json(), "failures": 2, "consecutive_failures": 2},
        ),
        (
            {"failures": 2, "consecutive_failures": 2},
            lambda counters: record_outcome(counters, failed=False),
            {**Counters().to_json(), "failures": 2, "consecutive_failures": 0},
        ),
        (
            {"failures": 2, "consecutive_failures": 2},
            lambda counters: record_outcome(counters, failed=True),
            {**Counters().to_json(), "failures": 3, "consecutive_failures": 3},
        ),
        (
            WITH_LAST_RUN,
            lambda counters: record_run(counters, LastRun(7, 5, 2.25, {"events.list": 3})),
            {
                **Counters.from_json(FIRST_VERSION).to_json(),
                "last_run": {
                    "items": 7,
                    "logged": 5,
                    "seconds": 2.25,
                    "quota_units": {"events.list": 3},
                },
            },
        ),
        (
            {"items": 16},
            lambda counters: record_verification(counters, Verification.from_json(VERIFY_SUMMARY)),
            {**Counters(items=16).to_json(), "verify": VERIFY_SUMMARY},
        ),
    ],
    ids=[
        "first-batch",
        "batches-add-up-by-reason",
        "failures-make-a-streak",
        "a-success-ends-the-streak",
        "a-failure-extends-the-streak",
        "last-run-replaced",
        "verification-kept",
    ],
)
def test_changes_give_the_expected_json(
    stored: dict[str, Any], change: Change, expected: dict[str, Any]
) -> None:
    before = Counters.from_json(stored)
    assert change(before).to_json() == expected
    assert before == Counters.from_json(stored), "changes are pure"


def test_quota_total_is_none_where_nothing_was_counted() -> None:
    assert LastRun().quota_total is None
    assert LastRun(quota_units={"a": 2, "b": 3}).quota_total == 5


@pytest.mark.parametrize(
    ("stored", "status"),
    [
        *[(status.value, status) for status in ConnectorStatus],
        (None, ConnectorStatus.NEW),
        ("warming_up", ConnectorStatus.NEW),
    ],
    ids=[*[status.value for status in ConnectorStatus], "no-row", "unknown-word"],
)
def test_stored_status_words(stored: str | None, status: ConnectorStatus) -> None:
    assert ConnectorStatus.of(stored) is status
    assert status == (stored if stored in set(ConnectorStatus) else "new")


@pytest.mark.parametrize(
    ("current", "new", "written"),
    [
        ("paused", ConnectorStatus.SYNCING, ConnectorStatus.PAUSED),
        ("paused", ConnectorStatus.FAILING, ConnectorStatus.PAUSED),
        ("ok", ConnectorStatus.SYNCING, ConnectorStatus.SYNCING),
        ("needs_auth", ConnectorStatus.OK, ConnectorStatus.OK),
        (None, ConnectorStatus.SYNCING, ConnectorStatus.SYNCING),
    ],
    ids=["pause-outlives-a-start", "pause-outlives-a-failure", "start", "fixed", "no-row"],
)
def test_an_admins_pause_outlives_any_pass(
    current: str | None, new: ConnectorStatus, written: ConnectorStatus
) -> None:
    assert next_status(current, new) is written


def test_rows_are_changed_through_the_typed_values() -> None:
    state = SyncState(connector="c", status="ok", counters=dict(FIRST_VERSION))
    set_status(state, ConnectorStatus.FAILING)
    assert state.status == "failing" and type(state.status) is str
    assert status_of(state) is ConnectorStatus.FAILING
    assert status_of(None) is ConnectorStatus.NEW
    assert counters_of(None) == Counters()

    counters = update_counters(state, record_failure)
    assert counters.failures == 1
    assert state.counters == {
        **Counters.from_json(FIRST_VERSION).to_json(),
        "failures": 1,
        "consecutive_failures": 1,
    }

    stored = state.counters
    update_counters(state, lambda unchanged: unchanged)
    assert state.counters is stored, "an unchanged value is not assigned again"
