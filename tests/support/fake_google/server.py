"""The fake Google server itself: HTTP on a loopback port, routing, batches and fault injection.

:class:`FakeGoogle` answers every request through one entry point
(:meth:`FakeGoogle.handle_http`): the OAuth paths (:mod:`.oauth`), the OpenID
Connect paths (:mod:`.oidc`), the batch
endpoint (``/batch``, ``/batch/gmail/v1``, ``/batch/calendar/v3``:
multipart/mixed in, LF or CRLF; multipart/mixed out with
``Content-ID: <response-...>`` and CRLF inside every part, as the client's
parser requires), and API methods by a route table (:meth:`FakeGoogle.add_route`)
that Gmail (:mod:`.gmail`) and Calendar (:mod:`.calendar`) fill. Every request
is logged (:attr:`FakeGoogle.log`) and counted per API method with its quota
units. Fault injection (:class:`FaultPlan`): a seeded rate of 429/500/503
answers on API calls and batch parts, forced answers for the next calls,
dropped connections.
"""

from __future__ import annotations

import email.policy
import random
import re
import secrets
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_google.api import (
    Answer,
    ApiError,
    ApiRequest,
    Grant,
    Handler,
    bad_request,
    error_answer,
    get_header,
    injected_error,
    json_answer,
)
from tests.support.fake_google.calendar import (
    CALENDAR_UNITS,
    CalendarListEntry,
    FakeCalendar,
    calendar_routes,
)
from tests.support.fake_google.gmail import GMAIL_UNITS, gmail_routes
from tests.support.fake_google.mailbox import Mailbox
from tests.support.fake_google.oauth import AUTH_PATH, TOKEN_PATHS
from tests.support.fake_google.oidc import OIDC_PATHS, OidcServer

