"""The config file's schema: one pydantic model per TOML table.

Every model forbids unknown keys, so a typo is an error that names the key
instead of a setting that silently does nothing. Ranges and shapes are
declared here too, with the fields (intervals of 10 s and more, ``true`` or
``false`` and nothing like it, accounts that are addresses, ports, hosts,
database URLs of a supported kind): a config that loads cannot ask the agent
for something that hurts, and no other module checks a value by hand.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config.limits import DEFAULT as DEFAULT_LIMITS
from config.limits import Limits

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

MIN_INTERVAL = timedelta(seconds=10)
"""The shortest sync interval a config may ask for: shorter ones hammer the provider and
the database for mail that arrives no faster."""
MAX_INTERVAL = timedelta(days=30)
MIN_HORIZON = timedelta(days=1)
MAX_HORIZON = timedelta(days=3650)
UNRESOLVED_CONTEXT = "unresolved"
"""The validation context key of each connector's unresolved values, by connector name."""
MIN_INTERVAL_CONTEXT = "min_interval"

DEFAULT_BATCH_BYTES = 8 * 2**20
"""The raw mail one batch holds unless the config says otherwise: with 5 MB attachments
a larger bound buys no speed (a sync of them is bound by parsing) and costs memory."""
"""The validation context key that lowers :data:`MIN_INTERVAL` (``config.loader`` sets it
from ``$CRM_SYNC_MIN_INTERVAL`` for test suites that need a fast agent); never below zero."""

SUPPORTED_DATABASES = ("sqlite", "postgresql+psycopg")
DATABASE_ALIASES = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}
"""Schemes that name the installed PostgreSQL driver without saying so."""
_SUPPORTED_TEXT = (
    "supported: sqlite:///PATH and postgresql+psycopg://USER@HOST/DB, "
    "also spelled postgresql:// or postgres://"
)


def parse_duration(value: object) -> timedelta:
    """``"5m"``, ``"90s"``, ``"1.5h"``, ``"7d"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value):
                return timedelta(seconds=value)
        elif isinstance(value, str):
            match = _DURATION.match(value)
            if match:
                amount, unit = match.groups()
                return timedelta(seconds=float(amount) * _UNIT_SECONDS[unit or "s"])
    except OverflowError:
        raise ValueError(f"not a duration: {value!r} is too long") from None
    raise ValueError(f"not a duration: {value!r} (use a number and a unit: 90s, 5m, 2h, 7d)")


def duration_text(value: timedelta) -> str:
    """``timedelta(seconds=90)`` -> ``"90s"``: a duration as the config file spells it."""
    seconds = value.total_seconds()
    for unit in ("w", "d", "h", "m", "s"):
        amount = seconds / _UNIT_SECONDS[unit]
        if abs(amount) >= 1 and amount == int(amount):
            return f"{int(amount)}{unit}"
    return f"{seconds:g}s"


def parse_since(value: object, *, now: datetime | None = None) -> datetime:
    """A backfill window's start: an ISO date or date-time, or an age like ``"90d"``."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
        try:
            age = parse_duration(text)
        except ValueError:
            pass
        else:
            try:
                return (now or datetime.now(timezone.utc)) - age
            except OverflowError:
                raise ValueError(f"not a date or an age: {value!r} is too long ago") from None
    raise ValueError(f"not a date or an age: {value!r} (use 2024-01-01 or 90d)")


def _interval(value: timedelta, info: ValidationInfo) -> timedelta:
    """At least :data:`MIN_INTERVAL` (or the context's lower floor), and always more than zero:
    a scheduler handed zero or less queues missed runs without end."""
    floor = (info.context or {}).get(MIN_INTERVAL_CONTEXT, MIN_INTERVAL)
    floor = max(floor, timedelta.resolution)
    if value < floor:
        raise ValueError(f"must be at least {duration_text(floor)}")
    if value > MAX_INTERVAL:
        raise ValueError(f"must be at most {duration_text(MAX_INTERVAL)}")
    return value


