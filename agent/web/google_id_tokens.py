"""Google-signed ID tokens, as the Gmail add-on receives them, checked before anything is read.

Google calls an add-on's HTTP endpoints with ``Authorization: Bearer <ID token>``:
an OpenID Connect ID token of the add-on's system service account whose
audience is the endpoint's URL ("Verify requests from Google",
developers.google.com/workspace/add-ons/guides/alternate-runtimes). The event
object also carries the user's own ID token
(``authorizationEventObject.userIdToken``). Both are checked the same way with
google-auth: the RS256 signature against Google's published certificates, the
expiry, the audience, and here also the issuer (google-auth leaves that to the
caller), which Google writes as ``https://accounts.google.com`` or
``accounts.google.com``. Anything wrong is :class:`InvalidIdToken`, which the
endpoints answer with 401.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import id_token

GOOGLE_ISSUERS = frozenset({"https://accounts.google.com", "accounts.google.com"})
CERTS_TIMEOUT = 10.0
CERTS_TTL = 300.0
MAX_TOKEN = 4096
"""Longer than any ID token Google issues: refused before any parsing."""


class InvalidIdToken(Exception):
    """Not a valid Google ID token for this audience; the message says which check failed."""


class _CertsSession(requests.Session):
    """How the certificates are fetched: with a timeout, since a request waits on it and a
    stalled fetch must not hold a worker; and kept for :data:`CERTS_TTL` seconds, since
    every add-on request checks two tokens against the same certificates, which Google
    publishes well before it signs with a new key."""

    _held: ClassVar[dict[str, tuple[float, requests.Response]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", CERTS_TIMEOUT)
        if method.upper() != "GET":
            return super().request(method, url, *args, **kwargs)
        now = time.monotonic()
        with self._lock:
            held = self._held.get(url)
        if held is not None and now - held[0] < CERTS_TTL:
            return held[1]
        response = super().request(method, url, *args, **kwargs)
        if response.status_code == 200:
            _ = response.content
            with self._lock:
                self._held[url] = (now, response)
        return response


_REQUEST = google.auth.transport.requests.Request(session=_CertsSession())
"""One session for every check: its connections are reused, its certificates kept."""


def verify(
    token: str,
    *,
    audiences: Sequence[str],
    certs_url: str,
    email: str | None = None,
) -> Mapping[str, Any]:
    """The claims of ``token`` once its signature, expiry, issuer and audience (one of
    ``audiences``) hold, and, with ``email``, its verified ``email`` is that address."""
    if not token or len(token) > MAX_TOKEN or token.count(".") != 2:
        raise InvalidIdToken("not an ID token")
    try:
        claims = id_token.verify_token(
            token, _REQUEST, audience=list(audiences), certs_url=certs_url, clock_skew_in_seconds=10
        )
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise InvalidIdToken(f"the ID token did not verify: {exc}") from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise InvalidIdToken("the ID token was not issued by Google")
    if email is not None and not same_email(claims, email):
        raise InvalidIdToken("the ID token is not the add-on's service account's")
    return claims


def verified_email(claims: Mapping[str, Any]) -> str | None:
    """The token's address, lower-cased, when Google says it is verified."""
    address = claims.get("email")
    if not isinstance(address, str) or claims.get("email_verified") not in (True, "true"):
        return None
    return address.strip().lower() or None


def same_email(claims: Mapping[str, Any], email: str) -> bool:
    return verified_email(claims) == email.strip().lower()
