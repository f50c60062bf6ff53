"""The fake's OpenID Connect side: Google as an identity provider, issuing ID tokens.

Written from Google's "OpenID Connect" guide and API reference
(developers.google.com/identity/openid-connect/reference). The issuer is the
fake's own root URL (``http://127.0.0.1:PORT``), not ``https://accounts.google.com``,
so a client that discovers its endpoints from the issuer finds the fake's. It covers:

* the discovery document at ``/.well-known/openid-configuration`` with Google's
  fields (``issuer``, the endpoints, ``jwks_uri``, supported response types,
  subject types, ``RS256``, scopes, claims, PKCE methods, grant types, client
  authentication methods), pointing at the fake's own paths;
* the signing keys twice, as Google publishes them: a JWK Set at
  ``/oauth2/v3/certs`` (``kty``, ``alg``, ``use``, ``kid``, ``n``, ``e``) and
  ``{kid: PEM X.509 certificate}`` at ``/oauth2/v1/certs`` (what google-auth's
  ``verify_token`` reads without PyJWT). One RSA 2048 key per fake, made on first use;
* an ``id_token`` in the authorization-code grant's answer when the granted scopes
  hold ``openid``: RS256 with ``kid``; ``iss``, ``azp`` and ``aud`` (the client id),
  ``sub`` (digits, stable per account, never the address), ``iat``, ``exp``
  (an hour later), ``at_hash``; ``email`` and ``email_verified`` only with the
  ``email`` scope and ``name`` only with ``profile`` (and a known name), as Google
  documents; ``nonce`` when the authentication request carried one;
* the UserInfo endpoint at ``/oauth2/v3/userinfo`` (Bearer access token): ``sub``,
  and the same scope-dependent claims.

Not covered: ``hd``, ``picture``/``given_name``/``family_name``/``locale``, the
implicit and hybrid flows, the RFC 9207 ``iss`` authorization response parameter,
key rotation, ``Cache-Control`` on the certs.

Tests mint tokens with :meth:`OidcServer.id_token` (``key="other"`` for one the
fake's keys do not verify) and choose who signs in at the consent screen with
``login_hint``, :meth:`~.oauth.OAuthServer.sign_in_next` or ``consent_account``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from tests.support.fake_google.api import SCOPE_PREFIX, Answer, ApiError, Grant, json_answer
from tests.support.fake_google.oauth import AUTH_PATH, OAuthServer

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/oauth2/v3/certs"
PEM_CERTS_PATH = "/oauth2/v1/certs"
USERINFO_PATH = "/oauth2/v3/userinfo"
OIDC_PATHS: Mapping[str, str] = {
    DISCOVERY_PATH: "oidc.discovery",
    JWKS_PATH: "oidc.jwks",
    PEM_CERTS_PATH: "oidc.certs",
    USERINFO_PATH: "oidc.userinfo",
}
"""The OIDC paths (all ``GET``) and the ``api_method`` their calls are logged under."""

ID_TOKEN_LIFETIME = 3600
EMAIL_SCOPES = frozenset({"email", SCOPE_PREFIX + "userinfo.email"})
PROFILE_SCOPES = frozenset({"profile", SCOPE_PREFIX + "userinfo.profile"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key with its key id and a self-signed certificate (the v1 certs' format)."""

    private_key: rsa.RSAPrivateKey
    kid: str
    certificate_pem: str

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        kid = hashlib.sha1(der).hexdigest()  # 40 hex digits, like Google's kids
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-google-oidc")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return cls(key, kid, pem)

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }

    def sign(self, claims: Mapping[str, Any], *, kid: str | None = None) -> str:
        """A compact RS256 JWT; ``kid`` overrides the header's key id (to forge one)."""
        header = {"alg": "RS256", "kid": kid or self.kid, "typ": "JWT"}
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode("utf-8"))
            for part in (header, claims)
        )
        signature = self.private_key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"


def subject_of(account: str) -> str:
    """The ``sub`` of an account: 21 digits like Google's, the same for the same
    address (case-insensitive) in every fake, so tests can predict it."""
    digest = hashlib.sha256(account.lower().encode("utf-8")).digest()
    return "1" + str(int.from_bytes(digest[:8], "big")).zfill(20)


def at_hash(access_token: str) -> str:
    """OIDC Core §3.1.3.6: the left half of the SHA-256 of the access token, base64url."""
    return _b64url(hashlib.sha256(access_token.encode("ascii")).digest()[:16])