def _horizon(value: timedelta) -> timedelta:
    if not MIN_HORIZON <= value <= MAX_HORIZON:
        raise ValueError(
            f"must be from {duration_text(MIN_HORIZON)} to {duration_text(MAX_HORIZON)}"
        )
    return value


def _toml_scalar(value: object) -> object:
    """A ``${VAR}`` always expands to text: ``"true"``, ``"false"`` and digits read as TOML
    would read them unquoted, so a variable can hold a flag or a port; nothing else does."""
    if isinstance(value, str):
        if value in ("true", "false"):
            return value == "true"
        if value.isascii() and value.isdigit():
            return int(value)
    return value


_ATOM = r"[^\s@\"(),.:;<>\[\]\\]+"
_LABEL = r"[^\W_](?:[^\W_]|-){0,61}(?<!-)"
_ADDRESS = re.compile(
    rf"(?=[^@]{{1,64}}@)(?=.{{3,254}}$){_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})+"
)


def _address(value: str) -> str:
    """An address of the shape ``name@domain.tld`` (RFC 5321's, without quoted names or
    literal IPs): it is whose mailbox this is, and decides who "we" are in every message."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError("not an email address: the mailbox's own, like name@example.com")
    return value


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be a port from 1 to 65535")
    return value


def _host(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError("must be a host name or an IP address, without spaces")
    return value


def _database_url(url: str) -> str:
    """A URL of a supported database, ``postgres(ql)://`` spelled out as the installed
    driver's; the URL itself is never repeated in a message, as it may hold a password."""
    scheme, separator, rest = url.partition("://")
    if not separator or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise ValueError(f"not a database URL; {_SUPPORTED_TEXT}")
    scheme = DATABASE_ALIASES.get(scheme.lower(), scheme.lower())
    if scheme not in SUPPORTED_DATABASES:
        raise ValueError(f"unsupported database {scheme!r}; {_SUPPORTED_TEXT}")
    return f"{scheme}://{rest}"


Interval = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_interval)]
Horizon = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_horizon)]
Since = Annotated[datetime, BeforeValidator(parse_since)]
Flag = Annotated[StrictBool, BeforeValidator(_toml_scalar)]
"""``true`` or ``false``: ``"no"`` or ``1`` is an error, not a guess."""
Port = Annotated[StrictInt, BeforeValidator(_toml_scalar), AfterValidator(_port)]
Address = Annotated[str, AfterValidator(_address)]
Host = Annotated[str, AfterValidator(_host)]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Unresolved:
    """A connector's value that names an environment variable unset when the file was read."""

    where: tuple[str | int, ...]
    """Its key path in the file: ``("connectors", 1, "password")``."""
    text: str
    """The value as written, ``${VAR}`` and all."""
    variables: tuple[str, ...]
    """The variables it names that were unset."""
    file: Path | None = None


class DatabaseConfig(_Strict):
    url: DatabaseUrl = "sqlite:///crm-sync.db"


class AgentConfig(_Strict):
    interval: Interval = timedelta(minutes=5)
    internal_domains: list[str] = Field(default_factory=list)
    auto_create_contacts: Literal["none", "sent", "sent_and_received"] = "sent"
    log_internal: Flag = False
    propagate_deletes: Flag = False
    visibility: Literal["shared", "metadata", "private"] = "shared"
    free_mail_domains: list[str] = Field(default_factory=list)
    not_free_mail_domains: list[str] = Field(default_factory=list)
    planning_processes: Annotated[int, Field(ge=0, le=64)] | None = None
    batch_bytes: Annotated[int, Field(ge=2**20, le=2**30)] = DEFAULT_BATCH_BYTES
    """Raw mail one batch may hold, in bytes (1 MiB to 1 GiB), besides its count of
    messages; a single larger message is a batch of its own. Batches are what the agent
    holds in memory, so this bounds it on mailboxes of large attachments."""

    @field_validator("internal_domains", "free_mail_domains", "not_free_mail_domains")
    @classmethod
    def _lower(cls, domains: list[str]) -> list[str]:
        return [d.strip().lower().rstrip(".") for d in domains if d.strip()]


