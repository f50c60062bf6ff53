"""Several agent processes writing one PostgreSQL database at once.

The same generated mail (one company's customer threads, 200 contacts) is
dealt to 1, 2, 4 and 8 processes, each running the real sync pass
(``agent.runtime.sync_pass.sync_connector``) as its own connector; a quarter of the
messages go to two processes, so they also race on the same interactions,
contacts and companies. Each configuration runs on a fresh database and is
checked after the run: exactly one interaction per distinct message.

Prints one JSON line per configuration: interactions per second (distinct
interactions written / wall time from a common start to the last process
done), and the speed-up over one process.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_URL = os.environ.get(
    "CRM_SYNC_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
OWNER = "priya.raman@northwind.example"


def _deal(messages: list[bytes], processes: int) -> list[list[tuple[str, bytes]]]:
    """Message i goes to process i % P; every fourth also to the next process."""
    shares: list[list[tuple[str, bytes]]] = [[] for _ in range(processes)]
    for index, raw in enumerate(messages):
        shares[index % processes].append((f"m{index}", raw))
        if processes > 1 and index % 4 == 0:
            shares[(index + 1) % processes].append((f"m{index}", raw))
    return shares


def _agent(url: str, number: int, share: list[tuple[str, bytes]], start: Any, out: Any) -> None:
    from agent.pipeline.policy import Policy
    from agent.runtime.sync_pass import sync_connector
    from config import parse_settings
    from connectors.memory import MemoryConnector
    from connectors.records import MailMessage
    from storage.db import make_engine, session_factory

    engine = make_engine(url)
    name = f"agent-{number}"
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    connector = MemoryConnector(
        name, [MailMessage(sid, OWNER, raw) for sid, raw in share], batch_size=200
    )
    policy = Policy.from_settings(settings, name, OWNER)
    start.wait()
    result = sync_connector(session_factory(engine), connector, policy, kind="bench")
    out.put((number, result.status, result.error, time.perf_counter()))
    engine.dispose()


def _run(messages: list[bytes], processes: int) -> dict[str, Any]:
    from sqlalchemy import text

    from storage.db import make_engine, upgrade

    admin = make_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"crm_sync_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        context = mp.get_context("spawn")
        start, out = context.Event(), context.Queue()
        workers = [
            context.Process(target=_agent, args=(url, n, share, start, out))
            for n, share in enumerate(_deal(messages, processes))
        ]
        for worker in workers:
            worker.start()
        time.sleep(3.0)  # let every process import and connect before the clock starts
        began = time.perf_counter()
        start.set()
        finished = [out.get(timeout=600) for _ in workers]
        for worker in workers:
            worker.join()
        failed = [f for f in finished if f[1] != "ok"]
        if failed:
            raise SystemExit(f"agents failed: {failed}")
        wall = max(f[3] for f in finished) - began
        with engine.connect() as connection:
            interactions = int(
                connection.execute(text("SELECT count(*) FROM interactions")).scalar() or 0
            )
            keys = int(
                connection.execute(
                    text("SELECT count(DISTINCT dedupe_key) FROM interactions")
                ).scalar()
                or 0
            )
        engine.dispose()
        return {"seconds": wall, "interactions": interactions, "distinct": keys}
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=4_000)
    parser.add_argument("--processes", default="1,2,4,8")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    from tests.support.mailgen.mailboxes import iter_messages

    messages = list(
        iter_messages(args.seed, args.messages, 200, mailbox=OWNER, attachment_bytes=(200, 2_000))
    )
    baseline: float | None = None
    for processes in (int(p) for p in args.processes.split(",")):
        figures = _run(messages, processes)
        if figures["interactions"] != figures["distinct"]:
            raise SystemExit(f"duplicate interactions with {processes} processes: {figures}")
        rate = figures["interactions"] / figures["seconds"]
        baseline = baseline or rate
        print(
            json.dumps(
                {
                    "bench": f"concurrent_agents.p{processes}",
                    "value": round(rate, 1),
                    "unit": "interactions/s",
                    "processes": processes,
                    "interactions": figures["interactions"],
                    "seconds": round(figures["seconds"], 2),
                    "speedup": round(rate / baseline, 2),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