class OidcServer(OAuthServer):
    """The OpenID Connect endpoints and ID tokens, on top of the OAuth side.

    ``account_names`` maps lower-case addresses to the ``name`` claim (left out
    for accounts not in it).
    """

    def _init_oidc(self) -> None:
        self.account_names: dict[str, str] = {}
        self._signing_key: SigningKey | None = None
        self._other_key: SigningKey | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError  # FakeGoogle's root URL

    @property
    def oidc_issuer(self) -> str:
        """The ``iss`` of the fake's ID tokens and the discovery document's ``issuer``."""
        return self.url

    @property
    def discovery_url(self) -> str:
        return self.url + DISCOVERY_PATH

    @property
    def jwks_uri(self) -> str:
        return self.url + JWKS_PATH

    @property
    def certs_url(self) -> str:
        """The PEM certificates, for ``google.oauth2.id_token.verify_token(certs_url=...)``."""
        return self.url + PEM_CERTS_PATH

    @property
    def signing_key(self) -> SigningKey:
        """The key the fake signs with and publishes (made on first use: RSA keys are
        slow to make, and most tests never ask for one)."""
        with self.lock:
            if self._signing_key is None:
                self._signing_key = SigningKey.generate()
            return self._signing_key

    @property
    def other_key(self) -> SigningKey:
        """A key the fake never publishes, for tokens a verifier must refuse."""
        with self.lock:
            if self._other_key is None:
                self._other_key = SigningKey.generate()
            return self._other_key

    def id_token(
        self,
        email: str,
        audience: str,
        *,
        expires_in: int = ID_TOKEN_LIFETIME,
        issuer: str | None = None,
        nonce: str | None = None,
        key: Literal["other"] | None = None,
    ) -> str:
        """An ID token for ``email`` as Google would give client ``audience``.

        A negative or zero ``expires_in`` gives a token that expired that long ago
        (issued an hour before it expired). ``issuer`` replaces the fake's own
        (e.g. ``"https://accounts.google.com"`` for code that insists on Google's).
        ``key="other"`` signs with :attr:`other_key` but names the published key's
        ``kid``, so only the signature check can refuse it.
        """
        now = int(time.time())
        exp = now + expires_in
        iat = now if expires_in > 0 else exp - ID_TOKEN_LIFETIME
        claims = self._claims(email, audience, iat=iat, exp=exp, issuer=issuer)
        claims.update(email=email, email_verified=True)
        name = self.account_names.get(email.lower())
        if name:
            claims["name"] = name
        if nonce is not None:
            claims["nonce"] = nonce
        if key == "other":
            return self.other_key.sign(claims, kid=self.signing_key.kid)
        return self.signing_key.sign(claims)

    def _claims(
        self, account: str, audience: str, *, iat: int, exp: int, issuer: str | None = None
    ) -> dict[str, Any]:
        return {
            "iss": issuer or self.oidc_issuer,
            "azp": audience,
            "aud": audience,
            "sub": subject_of(account),
            "iat": iat,
            "exp": exp,
        }

    def _profile_claims(self, account: str, scopes: frozenset[str]) -> dict[str, Any]:
        """What the ``email`` and ``profile`` scopes add to ID tokens and UserInfo."""
        claims: dict[str, Any] = {}
        if scopes & EMAIL_SCOPES:
            claims.update(email=account, email_verified=True)
        name = self.account_names.get(account.lower())
        if scopes & PROFILE_SCOPES and name:
            claims["name"] = name
        return claims

    def _code_grant_extras(
        self, grant: Grant, nonce: str | None, access_token: str
    ) -> dict[str, Any]:
        """The ``id_token`` of an authorization-code grant whose scopes hold ``openid``."""
        if "openid" not in grant.scopes:
            return {}
        now = int(time.time())
        claims = self._claims(grant.account, grant.client_id, iat=now, exp=now + ID_TOKEN_LIFETIME)
        claims["at_hash"] = at_hash(access_token)
        claims.update(self._profile_claims(grant.account, grant.scopes))
        if nonce:
            claims["nonce"] = nonce
        return {"id_token": self.signing_key.sign(claims)}

    # -- the endpoints

    def _oidc_endpoint(self, path: str, headers: Mapping[str, str]) -> tuple[Answer, str | None]:
        """Answer a ``GET`` of one of :data:`OIDC_PATHS`; also who asked (UserInfo only)."""
        if path == DISCOVERY_PATH:
            return json_answer(200, self._discovery()), None
        if path == JWKS_PATH:
            return json_answer(200, {"keys": [self.signing_key.jwk()]}), None
        if path == PEM_CERTS_PATH:
            key = self.signing_key
            return json_answer(200, {key.kid: key.certificate_pem}), None
        try:
            grant = self._authenticate(headers)
        except ApiError as error:
            body = {"error": "invalid_request", "error_description": "Invalid Credentials"}
            answer = json_answer(401, body)
            return Answer(401, {**answer.headers, **error.headers}, answer.body), None
        claims = {"sub": subject_of(grant.account)}
        claims.update(self._profile_claims(grant.account, grant.scopes))
        return json_answer(200, claims), grant.account

    def _discovery(self) -> dict[str, Any]:
        root = self.url
        return {
            "issuer": self.oidc_issuer,
            "authorization_endpoint": root + AUTH_PATH,
            "token_endpoint": root + "/token",
            "userinfo_endpoint": root + USERINFO_PATH,
            "jwks_uri": root + JWKS_PATH,
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": [
                "at_hash",
                "aud",
                "azp",
                "email",
                "email_verified",
                "exp",
                "iat",
                "iss",
                "name",
                "nonce",
                "sub",
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
            ],
        }
