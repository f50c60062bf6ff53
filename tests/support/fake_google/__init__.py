"""A fake Google API server that speaks Google's HTTP wire protocol on a loopback port.

The real google-api-python-client, google-auth and google-auth-oauthlib talk to
it unmodified: point a discovery document's ``rootUrl`` and a credential's
``token_uri`` at :attr:`FakeGoogle.url`. It implements

* the OAuth 2.0 token endpoint (``/token``): refresh-token grant, the JWT-bearer
  grant of service accounts (RS256 signature checked against the registered
  public key; ``aud`` is not checked because google-auth always sends Google's
  own token URL), and the authorization-code grant with PKCE, plus an
  authorization endpoint (``/o/oauth2/auth``) that consents at once;
* Gmail v1: ``users.getProfile``, ``users.labels.list``, ``users.messages.list``,
  ``users.messages.get`` (minimal, metadata, full, raw) and ``users.history.list``,
  with the metadata scope's restrictions (no ``q``, no ``full``/``raw``);
* Calendar v3: ``calendarList.list`` (primary, owned and shared-in calendars)
  and ``events.list`` with ``singleEvents=false`` (masters with ``recurrence``,
  exceptions with ``recurringEventId``/``originalStartTime``), paging, sync
  tokens (with the parameters a sync token forbids refused), deleted events
  rendered with their ids only, and 410 ``fullSyncRequired`` for an expired
  token (:meth:`FakeCalendar.expire_sync_tokens`);
* the batch endpoint (``/batch``, ``/batch/gmail/v1``, ``/batch/calendar/v3``):
  multipart/mixed in, LF or CRLF; multipart/mixed out with
  ``Content-ID: <response-...>`` and CRLF inside every part, as the client's
  parser requires.

Errors use Google's JSON shape. Routes live in a table (:meth:`FakeGoogle.add_route`)
so other APIs (Calendar) can be added beside Gmail. Every request is logged
(:attr:`FakeGoogle.log`) and counted per API method with its quota units.
Fault injection (:class:`FaultPlan`): a seeded rate of 429/500/503 answers on
API calls and batch parts, forced answers for the next calls, dropped
connections; revoked refresh tokens; expired history and sync tokens.
"""

from __future__ import annotations

import base64
import email.policy
import hashlib
import json
import random
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, unquote_plus, urlencode, urlsplit
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
GMAIL_METADATA = SCOPE_PREFIX + "gmail.metadata"
GMAIL_READONLY = SCOPE_PREFIX + "gmail.readonly"
GMAIL_MODIFY = SCOPE_PREFIX + "gmail.modify"
GMAIL_FULL = "https://mail.google.com/"
_GMAIL_READ_SCOPES = frozenset({GMAIL_METADATA, GMAIL_READONLY, GMAIL_MODIFY, GMAIL_FULL})

GMAIL_UNITS: Mapping[str, int] = {
    "users.getProfile": 1,
    "users.labels.list": 1,
    "users.messages.list": 5,
    "users.messages.get": 5,
    "users.history.list": 2,
}
CALENDAR_UNITS: Mapping[str, int] = {"calendarList.list": 1, "events.list": 1}
SYSTEM_LABELS = (
    "INBOX",
    "SENT",
    "DRAFT",
    "SPAM",
    "TRASH",
    "UNREAD",
    "STARRED",
    "IMPORTANT",
    "CHAT",
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
)
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")
_HISTORY_FIELDS = {
    "messageAdded": "messagesAdded",
    "messageDeleted": "messagesDeleted",
    "labelAdded": "labelsAdded",
    "labelRemoved": "labelsRemoved",
}
_TOKEN_PATHS = frozenset({"/token", "/o/oauth2/token"})
_AUTH_PATH = "/o/oauth2/auth"
_BATCH_PATHS = frozenset({"/batch", "/batch/gmail/v1", "/batch/calendar/v3"})
_MAX_BATCH_PARTS = 100
_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


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


