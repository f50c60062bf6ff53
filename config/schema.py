"""The config file's schema: one pydantic model per TOML table.

Every model forbids unknown keys, so a typo is an error that names the key
instead of a setting that silently does nothing.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from config.limits import DEFAULT as DEFAULT_LIMITS
from config.limits import Limits

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """``"5m"``, ``"90s"``, ``"1.5h"``, ``"7d"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            amount, unit = match.groups()
            return timedelta(seconds=float(amount) * _UNIT_SECONDS[unit or "s"])
    raise ValueError(f"not a duration: {value!r} (use a number and a unit: 90s, 5m, 2h, 7d)")


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
            return (now or datetime.now(timezone.utc)) - age
    raise ValueError(f"not a date or an age: {value!r} (use 2024-01-01 or 90d)")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Since = Annotated[datetime, BeforeValidator(parse_since)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    url: str = "sqlite:///crm-sync.db"


class AgentConfig(_Strict):
    interval: Duration = timedelta(minutes=5)
    internal_domains: list[str] = Field(default_factory=list)
    auto_create_contacts: Literal["none", "sent", "sent_and_received"] = "sent"
    log_internal: bool = False
    propagate_deletes: bool = False
    visibility: Literal["shared", "metadata", "private"] = "shared"
    free_mail_domains: list[str] = Field(default_factory=list)
    not_free_mail_domains: list[str] = Field(default_factory=list)
    planning_processes: Annotated[int, Field(ge=0, le=64)] | None = None

    @field_validator("internal_domains", "free_mail_domains", "not_free_mail_domains")
    @classmethod
    def _lower(cls, domains: list[str]) -> list[str]:
        return [d.strip().lower().rstrip(".") for d in domains if d.strip()]


class PrivacyConfig(_Strict):
    never_log: list[str] = Field(default_factory=list)
    store_bodies: bool = False
    private_label: str | None = None
    share_label: str | None = None


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


class SecretsConfig(_Strict):
    """Where OAuth tokens live (encrypted) and the key that encrypts them.

    Relative paths are relative to the config file. ``$CRM_SYNC_SECRET_KEY``,
    when set, is used instead of the key file.
    """

    key_file: Path = Path("crm-sync.key")
    token_dir: Path = Path("crm-sync-tokens")


class _ConnectorBase(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    interval: Duration | None = None
    since: Since | None = None
    enabled: bool = True


class GmailConnector(_ConnectorBase):
    kind: Literal["gmail"]
    account: str
    auth: Literal["service_account", "oauth"] = "oauth"
    key_file: Path | None = None
    client_secrets: Path | None = None
    scope: Literal["metadata", "readonly"] = "metadata"
    labels: list[str] = Field(default_factory=lambda: ["INBOX", "SENT"])
    api_endpoint: str | None = None


class GoogleCalendarConnector(_ConnectorBase):
    kind: Literal["google_calendar"]
    account: str
    auth: Literal["service_account", "oauth"] = "oauth"
    key_file: Path | None = None
    client_secrets: Path | None = None
    calendars: list[str] | Literal["all-owned"] = Field(default_factory=lambda: ["primary"])
    horizon: Duration = timedelta(days=90)
    api_endpoint: str | None = None


class ImapConnector(_ConnectorBase):
    kind: Literal["imap"]
    account: str
    host: str
    port: int | None = None
    security: Literal["tls", "starttls", "plain"] = "tls"
    username: str | None = None
    password: str | None = None
    folders: list[str] = Field(default_factory=list)
    default_folders: bool = True
    idle: bool = False


class MboxConnector(_ConnectorBase):
    """A local mbox file or Maildir folder, e.g. a Google Takeout export."""

    kind: Literal["mbox"]
    account: str
    path: Path


class IcsConnector(_ConnectorBase):
    kind: Literal["ics"]
    account: str
    path: Path
    horizon: Duration = timedelta(days=90)


ConnectorConfig = Annotated[
    GmailConnector | GoogleCalendarConnector | ImapConnector | MboxConnector | IcsConnector,
    Field(discriminator="kind"),
]
CONNECTOR_KINDS = ("gmail", "google_calendar", "imap", "mbox", "ics")


class Settings(_Strict):
    """The whole config file."""

    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
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
