"""The fake Microsoft Graph server: HTTPS on loopback, routing, batches, faults, the call log.

:class:`FakeGraph` answers every request through :meth:`FakeGraph.handle_http`:
identity-platform paths (:mod:`.identity`), ``POST /v1.0/$batch`` (JSON
batching), and Graph methods under ``/v1.0`` by a route table
(:mod:`.routes`). Every request, and every part of a batch, is logged as a
:class:`Call`. Fault injection (:class:`FaultPlan`): a seeded rate of 429/503
answers with ``Retry-After`` on Graph calls and batch parts, and forced
answers for the next calls (:meth:`FakeGraph.fail_next`).
"""

from __future__ import annotations

import base64
import json
import random
import re
import shutil
import socket
import ssl
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.support.fake_google.api import Answer
from tests.support.fake_graph.calendar import Attendee, Calendar
from tests.support.fake_graph.common import (
    GraphError,
    GraphRequest,
    Handler,
    bad_request,
    error_answer,
    json_answer,
    throttled,
)
from tests.support.fake_graph.delta import DeltaTokens
from tests.support.fake_graph.identity import App, Identity
from tests.support.fake_graph.mail import Mailbox
from tests.support.fake_graph.tls import write_self_signed

MAX_BATCH = 20
"""JSON batching: "JSON batch requests are currently limited to 20 individual requests"."""
_LOGGED_HEADERS = ("prefer", "client-request-id", "consistencylevel")


@dataclass
class User:
    """A directory user with a mailbox and a primary calendar."""

    id: str
    upn: str
    display_name: str
    mail: str
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    mailbox: Mailbox = field(init=False, repr=False)
    calendar: Calendar = field(init=False, repr=False)

    def json(self) -> dict[str, Any]:
        return {
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": self.given_name,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            "surname": self.surname,
            "userPrincipalName": self.upn,
            "id": self.id,
        }


