"""The Microsoft identity platform side of the fake: tokens, device codes, discovery.

Paths (all on the fake's root URL, which plays ``login.microsoftonline.com``):

``POST /{tenant}/oauth2/v2.0/token``
    ``client_credentials`` (app-only; ``scope`` must be ``{resource}/.default``,
    the token carries the app's granted application permissions),
    ``urn:ietf:params:oauth:grant-type:device_code`` (``authorization_pending``
    until a test approves, then a delegated token with ``refresh_token`` when
    ``offline_access`` was asked, an ``id_token`` when ``openid`` was, and
    ``client_info`` when ``client_info=1`` was sent), ``refresh_token``.
``POST /{tenant}/oauth2/v2.0/devicecode``
    the device authorization request ("Microsoft identity platform and the OAuth
    2.0 device authorization grant flow").
``GET /{tenant}/v2.0/.well-known/openid-configuration``
    the OpenID discovery document MSAL reads its endpoints from.
``GET /common/discovery/instance``
    instance discovery (MSAL calls it unless ``instance_discovery=False``).
``GET /{tenant}/discovery/v2.0/keys``
    an empty JWK Set: the fake's ID tokens are unsigned (``alg: none``); MSAL
    does not check ID token signatures.

Errors use the token endpoint's shape: ``{"error", "error_description",
"error_codes", "timestamp", "trace_id", "correlation_id"}`` with AADSTS codes.
Access and refresh tokens are opaque random strings mapped to a
:class:`~tests.support.fake_graph.common.Grant`.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.support.fake_google.api import Answer
from tests.support.fake_graph.common import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    Grant,
    GraphError,
    json_answer,
)

if TYPE_CHECKING:
    from tests.support.fake_graph.server import User

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
TENANT_ALIASES = frozenset({"common", "organizations"})


class OAuthError(Exception):
    """An answer in the token endpoint's error shape."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"{status} {error}: AADSTS{aadsts}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description

    def answer(self) -> Answer:
        trace = str(uuid.uuid4())
        body = {
            "error": self.error,
            "error_description": f"AADSTS{self.aadsts}: {self.description} Trace ID: {trace}",
            "error_codes": [self.aadsts],
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
            "trace_id": trace,
            "correlation_id": str(uuid.uuid4()),
        }
        return json_answer(self.status, body)


@dataclass
class App:
    """An app registration with its consented permissions.

    ``app_permissions`` are the application permissions an admin granted
    (roles of app-only tokens, e.g. ``{"Mail.ReadBasic.All"}``);
    ``delegated_permissions`` the delegated ones consented for users (scopes
    of device-code tokens). ``secret`` is ``None`` for a public client."""

    client_id: str
    secret: str | None
    app_permissions: frozenset[str]
    delegated_permissions: frozenset[str]
    revoked: bool = False


@dataclass
class DeviceFlow:
    device_code: str
    user_code: str
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float
    user_id: str | None = None
    declined: bool = False
    redeemed: bool = False
    polls: int = 0


@dataclass
class RefreshGrant:
    client_id: str
    user_id: str
    scopes: frozenset[str]
    revoked: bool = False


