"""Prometheus metrics: the figures of ``crm-sync status``, per connector, over HTTP.

The figures are not kept in the process: each scrape reads every
connector's ``sync_state`` row through :func:`agent.runtime.health.connector_health`,
the function ``status`` prints. So the metrics and ``status`` always agree,
every agent process sharing a database reports the same figures, and a
restart loses nothing. Counters (items, skips, quarantine) are the totals
the sync keeps on the row; a connector whose row is removed starts again
from zero, which Prometheus reads as a counter reset.

A scrape that cannot reach the database answers ``crm_sync_database_up 0``
and nothing else, rather than failing, so the alert names the cause.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from threading import Thread
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from agent.runtime.health import connector_health
from config import Settings
from storage.sync_state import ConnectorHealth

STATES = (
    "new",
    "never_synced",
    "syncing",
    "ok",
    "lagging",
    "failing",
    "needs_auth",
    "paused",
    "stuck",
    "removed",
)
"""Every state a connector can be in; each gets a 0/1 series, so alerts can match on 0."""


class ConnectorCollector(Collector):
    """Builds the metric families from ``connector_health`` on each scrape."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("crm_sync_database_up", "1 when the database answered the scrape.")
        try:
            with self._sessions() as session:
                rows = connector_health(self._settings, session, now=self._clock())
        except SQLAlchemyError:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *families(rows)]


def families(rows: Iterable[ConnectorHealth]) -> Iterator[Metric]:
    """The metric families for the connectors' health (pure: tested without a server)."""
    labels = ["connector"]
    items = CounterMetricFamily(
        "crm_sync_connector_items", "Items read from the source.", labels=labels
    )
    logged = CounterMetricFamily(
        "crm_sync_connector_logged", "Items logged as interactions.", labels=labels
    )
    skipped = CounterMetricFamily(
        "crm_sync_connector_skipped", "Items not logged, by reason.", labels=[*labels, "reason"]
    )
    quarantined = CounterMetricFamily(
        "crm_sync_connector_quarantined", "Items that could not be processed.", labels=labels
    )
    last_success = GaugeMetricFamily(
        "crm_sync_connector_last_success_timestamp_seconds",
        "When the last sync succeeded (Unix time).",
        labels=labels,
    )
    lag = GaugeMetricFamily(
        "crm_sync_connector_lag_seconds", "Seconds since the last successful sync.", labels=labels
    )
    state = GaugeMetricFamily(
        "crm_sync_connector_state",
        "1 for the connector's current state, 0 for the others.",
        labels=[*labels, "state"],
    )
    quota = GaugeMetricFamily(
        "crm_sync_connector_quota_units_last_run",
        "API quota units spent by the last run, per API method.",
        labels=[*labels, "method"],
    )
    unexplained = GaugeMetricFamily(
        "crm_sync_connector_verify_unexplained",
        "Items the provider holds that the last verification could not account for.",
        labels=labels,
    )
    verified = GaugeMetricFamily(
        "crm_sync_connector_verify_timestamp_seconds",
        "When the connector was last verified (Unix time).",
        labels=labels,
    )
    for row in rows:
        name = row.connector
        items.add_metric([name], float(row.items))
        logged.add_metric([name], float(row.logged))
        for reason, count in sorted(row.skipped.items()):
            skipped.add_metric([name, reason], float(count))
        quarantined.add_metric([name], float(row.quarantined))
        if row.last_success is not None:
            last_success.add_metric([name], row.last_success.timestamp())
        if row.lag is not None:
            lag.add_metric([name], row.lag.total_seconds())
        for known in dict.fromkeys((*STATES, row.state)):
            state.add_metric([name, known], 1.0 if known == row.state else 0.0)
        for method, units in sorted(row.quota_units.items()):
            quota.add_metric([name, method], float(units))
        verify = row.counters.verify
        if verify is not None:
            unexplained.add_metric([name], float(verify.unexplained))
            if verify.checked_at is not None:
                verified.add_metric([name], verify.checked_at.timestamp())
    yield from (items, logged, skipped, quarantined, last_success, lag, state, quota)
    yield from (unexplained, verified)


@dataclass
class MetricsServer:
    """A running metrics endpoint; ``close`` stops it."""

    server: WSGIServer
    thread: Thread

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_metrics_server(
    port: int,
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    addr: str = "127.0.0.1",
) -> MetricsServer:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread (port 0: any free one).

    Loopback by default: the figures name every mailbox, so exposing them
    beyond the host is the admin's choice (``addr="0.0.0.0"``).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConnectorCollector(sessions, settings))
    server, thread = start_http_server(port, addr=addr, registry=registry)
    return MetricsServer(server, thread)
