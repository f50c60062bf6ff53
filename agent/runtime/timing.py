"""The agent's clocks: lease time to live, stall limit, backoff after failures, tick jitter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class Timing:
    """The agent's clocks; the defaults suit production, tests shorten them."""

    lease_ttl: timedelta = timedelta(seconds=60)
    stall_limit: timedelta = timedelta(minutes=30)
    max_backoff: timedelta = timedelta(hours=1)

    @property
    def heartbeat(self) -> float:
        return max(0.05, self.lease_ttl.total_seconds() / 3)


def jitter_of(interval: timedelta) -> float:
    """Seconds of random delay added to each tick: a tenth of the interval, at most 30 s."""
    return min(interval.total_seconds() / 10, 30.0)


def backoff_delay(interval: timedelta, failures: int, cap: timedelta) -> timedelta:
    """The wait before the next run after ``failures`` failures in a row.

    The interval doubles with each failure (``interval * 2**failures``) up to
    ``cap``, but never drops below the interval itself.
    """
    if failures <= 0:
        return interval
    doubled = interval * (1 << min(failures, 32))
    return max(interval, min(doubled, cap))


def duration_text(delta: timedelta) -> str:
    """A duration as a person reads it in a log line: ``4.5 s``, ``12 min``, ``1.5 h``."""
    seconds = delta.total_seconds()
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
