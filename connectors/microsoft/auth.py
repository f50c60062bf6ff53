"""Access tokens for Microsoft Graph and Outlook's IMAP, from the Microsoft identity platform.

Two grants, both through MSAL:

- **App-only** (OAuth 2.0 client credentials): the app registration holds
  application permissions over the whole tenant, consented once by an admin.
  The token asks for ``https://graph.microsoft.com/.default``, which means
  "whatever the admin consented". MSAL keeps it in memory and renews it before
  it expires.
- **Delegated** (device authorization grant): one user signs in on another
  device (``crm-sync connectors auth NAME`` prints the code and the URL). The
  refresh token lives in MSAL's token cache, which is serialized and kept in
  the encrypted token store under the connector's name, and saved back
  whenever MSAL renews it.

A grant the identity platform refuses (``invalid_grant``, ``invalid_client``,
``unauthorized_client``, ``interaction_required``, consent missing) raises
:class:`~connectors.errors.AuthError` with the command that repairs it, so the
agent parks this connector as ``needs_auth`` and the others go on; a network
failure or a 5xx raises :class:`~connectors.errors.TransientError`.

Least privilege, per connector (Microsoft's permissions reference):

============================  ===========================  ===============================
connector                     delegated scope              application permission
============================  ===========================  ===============================
microsoft_mail, metadata      Mail.ReadBasic               Mail.ReadBasic.All
microsoft_mail, readonly      Mail.Read                    Mail.Read
microsoft_calendar            Calendars.Read               Calendars.Read
add-team (listing users)      (none)                       User.Read.All
imap with provider microsoft  IMAP.AccessAsUser.All        (not used)
============================  ===========================  ===============================
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import msal
import requests

from config.secrets import TokenStore
from connectors.errors import AuthError, TransientError

GRAPH = "https://graph.microsoft.com"
GRAPH_DEFAULT_SCOPE = f"{GRAPH}/.default"
MAIL_SCOPES: Mapping[str, tuple[str, ...]] = {
    "metadata": (f"{GRAPH}/Mail.ReadBasic",),
    "readonly": (f"{GRAPH}/Mail.Read",),
}
CALENDAR_SCOPES = (f"{GRAPH}/Calendars.Read",)
IMAP_SCOPES = ("https://outlook.office.com/IMAP.AccessAsUser.All",)
APP_PERMISSIONS: Mapping[str, str] = {
    "microsoft_mail/metadata": "Mail.ReadBasic.All",
    "microsoft_mail/readonly": "Mail.Read",
    "microsoft_calendar": "Calendars.Read",
    "users": "User.Read.All",
}
"""The application permission each use needs, for the hints given to admins."""
TIMEOUT = 30.0
_GRANT_REFUSED = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "unauthorized_client",
        "interaction_required",
        "consent_required",
        "invalid_scope",
        "access_denied",
        "invalid_request",
    }
)
"""Token-endpoint errors only a person can repair (RFC 6749 5.2 and Microsoft's additions)."""


class TokenSource(Protocol):
    """Gives a current access token; ``stale`` names one the resource refused (401)."""

    def token(self) -> str: ...

    def stale(self, token: str) -> None: ...


@dataclass(frozen=True)
class Tenant:
    """Where tokens come from: the tenant, the app registration and the authority host."""

    tenant: str
    client_id: str
    authority_host: str = "https://login.microsoftonline.com"

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant}"


def _result_token(result: Mapping[str, Any] | None, *, hint: str, what: str) -> str:
    """The access token from an MSAL result, or the error its failure means."""
    if result and "access_token" in result:
        return str(result["access_token"])
    if not result:
        raise AuthError(f"no {what} is held for this connector", hint=hint)
    error = str(result.get("error") or "unknown_error")
    description = str(result.get("error_description") or "").split("\r\n")[0].strip()
    message = f"Microsoft refused the {what}: {error}" + (f": {description}" if description else "")
    if error in _GRANT_REFUSED:
        raise AuthError(message, hint=hint)
    raise TransientError(message)


@contextmanager
def _network() -> Iterator[None]:
    """MSAL's HTTP failures as TransientError (it lets ``requests``' exceptions through)."""
    try:
        yield
    except (requests.RequestException, OSError) as exc:
        raise TransientError(f"the identity platform could not be reached: {exc}") from exc