class PrivacyConfig(_Strict):
    never_log: list[str] = Field(default_factory=list)
    store_bodies: Flag = False
    private_label: str | None = None
    share_label: str | None = None


def _base_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL, e.g. https://crm.example.com")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    return value.strip().rstrip("/")


class WebConfig(_Strict):
    """``crm-sync serve``: where it listens, its public address, how people sign in."""

    host: Host = "127.0.0.1"
    port: Port = 8400
    base_url: Annotated[str | None, AfterValidator(_base_url)] = None
    """The address people open (behind a proxy, its https:// URL): session cookies are
    marked ``Secure`` when it is https, and Google sign-in returns to it."""
    session_secret: Annotated[str, Field(min_length=32)] | None = None
    """Signs session cookies; give it as ``${VAR}``. Unset: derived from the secret key
    (``[secrets]``), so that every ``serve`` process of the team agrees on it."""
    session_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 12
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    concurrent_requests: Annotated[int, Field(ge=1, le=64)] = 2
    """Requests each worker runs at once; the others wait their turn in arrival order
    (``agent.web.context``): Python runs one thread of a process at a time. A busy team
    with a worker per CPU answers fastest with 1; 2 keeps a lone worker answering while
    one long request runs."""
    google_client_id: str | None = None
    google_client_secret: str | None = None
    """Sign-in with Google (OpenID Connect) when both are set; give the secret as ``${VAR}``."""
    google_issuer: Annotated[str, AfterValidator(_base_url)] = "https://accounts.google.com"
    login_attempts: Annotated[int, Field(ge=1, le=1000)] = 10
    """Failed sign-ins allowed per address and per client within 15 minutes."""
    addon_certs_url: Annotated[str, AfterValidator(_base_url)] = (
        "https://www.googleapis.com/oauth2/v1/certs"
    )
    """Where the Gmail add-on fetches the certificates that Google signs its ID tokens with
    (the PEM form); only a test points it elsewhere."""
    addon_service_account: str | None = None
    """The add-on's system service account (``service-PROJECT_NUMBER@gcp-sa-gsuiteaddons.
    iam.gserviceaccount.com``): the ``email`` every request's ID token must carry. Set it:
    without it any Google-signed ID token for the endpoint's URL is taken as Google's."""
    addon_client_id: str | None = None
    """The add-on's OAuth client id, also accepted as the audience of the user's ID token
    (besides the endpoint's URL)."""
    addon_gmail_api: Annotated[str, AfterValidator(_base_url)] = "https://gmail.googleapis.com"
    """The Gmail API's root, read with the open message's own access token."""


class LimitsConfig(_Strict):
    """The bounds on what a stranger's mail controls that a team may raise (``config.limits``)."""

    occurrences_per_series: Annotated[int, Field(ge=1, le=100_000)] = (
        DEFAULT_LIMITS.occurrences_per_series
    )
    occurrences_per_sync: Annotated[int, Field(ge=1, le=10_000_000)] = (
        DEFAULT_LIMITS.occurrences_per_sync
    )
    series_per_calendar: Annotated[int, Field(ge=1, le=10_000)] = DEFAULT_LIMITS.series_per_calendar
    contact_recipients: Annotated[int, Field(ge=0, le=100_000)] = DEFAULT_LIMITS.contact_recipients

    def to_limits(self) -> Limits:
        return Limits(**self.model_dump())