class OAuthError(Exception):
    """An answer in the OAuth token endpoint's error shape (RFC 6749 §5.2)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


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
    """The error Google gives for a rate limit or a backend failure with ``status``."""
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
        return ApiError(
            403, "userRateLimitExceeded", "User-rate limit exceeded.", domain="usageLimits"
        )
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


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class Grant:
    """Who a token speaks for: the mailbox account and the scopes granted."""

    account: str
    scopes: frozenset[str]
    client_id: str = ""


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    labels: set[str]
    internal_date: int
    history_id: int


@dataclass(frozen=True)
class Call:
    """One request the fake received: an HTTP round trip, or one part of a batch."""

    http_method: str
    path: str
    params: Mapping[str, tuple[str, ...]]
    api_method: str
    status: int
    in_batch: bool = False
    account: str | None = None

    @property
    def format(self) -> str | None:
        """``format`` of a ``messages.get`` (``None`` when the client left it out)."""
        values = self.params.get("format")
        return values[0] if values else None

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class FaultPlan:
    """Which API calls fail on purpose.

    ``forced`` statuses answer the next calls in order (0 means "answer normally");
    after them a seeded ``rate`` of calls gets one of ``statuses``. ``methods``
    limits both to some API methods (``None``: all). ``drop_connections`` closes
    the next HTTP connections without an answer.
    """

    rate: float = 0.0
    statuses: tuple[int, ...] = (429, 500, 503)
    methods: frozenset[str] | None = None
    retry_after: float | None = None
    seed: int = 0
    forced: deque[int] = field(default_factory=deque)
    drop_connections: int = 0
    injected: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self, api_method: str) -> int | None:
        """The status to inject for this call, or ``None`` to answer normally."""
        if self.methods is not None and api_method not in self.methods:
            return None
        status: int | None = None
        if self.forced:
            status = self.forced.popleft() or None
        elif self.rate and self._rng.random() < self.rate:
            status = self._rng.choice(self.statuses)
        if status is not None:
            self.injected += 1
        return status


class Mailbox:
    """One Gmail user's mailbox: messages with labels, and the history of every change.

    Each change appends one history record with a new, larger id (ids increase
    but are not contiguous, as in Gmail).
    """

    def __init__(
        self, address: str, *, lock: threading.RLock, ids: Iterator[int], first_history_id: int
    ) -> None:
        self.address = address
        self.messages: dict[str, StoredMessage] = {}
        self.history: list[dict[str, Any]] = []
        self.history_id = first_history_id
        self.min_start_history_id = first_history_id
        self.history_limit: int | None = None
        self.user_labels: dict[str, str] = {}
        self._lock = lock
        self._ids = ids
        self._threads_by_msgid: dict[str, str] = {}

    # -- changes

    def add_message(
        self,
        raw: bytes,
        labels: Iterable[str] = ("INBOX",),
        *,
        internal_date: datetime | None = None,
        thread_id: str | None = None,
    ) -> str:
        """Deliver ``raw`` (RFC 5322 bytes) with ``labels``; returns the Gmail id."""
        with self._lock:
            message_id = f"{next(self._ids):016x}"
            headers = BytesParser(policy=email.policy.compat32).parsebytes(raw, headersonly=True)
            thread = thread_id or self._thread_for(headers) or message_id
            msgid = _normalize_msgid(headers.get("Message-ID"))
            if msgid:
                self._threads_by_msgid.setdefault(msgid, thread)
            when = internal_date or _header_date(headers) or datetime.now(UTC)
            stored = StoredMessage(
                id=message_id,
                thread_id=thread,
                raw=raw,
                labels=set(labels),
                internal_date=int(when.timestamp() * 1000),
                history_id=0,
            )
            self.messages[message_id] = stored
            self._record("messagesAdded", stored)
            return message_id

    def delete_message(self, message_id: str) -> None:
        """Delete for good (not trash): a ``messagesDeleted`` history record."""
        with self._lock:
            stored = self.messages.pop(message_id)
            self._record("messagesDeleted", stored)

    def modify(self, message_id: str, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
        """Add and remove labels; one history record with ``labelsAdded``/``labelsRemoved``."""
        with self._lock:
            stored = self.messages[message_id]
            added = sorted(set(add) - stored.labels)
            removed = sorted(set(remove) & stored.labels)
            if not added and not removed:
                return
            stored.labels |= set(added)
            stored.labels -= set(removed)
            record = self._new_record(stored)
            if added:
                record["labelsAdded"] = [{"message": _ref(stored), "labelIds": added}]
            if removed:
                record["labelsRemoved"] = [{"message": _ref(stored), "labelIds": removed}]
            self._append(record)

    def create_label(self, name: str) -> str:
        """A user label; returns its id (``Label_N``)."""
        with self._lock:
            label_id = f"Label_{len(self.user_labels) + 1}"
            self.user_labels[label_id] = name
            return label_id

    def expire_history(self) -> None:
        """Forget every history record: any earlier ``startHistoryId`` now gets 404."""
        with self._lock:
            self.history.clear()
            self.min_start_history_id = self.history_id

    # -- internals

    def _thread_for(self, headers: Message) -> str | None:
        refs = " ".join(str(headers.get(h, "")) for h in ("In-Reply-To", "References"))
        for ref in re.findall(r"<[^>]+>", refs):
            thread = self._threads_by_msgid.get(_normalize_msgid(ref))
            if thread:
                return thread
        return None

    def _new_record(self, stored: StoredMessage) -> dict[str, Any]:
        self.history_id += 1 + len(self.history) % 3
        stored.history_id = self.history_id
        return {"id": str(self.history_id), "messages": [_ref(stored, labels=False)]}

    def _record(self, kind: str, stored: StoredMessage) -> None:
        record = self._new_record(stored)
        record[kind] = [{"message": _ref(stored)}]
        self._append(record)

    def _append(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        if self.history_limit is not None and len(self.history) > self.history_limit:
            dropped = self.history[: len(self.history) - self.history_limit]
            del self.history[: len(dropped)]
            self.min_start_history_id = int(dropped[-1]["id"])


def _ref(stored: StoredMessage, *, labels: bool = True) -> dict[str, Any]:
    ref: dict[str, Any] = {"id": stored.id, "threadId": stored.thread_id}
    if labels:
        ref["labelIds"] = sorted(stored.labels)
    return ref


def _normalize_msgid(value: object) -> str:
    return str(value or "").strip().strip("<>").lower()


def _header_date(headers: Message) -> datetime | None:
    value = headers.get("Date")
    if not value:
        return None
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- routing


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


@dataclass(frozen=True)
class Route:
    http_method: str
    pattern: re.Pattern[str]
    api_method: str
    units: int
    handler: Handler


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class FakeGoogle:
    """The fake server. Use as a context manager; ``url`` is its root.

    ``log`` holds every :class:`Call`; ``calls`` and ``units`` count API calls
    and quota units per API method (batch parts one by one); ``round_trips``
    counts HTTP requests (a batch is one).
    """

    def __init__(self, *, seed: int = 0, token_lifetime: int = 3600) -> None:
        self.lock = threading.RLock()
        self.faults = FaultPlan(seed=seed)
        self.token_lifetime = token_lifetime
        self.mailboxes: dict[str, Mailbox] = {}
        self.calendars: dict[str, FakeCalendar] = {}
        self.calendar_lists: dict[str, list[CalendarListEntry]] = {}
        self.clients: dict[str, str] = {"test-client": "test-secret"}
        self.service_accounts: dict[str, tuple[rsa.RSAPublicKey, frozenset[str]]] = {}
        self.consent_account: str | None = None
        self.consent_scopes: frozenset[str] | None = None
        self.log: list[Call] = []
        self.calls: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self._refresh_tokens: dict[str, Grant] = {}
        self._access_tokens: dict[str, tuple[Grant, float]] = {}
        self._codes: dict[str, tuple[Grant, str, str]] = {}
        self._routes: list[Route] = []
        self._ids = iter(range(0x18C2A00000000000, 1 << 64))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for method, pattern, api_method, handler in _gmail_routes(self):
            self.add_route(method, pattern, api_method, handler, units=GMAIL_UNITS[api_method])
        for method, pattern, api_method, handler in _calendar_routes(self):
            self.add_route(method, pattern, api_method, handler, units=CALENDAR_UNITS[api_method])

    # -- lifecycle

    def start(self) -> FakeGoogle:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def token_uri(self) -> str:
        return self.url + "/token"

    # -- setup

    def add_route(
        self, http_method: str, pattern: str, api_method: str, handler: Handler, *, units: int = 0
    ) -> None:
        """Serve ``http_method`` on paths matching ``pattern`` (named groups become
        ``ApiRequest.args``) as ``api_method`` costing ``units`` quota units. A route
        added later wins over an earlier one for the same path, so a test can replace
        a built-in route."""
        regex = re.compile(pattern.replace("{", "(?P<").replace("}", ">[^/]+)") + "$")
        self._routes.append(Route(http_method, regex, api_method, units, handler))

    def add_mailbox(self, address: str, *, first_history_id: int = 1000) -> Mailbox:
        with self.lock:
            mailbox = Mailbox(
                address, lock=self.lock, ids=self._ids, first_history_id=first_history_id
            )
            self.mailboxes[address.lower()] = mailbox
            return mailbox

    def add_calendar_user(self, account: str, *, time_zone: str = "UTC") -> FakeCalendar:
        """A Calendar user with a primary calendar (whose id is the address)."""
        with self.lock:
            calendar = self._new_calendar(account, account, time_zone, data_owner=None)
            self.calendar_lists[account.lower()] = [CalendarListEntry(calendar.id, "owner", True)]
            return calendar

    def add_calendar(
        self, calendar_id: str, *, owner: str, summary: str = "", time_zone: str = "UTC"
    ) -> FakeCalendar:
        """A secondary calendar whose data owner is ``owner``, in the owner's list."""
        with self.lock:
            calendar = self._new_calendar(
                calendar_id, summary or calendar_id, time_zone, data_owner=owner
            )
            self.share_calendar(calendar_id, owner, "owner")
            return calendar

    def share_calendar(self, calendar_id: str, account: str, access_role: str = "reader") -> None:
        """Put a calendar in ``account``'s list with ``access_role``."""
        with self.lock:
            entries = self.calendar_lists.setdefault(account.lower(), [])
            entries.append(CalendarListEntry(calendar_id, access_role))

    def _new_calendar(
        self, calendar_id: str, summary: str, time_zone: str, *, data_owner: str | None
    ) -> FakeCalendar:
        calendar = FakeCalendar(
            calendar_id,
            summary=summary,
            time_zone=time_zone,
            data_owner=data_owner,
            lock=self.lock,
            ids=self._ids,
        )
        self.calendars[calendar_id] = calendar
        return calendar

    def issue_refresh_token(
        self, account: str, scopes: Iterable[str], *, client_id: str = "test-client"
    ) -> str:
        """A refresh token for ``account``, as if the user had consented to ``scopes``."""
        with self.lock:
            token = "1//fake-" + secrets.token_urlsafe(24)
            self._refresh_tokens[token] = Grant(account, frozenset(scopes), client_id)
            return token

    def issue_access_token(
        self, account: str, scopes: Iterable[str], *, lifetime: float | None = None
    ) -> str:
        with self.lock:
            return self._new_access_token(Grant(account, frozenset(scopes)), lifetime)

    def refresh_tokens_of(self, account: str) -> list[str]:
        with self.lock:
            return [t for t, g in self._refresh_tokens.items() if g.account == account]

    def revoke(self, refresh_token: str) -> None:
        """Revoke a grant: the refresh token and every access token it produced."""
        with self.lock:
            grant = self._refresh_tokens.pop(refresh_token)
            for token, (other, _expiry) in list(self._access_tokens.items()):
                if other == grant:
                    del self._access_tokens[token]

    def expire_access_tokens(self) -> None:
        """Every access token stops working (as after their hour runs out)."""
        with self.lock:
            self._access_tokens.clear()

    def add_service_account(
        self, client_email: str, public_key: rsa.RSAPublicKey, delegated_scopes: Iterable[str]
    ) -> None:
        """Register a service account with the scopes an admin granted it for
        domain-wide delegation."""
        with self.lock:
            self.service_accounts[client_email] = (public_key, frozenset(delegated_scopes))

    def reset_counters(self) -> None:
        with self.lock:
            self.log.clear()
            self.calls.clear()
            self.units.clear()

    # -- observations

    @property
    def round_trips(self) -> int:
        with self.lock:
            return sum(1 for call in self.log if not call.in_batch)

    def api_calls(self, api_method: str | None = None) -> list[Call]:
        """Calls routed to an API method (plain and batch parts), oldest first."""
        with self.lock:
            return [
                c
                for c in self.log
                if c.api_method in self._api_methods()
                and (api_method is None or c.api_method == api_method)
            ]

    def _api_methods(self) -> set[str]:
        return {route.api_method for route in self._routes}

    # -- HTTP

    def handle_http(
        self, http_method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> _Answer:
        """Answer one HTTP request (the request handler's only entry point)."""
        split = urlsplit(target)
        if split.path in _BATCH_PATHS and http_method == "POST":
            answer, parts = self._batch(headers, body)
            params = {"parts": (str(parts),)}
            self._note(Call(http_method, split.path, params, "batch", answer.status))
            return answer
        return self._single(http_method, target, headers, body, in_batch=False)

    def take_dropped_connection(self) -> bool:
        with self.lock:
            if self.faults.drop_connections > 0:
                self.faults.drop_connections -= 1
                return True
            return False

    def _single(
        self,
        http_method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        in_batch: bool,
    ) -> _Answer:
        split = urlsplit(target)
        params = parse_qs(split.query, keep_blank_values=True)
        frozen = {k: tuple(v) for k, v in params.items()}
        if split.path in _TOKEN_PATHS and http_method == "POST":
            answer = self._token_endpoint(body, _get_header(headers, "authorization"))
            self._note(Call(http_method, split.path, {}, "oauth2.token", answer.status))
            return answer
        if split.path == _AUTH_PATH and http_method == "GET":
            answer = self._authorize(params)
            self._note(Call(http_method, split.path, frozen, "oauth2.auth", answer.status))
            return answer
        route, args = self._match(http_method, split.path)
        if route is None:
            error = ApiError(404, "notFound", f"No route for {http_method} {split.path}")
            self._note(Call(http_method, split.path, frozen, "unknown", 404, in_batch))
            return _error_answer(error)
        grant: Grant | None = None
        try:
            grant = self._authenticate(headers)
            with self.lock:
                status = self.faults.pick(route.api_method)
            if status is not None:
                raise injected_error(status, self.faults.retry_after)
            request = ApiRequest(http_method, split.path, params, headers, body, args, grant)
            with self.lock:
                answer = _json_answer(200, route.handler(request))
        except ApiError as error:
            answer = _error_answer(error)
        account = grant.account if grant else None
        call = Call(
            http_method, split.path, frozen, route.api_method, answer.status, in_batch, account
        )
        self._note(call, units=route.units)
        return answer

    def _match(self, http_method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in reversed(self._routes):
            if route.http_method != http_method:
                continue
            match = route.pattern.match(path)
            if match:
                return route, match.groupdict()
        return None, {}

    def _note(self, call: Call, units: int = 0) -> None:
        with self.lock:
            self.log.append(call)
            self.calls[call.api_method] += 1
            self.units[call.api_method] += units

    def _authenticate(self, headers: Mapping[str, str]) -> Grant:
        value = _get_header(headers, "authorization") or ""
        scheme, _, token = value.partition(" ")
        with self.lock:
            entry = self._access_tokens.get(token) if scheme.lower() == "bearer" else None
        if entry is None or entry[1] < time.time():
            raise ApiError(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        return entry[0]

    def _new_access_token(self, grant: Grant, lifetime: float | None = None) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        expiry = time.time() + (self.token_lifetime if lifetime is None else lifetime)
        self._access_tokens[token] = (grant, expiry)
        return token

    # -- OAuth

    def _token_endpoint(self, body: bytes, authorization: str | None) -> _Answer:
        """RFC 6749 §3.2; client credentials in the form or as HTTP Basic (§2.3.1)."""
        form = {k: v[-1] for k, v in parse_qs(body.decode("ascii", "replace")).items()}
        scheme, _, credentials = (authorization or "").partition(" ")
        if scheme.lower() == "basic":
            decoded = base64.b64decode(credentials).decode("utf-8", "replace")
            client_id, _, client_secret = decoded.partition(":")
            form.setdefault("client_id", unquote_plus(client_id))
            form.setdefault("client_secret", unquote_plus(client_secret))
        try:
            with self.lock:
                payload = self._grant(form)
        except OAuthError as error:
            return _json_answer(
                error.status, {"error": error.error, "error_description": error.description}
            )
        return _json_answer(200, payload)

    def _grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        if grant_type == "refresh_token":
            return self._refresh_grant(form)
        if grant_type == _JWT_GRANT:
            return self._jwt_grant(form.get("assertion", ""))
        if grant_type == "authorization_code":
            return self._code_grant(form)
        raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _check_client(self, form: Mapping[str, str]) -> None:
        client_id = form.get("client_id", "")
        if self.clients.get(client_id) != form.get("client_secret") or not client_id:
            raise OAuthError(401, "invalid_client", "Unauthorized")

    def _refresh_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        self._check_client(form)
        grant = self._refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None:
            raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
        scopes = grant.scopes
        if form.get("scope"):
            asked = frozenset(form["scope"].split())
            if not asked <= grant.scopes:
                raise OAuthError(400, "invalid_scope", "Bad Request")
            scopes = asked
        token = self._new_access_token(Grant(grant.account, scopes, grant.client_id))
        return {
            "access_token": token,
            "expires_in": self.token_lifetime,
            "scope": " ".join(sorted(scopes)),
            "token_type": "Bearer",
        }

    def _jwt_grant(self, assertion: str) -> dict[str, Any]:
        claims = self._verify_jwt(assertion)
        scopes = frozenset(str(claims.get("scope", "")).split())
        subject = str(claims.get("sub") or claims["iss"])
        known = self.mailboxes.keys() | self.calendar_lists.keys()
        if claims.get("sub") and subject.lower() not in known:
            raise OAuthError(400, "invalid_grant", "Invalid email or User ID")
        _key, delegated = self.service_accounts[str(claims["iss"])]
        if not scopes or not scopes <= delegated:
            raise OAuthError(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, "
                "or client not authorized for any of the scopes requested.",
            )
        token = self._new_access_token(Grant(subject, scopes, str(claims["iss"])))
        return {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}

    def _verify_jwt(self, assertion: str) -> dict[str, Any]:
        invalid = OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            header_b64, payload_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(payload_b64))
            signature = _b64url_decode(signature_b64)
        except ValueError:
            raise invalid from None
        if header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise invalid
        entry = self.service_accounts.get(str(claims.get("iss")))
        if entry is None:
            raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
        try:
            entry[0].verify(
                signature,
                f"{header_b64}.{payload_b64}".encode("ascii"),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            raise invalid from None
        now = time.time()
        if (
            not (float(claims.get("iat", 0)) - 300 <= now <= float(claims.get("exp", 0)) + 300)
            or float(claims["exp"]) - float(claims["iat"]) > 3600
        ):
            raise OAuthError(
                400,
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe.",
            )
        return claims

    def _authorize(self, params: Mapping[str, list[str]]) -> _Answer:
        """The consent screen, consenting at once as ``consent_account``."""
        form = {k: v[-1] for k, v in params.items()}
        redirect_uri = form.get("redirect_uri", "")
        if self.consent_account is None or form.get("client_id") not in self.clients:
            return _json_answer(400, {"error": "invalid_request"})
        asked = frozenset(form.get("scope", "").split())
        scopes = asked if self.consent_scopes is None else asked & self.consent_scopes
        code = "4/fake-" + secrets.token_urlsafe(16)
        challenge = form.get("code_challenge", "")
        with self.lock:
            grant = Grant(self.consent_account, scopes, form["client_id"])
            self._codes[code] = (grant, redirect_uri, challenge)
        query = urlencode({"state": form.get("state", ""), "code": code, "scope": " ".join(scopes)})
        separator = "&" if "?" in redirect_uri else "?"
        return _Answer(302, {"Location": f"{redirect_uri}{separator}{query}"}, b"")

    def _code_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        self._check_client(form)
        entry = self._codes.pop(form.get("code", ""), None)
        if entry is None:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        grant, redirect_uri, challenge = entry
        if form.get("redirect_uri") != redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if challenge:
            verifier = form.get("code_verifier", "").encode("ascii")
            computed = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest())
            if computed.rstrip(b"=").decode("ascii") != challenge:
                raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        refresh = "1//fake-" + secrets.token_urlsafe(24)
        self._refresh_tokens[refresh] = grant
        return {
            "access_token": self._new_access_token(grant),
            "refresh_token": refresh,
            "expires_in": self.token_lifetime,
            "scope": " ".join(sorted(grant.scopes)),
            "token_type": "Bearer",
        }

    # -- batch

    def _batch(self, headers: Mapping[str, str], body: bytes) -> tuple[_Answer, int]:
        """Answer a batch request; also returns how many parts it held."""
        content_type = _get_header(headers, "content-type") or ""
        envelope = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        parsed = BytesParser(policy=email.policy.compat32).parsebytes(envelope)
        if not parsed.is_multipart():
            return _error_answer(bad_request("Batch request must be multipart/mixed.")), 0
        parts = parsed.get_payload()
        assert isinstance(parts, list)
        if len(parts) > _MAX_BATCH_PARTS:
            error = bad_request(f"A batch may hold at most {_MAX_BATCH_PARTS} requests.")
            return _error_answer(error), len(parts)
        boundary = "batch_" + secrets.token_hex(12)
        out: list[str] = []
        for part in parts:
            assert isinstance(part, Message)
            content_id = str(part.get("Content-ID", "")).strip()
            inner = part.get_payload(decode=False)
            if isinstance(inner, list):
                return _error_answer(bad_request("Nested multipart in batch.")), len(parts)
            method, target, inner_headers, inner_body = _parse_http_request(str(inner))
            rendered = self._single(method, target, inner_headers, inner_body, in_batch=True)
            out.append(_batch_part(boundary, content_id, rendered))
        out.append(f"--{boundary}--\r\n")
        answer = _Answer(
            200,
            {"Content-Type": f"multipart/mixed; boundary={boundary}"},
            "".join(out).encode("utf-8"),
        )
        return answer, len(parts)


def _parse_http_request(text: str) -> tuple[str, str, dict[str, str], bytes]:
    """``(method, target, headers, body)`` of an application/http part; LF or CRLF."""
    head, _, body = _split_head(text)
    lines = head.splitlines()
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, headers, body.encode("utf-8")


def _split_head(text: str) -> tuple[str, str, str]:
    match = re.search(r"\r?\n\r?\n", text)
    if match is None:
        return text, "", ""
    return text[: match.start()], match.group(0), text[match.end() :]


def _batch_part(boundary: str, content_id: str, answer: _Answer) -> str:
    inner_id = content_id[1:-1] if content_id.startswith("<") else content_id
    reason = HTTPStatus(answer.status).phrase
    extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
    return (
        f"--{boundary}\r\n"
        "Content-Type: application/http\r\n"
        f"Content-ID: <response-{inner_id}>\r\n"
        "\r\n"
        f"HTTP/1.1 {answer.status} {reason}\r\n"
        f"{extra}"
        "\r\n"
        f"{answer.body.decode('utf-8')}\r\n"
    )


def _json_answer(status: int, payload: Mapping[str, Any]) -> _Answer:
    return _Answer(
        status,
        {"Content-Type": "application/json; charset=UTF-8"},
        json.dumps(payload).encode("utf-8"),
    )


def _error_answer(error: ApiError) -> _Answer:
    answer = _json_answer(error.status, error.body())
    return _Answer(answer.status, {**answer.headers, **error.headers}, answer.body)


def _get_header(headers: Mapping[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        fake: FakeGoogle = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if fake.take_dropped_connection():
            self.close_connection = True
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        answer = fake.handle_http(self.command, self.path, headers, body)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_PATCH = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return


# --------------------------------------------------------------------------- Gmail


def _gmail_routes(fake: FakeGoogle) -> list[tuple[str, str, str, Handler]]:
    api = _GmailApi(fake)
    base = "/gmail/v1/users/{userId}"
    return [
        ("GET", base + "/profile", "users.getProfile", api.get_profile),
        ("GET", base + "/labels", "users.labels.list", api.list_labels),
        ("GET", base + "/messages", "users.messages.list", api.list_messages),
        ("GET", base + "/messages/{id}", "users.messages.get", api.get_message),
        ("GET", base + "/history", "users.history.list", api.list_history),
    ]


class _GmailApi:
    """Gmail v1's read methods over :class:`Mailbox` state."""

    def __init__(self, fake: FakeGoogle) -> None:
        self._fake = fake

    def _mailbox(self, request: ApiRequest) -> Mailbox:
        grant = request.grant
        if not grant.scopes & _GMAIL_READ_SCOPES:
            raise ApiError(
                403,
                "insufficientPermissions",
                "Request had insufficient authentication scopes.",
            )
        user = request.args["userId"]
        if user != "me" and user.lower() != grant.account.lower():
            raise ApiError(403, "forbidden", f"Delegation denied for {grant.account}")
        mailbox = self._fake.mailboxes.get(grant.account.lower())
        if mailbox is None:
            raise bad_request("Mail service not enabled", reason="failedPrecondition")
        return mailbox

    @staticmethod
    def _metadata_only(request: ApiRequest) -> bool:
        """Google applies the metadata scope's limits whenever the token carries it."""
        return GMAIL_METADATA in request.grant.scopes

    def get_profile(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        return {
            "emailAddress": mailbox.address,
            "messagesTotal": len(mailbox.messages),
            "threadsTotal": len({m.thread_id for m in mailbox.messages.values()}),
            "historyId": str(mailbox.history_id),
        }

    def list_labels(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        labels = [{"id": name, "name": name, "type": "system"} for name in SYSTEM_LABELS]
        labels += [
            {"id": label_id, "name": name, "type": "user"}
            for label_id, name in mailbox.user_labels.items()
        ]
        return {"labels": labels}

    def list_messages(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        query = request.param("q") or ""
        if query and self._metadata_only(request):
            raise ApiError(403, "forbidden", "Metadata scope does not support 'q' parameter")
        wanted = set(request.params_list("labelIds"))
        include_spam_trash = request.param("includeSpamTrash", "false") == "true"
        size = _page_size(request, default=100)
        matches = _parse_query(query)
        hidden = set() if include_spam_trash else {"SPAM", "TRASH"} - wanted
        selected = sorted(
            (
                m
                for m in mailbox.messages.values()
                if wanted <= m.labels and not (hidden & m.labels) and matches(m)
            ),
            key=lambda m: (m.internal_date, m.id),
            reverse=True,
        )
        token = request.param("pageToken")
        if token:
            after = _decode_page_token(token)
            selected_after = [m for m in selected if (m.internal_date, m.id) < after]
        else:
            selected_after = selected
        page = selected_after[:size]
        result: dict[str, Any] = {"resultSizeEstimate": len(selected)}
        if page:
            result["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if len(selected_after) > size:
            last = page[-1]
            result["nextPageToken"] = _encode_page_token((last.internal_date, last.id))
        return result

    def get_message(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        fmt = request.param("format", "full") or "full"
        if fmt not in ("minimal", "metadata", "full", "raw"):
            raise bad_request(f"Invalid value at 'format' ({fmt})")
        if fmt in ("full", "raw") and self._metadata_only(request):
            raise ApiError(403, "forbidden", f"Metadata scope doesn't allow format {fmt.upper()}")
        stored = mailbox.messages.get(request.args["id"])
        if stored is None:
            raise not_found()
        return render_message(stored, fmt, request.params_list("metadataHeaders"))

    def list_history(self, request: ApiRequest) -> Mapping[str, Any]:
        mailbox = self._mailbox(request)
        start_text = request.param("startHistoryId")
        if not start_text or not start_text.isdigit():
            raise bad_request("Invalid startHistoryId")
        start = int(start_text)
        if start < mailbox.min_start_history_id:
            raise not_found()
        types = request.params_list("historyTypes") or list(HISTORY_TYPES)
        fields = [_HISTORY_FIELDS[t] for t in types if t in _HISTORY_FIELDS]
        label = request.param("labelId")
        after = int(_decode_page_token(request.param("pageToken") or "")[1] or start)
        records = [
            r
            for r in (_filter_record(r, fields, label) for r in mailbox.history)
            if r is not None and int(r["id"]) > after
        ]
        size = _page_size(request, default=100)
        page = records[:size]
        result: dict[str, Any] = {"historyId": str(mailbox.history_id)}
        if page:
            result["history"] = page
        if len(records) > size:
            result["nextPageToken"] = _encode_page_token((0, page[-1]["id"]))
        return result


def _filter_record(
    record: dict[str, Any], fields: Sequence[str], label: str | None
) -> dict[str, Any] | None:
    kept = {}
    for name in fields:
        entries = [
            e
            for e in record.get(name, [])
            if label is None or label in e["message"].get("labelIds", [])
        ]
        if entries:
            kept[name] = entries
    if not kept:
        return None
    return {"id": record["id"], "messages": record["messages"], **kept}


def _page_size(request: ApiRequest, *, default: int, largest: int = 500) -> int:
    text = request.param("maxResults")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= largest:
        raise bad_request(f"Invalid maxResults: {text}")
    return int(text)


def _encode_page_token(key: tuple[int, str]) -> str:
    raw = f"{key[0]}:{key[1]}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_page_token(token: str) -> tuple[int, str]:
    if not token:
        return 0, ""
    try:
        date, _, message_id = _b64url_decode(token).decode("ascii").partition(":")
        return int(date), message_id
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Invalid pageToken") from None


def _parse_query(query: str) -> Callable[[StoredMessage], bool]:
    """The subset of Gmail search the connector uses: ``after:``/``before:`` (epoch
    seconds or YYYY/MM/DD), ``in:``/``label:``, each negatable with ``-``."""
    terms = [_query_term(term) for term in query.split()]
    return lambda message: all(term(message) for term in terms)


def _query_term(term: str) -> Callable[[StoredMessage], bool]:
    negate = term.startswith("-")
    name, _, value = term.lstrip("-").partition(":")

    def test(message: StoredMessage) -> bool:
        if name == "after":
            result = message.internal_date > bound
        elif name == "before":
            result = message.internal_date < bound
        else:
            result = value.upper() in message.labels
        return result != negate

    if name in ("after", "before"):
        bound = _query_time_ms(value)
    elif name not in ("in", "label"):
        raise bad_request(f"The fake does not support the search term {term!r}")
    return test


def _query_time_ms(value: str) -> int:
    if value.isdigit():
        return int(value) * 1000
    try:
        when = datetime.strptime(value, "%Y/%m/%d").replace(tzinfo=UTC)
    except ValueError:
        raise bad_request(f"Invalid date in query: {value}") from None
    return int(when.timestamp() * 1000)


def render_message(
    stored: StoredMessage, fmt: str, metadata_headers: Sequence[str] = ()
) -> dict[str, Any]:
    """A ``Message`` resource in ``fmt`` as Gmail renders it."""
    parsed = BytesParser(policy=email.policy.compat32).parsebytes(stored.raw)
    result: dict[str, Any] = {
        "id": stored.id,
        "threadId": stored.thread_id,
        "labelIds": sorted(stored.labels),
        "snippet": _snippet(parsed),
        "sizeEstimate": len(stored.raw),
        "historyId": str(stored.history_id),
        "internalDate": str(stored.internal_date),
    }
    if fmt == "raw":
        result["raw"] = base64.urlsafe_b64encode(stored.raw).decode("ascii")
    elif fmt == "metadata":
        wanted = {h.lower() for h in metadata_headers}
        headers = [
            {"name": name, "value": _header_text(value)}
            for name, value in parsed.items()
            if not wanted or name.lower() in wanted
        ]
        result["payload"] = {
            "partId": "",
            "mimeType": parsed.get_content_type(),
            "filename": "",
            "headers": headers,
        }
    elif fmt == "full":
        result["payload"] = _payload(parsed, "")
    return result


def _payload(part: Message, part_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": [{"name": k, "value": _header_text(v)} for k, v in part.items()],
    }
    if part.is_multipart():
        children = part.get_payload()
        assert isinstance(children, list)
        out["body"] = {"size": 0}
        out["parts"] = [
            _payload(child, f"{part_id}.{i}" if part_id else str(i))
            for i, child in enumerate(children)
        ]
        return out
    data = part.get_payload(decode=True)
    content = data if isinstance(data, bytes) else b""
    body: dict[str, Any] = {"size": len(content)}
    if out["filename"]:
        body["attachmentId"] = "ANGjdJ-" + hashlib.sha1(content).hexdigest()
    elif content:
        body["data"] = base64.urlsafe_b64encode(content).decode("ascii").rstrip("=")
    out["body"] = body
    return out


def _header_text(value: object) -> str:
    text = str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return re.sub(r"\r?\n(?=[ \t])", "", text)


def _snippet(parsed: Message) -> str:
    for part in parsed.walk():
        if part.get_content_type() == "text/plain":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                charset = part.get_content_charset() or "utf-8"
                try:
                    text = data.decode(charset, "replace")
                except LookupError:
                    text = data.decode("utf-8", "replace")
                return " ".join(text.split())[:100]
    return ""


# --------------------------------------------------------------------------- Calendar


class FakeCalendar:
    """One calendar's events and the order in which they last changed.

    Every change stamps the event with the next value of the calendar's
    change counter; a sync token is the counter's value when a listing
    started, so ``events.list(syncToken=t)`` returns what changed after ``t``.
    A deleted event stays, cancelled, and is rendered with its ids only, as
    Google guarantees no more; the fake keeps the rest to filter by time.
    """

    def __init__(
        self,
        calendar_id: str,
        *,
        summary: str,
        time_zone: str,
        data_owner: str | None,
        lock: threading.RLock,
        ids: Iterator[int],
    ) -> None:
        self.id = calendar_id
        self.summary = summary
        self.time_zone = time_zone
        self.data_owner = data_owner
        self.events: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, int] = {}
        self.seq = 0
        self.min_sync_seq = 0
        self._lock = lock
        self._ids = ids

    # -- changes

    def insert(self, resource: Mapping[str, Any]) -> str:
        """Add an event (a Google ``Event`` resource, ``id`` and ``iCalUID`` optional)."""
        with self._lock:
            event = {"status": "confirmed", "sequence": 0, **resource}
            event_id = str(event.setdefault("id", f"{next(self._ids):x}"))
            event.setdefault("iCalUID", f"{event_id}@google.com")
            self._store(event)
            return event_id

    def update(self, event_id: str, **fields: Any) -> None:
        """Change fields of an event (``None`` removes one); a new time bumps ``sequence``."""
        with self._lock:
            event = dict(self.events[event_id])
            if {"start", "end"} & set(fields):
                event["sequence"] = int(event.get("sequence", 0)) + 1
            for key, value in fields.items():
                if value is None:
                    event.pop(key, None)
                else:
                    event[key] = value
            self._store(event)

    def respond(self, event_id: str, email: str, response_status: str) -> None:
        """An attendee answers the invitation (for a master: to every instance of it)."""
        with self._lock:
            instances = [
                other_id
                for other_id, other in self.events.items()
                if other.get("recurringEventId") == event_id and other.get("status") != "cancelled"
            ]
            for changed in (event_id, *instances):
                attendees = [
                    {**a, "responseStatus": response_status} if a.get("email") == email else a
                    for a in self.events[changed].get("attendees", [])
                ]
                self.update(changed, attendees=attendees)

    def delete(self, event_id: str) -> None:
        """Delete an event (a whole series, for a master): it turns ``cancelled``."""
        with self._lock:
            self._store({**self.events[event_id], "status": "cancelled"})

    def cancel_instance(self, master_id: str, original_start: datetime) -> str:
        """Delete one instance of a series: a cancelled exception, ids only."""
        with self._lock:
            master = self.events[master_id]
            exception_id = _instance_id(master_id, original_start)
            self._store(
                {
                    "id": exception_id,
                    "iCalUID": master["iCalUID"],
                    "status": "cancelled",
                    "recurringEventId": master_id,
                    "originalStartTime": _instance_time(master, original_start),
                }
            )
            return exception_id

    def move_instance(
        self, master_id: str, original_start: datetime, start: datetime, end: datetime
    ) -> str:
        """Move one instance of a series: an exception with the master's details."""
        with self._lock:
            master = self.events[master_id]
            exception_id = _instance_id(master_id, original_start)
            zone = master["start"].get("timeZone")
            details = {
                k: v for k, v in master.items() if k not in ("id", "recurrence", "start", "end")
            }
            previous = self.events.get(exception_id, {})
            self._store(
                {
                    **details,
                    "id": exception_id,
                    "status": "confirmed",
                    "sequence": int(previous.get("sequence", master.get("sequence", 0))) + 1,
                    "recurringEventId": master_id,
                    "originalStartTime": _instance_time(master, original_start),
                    "start": event_time(start, zone),
                    "end": event_time(end, zone),
                }
            )
            return exception_id

    def expire_sync_tokens(self) -> None:
        """Every sync token issued so far now gets 410 Gone."""
        with self._lock:
            self.seq += 1
            self.min_sync_seq = self.seq

    def _store(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event["updated"] = _rfc3339(datetime.now(UTC))
        event["etag"] = f'"{self.seq}"'
        self.events[str(event["id"])] = event
        self.changed[str(event["id"])] = self.seq

    # -- reading

    def listing(
        self, after: int | None, upto: int, time_min: datetime | None, show_deleted: bool
    ) -> list[tuple[int, str]]:
        """``(change, id)`` of the events a listing holds, in listing order.

        ``after`` is the sync token's change (``None``: a full listing, which
        leaves out deleted events unless ``show_deleted``, and events over
        before ``time_min``; masters are always in).
        """
        keys = []
        for event_id, event in self.events.items():
            change = self.changed[event_id]
            if change > upto:
                continue
            if after is not None:
                if change > after:
                    keys.append((change, event_id))
                continue
            if event.get("status") == "cancelled" and not show_deleted:
                continue
            if time_min is not None and "recurrence" not in event:
                end = _event_end(event)
                if end is not None and end <= time_min:
                    continue
            keys.append((change, event_id))
        return sorted(keys)

    def render(self, event_id: str) -> dict[str, Any]:
        """The resource as ``events.list`` returns it."""
        event = self.events[event_id]
        if event.get("status") == "cancelled":
            kept = ("id", "status", "recurringEventId", "originalStartTime", "etag")
            return {"kind": "calendar#event", **{k: event[k] for k in kept if k in event}}
        return {"kind": "calendar#event", **event}


@dataclass(frozen=True)
class CalendarListEntry:
    calendar_id: str
    access_role: str
    primary: bool = False


def event_time(moment: datetime | date, time_zone: str | None = None) -> dict[str, str]:
    """An ``EventDateTime``: ``date`` for a date, else ``dateTime`` in ``time_zone``'s offset."""
    if not isinstance(moment, datetime):
        return {"date": moment.isoformat()}
    if time_zone:
        local = moment.astimezone(ZoneInfo(time_zone))
        return {"dateTime": local.isoformat(), "timeZone": time_zone}
    return {"dateTime": moment.isoformat()}


def attendee(
    email: str, response_status: str = "needsAction", *, name: str = "", **extra: Any
) -> dict[str, Any]:
    """An entry of ``Event.attendees`` (``resource=True``, ``optional=True``, ``self=True``...)."""
    entry: dict[str, Any] = {"email": email, "responseStatus": response_status, **extra}
    if name:
        entry["displayName"] = name
    return entry


def _instance_id(master_id: str, original_start: datetime) -> str:
    return f"{master_id}_{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _instance_time(master: Mapping[str, Any], original_start: datetime) -> dict[str, str]:
    return event_time(original_start, master.get("start", {}).get("timeZone"))


def _event_end(event: Mapping[str, Any]) -> datetime | None:
    value = event.get("end") or event.get("originalStartTime")
    if not isinstance(value, Mapping):
        return None
    try:
        if "dateTime" in value:
            moment = datetime.fromisoformat(str(value["dateTime"]))
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if "date" in value:
            day = date.fromisoformat(str(value["date"]))
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
    except ValueError:
        return None
    return None


def _rfc3339(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_CALENDAR_EVENT_SCOPES = frozenset(
    SCOPE_PREFIX + s
    for s in ("calendar", "calendar.readonly", "calendar.events", "calendar.events.readonly")
)
_CALENDAR_LIST_SCOPES = frozenset(
    SCOPE_PREFIX + s
    for s in (
        "calendar",
        "calendar.readonly",
        "calendar.calendarlist",
        "calendar.calendarlist.readonly",
    )
)
_SYNC_TOKEN_EXCLUSIVE = (
    "timeMin",
    "timeMax",
    "updatedMin",
    "q",
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "sharedExtendedProperty",
)


def _calendar_routes(fake: FakeGoogle) -> list[tuple[str, str, str, Handler]]:
    api = _CalendarApi(fake)
    base = "/calendar/v3"
    return [
        ("GET", base + "/users/me/calendarList", "calendarList.list", api.list_calendars),
        ("GET", base + "/calendars/{calendarId}/events", "events.list", api.list_events),
    ]


class _CalendarApi:
    """Calendar v3's ``calendarList.list`` and ``events.list`` (``singleEvents=false``)."""

    def __init__(self, fake: FakeGoogle) -> None:
        self._fake = fake

    def list_calendars(self, request: ApiRequest) -> Mapping[str, Any]:
        _need_scope(request, _CALENDAR_LIST_SCOPES)
        entries = self._fake.calendar_lists.get(request.grant.account.lower())
        if entries is None:
            raise not_found()
        size = _page_size(request, default=100, largest=250)
        offset = int(_decode_json_token(request.param("pageToken")).get("offset", 0))
        page = entries[offset : offset + size]
        result: dict[str, Any] = {
            "kind": "calendar#calendarList",
            "items": [self._entry(e) for e in page],
        }
        if offset + size < len(entries):
            result["nextPageToken"] = _encode_json_token({"offset": offset + size})
        else:
            result["nextSyncToken"] = _encode_json_token({"list": len(entries)})
        return result

    def _entry(self, entry: CalendarListEntry) -> dict[str, Any]:
        calendar = self._fake.calendars[entry.calendar_id]
        result: dict[str, Any] = {
            "kind": "calendar#calendarListEntry",
            "id": calendar.id,
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "accessRole": entry.access_role,
        }
        if entry.primary:
            result["primary"] = True
        elif calendar.data_owner:
            result["dataOwner"] = calendar.data_owner
        return result

    def list_events(self, request: ApiRequest) -> Mapping[str, Any]:
        _need_scope(request, _CALENDAR_EVENT_SCOPES)
        calendar = self._calendar(request)
        if request.param("singleEvents", "false") == "true":
            raise bad_request("The fake serves singleEvents=false only.")
        sync_token = request.param("syncToken")
        if sync_token is not None:
            clashing = [name for name in _SYNC_TOKEN_EXCLUSIVE if request.param(name)]
            if clashing or request.param("showDeleted") == "false":
                raise bad_request(
                    "Sync token cannot be used with other request restrictions.", reason="invalid"
                )
        size = _page_size(request, default=250, largest=2500)
        page_token = request.param("pageToken")
        if page_token:
            position = _decode_json_token(page_token)
            if position.get("calendar") != calendar.id:
                raise bad_request("Invalid page token.", reason="invalid")
        else:
            position = {
                "calendar": calendar.id,
                "after": self._sync_position(calendar, sync_token),
                "upto": calendar.seq,
                "timeMin": request.param("timeMin"),
                "deleted": request.param("showDeleted") == "true",
                "last": None,
            }
        time_min = _parse_rfc3339(position["timeMin"]) if position["timeMin"] else None
        keys = calendar.listing(position["after"], position["upto"], time_min, position["deleted"])
        last = tuple(position["last"]) if position["last"] else None
        remaining = [key for key in keys if last is None or key > last]
        page = remaining[:size]
        result: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "accessRole": self._access_role(request, calendar),
            "items": [calendar.render(event_id) for _change, event_id in page],
        }
        if len(remaining) > size:
            result["nextPageToken"] = _encode_json_token({**position, "last": list(page[-1])})
        else:
            result["nextSyncToken"] = _encode_json_token(
                {"calendar": calendar.id, "seq": position["upto"]}
            )
        return result

    def _calendar(self, request: ApiRequest) -> FakeCalendar:
        wanted = unquote(request.args["calendarId"])
        account = request.grant.account.lower()
        for entry in self._fake.calendar_lists.get(account, []):
            if entry.calendar_id == wanted or (wanted == "primary" and entry.primary):
                return self._fake.calendars[entry.calendar_id]
        raise not_found()

    def _access_role(self, request: ApiRequest, calendar: FakeCalendar) -> str:
        entries = self._fake.calendar_lists.get(request.grant.account.lower(), [])
        return next((e.access_role for e in entries if e.calendar_id == calendar.id), "reader")

    @staticmethod
    def _sync_position(calendar: FakeCalendar, token: str | None) -> int | None:
        if token is None:
            return None
        position = _decode_json_token(token)
        seq = position.get("seq")
        if position.get("calendar") != calendar.id or not isinstance(seq, int):
            raise bad_request("Invalid sync token.", reason="invalid")
        if seq < calendar.min_sync_seq:
            raise ApiError(
                410,
                "fullSyncRequired",
                "Sync token is no longer valid, a full sync is required.",
                domain="calendar",
                status_text="GONE",
            )
        return seq


def _need_scope(request: ApiRequest, accepted: frozenset[str]) -> None:
    if not request.grant.scopes & accepted:
        raise ApiError(
            403, "insufficientPermissions", "Request had insufficient authentication scopes."
        )


def _encode_json_token(value: Mapping[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_json_token(token: str | None) -> dict[str, Any]:
    if not token:
        return {}
    try:
        value = json.loads(_b64url_decode(token))
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Invalid token.", reason="invalid") from None
    if not isinstance(value, dict):
        raise bad_request("Invalid token.", reason="invalid")
    return value


def _parse_rfc3339(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Bad Request: timeMin {text!r}", reason="badRequest") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- helpers for tests


def make_email(
    *,
    subject: str,
    sender: str = "Carol Customer <carol@customer.example>",
    to: str = "alice@example.com",
    date: datetime | None = None,
    body: str = "Hello.",
    message_id: str | None = None,
    in_reply_to: str | None = None,
) -> bytes:
    """Small RFC 5322 bytes for a test message."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date or datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    message["Message-ID"] = message_id or make_msgid(domain="mail.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message.set_content(body)
    return message.as_bytes(policy=email.policy.SMTP)


@dataclass(frozen=True)
class ServiceAccountKey:
    """A generated service-account key: its JSON key file and its public half."""

    path: Path
    client_email: str
    public_key: rsa.RSAPublicKey


def write_service_account_key(
    path: Path,
    *,
    token_uri: str,
    client_email: str = "crm-sync@test-project.iam.gserviceaccount.com",
    key: rsa.RSAPrivateKey | None = None,
) -> ServiceAccountKey:
    """Write a service-account JSON key file whose ``token_uri`` is ours (a fresh RSA
    key unless ``key`` is given)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    info = {
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": client_email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return ServiceAccountKey(path, client_email, key.public_key())
