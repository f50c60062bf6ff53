"""The fake's OAuth 2.0 side: the token endpoint, the consent screen and the grants behind tokens.

The token endpoint (``/token``) takes the refresh-token grant, the JWT-bearer
grant of service accounts (RS256 signature checked against the registered
public key; ``aud`` is not checked because google-auth always sends Google's
own token URL), and the authorization-code grant with PKCE (``S256`` or
``plain``). The authorization endpoint (``/o/oauth2/auth``) consents at once,
signing in as, first found: the account given to :meth:`OAuthServer.sign_in_next`
(once; the user picking another account in Google's chooser), the request's
``login_hint`` (the account Google preselects), ``consent_account``. With none of
them it answers 400. The ``nonce`` of the request stays with the code for the ID
token (:mod:`.oidc`). Every API call is authenticated against the access tokens
issued here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote_plus, urlencode

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.fake_google.api import (
    Answer,
    ApiError,
    Grant,
    b64url_decode,
    get_header,
    json_answer,
)

if TYPE_CHECKING:
    from tests.support.fake_google.calendar import CalendarListEntry
    from tests.support.fake_google.mailbox import Mailbox

TOKEN_PATHS = frozenset({"/token", "/o/oauth2/token"})
AUTH_PATH = "/o/oauth2/auth"
_JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class OAuthError(Exception):
    """An answer in the OAuth token endpoint's error shape (RFC 6749 §5.2)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


class OAuthServer:
    """The OAuth endpoints and token bookkeeping that the fake server inherits.

    ``clients`` maps OAuth client ids to secrets; ``service_accounts`` holds each
    service account's public key and the scopes an admin delegated to it;
    ``consent_account`` (and ``consent_scopes``, ``None`` for all asked) is who
    the consent screen signs in as when neither :meth:`sign_in_next` nor the
    request's ``login_hint`` says otherwise.
    """

    lock: threading.RLock
    token_lifetime: int
    mailboxes: dict[str, Mailbox]
    calendar_lists: dict[str, list[CalendarListEntry]]

    def _init_oauth(self) -> None:
        self.clients: dict[str, str] = {"test-client": "test-secret"}
        self.service_accounts: dict[str, tuple[rsa.RSAPublicKey, frozenset[str]]] = {}
        self.consent_account: str | None = None
        self.consent_scopes: frozenset[str] | None = None
        self._refresh_tokens: dict[str, Grant] = {}
        self._access_tokens: dict[str, tuple[Grant, float]] = {}
        self._codes: dict[str, _PendingCode] = {}
        self._next_sign_in: str | None = None
        self._message_tokens: dict[str, tuple[str, str, float]] = {}

    # -- setup

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

    def issue_message_token(
        self, account: str, message_id: str, *, lifetime: float | None = None
    ) -> str:
        """The per-message token a Gmail add-on's event carries (``gmail.accessToken``): it
        opens ``message_id`` of ``account`` only, sent as ``X-Goog-Gmail-Access-Token``
        beside an access token with a ``gmail.addons.current.message.*`` scope."""
        with self.lock:
            token = "fake-msg-" + secrets.token_urlsafe(24)
            expiry = time.time() + (self.token_lifetime if lifetime is None else lifetime)
            self._message_tokens[token] = (account.lower(), message_id, expiry)
            return token

    def message_token_opens(self, token: str, account: str, message_id: str) -> bool:
        with self.lock:
            held = self._message_tokens.get(token)
        return (
            held is not None
            and held[0] == account.lower()
            and held[1] == message_id
            and held[2] >= time.time()
        )

    def sign_in_next(self, account: str) -> None:
        """The next consent signs in as ``account``, whatever ``login_hint`` and
        ``consent_account`` say (as when the user picks another account)."""
        with self.lock:
            self._next_sign_in = account

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

    # -- checking a call

    def _authenticate(self, headers: Mapping[str, str]) -> Grant:
        value = get_header(headers, "authorization") or ""
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

    # -- the token and consent endpoints

    def _token_endpoint(self, body: bytes, authorization: str | None) -> Answer:
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
            return json_answer(
                error.status, {"error": error.error, "error_description": error.description}
            )
        return json_answer(200, payload)

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
            header = json.loads(b64url_decode(header_b64))
            claims = json.loads(b64url_decode(payload_b64))
            signature = b64url_decode(signature_b64)
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

    def _authorize(self, params: Mapping[str, list[str]]) -> Answer:
        """The consent screen, consenting at once (see the module's docstring for who)."""
        form = {k: v[-1] for k, v in params.items()}
        redirect_uri = form.get("redirect_uri", "")
        with self.lock:
            account = self._next_sign_in or form.get("login_hint") or self.consent_account
            if account is None or form.get("client_id") not in self.clients:
                return json_answer(400, {"error": "invalid_request"})
            self._next_sign_in = None
            asked = frozenset(form.get("scope", "").split())
            scopes = asked if self.consent_scopes is None else asked & self.consent_scopes
            code = "4/fake-" + secrets.token_urlsafe(16)
            self._codes[code] = _PendingCode(
                Grant(account, scopes, form["client_id"]),
                redirect_uri,
                form.get("code_challenge", ""),
                form.get("code_challenge_method", "plain"),
                form.get("nonce"),
            )
        query = urlencode({"state": form.get("state", ""), "code": code, "scope": " ".join(scopes)})
        separator = "&" if "?" in redirect_uri else "?"
        return Answer(302, {"Location": f"{redirect_uri}{separator}{query}"}, b"")

    def _code_grant(self, form: Mapping[str, str]) -> dict[str, Any]:
        self._check_client(form)
        pending = self._codes.pop(form.get("code", ""), None)
        if pending is None:
            raise OAuthError(400, "invalid_grant", "Malformed auth code.")
        grant = pending.grant
        if form.get("redirect_uri") != pending.redirect_uri:
            raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
        if pending.challenge and not pending.verified_by(form.get("code_verifier", "")):
            raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
        refresh = "1//fake-" + secrets.token_urlsafe(24)
        self._refresh_tokens[refresh] = grant
        access_token = self._new_access_token(grant)
        return {
            "access_token": access_token,
            "refresh_token": refresh,
            "expires_in": self.token_lifetime,
            "scope": " ".join(sorted(grant.scopes)),
            "token_type": "Bearer",
            **self._code_grant_extras(grant, pending.nonce, access_token),
        }

    def _code_grant_extras(
        self, grant: Grant, nonce: str | None, access_token: str
    ) -> dict[str, Any]:
        """More fields for the code grant's answer: the ID token (:mod:`.oidc`)."""
        return {}


@dataclass(frozen=True)
class _PendingCode:
    """An authorization code not yet exchanged, and what its request asked for."""

    grant: Grant
    redirect_uri: str
    challenge: str
    challenge_method: str
    nonce: str | None

    def verified_by(self, verifier: str) -> bool:
        """RFC 7636 §4.6."""
        if self.challenge_method == "S256":
            digest = hashlib.sha256(verifier.encode("ascii")).digest()
            return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii") == self.challenge
        return verifier == self.challenge


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