def _number(value: object) -> object:
    """A TOML number, integer or not; ``true`` or ``"5"`` is an error, not a guess."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number, like 5.0")
    return float(value)


Score = Annotated[float, BeforeValidator(_number), Field(ge=-1000, le=1000, allow_inf_nan=False)]
"""A spam score as SpamAssassin and rspamd write them."""


class FiltersConfig(_Strict):
    """The spam and junk filter (``agent.pipeline.spam``): each signal can be turned off.

    A score at or above ``spam_score_threshold`` skips the message; from
    ``suspect_score_threshold`` up it is logged but makes no contact or company."""

    spam_headers: Flag = True
    spam_score_threshold: Score = 5.0
    suspect_score_threshold: Score = 3.0
    sender_authentication: Flag = True
    junk_folders: Flag = True

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.suspect_score_threshold > self.spam_score_threshold:
            raise ValueError(
                "suspect_score_threshold must not be above spam_score_threshold "
                f"({self.suspect_score_threshold:g} > {self.spam_score_threshold:g})"
            )
        return self


class SecretsConfig(_Strict):
    """Where OAuth tokens live (encrypted) and the key that encrypts them.

    Relative paths are relative to the config file. ``$CRM_SYNC_SECRET_KEY``,
    when set, is used instead of the key file.
    """

    key_file: Path = Path("crm-sync.key")
    token_dir: Path = Path("crm-sync-tokens")


class _ConnectorBase(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    interval: Interval | None = None
    since: Since | None = None
    enabled: Flag = True
    _unresolved: tuple[Unresolved, ...] = PrivateAttr(default=())
    """Values holding a ``${VAR}`` that was not set when the file was read, resolved when
    the connector is built (``config.loader.resolve``) so that only this connector fails."""

    @property
    def unresolved(self) -> tuple[Unresolved, ...]:
        return self._unresolved

    @model_validator(mode="after")
    def _take_unresolved(self, info: ValidationInfo) -> Self:
        self._unresolved = tuple(
            (info.context or {}).get(UNRESOLVED_CONTEXT, {}).get(self.name, ())
        )
        return self


class GmailConnector(_ConnectorBase):
    kind: Literal["gmail"]
    account: Address
    auth: Literal["service_account", "oauth"] = "oauth"
    key_file: Path | None = None
    client_secrets: Path | None = None
    scope: Literal["metadata", "readonly"] = "metadata"
    labels: list[str] = Field(default_factory=lambda: ["INBOX", "SENT"])
    api_endpoint: str | None = None


class GoogleCalendarConnector(_ConnectorBase):
    kind: Literal["google_calendar"]
    account: Address
    auth: Literal["service_account", "oauth"] = "oauth"
    key_file: Path | None = None
    client_secrets: Path | None = None
    calendars: list[str] | Literal["all-owned"] = Field(default_factory=lambda: ["primary"])
    horizon: Horizon = timedelta(days=90)
    api_endpoint: str | None = None


def _https_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or a fragment")
    return value.strip().rstrip("/")


HttpsUrl = Annotated[str, AfterValidator(_https_url)]
TenantId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9.-]+$")]
"""A Microsoft Entra tenant: its id (a GUID) or one of its domains (contoso.onmicrosoft.com)."""


class _MicrosoftBase(_ConnectorBase):
    """A mailbox or calendar in Microsoft 365, read through Microsoft Graph.

    ``auth = "app"``: the app registration's own permission over the whole tenant
    (client credentials; an admin consents once); ``client_secret`` must then be
    given, as ``${VAR}``. ``auth = "delegated"``: one user's grant, obtained with
    ``crm-sync connectors auth NAME`` (device code) and kept in the token store.
    ``authority_host`` and ``graph_endpoint`` change only for a national cloud.
    """

    account: Address
    tenant: TenantId
    client_id: Annotated[str, Field(min_length=1, max_length=256)]
    auth: Literal["app", "delegated"] = "app"
    client_secret: str | None = None
    authority_host: HttpsUrl = "https://login.microsoftonline.com"
    graph_endpoint: HttpsUrl = "https://graph.microsoft.com/v1.0"

    @model_validator(mode="after")
    def _secret_for_app(self) -> Self:
        if self.auth == "app" and not self.client_secret:
            raise ValueError(
                'auth = "app" needs client_secret (as client_secret = "${M365_CLIENT_SECRET}"); '
                'or use auth = "delegated" and `crm-sync connectors auth NAME`'
            )
        return self


class MicrosoftMailConnector(_MicrosoftBase):
    """Outlook mail: Inbox and Sent Items (``default_folders``) and ``folders`` by name."""

    kind: Literal["microsoft_mail"]
    scope: Literal["metadata", "readonly"] = "metadata"
    """``metadata``: headers only (permission Mail.ReadBasic); ``readonly``: the whole
    message (Mail.Read)."""
    folders: list[str] = Field(default_factory=list)
    default_folders: Flag = True


class MicrosoftCalendarConnector(_MicrosoftBase):
    """Outlook calendar: the user's primary calendar, from ``since`` to ``horizon`` ahead."""

    kind: Literal["microsoft_calendar"]
    horizon: Horizon = timedelta(days=90)


