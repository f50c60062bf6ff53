"""An OAuth 2.0 token introspection endpoint (RFC 7662) on loopback, for Dovecot's oauth2 passdb.

Gmail and Outlook check the access token of an IMAP ``AUTHENTICATE XOAUTH2``
against their own identity platform; neither check can be run here. This
server stands in for it in tests: the throwaway Dovecot
(:mod:`tests.support.dovecot`, ``oauth_introspection_url``) asks it whether a
token is active and whose it is, and it answers from the fake identity
providers the tokens came from (:func:`google_imap_tokens`,
:func:`outlook_imap_tokens`), so a token the fake revoked or let expire is
inactive and the IMAP login fails as it would at the provider.

Dovecot's three ``introspection_mode`` values are all served: ``post``
(``token=...`` in a form body, RFC 7662 section 2.1), ``auth`` (``GET`` with
``Authorization: Bearer``) and ``get`` (the token appended to the URL, which
then ends in ``?token=``). An active token is answered ``{"active": true,
"username": ..., "token_type": "Bearer"}``, any other ``{"active": false}``
(section 2.2). When ``client`` is given, callers must authenticate with HTTP
Basic as that client (section 2.1 wants the endpoint protected); Dovecot sends
the user info of ``introspection_url`` that way. Every question is kept in
:attr:`TokenIntrospection.log`.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from tests.support.fake_google.api import ApiError
from tests.support.fake_graph.common import GraphError

if TYPE_CHECKING:
    from tests.support.fake_google.server import FakeGoogle
    from tests.support.fake_graph.server import FakeGraph

TokenCheck = Callable[[str], str | None]
"""An access token -> the user name it logs in as, or ``None`` when it is not active."""

PATH = "/introspect"
GMAIL_IMAP_SCOPE = "https://mail.google.com/"
OUTLOOK_IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"


@dataclass(frozen=True)
class Introspected:
    """One question Dovecot asked: how (``post``, ``auth`` or ``get``), and the answer."""

    mode: str
    token: str
    username: str | None

    @property
    def active(self) -> bool:
        return self.username is not None


def google_imap_tokens(fake: FakeGoogle) -> TokenCheck:
    """Access tokens the fake Google server issued with the scope Gmail's IMAP takes."""

    def check(token: str) -> str | None:
        try:
            grant = fake._authenticate({"authorization": f"Bearer {token}"})
        except ApiError:
            return None
        return grant.account if GMAIL_IMAP_SCOPE in grant.scopes else None

    return check


def outlook_imap_tokens(graph: FakeGraph) -> TokenCheck:
    """Delegated access tokens the fake Microsoft identity platform issued for Outlook's
    IMAP (``IMAP.AccessAsUser.All``), as the user's principal name."""

    def check(token: str) -> str | None:
        try:
            grant = graph.identity.authenticate(f"Bearer {token}")
        except GraphError:
            return None
        if grant.user_id is None or OUTLOOK_IMAP_SCOPE not in grant.permissions:
            return None
        user = graph.user(grant.user_id)
        return user.upn if user is not None else None

    return check


def first_of(*checks: TokenCheck) -> TokenCheck:
    """A token is active when one of ``checks`` knows it."""

    def check(token: str) -> str | None:
        return next((name for c in checks if (name := c(token)) is not None), None)

    return check


class TokenIntrospection:
    """The started endpoint; use as a context manager. :attr:`url` goes into Dovecot's
    ``introspection_url`` (:meth:`dovecot_url` with the client credentials in it)."""

    def __init__(self, check: TokenCheck, *, client: tuple[str, str] | None = None) -> None:
        self.check = check
        self.client = client
        self.log: list[Introspected] = []
        self.refused_callers = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> TokenIntrospection:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.introspection = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> TokenIntrospection:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{PATH}"

    def dovecot_url(self) -> str:
        """:attr:`url` with the client's credentials as URL user info, as Dovecot takes them."""
        if self.client is None:
            return self.url
        client_id, secret = (quote(part, safe="") for part in self.client)
        return self.url.replace("http://", f"http://{client_id}:{secret}@", 1)

    def questions(self, token: str | None = None) -> list[Introspected]:
        with self._lock:
            return [q for q in self.log if token is None or q.token == token]

    def answer(self, mode: str, token: str) -> dict[str, Any]:
        username = self.check(token) if token else None
        with self._lock:
            self.log.append(Introspected(mode, token, username))
        if username is None:
            return {"active": False}
        return {"active": True, "username": username, "token_type": "Bearer"}

    def caller_allowed(self, authorization: str | None) -> bool:
        if self.client is None:
            return True
        scheme, _, encoded = (authorization or "").partition(" ")
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except ValueError:
            decoded = ""
        allowed = scheme.lower() == "basic" and tuple(decoded.split(":", 1)) == self.client
        if not allowed:
            with self._lock:
                self.refused_callers += 1
        return allowed


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _endpoint(self) -> TokenIntrospection:
        endpoint: TokenIntrospection = self.server.introspection  # type: ignore[attr-defined]
        return endpoint

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        endpoint = self._endpoint()
        if urlsplit(self.path).path != PATH:
            self._reply(404, {"error": "not_found"})
        elif not endpoint.caller_allowed(self.headers.get("Authorization")):
            self._unauthorized()
        else:
            token = parse_qs(body).get("token", [""])[-1]
            self._reply(200, endpoint.answer("post", token))

    def do_GET(self) -> None:
        endpoint = self._endpoint()
        parts = urlsplit(self.path)
        if parts.path != PATH:
            self._reply(404, {"error": "not_found"})
            return
        scheme, _, bearer = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            self._reply(200, endpoint.answer("auth", bearer.strip()))
        elif not endpoint.caller_allowed(self.headers.get("Authorization")):
            self._unauthorized()
        else:
            self._reply(200, endpoint.answer("get", parse_qs(parts.query).get("token", [""])[-1]))

    def _unauthorized(self) -> None:
        self._reply(
            401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="introspection"'}
        )

    def log_message(self, format: str, *args: Any) -> None:
        return
