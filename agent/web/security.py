"""What every response and every form carries: headers, CSRF tokens, sign-in throttling.

Text from mail is hostile, so pages are rendered escaped (``templates``) and
the Content-Security-Policy below lets nothing run but the app's own script
file, load nothing from another host, and post forms only to the app. The Outlook
add-in's pages alone widen it (:func:`content_policy`, :mod:`agent.web.addin`): Office.js
from Microsoft's CDN, and the task pane framed by Outlook on the web.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
}


def content_policy(**widened: str) -> str:
    """:data:`POLICY` with some directives replaced (``script_src="'self' https://..."``).

    A route that needs more than the app's policy (a page framed by another site, or
    loading a script from one) sends the result as its own ``content-security-policy``
    header: :class:`SecurityHeaders` keeps a header a response already has, and leaves out
    ``x-frame-options`` when that policy's ``frame-ancestors`` lets another site frame the
    page (browsers obey ``frame-ancestors`` over it; older ones would still refuse).
    """
    directives = POLICY | {name.replace("_", "-"): value for name, value in widened.items()}
    unknown = directives.keys() - POLICY.keys()
    if unknown:
        raise ValueError(f"not a directive of the app's policy: {sorted(unknown)}")
    return "; ".join(f"{name} {value}" for name, value in directives.items())


CSP = content_policy()
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
CSRF_FIELD = "csrf"
CSRF_KEY = "csrf"


class SecurityHeaders:
    """Adds :data:`HEADERS` to every HTTP response, and ``no-store`` to every one that is not
    a static file: pages hold customers' data and must not stay in a shared cache."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower(): value for name, value in headers}
                extra = dict(HEADERS)
                own = present.get(b"content-security-policy")
                if own is not None and b"frame-ancestors 'none'" not in own:
                    del extra["x-frame-options"]
                if not static:
                    extra["cache-control"] = "no-store"
                if self.hsts:
                    extra["strict-transport-security"] = "max-age=31536000"
                headers += [
                    (k.encode(), v.encode()) for k, v in extra.items() if k.encode() not in present
                ]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use; every form posts it back."""
    token = session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_KEY] = token
    return token


def csrf_ok(session: MutableMapping[str, Any], sent: object) -> bool:
    held = session.get(CSRF_KEY)
    return isinstance(held, str) and isinstance(sent, str) and hmac.compare_digest(held, sent)


class Throttle:
    """Failed sign-ins per key (an address, a client) in a sliding window.

    Kept in the process: several ``serve`` processes each allow ``limit``, which
    still turns an online guessing attack from millions of tries a day into
    a few thousand, without a write to the shared database per attempt.
    """

    def __init__(
        self, limit: int, window: float = 15 * 60, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, *keys: str) -> int:
        """Seconds until a key over its limit may try again; 0 when every key may."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                held = self._trim(key, now)
                if len(held) >= self.limit:
                    wait = max(wait, held[0] + self.window - now)
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._trim(key, now).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _trim(self, key: str, now: float) -> deque[float]:
        held = self._failures.setdefault(key, deque())
        while held and held[0] <= now - self.window:
            held.popleft()
        return held


def client_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


Endpoint = Callable[[Request], Awaitable[Response]]


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None for any other header or none."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
