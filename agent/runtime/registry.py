"""From a connector's config to a running connector.

Credentials are resolved here, at the edge: a service-account key file for
domain-wide delegation, or a user's OAuth grant from the encrypted token
store. Connectors themselves only ever see a credentials object.

So are the ``${VAR}`` values of a connector's table that were unset when the
config was read (``config.loader.resolve``): one still unset fails this
connector alone, with a ``ConnectorConfigError`` (a ``ValueError``) naming
the key and the variable, which its status records like any failure to start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config import Settings
from config.loader import resolve
from config.schema import ConnectorConfig
from config.schema import GmailConnector as GmailConfig
from config.schema import GoogleCalendarConnector as CalendarConfig
from config.schema import IcsConnector as IcsConfig
from config.schema import ImapConnector as ImapConfig
from config.schema import MboxConnector as MboxConfig
from config.schema import MicrosoftCalendarConnector as OutlookCalendarConfig
from config.schema import MicrosoftMailConnector as OutlookMailConfig
from config.secrets import SecretStoreError, TokenStore
from connectors.errors import AuthError
from connectors.records import Connector

if TYPE_CHECKING:
    import google.auth.credentials

    from connectors.microsoft.auth import TokenSource
    from connectors.microsoft.graph import GraphClient


class NotAvailable(Exception):
    """This kind of connector cannot run in this installation yet."""


Builder = Callable[[Any, Settings, Path], Connector]
"""Builds the connector of one kind from its config (the schema class the kind names)."""


def build_connector(
    config: ConnectorConfig, settings: Settings, base: Path | None = None
) -> Connector:
    """The connector for ``config``; ``base`` anchors relative paths (the config's folder)."""
    builder = BUILDERS.get(config.kind)
    if builder is None:
        raise NotAvailable(f"connector kind {config.kind!r} is not available in this version")
    return builder(resolve(config), settings, base or Path.cwd())


# Each kind's module (and the Google client behind two of them) loads only when used.


def _mbox(config: MboxConfig, settings: Settings, root: Path) -> Connector:
    from connectors.mbox import MboxConnector

    return MboxConnector(
        config.name,
        root / config.path,
        config.account,
        since=config.since,
        folders=config.folders,
        batch_bytes=settings.agent.batch_bytes,
    )


def _ics(config: IcsConfig, settings: Settings, root: Path) -> Connector:
    from connectors.ical.files import IcsConnector

    return IcsConnector(
        config.name,
        root / config.path,
        config.account,
        since=config.since,
        horizon_days=max(1, config.horizon.days),
        limits=settings.limits.to_limits(),
    )


def _imap(config: ImapConfig, settings: Settings, _root: Path) -> Connector:
    from connectors.imap.connector import ImapConnector

    return ImapConnector(
        config.name,
        host=config.host,
        port=config.port,
        security=config.security,
        username=config.username or config.account,
        password=config.password,
        oauth2_token_provider=imap_oauth_token(config, settings, _root)
        if config.auth == "oauth"
        else None,
        address=config.account,
        folders=config.folders,
        default_folders=config.default_folders,
        since=config.since.date() if config.since else None,
        idle=config.idle,
        batch_bytes=settings.agent.batch_bytes,
    )


def _gmail(config: GmailConfig, settings: Settings, root: Path) -> Connector:
    from connectors.google.auth import gmail_scopes
    from connectors.google.gmail import GmailConnector

    return GmailConnector(
        config.name,
        config.account,
        google_credentials(config, gmail_scopes(config.scope), settings, root),
        mode=config.scope,
        labels=config.labels,
        since=config.since,
        api_endpoint=config.api_endpoint,
        batch_bytes=settings.agent.batch_bytes,
        watched_labels=[
            label
            for label in (settings.privacy.private_label, settings.privacy.share_label)
            if label
        ],
    )


def _google_calendar(config: CalendarConfig, settings: Settings, root: Path) -> Connector:
    from connectors.google.auth import CALENDAR_READONLY_SCOPE
    from connectors.google.calendar import GoogleCalendarConnector

    return GoogleCalendarConnector(
        config.name,
        config.account,
        google_credentials(config, [CALENDAR_READONLY_SCOPE], settings, root),
        calendars=config.calendars,
        since=config.since,
        horizon_days=max(1, config.horizon.days),
        api_endpoint=config.api_endpoint,
        limits=settings.limits.to_limits(),
    )


def _microsoft_mail(config: OutlookMailConfig, settings: Settings, root: Path) -> Connector:
    from connectors.microsoft.auth import MAIL_SCOPES
    from connectors.microsoft.mail import MicrosoftMailConnector

    return MicrosoftMailConnector(
        config.name,
        config.account,
        graph_client(config, MAIL_SCOPES[config.scope], settings, root),
        mode=config.scope,
        folders=config.folders,
        default_folders=config.default_folders,
        since=config.since,
        batch_bytes=settings.agent.batch_bytes,
    )


def _microsoft_calendar(config: OutlookCalendarConfig, settings: Settings, root: Path) -> Connector:
    from connectors.microsoft.auth import CALENDAR_SCOPES
    from connectors.microsoft.calendar import MicrosoftCalendarConnector

    return MicrosoftCalendarConnector(
        config.name,
        config.account,
        graph_client(config, CALENDAR_SCOPES, settings, root),
        since=config.since,
        horizon_days=max(1, config.horizon.days),
        limits=settings.limits.to_limits(),
    )


BUILDERS: Mapping[str, Builder] = {
    "mbox": _mbox,
    "ics": _ics,
    "imap": _imap,
    "gmail": _gmail,
    "google_calendar": _google_calendar,
    "microsoft_mail": _microsoft_mail,
    "microsoft_calendar": _microsoft_calendar,
}
"""Kind -> builder. The config schema ties each kind to its class, so a builder
receives the class it names."""


def google_credentials(
    config: GmailConfig | CalendarConfig, scopes: Sequence[str], settings: Settings, base: Path
) -> google.auth.credentials.Credentials:
    """A Google connector's credentials: its service account impersonating the account,
    or the OAuth grant held in the token store under the connector's name."""
    from connectors.google.auth import service_account_credentials, user_credentials

    if config.auth == "service_account":
        if config.key_file is None:
            raise AuthError(
                f"connector {config.name!r} uses a service account but sets no key_file",
                hint="set key_file to the service account's JSON key",
            )
        return service_account_credentials(base / config.key_file, scopes, subject=config.account)
    store = token_store(settings, base)
    info = store.load(config.name)
    if info is None:
        raise AuthError(
            f"connector {config.name!r} has no OAuth grant yet",
            hint=f"run `crm-sync connectors auth {config.name}`",
        )
    return user_credentials(info, scopes, on_refresh=lambda record: store.save(config.name, record))


def graph_client(
    config: OutlookMailConfig | OutlookCalendarConfig,
    scopes: Sequence[str],
    settings: Settings,
    base: Path,
) -> GraphClient:
    """A Microsoft connector's Graph client, with the tenant's app credentials or the
    user's grant from the token store."""
    from connectors.microsoft.graph import GraphClient

    hint = microsoft_auth_hint(config)
    return GraphClient(
        microsoft_tokens(config, scopes, settings, base), config.graph_endpoint, auth_hint=hint
    )


def microsoft_tokens(
    config: OutlookMailConfig | OutlookCalendarConfig,
    scopes: Sequence[str],
    settings: Settings,
    base: Path,
) -> TokenSource:
    from connectors.microsoft.auth import AppTokens, DelegatedTokens, Tenant

    tenant = Tenant(config.tenant, config.client_id, config.authority_host)
    hint = microsoft_auth_hint(config)
    if config.auth == "app":
        assert config.client_secret is not None
        return AppTokens(tenant, config.client_secret, hint=hint)
    return DelegatedTokens(
        tenant, token_store(settings, base), config.name, scopes, account=config.account, hint=hint
    )


def microsoft_auth_hint(config: OutlookMailConfig | OutlookCalendarConfig | ImapConfig) -> str:
    """What repairs a refused Microsoft grant, for ``status``."""
    from connectors.microsoft.auth import APP_PERMISSIONS

    if config.auth != "app":
        return f"run `crm-sync connectors auth {config.name}`"
    use = f"microsoft_mail/{config.scope}" if isinstance(config, OutlookMailConfig) else config.kind
    return (
        f"check client_id and client_secret, and that an admin granted the app the "
        f"{APP_PERMISSIONS[use]} application permission (Entra admin center: App "
        "registrations, API permissions, Grant admin consent)"
    )


IMAP_GOOGLE_SCOPE = "https://mail.google.com/"
"""The one scope Gmail's IMAP takes (XOAUTH2); it reads and writes everything."""


def imap_oauth_token(config: ImapConfig, settings: Settings, base: Path) -> Callable[[], str]:
    """The XOAUTH2 access token of an ``auth = "oauth"`` IMAP connector, from the grant
    ``crm-sync connectors auth NAME`` stored: Google's or Microsoft's (``provider``)."""
    hint = f"run `crm-sync connectors auth {config.name}`"
    store = token_store(settings, base)
    if config.provider == "microsoft":
        from connectors.microsoft.auth import IMAP_SCOPES, DelegatedTokens, Tenant

        assert config.tenant is not None and config.client_id is not None
        tenant = Tenant(config.tenant, config.client_id, config.authority_host)
        return DelegatedTokens(
            tenant, store, config.name, IMAP_SCOPES, account=config.account, hint=hint
        ).token
    from connectors.google.auth import fresh_token, user_credentials

    info = store.load(config.name)
    if info is None:
        raise AuthError(f"connector {config.name!r} has no OAuth grant yet", hint=hint)
    credentials = user_credentials(
        info, [IMAP_GOOGLE_SCOPE], on_refresh=lambda record: store.save(config.name, record)
    )
    return lambda: fresh_token(credentials, connector_name=config.name)


def token_store(settings: Settings, base: Path) -> TokenStore:
    try:
        return TokenStore.open(
            base / settings.secrets.token_dir, key_file=base / settings.secrets.key_file
        )
    except SecretStoreError as exc:
        raise AuthError(str(exc), hint="see [secrets] in the config") from exc


def mailbox_of(config: ConnectorConfig) -> str:
    """The owner's address: it decides direction and who "we" are."""
    return config.account
