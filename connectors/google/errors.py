"""Google API failures sorted by what happens next, and the retry loop that acts on them.

Every Google API (Gmail, Calendar) and Google's OAuth token endpoint answer
failures the same way: an HTTP status plus a JSON body, either
``{"error": {"code", "message", "errors": [{"domain", "reason", ...}], "status"}}``
from the APIs or ``{"error": "invalid_grant", "error_description": ...}`` from
the token endpoint. :func:`classify` is the one pure function that turns such an
answer into a :class:`Verdict`; :func:`classify_exception` does the same for what
the client libraries raise (``HttpError``, ``RefreshError``, socket and httplib2
errors). The ``reason`` code decides between the cases a status alone cannot
tell apart (403 is a rate limit *or* a missing permission).

:class:`Retrier` spends the retry budget, which progress renews: truncated exponential backoff
with full jitter (a uniform delay in ``[0, min(cap, base * 2**attempt))``),
never shorter than the server's ``Retry-After``. When the budget is spent it
raises :class:`~connectors.errors.TransientError` and leaves the next attempt to
the scheduler, which keeps the cursor. The client library's own ``num_retries``
is not used: it ignores ``Retry-After``.
"""

from __future__ import annotations

import enum
import http.client
import json
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NoReturn, TypeVar

import google.auth.exceptions
import httplib2
from googleapiclient.errors import BatchError, HttpError

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


_RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "concurrentLimitExceeded"}
)
_DEFER_REASONS = frozenset({"dailyLimitExceeded"})
_RESYNC_REASONS = frozenset({"fullSyncRequired", "updatedMinTooLongAgo"})
_AUTH_GRANT_ERRORS = frozenset(
    {"invalid_grant", "unauthorized_client", "invalid_client", "access_denied", "invalid_scope"}
)
_RETRY_AFTER_IN_MESSAGE = re.compile(r"Retry after (\S+)", re.IGNORECASE)


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


def classify(
    status: int,
    body: bytes | str | Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
) -> Verdict:
    """Classify one failed Google answer (an API error or a token-endpoint error).

    ``now`` only matters for a ``Retry-After`` given as a date; it defaults to
    the current time.
    """
    reason, message = _error_fields(body)
    retry_after = _retry_after(headers or {}, message, now or datetime.now(UTC))

    def verdict(action: Action) -> Verdict:
        return Verdict(action, status, reason, message, retry_after)

    if reason in _AUTH_GRANT_ERRORS:
        return verdict(Action.REAUTH)
    if status == 429 or status == 408 or (status >= 500 and status != 501):
        return verdict(Action.RETRY)
    if status == 403 and reason in _RATE_LIMIT_REASONS:
        return verdict(Action.RETRY)
    if status == 403 and reason in _DEFER_REASONS:
        return verdict(Action.DEFER)
    if status in (401, 403):
        return verdict(Action.REAUTH)
    if status == 410 and reason in _RESYNC_REASONS:
        return verdict(Action.RESYNC)
    if status in (404, 410):
        return verdict(Action.MISSING)
    return verdict(Action.FAIL)


def classify_exception(exc: BaseException) -> Verdict | None:
    """Classify what the client libraries raise; ``None`` for anything that is a bug here."""
    if isinstance(exc, HttpError):
        return classify(exc.resp.status, exc.content, _header_map(exc.resp))
    if isinstance(exc, google.auth.exceptions.RefreshError):
        return _classify_refresh_error(exc)
    if isinstance(exc, google.auth.exceptions.TransportError):
        return Verdict(Action.RETRY, None, "transport", str(exc))
    if isinstance(exc, BatchError):
        return Verdict(Action.RETRY, None, "batchError", str(exc))
    if isinstance(exc, OSError | http.client.HTTPException | httplib2.HttpLib2Error):
        return Verdict(Action.RETRY, None, type(exc).__name__, str(exc))
    return None


def _classify_refresh_error(exc: google.auth.exceptions.RefreshError) -> Verdict:
    """A token refresh failed: ``invalid_grant`` and friends mean the grant is gone.

    google-auth has already retried the token endpoint's 5xx by itself and
    marks what is still worth retrying as ``retryable``.
    """
    text = str(exc.args[0]) if exc.args else str(exc)
    code, _, rest = text.partition(":")
    code = code.strip()
    message = rest.strip() if rest and " " not in code else text
    if " " in code:
        code = "refreshFailed"
    if exc.retryable and code not in _AUTH_GRANT_ERRORS:
        return Verdict(Action.RETRY, None, code, message, origin="token refresh")
    return Verdict(Action.REAUTH, None, code, message, origin="Google refused the grant")


def _error_fields(body: bytes | str | Mapping[str, Any]) -> tuple[str, str]:
    """``(reason, message)`` from either error shape; empty strings when absent."""
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return "", text.strip()[:200]
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, Mapping):
        return "", ""
    error = data.get("error")
    if isinstance(error, str):
        return error, str(data.get("error_description") or "")
    if not isinstance(error, Mapping):
        return "", ""
    message = str(error.get("message") or "")
    errors = error.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        reason = errors[0].get("reason")
        if reason:
            return str(reason), message
    return str(error.get("status") or ""), message


def _retry_after(headers: Mapping[str, str], message: str, now: datetime) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or an HTTP date), else from a
    "Retry after <ISO 8601>" message (Gmail's 429 bodies)."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is not None:
        return parse_retry_after(value, now)
    match = _RETRY_AFTER_IN_MESSAGE.search(message)
    if match is None:
        return None
    try:
        when = datetime.fromisoformat(match.group(1).rstrip("."))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


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


def _header_map(resp: Any) -> dict[str, str]:
    """httplib2's ``Response`` is a dict of lower-case headers (plus ``status``)."""
    try:
        return {str(k): str(v) for k, v in dict(resp).items()}
    except (TypeError, ValueError):
        return {}


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
    """Runs calls under one run's :class:`RetryPolicy`; ``sleep`` and ``rand`` are
    injectable so tests neither wait nor depend on chance."""

    def __init__(
        self,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        auth_hint: str = "",
    ) -> None:
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
                verdict = classify_exception(exc)
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
