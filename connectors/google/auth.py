"""Google credentials for the Gmail and Calendar connectors.

Two ways in, both asking only for read scopes:

* A **service account with domain-wide delegation**: one key file serves a whole
  Workspace team; each connector impersonates its mailbox (``subject``). The
  admin grants the service account's client id the exact scopes in the Admin
  console. The token grant is a JWT signed with the key and posted to the key
  file's ``token_uri``.
* A **user OAuth grant**: the installed-app consent flow on a loopback port
  (:func:`run_oauth_flow`) yields an authorized-user record (refresh token,
  client id and secret, token endpoint) that the token store keeps encrypted.
  :func:`user_credentials` builds credentials from it with the constructor,
  because ``Credentials.from_authorized_user_info`` always replaces the record's
  ``token_uri`` with Google's.

Gmail offers ``gmail.metadata`` (headers only, no search) and ``gmail.readonly``;
a token holding both is held to the metadata scope's limits, so exactly one is
ever requested.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import google.auth.credentials
import google.auth.exceptions
import google.auth.transport
from google.oauth2 import credentials as user_creds
from google.oauth2 import service_account

from connectors.errors import AuthError, ConnectorError
from connectors.google.errors import classify_exception

SCOPE_PREFIX = "https://www.googleapis.com/auth/"
GMAIL_METADATA_SCOPE = SCOPE_PREFIX + "gmail.metadata"
GMAIL_READONLY_SCOPE = SCOPE_PREFIX + "gmail.readonly"
CALENDAR_READONLY_SCOPE = SCOPE_PREFIX + "calendar.readonly"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"

log = logging.getLogger(__name__)

GmailMode = Literal["metadata", "readonly"]


def gmail_scopes(mode: GmailMode) -> list[str]:
    """The one Gmail scope a mode needs (never both: see the module docstring)."""
    if mode == "metadata":
        return [GMAIL_METADATA_SCOPE]
    if mode == "readonly":
        return [GMAIL_READONLY_SCOPE]
    raise ValueError(f"unknown Gmail mode {mode!r} (expected 'metadata' or 'readonly')")


def reauth_hint(connector_name: str, credentials: object = None) -> str:
    """What an admin runs or checks when a connector's grant stops working."""
    if isinstance(credentials, service_account.Credentials):
        return (
            f"check the service account {credentials.service_account_email}: its key file "
            "and its domain-wide delegation grant (Admin console > Security > API controls) "
            f"must cover the scopes of connector {connector_name!r}"
        )
    return f"run `crm-sync connectors auth {connector_name}` to grant access again"


def service_account_credentials(
    key_file: str | Path, scopes: Sequence[str], subject: str
) -> service_account.Credentials:
    """Credentials that impersonate ``subject`` through domain-wide delegation.

    The key file's ``token_uri`` is honoured, so a test (or a proxy) can
    receive the JWT grant.
    """
    try:
        credentials: service_account.Credentials = (
            service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                str(key_file), scopes=list(scopes), subject=subject
            )
        )
        return credentials
    except (OSError, ValueError, KeyError) as exc:
        raise AuthError(
            f"cannot use service-account key file {key_file}: {exc}",
            hint="point key_file at the JSON key downloaded for the service account",
        ) from exc


class StoredUserCredentials(user_creds.Credentials):
    """User credentials that hand the record back after every refresh.

    An access token lives an hour, and a run lasts minutes: without writing the
    refreshed token back, every run (every few minutes, per connector) spends a
    call to Google's token endpoint before its first API call. ``on_refresh``
    receives the authorized-user record (:func:`authorized_user_info`) to store;
    a failure to store it is logged, never the run's failure.
    """

    def __init__(
        self, *args: Any, on_refresh: Callable[[dict[str, Any]], None] | None = None, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)  # type: ignore[no-untyped-call]
        self._on_refresh = on_refresh

    def refresh(self, request: google.auth.transport.Request) -> None:
        super().refresh(request)  # type: ignore[no-untyped-call]
        save = getattr(self, "_on_refresh", None)
        if save is None:
            return
        try:
            save(authorized_user_info(self))
        except Exception as exc:  # the token works: only the next run pays for it
            log.warning("could not store the refreshed Google access token: %s", exc)


