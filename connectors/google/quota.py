"""Per-user API quota: count the units a run spends and stay under a rate.

Google meters each API method in *quota units* (Gmail: ``messages.get`` costs
5, ``history.list`` 2, ...) against a per-user rate; a batch of n calls costs
the sum of its n parts. Exceeding the rate earns 429/403 rate-limit errors,
so the connector paces itself with a token bucket instead: the bucket holds
at most one second's worth of units, refills at ``rate`` units per second,
and a request that costs more than the bucket holds waits for the deficit.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping

GMAIL_UNITS: Mapping[str, int] = {
    "users.getProfile": 1,
    "users.labels.list": 1,
    "users.messages.list": 5,
    "users.messages.get": 5,
    "users.history.list": 2,
}
"""Gmail's published costs (https://developers.google.com/gmail/api/reference/quota)."""

DEFAULT_RATE = 250.0
"""Units per second per user: Gmail's documented per-user moving average."""

CALENDAR_UNITS: Mapping[str, int] = {
    "calendarList.list": 1,
    "events.list": 1,
}
"""Calendar meters requests, not units: every call counts one
(https://developers.google.com/calendar/api/guides/quota)."""

CALENDAR_RATE = 10.0
"""Requests per second per user: Calendar's 600 per minute per user."""


class QuotaMeter:
    """A token bucket over quota units that also records what each method spent.

    ``clock`` and ``sleep`` are injectable so tests can run on a fake clock.
    ``rate=None`` counts units without pacing.
    """

    def __init__(
        self,
        costs: Mapping[str, int],
        rate: float | None = DEFAULT_RATE,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"quota rate must be positive, got {rate}")
        self._costs = dict(costs)
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = rate or 0.0
        self._stamp = clock()
        self._spent: Counter[str] = Counter()
        self.waited = 0.0

    def cost(self, method: str, calls: int = 1) -> int:
        """Units that ``calls`` calls of ``method`` cost; unknown methods are a bug."""
        try:
            return self._costs[method] * calls
        except KeyError:
            raise KeyError(f"no quota cost known for {method!r}") from None

    def spend(self, method: str, calls: int = 1) -> None:
        """Record ``calls`` calls of ``method``, first waiting until the rate allows them."""
        units = self.cost(method, calls)
        with self._lock:
            self._spent[method] += units
            if self._rate is None:
                return
            now = self._clock()
            self._tokens = min(self._rate, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            self._tokens -= units
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if wait > 0:
            self.waited += wait
            self._sleep(wait)

    def refund(self, method: str, calls: int = 1) -> None:
        """Take back ``calls`` calls recorded by :meth:`spend` that got no answer (a batch
        whose envelope failed, a connection lost before the reply): Google meters
        the calls it answers, so the count and the bucket forget them."""
        if calls <= 0:
            return
        units = self.cost(method, calls)
        with self._lock:
            self._spent[method] -= min(units, self._spent[method])
            if self._spent[method] == 0:
                del self._spent[method]
            if self._rate is not None:
                self._tokens = min(self._rate, self._tokens + units)

    def units_spent(self) -> dict[str, int]:
        """Units per method since the last :meth:`reset` (the last run)."""
        with self._lock:
            return dict(self._spent)

    @property
    def total(self) -> int:
        """All units since the last :meth:`reset`."""
        with self._lock:
            return sum(self._spent.values())

    def reset(self) -> None:
        """Start counting a new run; the bucket keeps its level so pacing carries over."""
        with self._lock:
            self._spent.clear()
            self.waited = 0.0
