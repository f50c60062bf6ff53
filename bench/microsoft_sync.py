"""First and idle syncs of a big Outlook mailbox through the fake Graph server.

The fake server (tests/support/fake_graph/) gets N generated small messages
(default 10,000; four in five in the Inbox, the rest in Sent Items). The
Outlook mail connector then runs a full first sync over loopback HTTPS with
MSAL and the connector as shipped, in both modes: ``metadata`` (delta pages
carry the headers) and ``readonly`` (delta pages carry ids, the MIME comes in
JSON batches of 20), first cleanly, then with a share of Graph calls and
batch parts answered 429/503 with ``Retry-After: 0``. Then an idle
incremental sync, which must be one request per folder; its call log is printed.

Figures per scenario: HTTP round trips, messages per round trip, requests
Graph meters (batch parts counted one by one), injected errors, retries,
time and messages per second. Every message must arrive exactly once.

Prints one JSON line per figure: ``{"bench": ..., "value": ..., "unit": ...}``.
Run ``python bench/microsoft_sync.py [--messages N] [--fault-rate R]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.microsoft.auth import AppTokens, Tenant
from connectors.microsoft.graph import GraphClient
from connectors.microsoft.mail import MicrosoftMailConnector, Mode
from connectors.records import Cursor, MailMessage
from connectors.retry import RetryPolicy
from tests.support.fake_graph import FakeGraph

ACCOUNT = "bench@contoso.com"
APP, SECRET = "22222222-aaaa-bbbb-cccc-000000000001", "bench-secret"
BACKOFF = RetryPolicy(max_retries=100_000, max_seconds=600.0, base=0.01, cap=0.5)


def _message(n: int, when: datetime) -> bytes:
    return (
        f"From: Contact {n % 700} <contact{n % 700}@customer{n % 90}.test>\r\n"
        f"To: Bench <{ACCOUNT}>\r\n"
        f"Subject: Re: quote {n}\r\n"
        f"Message-ID: <bench-{n}@customer{n % 90}.test>\r\n"
        f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Thanks for the call. Quote {n} attached as discussed.\r\n"
    ).encode()


def _scenario(
    messages: int, mode: Mode, fault_rate: float, seed: int
) -> tuple[dict[str, tuple[float, str]], list[str]]:
    with FakeGraph(seed=seed) as fake:
        os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_file
        permission = "Mail.ReadBasic.All" if mode == "metadata" else "Mail.Read"
        fake.add_app(APP, secret=SECRET, app_permissions={permission})
        mailbox = fake.add_user(ACCOUNT, "Bench")
        start = datetime(2024, 1, 1, tzinfo=UTC)
        expected = []
        for n in range(messages):
            folder = "sentitems" if n % 5 == 4 else "inbox"
            when = start + timedelta(minutes=n)
            found = mailbox.deliver(_message(n, when), folder, received=when)
            expected.append(f"{folder}/{found.immutable_id}")
        tokens = AppTokens(Tenant(fake.tenant_id, APP, fake.url), SECRET, hint="")
        client = GraphClient(tokens, fake.graph_url, retry_policy=BACKOFF)
        connector = MicrosoftMailConnector("bench-outlook", ACCOUNT, client, mode=mode)
        fake.throttle(fault_rate, retry_after=0, seed=seed)
        fake.reset_log()
        began = time.perf_counter()
        delivered: Counter[str] = Counter()
        cursor: Cursor | None = None
        for batch in connector.fetch(None):
            delivered.update(i.source_id for i in batch.items if isinstance(i, MailMessage))
            cursor = batch.cursor
        elapsed = time.perf_counter() - began
        if delivered != Counter(expected):
            missing = len(set(expected) - set(delivered))
            twice = sum(1 for n in delivered.values() if n > 1)
            raise SystemExit(f"lost {missing} and duplicated {twice} messages")
        trips, metered = client.round_trips, sum(connector.units_spent().values())
        injected = len(fake.calls(status=429)) + len(fake.calls(status=503))
        retries = connector.retries
        fake.throttle(0.0)
        fake.reset_log()
        idle = list(connector.fetch(cursor))
        idle_log = [f"{c.http_method} {c.path} -> {c.status}" for c in fake.calls()]
        if any(batch.items for batch in idle):
            raise SystemExit("an idle incremental sync yielded items")
        figures = {
            "messages": (messages, "messages"),
            "http_round_trips": (trips, "requests"),
            "messages_per_round_trip": (round(messages / trips, 1), "messages/request"),
            "graph_requests_metered": (metered, "requests"),
            "injected_errors": (injected, "answers"),
            "retries": (retries, "requests"),
            "duration": (round(elapsed, 3), "s"),
            "messages_per_second": (round(messages / elapsed, 1), "messages/s"),
            "idle_incremental_round_trips": (client.round_trips, "requests"),
            "folders": (len(connector.folders()), "folders"),
        }
        return figures, idle_log


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    for mode in ("metadata", "readonly"):
        rates = [0.0] + ([args.fault_rate] if args.fault_rate > 0 else [])
        for rate in rates:
            name = f"outlook_first_sync_{mode}" + (
                f"_{round(rate * 100)}pct_faults" if rate else ""
            )
            figures, idle_log = _scenario(args.messages, mode, rate, args.seed)  # type: ignore[arg-type]
            for figure, (value, unit) in figures.items():
                print(json.dumps({"bench": f"{name}.{figure}", "value": value, "unit": unit}))
            print(
                json.dumps({"bench": f"{name}.idle_call_log", "value": idle_log, "unit": "calls"})
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