def user_credentials(
    info: Mapping[str, Any],
    scopes: Sequence[str] | None = None,
    *,
    token_uri: str | None = None,
    on_refresh: Callable[[dict[str, Any]], None] | None = None,
) -> user_creds.Credentials:
    """Credentials from a stored authorized-user record.

    The token endpoint is ``token_uri``, else the record's own, else Google's.
    ``scopes`` defaults to the record's. ``on_refresh`` receives the record
    again after each refresh, to write back to the token store (the access
    token and its expiry are part of it), e.g.
    ``on_refresh=lambda record: store.save(name, record)``.
    """
    missing = [k for k in ("refresh_token", "client_id", "client_secret") if not info.get(k)]
    if missing:
        raise AuthError(
            f"stored OAuth token lacks {', '.join(missing)}",
            hint="run `crm-sync connectors auth NAME` again",
        )
    stored_scopes = info.get("scopes")
    if isinstance(stored_scopes, str):
        stored_scopes = stored_scopes.split()
    return StoredUserCredentials(
        token=info.get("token"),
        refresh_token=info["refresh_token"],
        token_uri=token_uri or info.get("token_uri") or GOOGLE_TOKEN_URI,
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        scopes=list(scopes) if scopes is not None else stored_scopes,
        expiry=_parse_expiry(info.get("expiry")),
        on_refresh=None if on_refresh is None else _merged_into(info, on_refresh),
    )


def _merged_into(
    info: Mapping[str, Any], save: Callable[[dict[str, Any]], None]
) -> Callable[[dict[str, Any]], None]:
    """``save`` of the refreshed record over the stored one: keys google-auth does not
    write (anything the record held beside the grant) are kept."""
    return lambda refreshed: save({**info, **refreshed})


def authorized_user_info(credentials: user_creds.Credentials) -> dict[str, Any]:
    """The record to store for user credentials (token endpoint included)."""
    info: dict[str, Any] = json.loads(credentials.to_json())  # type: ignore[no-untyped-call]
    return info


def refresh_now(
    credentials: google.auth.credentials.Credentials,
    request: google.auth.transport.Request,
    *,
    connector_name: str,
) -> None:
    """Refresh at once (``connectors test``), turning Google's refusal into our errors."""
    try:
        credentials.refresh(request)  # type: ignore[no-untyped-call]
    except google.auth.exceptions.GoogleAuthError as exc:
        verdict = classify_exception(exc)
        if verdict is None:
            raise
        raise verdict.error(auth_hint=reauth_hint(connector_name, credentials)) from exc


def fresh_token(credentials: user_creds.Credentials, *, connector_name: str) -> str:
    """A valid access token, refreshed first when it has expired (IMAP's XOAUTH2 login
    takes the token itself, not a request signed by the credentials)."""
    if not credentials.valid:
        import google.auth.transport.requests

        request = google.auth.transport.requests.Request()
        refresh_now(credentials, request, connector_name=connector_name)
    return str(credentials.token)


def run_oauth_flow(
    client_secrets_file: str | Path,
    scopes: Sequence[str],
    open_browser: bool,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    browser: str | None = None,
    timeout_seconds: int | None = 600,
) -> dict[str, Any]:
    """Run Google's installed-app consent flow and return the authorized-user record.

    A one-shot HTTP server on a loopback port receives Google's redirect; with
    ``open_browser=False`` the consent URL is printed for the admin to open.
    ``prompt=consent`` makes Google issue a refresh token even to a client that
    was granted access before.
    """
    from google_auth_oauthlib.flow import InstalledAppFlow

    try:
        flow = InstalledAppFlow.from_client_secrets_file(str(client_secrets_file), list(scopes))
    except (OSError, ValueError, KeyError) as exc:
        raise ConnectorError(f"cannot use OAuth client file {client_secrets_file}: {exc}") from exc
    credentials = flow.run_local_server(
        host=host,
        port=port,
        open_browser=open_browser,
        browser=browser,
        timeout_seconds=timeout_seconds,
        authorization_prompt_message="Open this URL in a browser to grant access:\n{url}",
        success_message="crm-sync has been granted access. You may close this window.",
        prompt="consent",
        access_type="offline",
    )
    if not credentials.refresh_token:
        raise AuthError(
            "Google returned no refresh token",
            hint="revoke crm-sync's access in the Google account, then authorize again",
        )
    return authorized_user_info(credentials)


def _parse_expiry(value: object) -> datetime | None:
    """google-auth keeps expiry as naive UTC; stored records write it as ISO 8601 with Z."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.rstrip("Z"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.replace(tzinfo=None)
