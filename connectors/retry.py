"""Retrying a provider's calls: what a failure means, and the budget that pays for retries.

Each provider module reads its own failures into a :class:`Verdict` (Google's
in :mod:`connectors.google.errors`, Microsoft Graph's in
:mod:`connectors.microsoft.errors`); :class:`Retrier` acts on verdicts the same
way for all of them: truncated exponential backoff with full jitter (a uniform
delay in ``[0, min(cap, base * 2**attempt))``), never shorter than the server's
``Retry-After``. When the budget is spent it raises
:class:`~connectors.errors.TransientError` and leaves the next attempt to the
scheduler, which keeps the cursor.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NoReturn, TypeVar

from connectors.errors import AuthError, ConnectorError, CursorInvalid, TransientError

T = TypeVar("T")


class Action(enum.Enum):
    """What the caller does about a failed request."""

    RETRY = "retry"
    """Back off and send it again (rate limits, 5xx, network errors)."""
    DEFER = "defer"
    """Transient, but not within this run (a daily limit): TransientError at once."""
    REAUTH = "reauth"
    """Only an admin can fix it: AuthError."""
    RESYNC = "resync"
    """The sync cursor is gone: CursorInvalid."""
    MISSING = "missing"
    """The resource does not exist; the caller knows whether that is news or an error."""
    FAIL = "fail"
    """A request the server will never accept: ConnectorError."""


@dataclass(frozen=True)
class Verdict:
    """One failure, classified. ``retry_after`` is the server's hint in seconds."""

    action: Action
    status: int | None
    reason: str
    message: str
    retry_after: float | None = None
    origin: str = ""
    """What failed when there is no HTTP status: ``network`` unless said otherwise."""

    def error(
        self,
        *,
        missing: type[ConnectorError] = ConnectorError,
        auth_hint: str = "",
    ) -> ConnectorError:
        """The error the caller raises when it stops trying.

        ``missing`` is what a 404 means at the call site: ``CursorInvalid`` for
        a history id, a plain ``ConnectorError`` for a mailbox that is not there.
        """
        text = self.describe()
        if self.action in (Action.RETRY, Action.DEFER):
            return TransientError(text, retry_after=self.retry_after)
        if self.action is Action.REAUTH:
            return AuthError(text, hint=auth_hint)
        if self.action is Action.RESYNC:
            return CursorInvalid(text)
        if self.action is Action.MISSING:
            return missing(text)
        return ConnectorError(text)

    def describe(self) -> str:
        """A one-line summary for logs and ``status``: status, reason and message."""
        status = (self.origin or "network") if self.status is None else f"HTTP {self.status}"
        parts = [status, self.reason, self.message]
        return ": ".join(p for p in parts if p)


Classifier = Callable[[BaseException], "Verdict | None"]
"""A provider's reading of an exception its client raised; None: not the provider's failure."""


def parse_retry_after(value: str, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (RFC 9110: delay-seconds or an HTTP date)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """The retry budget and the shape of the backoff curve.

    ``max_retries`` counts the backoffs since the run last made progress (a
    call answered, a batch with a part answered; a batch whose failed parts are
    re-sent counts once per round), ``max_seconds`` the time slept since then.
    Progress renews the budget, so it scales with the work done: a long first
    sync under a steady rate of faults completes, and only a stretch with
    nothing answered ends the run. Google recommends 1 s doubling to a 32-64 s cap.
    """

    max_retries: int = 30
    max_seconds: float = 300.0
    base: float = 1.0
    cap: float = 64.0


class Retrier:
    """Runs calls under one run's :class:`RetryPolicy`; ``classify`` is the provider's
    reading of what its client raised (None: a bug here, raised as it is); ``sleep``
    and ``rand`` are injectable so tests neither wait nor depend on chance."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        classify: Classifier,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        auth_hint: str = "",
    ) -> None:
        self.classify = classify
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        self.auth_hint = auth_hint
        self.retries = 0
        """Backoffs in the whole run."""
        self.slept = 0.0
        """Seconds slept in the whole run."""
        self._streak = 0
        self._streak_slept = 0.0

    def progress(self) -> None:
        """Work got done: the budget (:class:`RetryPolicy`) starts afresh."""
        self._streak = 0
        self._streak_slept = 0.0

    def call(
        self,
        fn: Callable[[], T],
        *,
        missing: type[ConnectorError] = ConnectorError,
    ) -> T:
        """``fn()``, retried on RETRY verdicts; every other failure becomes its error.
        An answer is progress (:meth:`progress`)."""
        attempt = 0
        while True:
            try:
                result = fn()
            except Exception as exc:
                verdict = self.classify(exc)
                if verdict is None:
                    raise
                if verdict.action is not Action.RETRY:
                    raise verdict.error(missing=missing, auth_hint=self.auth_hint) from exc
                self.backoff(verdict, attempt)
                attempt += 1
            else:
                self.progress()
                return result

    def backoff(self, verdict: Verdict, attempt: int) -> None:
        """Sleep before retry number ``attempt`` (0-based) of one operation, or raise
        TransientError when the run's budget cannot pay for it."""
        delay = self.delay(attempt, verdict.retry_after)
        over_count = self._streak + 1 > self.policy.max_retries
        over_time = self._streak_slept + delay > self.policy.max_seconds
        if over_count or over_time:
            self.give_up(verdict)
        self.retries += 1
        self.slept += delay
        self._streak += 1
        self._streak_slept += delay
        self._sleep(delay)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full-jitter exponential delay, never below the server's ``Retry-After``."""
        ceiling = min(self.policy.cap, self.policy.base * 2.0 ** min(attempt, 62))
        jittered = self._rand() * ceiling
        return jittered if retry_after is None else max(retry_after, jittered)

    def give_up(self, verdict: Verdict) -> NoReturn:
        """Raise TransientError for a retryable failure the budget cannot cover."""
        spent = (
            f"retry budget spent ({self._streak} retries, {self._streak_slept:.1f}s "
            "without an answer)"
        )
        raise TransientError(
            f"{verdict.describe()}; {spent}",
            retry_after=verdict.retry_after,
        )
