"""From a connector's config to a running connector."""

from __future__ import annotations

from config import Settings
from config.schema import ConnectorConfig
from config.schema import IcsConnector as IcsConfig
from config.schema import MboxConnector as MboxConfig
from connectors.ics import IcsConnector
from connectors.mbox import MboxConnector
from connectors.records import Connector


class NotAvailable(Exception):
    """This kind of connector cannot run in this installation yet."""


def build_connector(config: ConnectorConfig, settings: Settings) -> Connector:
    if isinstance(config, MboxConfig):
        return MboxConnector(config.name, config.path, config.account, since=config.since)
    if isinstance(config, IcsConfig):
        return IcsConnector(
            config.name,
            config.path,
            config.account,
            since=config.since,
            horizon_days=max(1, config.horizon.days),
        )
    raise NotAvailable(f"connector kind {config.kind!r} is not available in this version")


def mailbox_of(config: ConnectorConfig) -> str:
    """The owner's address: it decides direction and who "we" are."""
    return config.account
