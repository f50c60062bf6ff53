"""The quota meter: units per method, and a token bucket that paces a run."""

from __future__ import annotations

import pytest

from connectors.google.quota import GMAIL_UNITS, QuotaMeter


class Clock:
    """A clock that only moves when the meter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def meter(rate: float | None = 250.0) -> tuple[QuotaMeter, Clock]:
    clock = Clock()
    return QuotaMeter(GMAIL_UNITS, rate, clock=clock, sleep=clock.sleep), clock


@pytest.mark.parametrize(
    ("method", "calls", "units"),
    [
        ("users.getProfile", 1, 1),
        ("users.labels.list", 1, 1),
        ("users.messages.list", 1, 5),
        ("users.messages.get", 50, 250),
        ("users.history.list", 3, 6),
    ],
    ids=["profile", "labels", "list", "batch-of-50-gets", "history"],
)
def test_published_costs(method: str, calls: int, units: int) -> None:
    quota, _clock = meter(None)
    quota.spend(method, calls)
    assert quota.units_spent() == {method: units}
    assert quota.total == units


def test_a_second_of_burst_then_pacing() -> None:
    quota, clock = meter(250.0)
    quota.spend("users.messages.get", 50)
    assert clock.sleeps == []
    quota.spend("users.messages.get", 50)
    assert clock.sleeps == [pytest.approx(1.0)]
    clock.now += 10.0
    quota.spend("users.messages.get", 50)
    assert len(clock.sleeps) == 1, "an idle bucket refills, but only to one second's worth"
    quota.spend("users.messages.get", 50)
    assert clock.sleeps[-1] == pytest.approx(1.0)


def test_a_call_dearer_than_the_bucket_waits_for_the_deficit() -> None:
    quota, clock = meter(100.0)
    quota.spend("users.messages.get", 50)
    assert clock.sleeps == [pytest.approx(1.5)]
    assert quota.waited == pytest.approx(1.5)


def test_reset_starts_a_new_run() -> None:
    quota, _clock = meter(None)
    quota.spend("users.history.list")
    quota.reset()
    assert quota.units_spent() == {} and quota.total == 0


def test_unknown_methods_and_rates_are_refused() -> None:
    quota, _clock = meter()
    with pytest.raises(KeyError, match=r"users\.drafts\.list"):
        quota.spend("users.drafts.list")
    with pytest.raises(ValueError, match="positive"):
        QuotaMeter(GMAIL_UNITS, 0)


def test_a_refund_forgets_calls_that_got_no_answer() -> None:
    quota, clock = meter(rate=250.0)
    quota.spend("users.messages.get", 50)  # the bucket's 250 units, all at once
    quota.refund("users.messages.get", 50)  # the batch's envelope failed
    quota.spend("users.messages.get", 50)  # sent again: the bucket still holds them
    assert clock.sleeps == []
    assert quota.units_spent() == {"users.messages.get": 250}
    quota.refund("users.history.list", 3)  # never spent: nothing to take back
    quota.refund("users.messages.get", 0)
    assert quota.units_spent() == {"users.messages.get": 250}
