"""Google failures -> what the connector does: one table, plus the retry loop's budget."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import google.auth.exceptions
import httplib2
import pytest
from googleapiclient.errors import HttpError

from connectors.errors import AuthError, ConnectorError, CursorInvalid, TransientError
from connectors.google.errors import classify, classify_exception
from connectors.retry import Action, Retrier, RetryPolicy, Verdict, parse_retry_after

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def google_error(status: int, reason: str, message: str = "m", domain: str = "global") -> bytes:
    errors = [{"domain": domain, "reason": reason, "message": message}]
    return json.dumps({"error": {"code": status, "message": message, "errors": errors}}).encode()


def oauth_error(error: str, description: str = "") -> bytes:
    return json.dumps({"error": error, "error_description": description}).encode()


CASES: list[tuple[str, int, bytes | dict[str, Any], dict[str, str], Action, float | None]] = [
    (
        "429",
        429,
        google_error(429, "rateLimitExceeded", domain="usageLimits"),
        {},
        Action.RETRY,
        None,
    ),
    (
        "429 retry-after seconds",
        429,
        google_error(429, "rateLimitExceeded"),
        {"Retry-After": "7"},
        Action.RETRY,
        7.0,
    ),
    (
        "429 retry-after date",
        429,
        google_error(429, "rateLimitExceeded"),
        {"retry-after": "Wed, 01 May 2024 12:00:30 GMT"},
        Action.RETRY,
        30.0,
    ),
    (
        "429 retry after in message",
        429,
        google_error(
            429,
            "rateLimitExceeded",
            "User-rate limit exceeded.  Retry after 2024-05-01T12:01:00.000Z",
        ),
        {},
        Action.RETRY,
        60.0,
    ),
    (
        "403 rateLimitExceeded",
        403,
        google_error(403, "rateLimitExceeded", domain="usageLimits"),
        {},
        Action.RETRY,
        None,
    ),
    (
        "403 userRateLimitExceeded",
        403,
        google_error(403, "userRateLimitExceeded", domain="usageLimits"),
        {},
        Action.RETRY,
        None,
    ),
    (
        "403 calendar quotaExceeded",
        403,
        google_error(403, "quotaExceeded", domain="usageLimits"),
        {},
        Action.RETRY,
        None,
    ),
    (
        "403 dailyLimitExceeded",
        403,
        google_error(403, "dailyLimitExceeded"),
        {},
        Action.DEFER,
        None,
    ),
    ("500", 500, google_error(500, "backendError"), {}, Action.RETRY, None),
    ("502 html", 502, b"<html>Bad Gateway</html>", {}, Action.RETRY, None),
    ("503", 503, google_error(503, "backendError"), {"Retry-After": "3"}, Action.RETRY, 3.0),
    ("504", 504, google_error(504, "backendError"), {}, Action.RETRY, None),
    ("408", 408, b"", {}, Action.RETRY, None),
    (
        "401 after refresh",
        401,
        google_error(401, "authError", "Invalid Credentials"),
        {},
        Action.REAUTH,
        None,
    ),
    (
        "403 forbidden",
        403,
        google_error(403, "forbidden", "Delegation denied"),
        {},
        Action.REAUTH,
        None,
    ),
    (
        "403 insufficient scope",
        403,
        google_error(403, "insufficientPermissions", "Request had insufficient scopes."),
        {},
        Action.REAUTH,
        None,
    ),
    ("403 domainPolicy", 403, google_error(403, "domainPolicy"), {}, Action.REAUTH, None),
    (
        "400 invalid_grant",
        400,
        oauth_error("invalid_grant", "Token has been expired or revoked."),
        {},
        Action.REAUTH,
        None,
    ),
    ("401 unauthorized_client", 401, oauth_error("unauthorized_client"), {}, Action.REAUTH, None),
    (
        "404",
        404,
        google_error(404, "notFound", "Requested entity was not found."),
        {},
        Action.MISSING,
        None,
    ),
    ("410 fullSyncRequired", 410, google_error(410, "fullSyncRequired"), {}, Action.RESYNC, None),
    (
        "410 updatedMinTooLongAgo",
        410,
        google_error(410, "updatedMinTooLongAgo"),
        {},
        Action.RESYNC,
        None,
    ),
    ("410 deleted", 410, google_error(410, "deleted"), {}, Action.MISSING, None),
    ("400 failedPrecondition", 400, google_error(400, "failedPrecondition"), {}, Action.FAIL, None),
    (
        "400 badRequest dict body",
        400,
        {"error": {"code": 400, "message": "bad", "errors": [{"reason": "badRequest"}]}},
        {},
        Action.FAIL,
        None,
    ),
    ("501", 501, b"", {}, Action.FAIL, None),
]


@pytest.mark.parametrize(
    ("status", "body", "headers", "action", "retry_after"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_classify(
    status: int,
    body: bytes | dict[str, Any],
    headers: dict[str, str],
    action: Action,
    retry_after: float | None,
) -> None:
    verdict = classify(status, body, headers, now=NOW)
    assert verdict.action is action
    assert verdict.retry_after == retry_after


def test_classify_keeps_reason_and_message() -> None:
    verdict = classify(404, google_error(404, "notFound", "Requested entity was not found."))
    assert (verdict.reason, verdict.message) == ("notFound", "Requested entity was not found.")
    assert "HTTP 404" in verdict.describe()


def refresh_error(*args: Any, retryable: bool = False) -> Exception:
    error: Exception = google.auth.exceptions.RefreshError(  # type: ignore[no-untyped-call]
        *args, retryable=retryable
    )
    return error


def transport_error(message: str) -> Exception:
    error: Exception = google.auth.exceptions.TransportError(message)  # type: ignore[no-untyped-call]
    return error


def http_error(status: int, body: bytes, headers: dict[str, str] | None = None) -> HttpError:
    resp = httplib2.Response({"status": str(status), **(headers or {})})
    return HttpError(resp, body, uri="http://127.0.0.1/gmail/v1/users/me/history")


EXCEPTIONS: list[tuple[str, BaseException, Action | None]] = [
    ("HttpError 503", http_error(503, google_error(503, "backendError")), Action.RETRY),
    ("HttpError 404", http_error(404, google_error(404, "notFound")), Action.MISSING),
    (
        "revoked refresh token",
        refresh_error("invalid_grant: Token has been expired or revoked."),
        Action.REAUTH,
    ),
    (
        "unauthorized delegation",
        refresh_error("unauthorized_client: Client is unauthorized"),
        Action.REAUTH,
    ),
    (
        "token endpoint still failing",
        refresh_error("server_error: boom", retryable=True),
        Action.RETRY,
    ),
    ("transport error during refresh", transport_error("reset"), Action.RETRY),
    ("connection refused", ConnectionRefusedError(111, "refused"), Action.RETRY),
    ("connection reset", ConnectionResetError(104, "reset"), Action.RETRY),
    ("socket timeout", TimeoutError("timed out"), Action.RETRY),
    ("dns failure", socket.gaierror(-2, "Name or service not known"), Action.RETRY),
    ("server closed", http.client.RemoteDisconnected("closed"), Action.RETRY),
    ("httplib2 server not found", httplib2.ServerNotFoundError("no such host"), Action.RETRY),
    ("a bug", KeyError("history"), None),
]


@pytest.mark.parametrize(
    ("exc", "action"), [case[1:] for case in EXCEPTIONS], ids=[case[0] for case in EXCEPTIONS]
)
def test_classify_exception(exc: BaseException, action: Action | None) -> None:
    verdict = classify_exception(exc)
    assert (verdict.action if verdict else None) is action


ERRORS: list[tuple[Action, type[ConnectorError]]] = [
    (Action.RETRY, TransientError),
    (Action.DEFER, TransientError),
    (Action.REAUTH, AuthError),
    (Action.RESYNC, CursorInvalid),
    (Action.FAIL, ConnectorError),
]


@pytest.mark.parametrize(("action", "error"), ERRORS, ids=[a.value for a, _ in ERRORS])
def test_verdict_error_types(action: Action, error: type[ConnectorError]) -> None:
    raised = Verdict(action, 400, "r", "m", retry_after=2.0).error(auth_hint="run it")
    assert type(raised) is error
    if isinstance(raised, AuthError):
        assert raised.hint == "run it"
    if isinstance(raised, TransientError):
        assert raised.retry_after == 2.0


def test_missing_means_what_the_caller_says() -> None:
    verdict = Verdict(Action.MISSING, 404, "notFound", "gone")
    assert type(verdict.error(missing=CursorInvalid)) is CursorInvalid
    assert type(verdict.error()) is ConnectorError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        ("Wed, 01 May 2024 12:02:00 GMT", 120.0),
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),
        ("soon", None),
    ],
    ids=["seconds", "http-date", "date-in-the-past", "garbage"],
)
def test_parse_retry_after(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


# --------------------------------------------------------------------------- the retry loop


def failing(times: int, exc: BaseException) -> Callable[[], str]:
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise exc
        return "ok"

    return fn


def test_retrier_backs_off_exponentially_with_full_jitter() -> None:
    slept: list[float] = []
    retrier = Retrier(
        RetryPolicy(max_retries=10, base=1.0, cap=5.0),
        classify=classify_exception,
        sleep=slept.append,
        rand=lambda: 0.5,
    )
    assert retrier.call(failing(4, http_error(503, b""))) == "ok"
    assert slept == [0.5, 1.0, 2.0, 2.5]
    assert retrier.retries == 4


def test_retrier_honours_retry_after() -> None:
    slept: list[float] = []
    retrier = Retrier(classify=classify_exception, sleep=slept.append, rand=lambda: 0.0)
    error = http_error(429, google_error(429, "rateLimitExceeded"), {"retry-after": "9"})
    retrier.call(failing(1, error))
    assert slept == [9.0]


def test_retrier_budget_is_renewed_by_progress_then_transient_error() -> None:
    slept: list[float] = []
    retrier = Retrier(
        RetryPolicy(max_retries=3),
        classify=classify_exception,
        sleep=slept.append,
        rand=lambda: 0.0,
    )
    retrier.call(failing(2, http_error(500, b"")))
    retrier.call(failing(3, http_error(500, b"")))  # the answer above renewed the budget
    assert len(slept) == 5
    with pytest.raises(TransientError, match="retry budget spent"):
        retrier.call(failing(4, http_error(500, b"")))
    assert len(slept) == 8 and retrier.retries == 8


def test_a_stretch_without_answers_spends_the_budget() -> None:
    retrier = Retrier(
        RetryPolicy(max_retries=3),
        classify=classify_exception,
        sleep=lambda _s: None,
        rand=lambda: 0.0,
    )
    for _ in range(3):
        retrier.backoff(classify(500, b""), 0)
    with pytest.raises(TransientError):
        retrier.backoff(classify(500, b""), 0)
    retrier.progress()
    retrier.backoff(classify(500, b""), 0)
    assert retrier.retries == 4


def test_a_revoked_grant_reads_cleanly() -> None:
    verdict = classify_exception(refresh_error("invalid_grant: Token has been expired or revoked."))
    assert verdict is not None
    assert verdict.describe() == (
        "Google refused the grant: invalid_grant: Token has been expired or revoked."
    )


def test_retrier_gives_up_when_retry_after_exceeds_the_time_budget() -> None:
    retrier = Retrier(
        RetryPolicy(max_seconds=10), classify=classify_exception, sleep=lambda _s: None
    )
    error = http_error(429, google_error(429, "rateLimitExceeded"), {"retry-after": "3600"})
    with pytest.raises(TransientError) as raised:
        retrier.call(failing(1, error))
    assert raised.value.retry_after == 3600.0


@pytest.mark.parametrize(
    ("exc", "missing", "error"),
    [
        (http_error(404, google_error(404, "notFound")), CursorInvalid, CursorInvalid),
        (http_error(401, google_error(401, "authError")), ConnectorError, AuthError),
        (refresh_error("invalid_grant: revoked"), ConnectorError, AuthError),
        (http_error(400, google_error(400, "badRequest")), ConnectorError, ConnectorError),
        (http_error(403, google_error(403, "dailyLimitExceeded")), ConnectorError, TransientError),
    ],
    ids=["404-as-cursor", "401", "invalid_grant", "400", "daily-limit-not-retried"],
)
def test_retrier_raises_at_once_for_what_retrying_cannot_fix(
    exc: BaseException, missing: type[ConnectorError], error: type[ConnectorError]
) -> None:
    slept: list[float] = []
    retrier = Retrier(
        classify=classify_exception,
        sleep=slept.append,
        auth_hint="run `crm-sync connectors auth alice`",
    )
    with pytest.raises(error) as raised:
        retrier.call(failing(1, exc), missing=missing)
    assert type(raised.value) is error
    assert slept == []
    if isinstance(raised.value, AuthError):
        assert "crm-sync connectors auth alice" in raised.value.hint


def test_retrier_lets_bugs_through() -> None:
    with pytest.raises(KeyError):
        Retrier(classify=classify_exception, sleep=lambda _s: None).call(failing(1, KeyError("x")))
