"""First sync of a big Gmail mailbox through the fake Google server, one run per scenario.

The fake server (tests/support/fake_google/) gets N generated small messages
(default 10,000; four in five in INBOX, the rest in SENT). The Gmail connector
then runs a full first sync over loopback HTTP with the real client library,
in ``metadata`` mode (the default scope), first cleanly, then with a share of
API calls and batch parts answered 429/500/503 by the server. Figures per
scenario: HTTP round trips, API calls (batch parts counted one by one), quota
units per message (target at most 5.2: ``messages.get`` costs 5, listing adds
5 per page of 500), messages per second, and the retries taken.

Quota pacing is off (at Gmail's 250 units/s per user a 10,000-message sync is
quota-bound at about 200 s whatever the client does; the figure
``quota_bound_seconds`` states that floor). Backoff sleeps for real, on a
curve scaled down a hundredfold (10 ms doubling to 0.5 s) so the faulty run
stays short; the time slept is printed. Every message must arrive exactly once.

Prints one JSON line per figure: ``{"bench": ..., "value": ..., "unit": ...}``.
Run ``python bench/gmail_sync.py [--messages N] [--fault-rate R]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.google.auth import gmail_scopes, user_credentials
from connectors.google.gmail import GmailConnector
from connectors.google.quota import DEFAULT_RATE
from connectors.records import MailMessage
from connectors.retry import RetryPolicy
from tests.support.fake_google.server import FakeGoogle, FaultPlan

ACCOUNT = "bench@example.com"
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


def _scenario(messages: int, fault_rate: float, seed: int) -> dict[str, tuple[float, str]]:
    with FakeGoogle(seed=seed) as fake:
        mailbox = fake.add_mailbox(ACCOUNT)
        start = datetime(2024, 1, 1, tzinfo=UTC)
        expected = []
        for n in range(messages):
            labels = ["SENT"] if n % 5 == 4 else ["INBOX", "UNREAD"]
            when = start + timedelta(minutes=n)
            expected.append(mailbox.add_message(_message(n, when), labels, internal_date=when))
        scopes = gmail_scopes("metadata")
        record = {
            "refresh_token": fake.issue_refresh_token(ACCOUNT, scopes),
            "client_id": "test-client",
            "client_secret": "test-secret",
        }
        credentials = user_credentials(record, scopes, token_uri=fake.token_uri)
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            time.sleep(seconds)

        connector = GmailConnector(
            "bench-gmail",
            ACCOUNT,
            credentials,
            api_endpoint=fake.url,
            quota_rate=None,
            retry_policy=BACKOFF,
            sleep=sleep,
        )
        fake.faults = FaultPlan(rate=fault_rate, statuses=(429, 500, 503), seed=seed)
        began = time.perf_counter()
        delivered: Counter[str] = Counter()
        for batch in connector.fetch(None):
            delivered.update(i.source_id for i in batch.items if isinstance(i, MailMessage))
        elapsed = time.perf_counter() - began
        if delivered != Counter(expected):
            missing = len(set(expected) - set(delivered))
            twice = sum(1 for n in delivered.values() if n > 1)
            raise SystemExit(f"lost {missing} and duplicated {twice} messages")
        units = sum(connector.units_spent().values())
        return {
            "messages": (messages, "messages"),
            "http_round_trips": (fake.round_trips, "requests"),
            "api_calls": (len(fake.api_calls()), "calls"),
            "injected_errors": (fake.faults.injected, "answers"),
            "retries": (connector.retries, "backoffs"),
            "backoff_slept": (round(sum(slept), 3), "s"),
            "quota_units": (units, "units"),
            "quota_units_per_message": (round(units / messages, 4), "units/message"),
            "quota_bound_seconds": (round(units / DEFAULT_RATE, 1), "s"),
            "duration": (round(elapsed, 3), "s"),
            "messages_per_second": (round(messages / elapsed, 1), "messages/s"),
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    scenarios = [("gmail_first_sync", 0.0)]
    if args.fault_rate > 0:
        scenarios.append(
            (f"gmail_first_sync_{round(args.fault_rate * 100)}pct_faults", args.fault_rate)
        )
    for name, rate in scenarios:
        for figure, (value, unit) in _scenario(args.messages, rate, args.seed).items():
            print(json.dumps({"bench": f"{name}.{figure}", "value": value, "unit": unit}))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