@dataclass(frozen=True)
class Call:
    """One request the fake received: an HTTP round trip, or one part of a batch."""

    http_method: str
    path: str
    params: Mapping[str, str]
    """Query parameters by lower-case name without ``$`` (``select``, ``skiptoken``)."""
    endpoint: str
    """``messages.delta``, ``identity.token``, ``batch``... (``unknown`` when no route)."""
    status: int
    in_batch: bool = False
    user: str | None = None
    """The UPN the call was about (the token's user, or the ``users/{id}`` segment)."""
    client_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers of interest (``prefer``, ``client-request-id``, ``consistencylevel``)."""

    @property
    def select(self) -> list[str] | None:
        text = self.params.get("select")
        return None if text is None else [s for s in text.split(",") if s]

    @property
    def prefer(self) -> str | None:
        return self.headers.get("prefer")


@dataclass
class FaultPlan:
    """Which Graph calls fail on purpose.

    ``forced`` answers the next calls in order (a status and its Retry-After;
    status 0 means "answer normally"); after them a seeded ``rate`` of calls
    gets one of ``statuses``. ``endpoints`` limits both (``None``: every Graph
    call, batch parts included; never the identity endpoints)."""

    rate: float = 0.0
    statuses: tuple[int, ...] = (429, 503)
    retry_after: float | None = 1
    seed: int = 0
    endpoints: frozenset[str] | None = None
    forced: deque[tuple[int, float | None]] = field(default_factory=deque)
    injected: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pick(self, endpoint: str) -> tuple[int, float | None] | None:
        if self.endpoints is not None and endpoint not in self.endpoints:
            return None
        choice: tuple[int, float | None] | None = None
        if self.forced:
            status, retry = self.forced.popleft()
            choice = (status, retry) if status else None
        elif self.rate and self._rng.random() < self.rate:
            choice = (self._rng.choice(self.statuses), self.retry_after)
        if choice is not None:
            self.injected += 1
        return choice


@dataclass(frozen=True)
class Route:
    http_method: str
    pattern: re.Pattern[str]
    endpoint: str
    handler: Handler


class FakeGraph:
    """The fake server. Use as a context manager; ``url`` is its root.

    ``url`` plays both ``https://login.microsoftonline.com`` (authority
    ``f"{url}/{tenant_id}"``) and ``https://graph.microsoft.com``
    (:attr:`graph_url` is ``f"{url}/v1.0"``)."""

    def __init__(
        self,
        *,
        tenant_id: str | None = None,
        tenant_domain: str = "contoso.onmicrosoft.com",
        seed: int = 0,
        token_lifetime: int = 3600,
        tls: bool = True,
    ) -> None:
        self.lock = threading.RLock()
        self.tls = tls
        self.users: dict[str, User] = {}
        """By object id."""
        self.identity = Identity(
            tenant_id=tenant_id or str(uuid.UUID(int=random.Random(seed).getrandbits(128))),
            tenant_domain=tenant_domain,
            lock=self.lock,
            users_by_id=self.users,
            token_lifetime=token_lifetime,
        )
        self.faults = FaultPlan(seed=seed)
        self.delta_tokens = DeltaTokens()
        self.log: list[Call] = []
        self.message_page_size = 10
        """Default page of a message delta or list (Outlook's default ``$top`` of 10)."""
        self.event_page_size = 10
        self.user_page_size = 100
        """Default page of ``GET /users`` ("List users": 100 by default, up to 999)."""
        self.read_basic_body = "omit"
        """What a Mail.ReadBasic(.All) token gets when it asks for ``body``/``bodyPreview``/
        ``uniqueBody``: ``"omit"`` (the properties are left out, the permission's own
        description) or ``"deny"`` (403 ``ErrorAccessDenied``). ``$value`` is always denied."""
        self.mime_content_type = "text/plain"
        """Content-Type of ``$value`` answers."""
        self._routes: list[Route] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._dir: Path | None = None
        self.ca_file: str = ""
        """PEM of the certificate the fake serves (trust it: ``verify=fake.ca_file``)."""
        from tests.support.fake_graph.routes import graph_routes

        for method, pattern, endpoint, handler in reversed(graph_routes(self)):
            self.add_route(method, pattern, endpoint, handler)

    # -- lifecycle

    def start(self) -> FakeGraph:
        context: ssl.SSLContext | None = None
        if self.tls:
            self._dir = Path(tempfile.mkdtemp(prefix="fake-graph-"))
            cert, key = write_self_signed(self._dir)
            self.ca_file = str(cert)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
        server = _Server(("127.0.0.1", 0), _RequestHandler, context)
        server.daemon_threads = True
        server.fake = self
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
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``https://127.0.0.1:PORT`` (no trailing slash)."""
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host!s}:{port}"

    @property
    def graph_url(self) -> str:
        return self.url + "/v1.0"

    @property
    def tenant_id(self) -> str:
        return self.identity.tenant_id

    @property
    def authority(self) -> str:
        """The authority URL for MSAL (with ``instance_discovery=False``)."""
        return f"{self.url}/{self.tenant_id}"

    def client_ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the fake (``httpx.Client(verify=...)``)."""
        return ssl.create_default_context(cafile=self.ca_file)

    # -- setup

    def add_user(
        self,
        upn: str,
        display_name: str,
        *,
        mail: str | None = None,
        given_name: str | None = None,
        surname: str | None = None,
        job_title: str | None = None,
        user_id: str | None = None,
    ) -> Mailbox:
        """A user with a mailbox (returned) and a calendar (``mailbox.calendar``)."""
        with self.lock:
            user = User(
                user_id or str(uuid.uuid4()),
                upn,
                display_name,
                mail or upn,
                given_name,
                surname,
                job_title,
            )
            user.mailbox = Mailbox(user.id, lock=self.lock)
            user.mailbox.user = user
            user.calendar = Calendar(
                user.id, Attendee(user.mail, display_name, "organizer"), lock=self.lock
            )
            user.mailbox.calendar = user.calendar
            self.users[user.id] = user
            return user.mailbox

    def user(self, ref: str) -> User | None:
        """A user by object id or UPN (case-insensitive)."""
        with self.lock:
            if ref in self.users:
                return self.users[ref]
            lower = ref.lower()
            return next(
                (u for u in self.users.values() if lower in (u.upn.lower(), u.mail.lower())), None
            )

    def add_app(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        app_permissions: Iterable[str] = (),
        delegated_permissions: Iterable[str] = (
            "User.Read",
            "Mail.Read",
            "Calendars.Read",
        ),
    ) -> App:
        """Register an app: ``secret`` for a confidential client (client
        credentials), ``app_permissions`` its admin-granted application
        permissions (e.g. ``{"Mail.ReadBasic.All"}``), ``delegated_permissions``
        what users consent to in the device code flow."""
        return self.identity.add_app(
            client_id,
            secret=secret,
            app_permissions=app_permissions,
            delegated_permissions=delegated_permissions,
        )

    def approve_device_code(self, upn: str, user_code: str | None = None) -> None:
        """``upn`` signs in at the verification URI and enters the code."""
        user = self.user(upn)
        assert user is not None, upn
        self.identity.approve_device_code(user.id, user_code)

    def decline_device_code(self, user_code: str | None = None) -> None:
        self.identity.decline_device_code(user_code)

    def revoke(self, user_or_app: str) -> None:
        """Revoke a user's sessions (by UPN or id) or disable an app (by client id)."""
        user = self.user(user_or_app)
        if user is not None:
            self.identity.revoke_user(user.id)
        else:
            self.identity.revoke_app(user_or_app)

    def token_for(self, client_id: str, upn: str | None = None, scopes: Iterable[str] = ()) -> str:
        """An access token without a round trip: app-only when ``upn`` is None."""
        if upn is None:
            return self.identity.issue_app_token(client_id)
        user = self.user(upn)
        assert user is not None, upn
        return self.identity.issue_user_token(client_id, user.id, scopes)

    def expire_delta_tokens(
        self,
        upn: str | None = None,
        *,
        resource: str | None = None,
        status: int = 410,
        code: str = "syncStateNotFound",
        location: bool = False,
    ) -> int:
        """Expire every state token issued so far (for one user, for ``messages`` or
        ``events``); later use answers ``status`` with ``code`` (and a
        ``Location`` header restarting the round when ``location``)."""
        user_id = None
        if upn is not None:
            user = self.user(upn)
            assert user is not None, upn
            user_id = user.id
        with self.lock:
            return self.delta_tokens.expire(
                user_id=user_id, resource=resource, status=status, code=code, location=location
            )

    def fail_next(self, n: int = 1, status: int = 429, *, retry_after: float | None = None) -> None:
        """Answer the next ``n`` Graph calls (or batch parts) with ``status``."""
        with self.lock:
            wait = self.faults.retry_after if retry_after is None else retry_after
            self.faults.forced.extend([(status, wait)] * n)

    def throttle(
        self,
        rate: float,
        *,
        statuses: tuple[int, ...] = (429, 503),
        retry_after: float | None = 1,
        seed: int = 0,
        endpoints: Iterable[str] | None = None,
    ) -> None:
        """A seeded ``rate`` of Graph calls answered with one of ``statuses``."""
        with self.lock:
            self.faults = FaultPlan(
                rate=rate,
                statuses=statuses,
                retry_after=retry_after,
                seed=seed,
                endpoints=None if endpoints is None else frozenset(endpoints),
                forced=self.faults.forced,
            )

    def add_route(self, http_method: str, pattern: str, endpoint: str, handler: Handler) -> None:
        """Serve ``http_method`` on paths below ``/v1.0`` matching ``pattern``
        (case-insensitive regex, named groups become ``GraphRequest.args``). A
        route added later wins, so a test can replace a built-in one."""
        regex = re.compile(pattern + "$", re.IGNORECASE)
        self._routes.insert(0, Route(http_method, regex, endpoint, handler))

    # -- observations

    def calls(
        self,
        endpoint: str | None = None,
        *,
        user: str | None = None,
        in_batch: bool | None = None,
        status: int | None = None,
    ) -> list[Call]:
        """Logged calls, oldest first, filtered."""
        with self.lock:
            return [
                c
                for c in self.log
                if (endpoint is None or c.endpoint == endpoint)
                and (user is None or (c.user or "").lower() == user.lower())
                and (in_batch is None or c.in_batch == in_batch)
                and (status is None or c.status == status)
            ]

    @property
    def round_trips(self) -> int:
        with self.lock:
            return sum(1 for c in self.log if not c.in_batch)

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()

    # -- HTTP

    def handle_http(
        self, http_method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Answer:
        """Answer one HTTP request (the request handler's only entry point)."""
        split = urlsplit(target)
        params = _params(split.query)
        identity = self.identity.handle(http_method, split.path, split.query, body, self.url)
        if identity is not None:
            endpoint, answer = identity
            logged = {} if endpoint == "identity.token" else params
            self._note(Call(http_method, split.path, logged, endpoint, answer.status))
            return answer
        path = unquote(split.path)
        if not path.startswith("/v1.0/"):
            error = bad_request("Invalid version.", "BadRequest")
            self._note(Call(http_method, split.path, params, "unknown", 400))
            return error_answer(error)
        if path == "/v1.0/$batch" and http_method == "POST":
            return self._batch(headers, body)
        return self._single(
            http_method, path[len("/v1.0") :], params, headers, body, in_batch=False
        )

    def _single(
        self,
        http_method: str,
        path: str,
        params: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        *,
        in_batch: bool,
    ) -> Answer:
        client_request_id = headers.get("client-request-id")
        logged_headers = {k: headers[k] for k in _LOGGED_HEADERS if k in headers}
        route, args = self._match(http_method, path)
        endpoint = route.endpoint if route else "unknown"
        upn: str | None = None
        client_id: str | None = None
        try:
            grant = self.identity.authenticate(headers.get("authorization"))
            client_id = grant.client_id
            if grant.user_id is not None and grant.user_id in self.users:
                upn = self.users[grant.user_id].upn
            if "user" in args:
                target = self.user(args["user"])
                upn = target.upn if target else args["user"]
            if route is None:
                raise self._no_route(http_method, path)
            with self.lock:
                fault = self.faults.pick(route.endpoint)
            if fault is not None:
                raise throttled(*fault)
            request = GraphRequest(
                http_method,
                path,
                params,
                headers,
                args,
                grant,
                via_me=bool(args.get("me")),
                base_url=self.graph_url,
                body=body,
            )
            with self.lock:
                result = route.handler(request)
            extra = {"request-id": str(uuid.uuid4())}
            if client_request_id:
                extra["client-request-id"] = client_request_id
            if request.applied:
                extra["Preference-Applied"] = ", ".join(request.applied)
            if isinstance(result, Answer):
                answer = Answer(result.status, {**result.headers, **extra}, result.body)
            else:
                answer = json_answer(200, result, extra)
        except GraphError as error:
            answer = error_answer(error, client_request_id)
        self._note(
            Call(
                http_method,
                path,
                params,
                endpoint,
                answer.status,
                in_batch,
                upn,
                client_id,
                logged_headers,
            )
        )
        return answer

    def _no_route(self, http_method: str, path: str) -> GraphError:
        if any(route.pattern.match(path.strip("/")) for route in self._routes):
            return GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        segment = path.strip("/").split("/")[-1] if path.strip("/") else ""
        return bad_request(f"Resource not found for the segment '{segment}'.")

    def _match(self, http_method: str, path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self._routes:
            if route.http_method != http_method:
                continue
            match = route.pattern.match(path.strip("/"))
            if match:
                return route, {k: v for k, v in match.groupdict().items() if v is not None}
        return None, {}

    def _note(self, call: Call) -> None:
        with self.lock:
            self.log.append(call)

    # -- JSON batching

    def _batch(self, headers: Mapping[str, str], body: bytes) -> Answer:
        """``POST /v1.0/$batch`` ("Combine multiple HTTP requests using JSON batching")."""
        try:
            responses = self._run_batch(headers, body)
            answer = json_answer(200, {"responses": responses})
        except GraphError as error:
            answer = error_answer(error, headers.get("client-request-id"))
        self._note(Call("POST", "/$batch", {}, "batch", answer.status))
        return answer

    def _run_batch(self, headers: Mapping[str, str], body: bytes) -> list[dict[str, Any]]:
        try:
            payload = json.loads(body or b"null")
        except ValueError as error:
            raise bad_request("Invalid batch payload format.") from error
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list):
            raise bad_request("Invalid batch payload format.")
        if len(requests) > MAX_BATCH:
            raise bad_request(
                f"The number of requests in the batch exceeds the limit of {MAX_BATCH}."
            )
        ids: dict[str, dict[str, Any]] = {}
        for part in requests:
            if not isinstance(part, dict) or not all(
                isinstance(part.get(k), str) for k in ("id", "method", "url")
            ):
                raise bad_request("Each request in a batch needs an id, a method and a url.")
            key = part["id"].lower()
            if key in ids:
                raise bad_request(f"Batch request id '{part['id']}' is not unique.")
            ids[key] = part
        for part in requests:
            for dep in part.get("dependsOn") or []:
                if str(dep).lower() not in ids:
                    raise bad_request(f"Request '{part['id']}' depends on an unknown id '{dep}'.")
        done: dict[str, int] = {}
        out: list[dict[str, Any]] = []
        pending = list(requests)
        while pending:
            ready = [
                p for p in pending if all(str(d).lower() in done for d in p.get("dependsOn") or [])
            ]
            if not ready:
                raise bad_request("The dependsOn graph of the batch has a cycle.")
            for part in ready:
                pending.remove(part)
                failed = [d for d in part.get("dependsOn") or [] if done[str(d).lower()] >= 400]
                if failed:
                    failure = GraphError(
                        424, "FailedDependency", "A request this one depends on failed."
                    )
                    response = {
                        "id": part["id"],
                        "status": 424,
                        "headers": {"Content-Type": "application/json"},
                        "body": failure.body(),
                    }
                    self._note(Call(part["method"].upper(), part["url"], {}, "unknown", 424, True))
                else:
                    response = self._batch_part(part, headers)
                done[part["id"].lower()] = int(response["status"])
                out.append(response)
        return out

    def _batch_part(self, part: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        url = str(part["url"])
        if url.lower().startswith(("http://", "https://")):
            url = urlsplit(url).path + ("?" + urlsplit(url).query if urlsplit(url).query else "")
            url = url.removeprefix("/v1.0")
        if not url.startswith("/"):
            url = "/" + url
        split = urlsplit(url)
        inner_headers = {k.lower(): str(v) for k, v in (part.get("headers") or {}).items()}
        merged = {**{k: v for k, v in headers.items() if k in ("authorization",)}, **inner_headers}
        raw_body = part.get("body")
        data = b"" if raw_body is None else json.dumps(raw_body).encode()
        answer = self._single(
            str(part["method"]).upper(),
            unquote(split.path),
            _params(split.query),
            merged,
            data,
            in_batch=True,
        )
        content_type = answer.headers.get("Content-Type", "")
        body: Any
        if content_type.startswith("application/json"):
            body = json.loads(answer.body)
        else:
            body = base64.b64encode(answer.body).decode()
        return {
            "id": part["id"],
            "status": answer.status,
            "headers": dict(answer.headers),
            "body": body,
        }


def _params(query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        out[key.lower().lstrip("$")] = values[-1]
    return out


class _Server(ThreadingHTTPServer):
    """A threading HTTP server that does the TLS handshake in the request's thread."""

    fake: FakeGraph

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext | None,
    ) -> None:
        super().__init__(address, handler)
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        assert isinstance(request, socket.socket)
        try:
            wrapped = self.context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        fake: FakeGraph = self.server.fake  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
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
