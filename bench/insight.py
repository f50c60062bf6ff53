"""Insight at scale: relationship figures, reports, export, on a 2,000,000-interaction database.

The team database is ``bench/web_data.py``'s (PostgreSQL; 100,000 contacts,
10,000 companies, 20 salespeople, 2,000,000 interactions at scale 1.0), built
once and reused. Measured, each printed as one JSON line:

* ``figures.full``: every contact's and company's figures recomputed from
  nothing (what the agent's hourly turn does for rows a new day made stale,
  all at once), rows per second;
* ``report.*``: each report as ``crm-sync report`` runs it (``storage.reports``),
  the median of ``--repeat`` runs, figures already current;
* ``export.*``: a full export of contacts, companies, interactions and
  participants, CSV and Parquet, rows per second;
* ``write.*``: what keeping the figures current costs a sync. Batches of
  ``--batch`` new emails between the salespeople and existing contacts (picked
  in proportion to their activity, so the busiest customers come up as often as
  they would) are planned by the real pipeline (MIME parsing included), then
  written twice, with and without the figures, each in a transaction rolled
  back, in alternating order. The cost is the median extra write time per
  batch against the median time of a whole batch without it (plan + write):
  target at most 15% of sync throughput;
* ``page.cooling``: ``GET /reports/cooling`` on ``crm-sync serve`` over loopback,
  p50/p95 with 1 and 16 clients (the load client of ``bench/web.py``).

Absolute times on a shared 2-CPU machine are noise; ratios measured in one
run are what to compare.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import web  # noqa: E402  (bench/ is not a package)
import web_data  # noqa: E402

from agent.pipeline.batch import plan_batch  # noqa: E402
from agent.pipeline.policy import Policy  # noqa: E402
from config import parse_settings  # noqa: E402
from connectors.records import Item, MailMessage  # noqa: E402
from storage import relationships, reports  # noqa: E402
from storage.db import make_engine, session_factory, upgrade  # noqa: E402
from storage.export import export  # noqa: E402
from storage.ingest import write_batch  # noqa: E402
from storage.models import CompanyFigures, ContactFigures, InteractionParticipant  # noqa: E402
from storage.visibility import Viewer  # noqa: E402

WRITE_TARGET = 0.15
emit = web.emit


def _median_seconds(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def full_figures(sessions: Any) -> None:
    with sessions.begin() as session:
        session.query(ContactFigures).delete()
        session.query(CompanyFigures).delete()
    started = time.perf_counter()
    rows = relationships.refresh_stale_in_steps(sessions)
    seconds = time.perf_counter() - started
    emit("figures.full", rows / seconds, "rows/s", rows=rows, seconds=round(seconds, 2))


def report_times(sessions: Any, repeat: int) -> None:
    viewer = Viewer.cli()
    runs: dict[str, Callable[[Any], Any]] = {
        "activity_week": lambda s: reports.activity(s, viewer, period="week", periods=8),
        "cooling_contacts": lambda s: reports.cooling(s, viewer, limit=50),
        "cooling_companies": lambda s: reports.cooling(s, viewer, limit=50, companies=True),
        "coverage": lambda s: reports.coverage(s, viewer),
        "sources": lambda s: reports.sources(s, days=30),
    }
    for name, run in runs.items():
        with sessions() as session:
            seconds, _ = _median_seconds(lambda run=run, session=session: run(session), repeat)
        emit(f"report.{name}", seconds * 1000, "ms median", repeat=repeat)


def export_rates(sessions: Any) -> None:
    for fmt in ("csv", "parquet"):
        with tempfile.TemporaryDirectory(prefix="crm-sync-bench-export-") as out:
            started = time.perf_counter()
            written = export(sessions, Viewer.cli(), fmt, Path(out) / "x")
            seconds = time.perf_counter() - started
            size = sum(f.stat().st_size for f in (Path(out) / "x").iterdir())
        rows = sum(written.values())
        emit(
            f"export.{fmt}",
            rows / seconds,
            "rows/s",
            rows=written,
            seconds=round(seconds, 2),
            mib=round(size / 2**20, 1),
        )


# -- what keeping figures current costs a sync -------------------------------------------------


def _addresses(sessions: Any, count: int, seed: int) -> list[str]:
    """Customer addresses in proportion to their activity: random participant rows."""
    rng = random.Random(seed)
    with sessions() as session:
        top = session.query(InteractionParticipant.id).order_by(InteractionParticipant.id.desc())
        highest = top.limit(1).scalar() or 0
        picked: list[str] = []
        while len(picked) < count:
            ids = [rng.randint(1, highest) for _ in range(500)]
            rows = session.query(InteractionParticipant.email).filter(
                InteractionParticipant.id.in_(ids), InteractionParticipant.contact_id.is_not(None)
            )
            picked += [email for (email,) in rows]
    return picked[:count]


def _mail(n: int, rep: str, customer: str, at: datetime, rng: random.Random) -> MailMessage:
    outbound = rng.random() < 0.5
    message = EmailMessage()
    message["From"], message["To"] = (rep, customer) if outbound else (customer, rep)
    message["Subject"] = f"Re: order {rng.randint(1, 99999)}"
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<bench-insight-{n}-{rng.getrandbits(48):x}@bench.example>"
    message.set_content(
        "Thanks, that works for us.\n\n-- \nPat Doe\nHead of Purchasing\nTel. +44 20 7946 0000\n"
    )
    return MailMessage(f"bench-{n}", rep, bytes(message))


def write_cost(sessions: Any, batches: int, size: int, seed: int) -> None:
    rng = random.Random(seed)
    customers = _addresses(sessions, batches * size, seed)
    settings = parse_settings({"agent": {"internal_domains": [web_data.TEAM_DOMAIN]}}, None)
    now = datetime.now(timezone.utc)
    plan_s: list[float] = []
    with_s: list[float] = []
    without_s: list[float] = []
    for b in range(batches):
        rep = web_data.rep_email(b % web_data.SALESPEOPLE)
        policy = Policy.from_settings(settings, f"rep{b % web_data.SALESPEOPLE}-gmail", rep)
        items: list[Item] = [
            _mail(b * size + i, rep, customers[b * size + i], now - timedelta(minutes=i), rng)
            for i in range(size)
        ]
        started = time.perf_counter()
        plan = plan_batch(items, policy)
        plan_s.append(time.perf_counter() - started)
        for figures in (True, False) if b % 2 else (False, True):
            session = sessions()
            try:
                started = time.perf_counter()
                write_batch(session, plan.write, propagate_deletes=False, figures=figures)
                session.flush()
                (with_s if figures else without_s).append(time.perf_counter() - started)
            finally:
                session.rollback()
                session.close()
    plan_m, with_m, without_m = (statistics.median(v) for v in (plan_s, with_s, without_s))
    batch_without = plan_m + without_m
    cost = (with_m - without_m) / batch_without
    emit(
        "write.figures_cost",
        cost * 100,
        "% of a batch's time",
        target_pct=WRITE_TARGET * 100,
        passed=cost <= WRITE_TARGET,
        batches=batches,
        batch_size=size,
        plan_ms=round(plan_m * 1000, 1),
        write_without_figures_ms=round(without_m * 1000, 1),
        write_with_figures_ms=round(with_m * 1000, 1),
        messages_per_s_without=round(size / batch_without, 1),
        messages_per_s_with=round(size / (plan_m + with_m), 1),
        write_only_ratio=round(with_m / without_m, 3),
    )


def cooling_page(url: str, seconds: float, workers: int) -> None:
    with tempfile.TemporaryDirectory(prefix="crm-sync-bench-insight-") as tmp:
        server = web.Server("postgresql", url, workers, Path(tmp))
        try:
            cookie = web.sign_in(server.port)
            for clients in (1, 16):
                result = web.run_load(
                    server.port, ["/reports/cooling"], {"Cookie": cookie}, clients, 2.0, seconds
                )
                ordered = sorted(result["latencies"])
                errors = sum(v for k, v in result["statuses"].items() if not k.startswith("2"))
                p50, p95 = (web.percentile(ordered, s) * 1000 for s in (0.5, 0.95))
                emit(
                    f"page.cooling.c{clients}",
                    p95,
                    "ms p95",
                    p50_ms=round(p50, 1),
                    rps=round(len(ordered) / result["window"], 1),
                    requests=len(ordered),
                    errors=errors,
                )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="of the database (0.01: quick)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per report")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100, help="messages per batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="of load on the page")
    parser.add_argument("--workers", type=int, default=2, help="passed to serve")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--skip", default="", help="comma-separated: figures,reports,...")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    scale = web_data.Scale.of(args.scale)
    built = web_data.ensure("postgresql", scale)
    web_data.report("postgresql", scale, built)
    engine = make_engine(built["url"])
    upgrade(engine)
    sessions = session_factory(engine)
    try:
        if "figures" not in skip:
            full_figures(sessions)
        else:
            relationships.refresh_stale_in_steps(sessions)
        if "reports" not in skip:
            report_times(sessions, args.repeat)
        if "export" not in skip:
            export_rates(sessions)
        if "write" not in skip:
            write_cost(sessions, args.batches, args.batch, args.seed)
        if "page" not in skip:
            cooling_page(built["url"], args.seconds, args.workers)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