_BATCH_PATHS = frozenset({"/batch", "/batch/gmail/v1", "/batch/calendar/v3"})
_MAX_BATCH_PARTS = 100


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
    the next HTTP connections without an answer. ``retry_after`` (seconds) goes
    in a ``Retry-After`` header, except on a 403 rate limit, where Gmail writes
    "Retry after <ISO 8601 date>" in the message instead.

    Whole batches fail the same way: ``batch_forced`` statuses answer the next
    batch requests, then a seeded ``batch_rate`` of them gets one of
    ``statuses``; such a batch is answered with one error for its envelope and
    none of its parts is run (nor metered).
    """

    rate: float = 0.0
    statuses: tuple[int, ...] = (429, 500, 503)
    methods: frozenset[str] | None = None
    retry_after: float | None = None
    seed: int = 0
    forced: deque[int] = field(default_factory=deque)
    drop_connections: int = 0
    batch_rate: float = 0.0
    batch_forced: deque[int] = field(default_factory=deque)
    injected: int = 0
    batches_failed: int = 0
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

    def pick_batch(self) -> int | None:
        """The status to answer a whole batch request with, or ``None`` to run its parts."""
        status: int | None = None
        if self.batch_forced:
            status = self.batch_forced.popleft() or None
        elif self.batch_rate and self._rng.random() < self.batch_rate:
            status = self._rng.choice(self.statuses)
        if status is not None:
            self.batches_failed += 1
        return status


@dataclass(frozen=True)
class Route:
    http_method: str
    pattern: re.Pattern[str]
    api_method: str
    units: int
    handler: Handler


class FakeGoogle(OidcServer):
    """The fake server. Use as a context manager; ``url`` is its root.

    ``log`` holds every :class:`Call`; ``calls`` and ``units`` count API calls
    and quota units per API method (batch parts one by one); ``round_trips``
    counts HTTP requests (a batch is one). Tokens and grants are
    :class:`~tests.support.fake_google.oauth.OAuthServer`'s; ID tokens, the
    signing keys and the OIDC endpoints
    :class:`~tests.support.fake_google.oidc.OidcServer`'s.
    """

    def __init__(self, *, seed: int = 0, token_lifetime: int = 3600) -> None:
        self.lock = threading.RLock()
        self.faults = FaultPlan(seed=seed)
        self.token_lifetime = token_lifetime
        self.decoded_headers = False
        """Serve ``payload.headers`` with RFC 2047 encoded words decoded."""
        self.mailboxes: dict[str, Mailbox] = {}
        self.calendars: dict[str, FakeCalendar] = {}
        self.calendar_lists: dict[str, list[CalendarListEntry]] = {}
        self._init_oauth()
        self._init_oidc()
        self.log: list[Call] = []
        self.calls: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self._routes: list[Route] = []
        self._ids = iter(range(0x18C2A00000000000, 1 << 64))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for method, pattern, api_method, handler in gmail_routes(self):
            self.add_route(method, pattern, api_method, handler, units=GMAIL_UNITS[api_method])
        for method, pattern, api_method, handler in calendar_routes(self):
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
    ) -> Answer:
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
    ) -> Answer:
        split = urlsplit(target)
        params = parse_qs(split.query, keep_blank_values=True)
        frozen = {k: tuple(v) for k, v in params.items()}
        if split.path in TOKEN_PATHS and http_method == "POST":
            answer = self._token_endpoint(body, get_header(headers, "authorization"))
            self._note(Call(http_method, split.path, {}, "oauth2.token", answer.status))
            return answer
        if split.path == AUTH_PATH and http_method == "GET":
            answer = self._authorize(params)
            self._note(Call(http_method, split.path, frozen, "oauth2.auth", answer.status))
            return answer
        if split.path in OIDC_PATHS and http_method == "GET":
            answer, account = self._oidc_endpoint(split.path, headers)
            api_method = OIDC_PATHS[split.path]
            call = Call(
                http_method, split.path, frozen, api_method, answer.status, in_batch, account
            )
            self._note(call)
            return answer
        route, args = self._match(http_method, split.path)
        if route is None:
            error = ApiError(404, "notFound", f"No route for {http_method} {split.path}")
            self._note(Call(http_method, split.path, frozen, "unknown", 404, in_batch))
            return error_answer(error)
        grant: Grant | None = None
        try:
            grant = self._authenticate(headers)
            with self.lock:
                status = self.faults.pick(route.api_method)
            if status is not None:
                raise injected_error(status, self.faults.retry_after)
            request = ApiRequest(http_method, split.path, params, headers, body, args, grant)
            with self.lock:
                answer = json_answer(200, route.handler(request))
        except ApiError as error:
            answer = error_answer(error)
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

    # -- batch

    def _batch(self, headers: Mapping[str, str], body: bytes) -> tuple[Answer, int]:
        """Answer a batch request; also returns how many parts it held."""
        content_type = get_header(headers, "content-type") or ""
        envelope = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        parsed = BytesParser(policy=email.policy.compat32).parsebytes(envelope)
        if not parsed.is_multipart():
            return error_answer(bad_request("Batch request must be multipart/mixed.")), 0
        parts = parsed.get_payload()
        assert isinstance(parts, list)
        with self.lock:
            failed = self.faults.pick_batch()
        if failed is not None:
            return error_answer(injected_error(failed, self.faults.retry_after)), len(parts)
        if len(parts) > _MAX_BATCH_PARTS:
            error = bad_request(f"A batch may hold at most {_MAX_BATCH_PARTS} requests.")
            return error_answer(error), len(parts)
        boundary = "batch_" + secrets.token_hex(12)
        out: list[str] = []
        for part in parts:
            assert isinstance(part, Message)
            content_id = str(part.get("Content-ID", "")).strip()
            inner = part.get_payload(decode=False)
            if isinstance(inner, list):
                return error_answer(bad_request("Nested multipart in batch.")), len(parts)
            method, target, inner_headers, inner_body = _parse_http_request(str(inner))
            rendered = self._single(method, target, inner_headers, inner_body, in_batch=True)
            out.append(_batch_part(boundary, content_id, rendered))
        out.append(f"--{boundary}--\r\n")
        answer = Answer(
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


def _batch_part(boundary: str, content_id: str, answer: Answer) -> str:
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