class AppTokens:
    """App-only tokens for Graph (client credentials)."""

    def __init__(
        self,
        tenant: Tenant,
        client_secret: str,
        *,
        hint: str,
        http: requests.Session | None = None,
    ) -> None:
        self._hint = hint
        self._app = msal.ConfidentialClientApplication(
            tenant.client_id,
            client_credential=client_secret,
            authority=tenant.authority,
            instance_discovery=False,
            http_client=http,
            timeout=TIMEOUT,
        )
        self._lock = threading.Lock()
        self._refused: str | None = None

    def token(self) -> str:
        with self._lock, _network():
            result = self._app.acquire_token_for_client(scopes=[GRAPH_DEFAULT_SCOPE])
            token = _result_token(result, hint=self._hint, what="app's credentials")
            if token == self._refused:
                # Graph refused this very token: ask the identity platform for a new one.
                self._app.remove_tokens_for_client()
                result = self._app.acquire_token_for_client(scopes=[GRAPH_DEFAULT_SCOPE])
                token = _result_token(result, hint=self._hint, what="app's credentials")
            return token

    def stale(self, token: str) -> None:
        self._refused = token


class DelegatedTokens:
    """One user's tokens, from the MSAL cache held in the token store under ``name``."""

    def __init__(
        self,
        tenant: Tenant,
        store: TokenStore,
        name: str,
        scopes: Sequence[str],
        *,
        account: str,
        hint: str,
        http: requests.Session | None = None,
    ) -> None:
        self._tenant = tenant
        self._store = store
        self._name = name
        self._scopes = list(scopes)
        self._account = account.lower()
        self._hint = hint
        self._http = http
        self._lock = threading.Lock()
        self._refused: str | None = None

    def token(self) -> str:
        with self._lock, _network():
            cache = msal.SerializableTokenCache()
            record = self._store.load(self._name)
            if not record or record.get("kind") != "microsoft" or "cache" not in record:
                raise AuthError(
                    f"connector {self._name!r} has no Microsoft grant yet", hint=self._hint
                )
            cache.deserialize(str(record["cache"]))
            app = msal.PublicClientApplication(
                self._tenant.client_id,
                authority=self._tenant.authority,
                token_cache=cache,
                instance_discovery=False,
                http_client=self._http,
                timeout=TIMEOUT,
            )
            accounts = app.get_accounts(username=record.get("account") or self._account)
            if not accounts:
                raise AuthError(
                    f"the grant stored for {self._name!r} is not {self._account}'s",
                    hint=self._hint,
                )
            result = app.acquire_token_silent_with_error(self._scopes, account=accounts[0])
            token = _result_token(result, hint=self._hint, what="stored grant")
            if token == self._refused:
                result = app.acquire_token_silent_with_error(
                    self._scopes, account=accounts[0], force_refresh=True
                )
                token = _result_token(result, hint=self._hint, what="stored grant")
            if cache.has_state_changed:
                self._store.save(self._name, {**record, "cache": cache.serialize()})
            return token

    def stale(self, token: str) -> None:
        self._refused = token


DeviceFlowSay = Callable[[str], None]


def device_code_grant(
    tenant: Tenant,
    scopes: Sequence[str],
    *,
    say: DeviceFlowSay,
    http: requests.Session | None = None,
    timeout: float = 900.0,
) -> dict[str, Any]:
    """Run the device authorization grant: ``say`` shows the code and the URL; the
    result is the record to keep in the token store.

    The user signs in on any device; MSAL polls the token endpoint at the interval
    the platform asked for until the user is done, declines, or the code expires.
    """
    cache = msal.SerializableTokenCache()
    app = msal.PublicClientApplication(
        tenant.client_id,
        authority=tenant.authority,
        token_cache=cache,
        instance_discovery=False,
        http_client=http,
        timeout=TIMEOUT,
    )
    with _network():
        flow = app.initiate_device_flow(scopes=list(scopes))
        if "user_code" not in flow:
            _result_token(flow, hint="check tenant and client_id", what="device code")
        flow["expires_at"] = min(float(flow["expires_at"]), time.time() + timeout)
        say(str(flow.get("message") or f"open {flow['verification_uri']}: {flow['user_code']}"))
        result = app.acquire_token_by_device_flow(flow)
    _result_token(result, hint="run the command again", what="sign-in")
    claims = result.get("id_token_claims") or {}
    account = str(claims.get("preferred_username") or "").lower()
    return {"kind": "microsoft", "cache": cache.serialize(), "account": account}
