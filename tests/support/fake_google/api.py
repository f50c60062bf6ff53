"""What every API of the fake shares: a call as a handler sees it, and Google's answer shapes.

Handlers of every API (Gmail, Calendar) take an :class:`ApiRequest` and
return a JSON mapping or raise :class:`ApiError`, which the server renders in
Google's error shape. The OAuth endpoints answer with :class:`Answer` too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SCOPE_PREFIX = "https://www.googleapis.com/auth/"


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """An answer in Google's error shape; handlers raise it."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        status_text: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.status_text = status_text or _STATUS_TEXT.get(status, "UNKNOWN")
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """Google's JSON error body."""
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": self.domain, "reason": self.reason}],
                "status": self.status_text,
            }
        }


_STATUS_TEXT = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    410: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def injected_error(status: int, retry_after: float | None = None) -> ApiError:
    """The error Google gives for a rate limit or a backend failure with ``status``.

    ``retry_after`` goes in a ``Retry-After`` header, except on 403: Gmail's
    ``userRateLimitExceeded`` says "Retry after <ISO 8601 date>" in its message."""
    headers = {} if retry_after is None else {"Retry-After": str(int(retry_after))}
    if status == 429:
        return ApiError(
            429,
            "rateLimitExceeded",
            "Too many concurrent requests for user.",
            domain="usageLimits",
            headers=headers,
        )
    if status == 403:
        message = "User-rate limit exceeded."
        if retry_after is not None:
            when = datetime.now(UTC) + timedelta(seconds=retry_after)
            message += "  Retry after " + when.isoformat(timespec="milliseconds")[:-6] + "Z"
        return ApiError(403, "userRateLimitExceeded", message, domain="usageLimits")
    if status == 401:
        return ApiError(401, "authError", "Invalid Credentials")
    if status == 503:
        return ApiError(
            503, "backendError", "The service is currently unavailable.", headers=headers
        )
    return ApiError(status, "backendError", "Backend Error")


def not_found() -> ApiError:
    return ApiError(404, "notFound", "Requested entity was not found.")


def bad_request(message: str, reason: str = "invalidArgument") -> ApiError:
    return ApiError(400, reason, message)


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Grant:
    """Who a token speaks for: the mailbox account and the scopes granted."""

    account: str
    scopes: frozenset[str]
    client_id: str = ""


@dataclass(frozen=True)
class ApiRequest:
    """One API call as a handler sees it (a plain request or one batch part)."""

    http_method: str
    path: str
    params: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    args: Mapping[str, str]
    grant: Grant

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.params.get(name)
        return values[-1] if values else default

    def params_list(self, name: str) -> list[str]:
        return list(self.params.get(name, []))


Handler = Callable[[ApiRequest], Mapping[str, Any]]


def page_size(request: ApiRequest, *, default: int, largest: int = 500) -> int:
    """``maxResults``, refused outside ``1..largest`` as Google refuses it."""
    text = request.param("maxResults")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= largest:
        raise bad_request(f"Invalid maxResults: {text}")
    return int(text)


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    """One HTTP answer: status, headers and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def json_answer(status: int, payload: Mapping[str, Any]) -> Answer:
    return Answer(
        status,
        {"Content-Type": "application/json; charset=UTF-8"},
        json.dumps(payload).encode("utf-8"),
    )


def error_answer(error: ApiError) -> Answer:
    answer = json_answer(error.status, error.body())
    return Answer(answer.status, {**answer.headers, **error.headers}, answer.body)


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by its lower-case ``name``, whatever the case it was sent in."""
    return next((v for k, v in headers.items() if k.lower() == name), None)


def b64url_decode(text: str) -> bytes:
    """Base64url with the padding Google leaves out put back."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