class ImapConnector(_ConnectorBase):
    """A mailbox over IMAP. ``auth = "oauth"`` logs in with XOAUTH2 (Gmail, Outlook), with
    the grant ``crm-sync connectors auth NAME`` stored; ``provider`` says whose."""

    kind: Literal["imap"]
    account: Address
    host: Host
    port: Port | None = None
    security: Literal["tls", "starttls", "plain"] = "tls"
    username: str | None = None
    password: str | None = None
    folders: list[str] = Field(default_factory=list)
    default_folders: Flag = True
    idle: Flag = False
    auth: Literal["password", "oauth"] = "password"
    provider: Literal["google", "microsoft"] | None = None
    client_secrets: Path | None = None
    """``provider = "google"``: the OAuth client (Desktop app) JSON."""
    tenant: TenantId | None = None
    client_id: str | None = None
    """``provider = "microsoft"``: the tenant and the app registration (public client)."""
    authority_host: HttpsUrl = "https://login.microsoftonline.com"

    @model_validator(mode="after")
    def _oauth_complete(self) -> Self:
        if self.auth == "password":
            return self
        if self.password is not None:
            raise ValueError('auth = "oauth" takes no password: remove it')
        if self.provider is None:
            raise ValueError('auth = "oauth" needs provider = "google" or "microsoft"')
        if self.provider == "microsoft" and not (self.tenant and self.client_id):
            raise ValueError('provider = "microsoft" needs tenant and client_id')
        return self


class MboxConnector(_ConnectorBase):
    """A local mbox file or Maildir folder, e.g. a Google Takeout export."""

    kind: Literal["mbox"]
    account: Address
    path: Path
    folders: list[str] = Field(default_factory=list)
    """The Maildir folders to read, by name (``INBOX``, ``Sent``, ``Archive/2023``); empty:
    every folder but junk, trash and drafts, which are not conversations to log."""


class IcsConnector(_ConnectorBase):
    kind: Literal["ics"]
    account: Address
    path: Path
    horizon: Horizon = timedelta(days=90)


ConnectorConfig = Annotated[
    GmailConnector
    | GoogleCalendarConnector
    | MicrosoftMailConnector
    | MicrosoftCalendarConnector
    | ImapConnector
    | MboxConnector
    | IcsConnector,
    Field(discriminator="kind"),
]
CONNECTOR_KINDS = (
    "gmail",
    "google_calendar",
    "microsoft_mail",
    "microsoft_calendar",
    "imap",
    "mbox",
    "ics",
)


class Settings(_Strict):
    """The whole config file."""

    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    web: WebConfig = Field(default_factory=WebConfig)
    connectors: list[ConnectorConfig] = Field(default_factory=list)

    @field_validator("connectors")
    @classmethod
    def _unique_names(cls, connectors: list[ConnectorConfig]) -> list[ConnectorConfig]:
        seen: set[str] = set()
        for connector in connectors:
            if connector.name in seen:
                raise ValueError(f"two connectors are named {connector.name!r}")
            seen.add(connector.name)
        return connectors

    def interval_of(self, connector: ConnectorConfig) -> timedelta:
        """The connector's own interval, else the agent's."""
        return connector.interval if connector.interval is not None else self.agent.interval

    def connector(self, name: str) -> ConnectorConfig:
        for connector in self.connectors:
            if connector.name == name:
                return connector
        raise KeyError(name)
