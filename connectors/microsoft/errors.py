"""Microsoft Graph failures sorted by what happens next (:class:`connectors.retry.Verdict`).

Graph answers a failure with an HTTP status and
``{"error": {"code", "message", "innerError": {...}}}`` ("Microsoft Graph error
responses and resource types"); the identity platform with
``{"error", "error_description", "error_codes"}``. The status decides most
cases; the code decides the rest: a delta token Graph no longer holds answers
410 (or 400) with ``syncStateNotFound``, ``syncStateInvalid`` or
``resyncRequired``, and only a new round from the start helps. Throttling is
429, or 503 with ``Retry-After`` ("Microsoft Graph throttling guidance").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from connectors.retry import Action, Verdict, parse_retry_after

RESYNC_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
"""Error codes that mean "start the delta round over" (compared lower-case: Graph's
own pages spell them ``syncStateNotFound`` and ``SyncStateInvalid``)."""


class GraphHttpError(Exception):
    """A Graph answer with a status other than 2xx."""

    def __init__(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers)
        super().__init__(f"HTTP {status}")


def error_fields(body: bytes | str | Mapping[str, Any]) -> tuple[str, str]:
    """``(code, message)`` from Graph's error shape or the identity platform's."""
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return "", text.strip()[:200]
    if not isinstance(data, Mapping):
        return "", ""
    error = data.get("error")
    if isinstance(error, str):
        return error, str(data.get("error_description") or "").split("\r\n")[0]
    if isinstance(error, Mapping):
        return str(error.get("code") or ""), str(error.get("message") or "")
    return "", ""


def classify(
    status: int,
    body: bytes | str | Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    *,
    now: datetime | None = None,
) -> Verdict:
    """Classify one failed Graph answer (a whole response or one part of a batch)."""
    code, message = error_fields(body)
    retry_after_text = next(
        (v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None
    )
    retry_after = (
        parse_retry_after(str(retry_after_text), now or datetime.now(UTC))
        if retry_after_text is not None
        else None
    )

    def verdict(action: Action) -> Verdict:
        return Verdict(action, status, code, message, retry_after)

    if code.lower() in RESYNC_CODES:
        return verdict(Action.RESYNC)
    if status in (429, 408) or (status >= 500 and status != 501):
        return verdict(Action.RETRY)
    if status in (401, 403):
        return verdict(Action.REAUTH)
    if status == 410:
        return verdict(Action.RESYNC)
    if status == 404:
        return verdict(Action.MISSING)
    return verdict(Action.FAIL)


def classify_exception(exc: BaseException) -> Verdict | None:
    """Classify what the Graph client raises; None for anything that is a bug here."""
    if isinstance(exc, GraphHttpError):
        return classify(exc.status, exc.body, exc.headers)
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return Verdict(Action.RETRY, None, type(exc).__name__, str(exc))
    if isinstance(exc, requests.RequestException | OSError):
        return Verdict(Action.RETRY, None, type(exc).__name__, str(exc))
    return None
