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

:class:`connectors.retry.Retrier` acts on the verdicts. The client library's
own ``num_retries`` is not used: it ignores ``Retry-After``.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import google.auth.exceptions
import httplib2
from googleapiclient.errors import BatchError, HttpError

from connectors.retry import Action, Verdict, parse_retry_after

_RATE_LIMIT_REASONS = frozenset(
    {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded", "concurrentLimitExceeded"}
)
_DEFER_REASONS = frozenset({"dailyLimitExceeded"})
_RESYNC_REASONS = frozenset({"fullSyncRequired", "updatedMinTooLongAgo"})
_AUTH_GRANT_ERRORS = frozenset(
    {"invalid_grant", "unauthorized_client", "invalid_client", "access_denied", "invalid_scope"}
)
_RETRY_AFTER_IN_MESSAGE = re.compile(r"Retry after (\S+)", re.IGNORECASE)


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


def _header_map(resp: Any) -> dict[str, str]:
    """httplib2's ``Response`` is a dict of lower-case headers (plus ``status``)."""
    try:
        return {str(k): str(v) for k, v in dict(resp).items()}
    except (TypeError, ValueError):
        return {}