@dataclass
class Identity:
    """Token bookkeeping; the server owns one (``FakeGraph.identity``)."""

    tenant_id: str
    tenant_domain: str
    lock: threading.RLock
    users_by_id: dict[str, User]
    token_lifetime: int = 3600
    device_code_lifetime: int = 900
    device_poll_interval: int = 1
    """``interval`` in device authorization answers (the docs' default is 5;
    1 keeps MSAL's polling loop fast)."""
    apps: dict[str, App] = field(default_factory=dict)
    access_tokens: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)
    device_flows: list[DeviceFlow] = field(default_factory=list)
    revoked_users: set[str] = field(default_factory=set)
    revoked_tokens: set[str] = field(default_factory=set)

    # -- setup and test hooks

    def add_app(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        app_permissions: Iterable[str] = (),
        delegated_permissions: Iterable[str] = ("User.Read", "Mail.Read", "Calendars.Read"),
    ) -> App:
        app = App(client_id, secret, frozenset(app_permissions), frozenset(delegated_permissions))
        with self.lock:
            self.apps[client_id] = app
        return app

    def approve_device_code(self, user_id: str, user_code: str | None = None) -> None:
        """The user signs in at the verification URI and enters ``user_code``
        (``None``: the latest pending flow)."""
        with self.lock:
            self._flow(user_code).user_id = user_id

    def decline_device_code(self, user_code: str | None = None) -> None:
        with self.lock:
            self._flow(user_code).declined = True

    def _flow(self, user_code: str | None) -> DeviceFlow:
        pending = [f for f in self.device_flows if f.user_id is None and not f.declined]
        for flow in reversed(pending):
            if user_code is None or flow.user_code == user_code:
                return flow
        raise LookupError(f"no pending device flow {user_code or ''}".strip())

    def revoke_user(self, user_id: str) -> None:
        """Revoke the user's sessions: refresh tokens stop working and access
        tokens already issued for the user are refused (as with continuous
        access evaluation)."""
        with self.lock:
            self.revoked_users.add(user_id)
            for grant in self.refresh_tokens.values():
                if grant.user_id == user_id:
                    grant.revoked = True
            for token, access in self.access_tokens.items():
                if access.user_id == user_id:
                    self.revoked_tokens.add(token)

    def revoke_app(self, client_id: str) -> None:
        """Disable the app: its tokens are refused, its grants fail."""
        with self.lock:
            self.apps[client_id].revoked = True
            for grant in self.refresh_tokens.values():
                if grant.client_id == client_id:
                    grant.revoked = True
            for token, access in self.access_tokens.items():
                if access.client_id == client_id:
                    self.revoked_tokens.add(token)

    def expire_access_tokens(self) -> None:
        with self.lock:
            for token, grant in list(self.access_tokens.items()):
                self.access_tokens[token] = Grant(
                    grant.client_id,
                    grant.user_id,
                    grant.permissions,
                    token,
                    grant.issued_at,
                    time.time() - 1,
                )

    def issue_app_token(self, client_id: str) -> str:
        """An app-only access token without a round trip (for tests)."""
        with self.lock:
            return self._issue(client_id, None, self.apps[client_id].app_permissions)

    def issue_user_token(self, client_id: str, user_id: str, scopes: Iterable[str]) -> str:
        """A delegated access token without a round trip (for tests)."""
        with self.lock:
            return self._issue(client_id, user_id, frozenset(scopes))

    # -- HTTP

    def handle(
        self, http_method: str, path: str, query: str, body: bytes, root_url: str
    ) -> tuple[str, Answer] | None:
        """Answer an identity-platform path; ``None`` when ``path`` is not one.
        Returns the endpoint's name for the call log with the answer."""
        parts = [p for p in path.split("/") if p]
        if http_method == "GET" and parts == ["common", "discovery", "instance"]:
            return "identity.instance_discovery", self._instance_discovery(query, root_url)
        if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return "identity.openid_configuration", self._openid_configuration(parts[0], root_url)
        if len(parts) == 4 and parts[1:] == ["discovery", "v2.0", "keys"]:
            return "identity.keys", json_answer(200, {"keys": []})
        if len(parts) == 4 and parts[1:3] == ["oauth2", "v2.0"] and http_method == "POST":
            form = {
                k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()
            }
            try:
                self._check_tenant(parts[0])
                if parts[3] == "token":
                    return "identity.token", json_answer(200, self._token(form, root_url, parts[0]))
                if parts[3] == "devicecode":
                    return "identity.devicecode", json_answer(200, self._devicecode(form, root_url))
            except OAuthError as error:
                return f"identity.{parts[3]}", error.answer()
        return None

    def authenticate(self, authorization: str | None) -> Grant:
        """The grant behind a ``Bearer`` header, or the error Graph answers."""

        def refuse(message: str) -> GraphError:
            return GraphError(
                401,
                "InvalidAuthenticationToken",
                message,
                headers={
                    "WWW-Authenticate": f'Bearer realm="", authorization_uri='
                    f'"https://login.microsoftonline.com/common/oauth2/authorize", '
                    f'client_id="{GRAPH_APP_ID}"'
                },
            )

        if not authorization:
            raise refuse("Access token is empty.")
        scheme, _, token = authorization.partition(" ")
        with self.lock:
            grant = self.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if grant is None:
                raise refuse("CompactToken parsing failed with error code: 80049217")
            if token in self.revoked_tokens:
                raise refuse(
                    "Continuous access evaluation resulted in challenge with result: "
                    "InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp"
                )
            if grant.expires_at <= time.time():
                raise refuse("Lifetime validation failed, the token is expired.")
            return grant

    # -- endpoints

    def _check_tenant(self, tenant: str) -> None:
        if tenant.lower() not in {self.tenant_id, self.tenant_domain.lower(), *TENANT_ALIASES}:
            raise OAuthError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
            )

    def _openid_configuration(self, tenant: str, root_url: str) -> Answer:
        try:
            self._check_tenant(tenant)
        except OAuthError as error:
            return error.answer()
        base = f"{root_url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant.lower() in TENANT_ALIASES else self.tenant_id
        document = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{root_url}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{root_url}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "tid", "oid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }
        return json_answer(200, document)

    def _instance_discovery(self, query: str, root_url: str) -> Answer:
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        endpoint = params.get("authorization_endpoint", "")
        path_parts = [p for p in urlsplit(endpoint).path.split("/") if p]
        tenant = path_parts[0] if path_parts else "common"
        host = urlsplit(root_url).netloc
        return json_answer(
            200,
            {
                "tenant_discovery_endpoint": (
                    f"{root_url}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": params.get("api-version", "1.1"),
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            },
        )

    def _client(self, form: Mapping[str, str], *, need_secret: bool) -> App:
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory.",
            )
        if app.revoked:
            raise OAuthError(
                400, "unauthorized_client", 7000112, f"Application '{client_id}' is disabled."
            )
        secret = form.get("client_secret")
        if app.secret is not None and (need_secret or secret is not None) and secret != app.secret:
            raise OAuthError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID.",
            )
        return app

    def _devicecode(self, form: Mapping[str, str], root_url: str) -> dict[str, Any]:
        app = self._client(form, need_secret=False)
        scopes = tuple(form.get("scope", "").split())
        if not scopes:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        user_code = "".join(
            secrets.choice(string.ascii_uppercase + string.digits) for _ in range(9)
        )
        flow = DeviceFlow(
            device_code=secrets.token_urlsafe(48),
            user_code=user_code,
            client_id=app.client_id,
            scopes=scopes,
            expires_at=time.time() + self.device_code_lifetime,
        )
        with self.lock:
            self.device_flows.append(flow)
        verification = f"{root_url}/devicelogin"
        return {
            "user_code": user_code,
            "device_code": flow.device_code,
            "verification_uri": verification,
            "expires_in": self.device_code_lifetime,
            "interval": self.device_poll_interval,
            "message": f"To sign in, use a web browser to open the page {verification} and enter "
            f"the code {user_code} to authenticate.",
        }

    def _token(self, form: Mapping[str, str], root_url: str, tenant: str) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        with self.lock:
            if grant_type == "client_credentials":
                return self._client_credentials(form)
            if grant_type == DEVICE_CODE_GRANT:
                return self._device_code_grant(form, root_url)
            if grant_type == "refresh_token":
                return self._refresh(form, root_url)
        raise OAuthError(
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )

    def _client_credentials(self, form: Mapping[str, str]) -> dict[str, Any]:
        app = self._client(form, need_secret=True)
        if app.secret is None:
            raise OAuthError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        scope = form.get("scope", "")
        if scope.split() not in ([f"{GRAPH_RESOURCE}/.default"], [f"{GRAPH_APP_ID}/.default"]):
            raise OAuthError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must "
                "have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        token = self._issue(app.client_id, None, app.app_permissions)
        return {
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }

    def _device_code_grant(self, form: Mapping[str, str], root_url: str) -> dict[str, Any]:
        app = self._client(form, need_secret=False)
        code = form.get("device_code", "")
        flow = next((f for f in self.device_flows if f.device_code == code), None)
        if flow is None or flow.client_id != app.client_id or flow.redeemed:
            raise OAuthError(
                400, "bad_verification_code", 70019, "Verification code was not recognized."
            )
        flow.polls += 1
        if flow.expires_at <= time.time():
            raise OAuthError(
                400,
                "expired_token",
                70020,
                "The provided value for the input parameter 'device_code' is not valid. "
                "This device code has expired.",
            )
        if flow.declined:
            raise OAuthError(
                400, "authorization_declined", 70016, "The user declined the authorization request."
            )
        if flow.user_id is None:
            raise OAuthError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        flow.redeemed = True
        return self._delegated_answer(app, flow.user_id, flow.scopes, form, root_url)

    def _refresh(self, form: Mapping[str, str], root_url: str) -> dict[str, Any]:
        app = self._client(form, need_secret=False)
        grant = self.refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None or grant.client_id != app.client_id:
            raise OAuthError(
                400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            )
        if grant.revoked or grant.user_id in self.revoked_users:
            raise OAuthError(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is "
                "needed. The user might have changed or reset their password.",
            )
        asked = form.get("scope", "").split() or sorted(grant.scopes)
        return self._delegated_answer(app, grant.user_id, tuple(asked), form, root_url)

    def _delegated_answer(
        self,
        app: App,
        user_id: str,
        asked: tuple[str, ...],
        form: Mapping[str, str],
        root_url: str,
    ) -> dict[str, Any]:
        oidc = {s for s in asked if s in OIDC_SCOPES}
        wanted = {_short_scope(s) for s in asked if s not in OIDC_SCOPES}
        if any(s == ".default" for s in wanted):
            wanted = set(app.delegated_permissions)
        granted = frozenset(s for s in wanted if s in app.delegated_permissions)
        token = self._issue(app.client_id, user_id, granted)
        user = self.users_by_id[user_id]
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(sorted(granted | (oidc - {"offline_access"}))),
            "expires_in": self.token_lifetime,
            "ext_expires_in": self.token_lifetime,
            "access_token": token,
        }
        if "offline_access" in oidc:
            refresh = secrets.token_urlsafe(48)
            self.refresh_tokens[refresh] = RefreshGrant(app.client_id, user_id, granted | oidc)
            answer["refresh_token"] = refresh
        if "openid" in oidc:
            answer["id_token"] = self._id_token(app.client_id, user, root_url)
        if form.get("client_info") == "1":
            info = json.dumps({"uid": user_id, "utid": self.tenant_id}).encode()
            answer["client_info"] = base64.urlsafe_b64encode(info).decode().rstrip("=")
        return answer

    def _id_token(self, client_id: str, user: User, root_url: str) -> str:
        now = int(time.time())
        claims = {
            "aud": client_id,
            "iss": f"{root_url}/{self.tenant_id}/v2.0",
            "iat": now,
            "nbf": now,
            "exp": now + self.token_lifetime,
            "name": user.display_name,
            "oid": user.id,
            "preferred_username": user.upn,
            "sub": user.id,
            "tid": self.tenant_id,
            "ver": "2.0",
        }

        def part(value: Mapping[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

        return f"{part({'typ': 'JWT', 'alg': 'none'})}.{part(claims)}."

    def _issue(self, client_id: str, user_id: str | None, permissions: frozenset[str]) -> str:
        token = "fake-graph." + secrets.token_urlsafe(32)
        now = time.time()
        self.access_tokens[token] = Grant(
            client_id, user_id, permissions, token, now, now + self.token_lifetime
        )
        return token


def _short_scope(scope: str) -> str:
    """``https://graph.microsoft.com/Mail.Read`` -> ``Mail.Read``."""
    for prefix in (f"{GRAPH_RESOURCE}/", f"{GRAPH_APP_ID}/"):
        if scope.startswith(prefix):
            return scope[len(prefix) :]
    return scope
