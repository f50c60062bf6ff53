"""From a connector's config to a running connector."""

from __future__ import annotations

from config import Settings
from config.schema import ConnectorConfig
from config.schema import MboxConnector as MboxConfig
from connectors.mbox import MboxConnector
from connectors.records import Connector


class NotAvailable(Exception):
    """This kind of connector cannot run in this installation yet."""


def build_connector(config: ConnectorConfig, settings: Settings) -> Connector:
    if isinstance(config, MboxConfig):
        return MboxConnector(config.name, config.path, config.account, since=config.since)
    raise NotAvailable(f"connector kind {config.kind!r} is not available in this version")


def mailbox_of(config: ConnectorConfig) -> str:
    """The owner's address: it decides direction and who "we" are."""
    return config.account
