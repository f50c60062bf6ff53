"""The crash test: SIGKILL the agent at a random moment of a first sync, restart it.

A 2,000-message mbox (small messages, ten of them malformed: no Date) is
synced by ``crm-sync run --once`` into a fresh SQLite database 30 times. Each
time the agent is killed with SIGKILL at a random moment of the sync, then
started again and left to finish. Every run must end with exactly the
database an uninterrupted sync builds: each message logged once (the same
interactions, participants, sources, contacts and audit entries, and the
counters, which commit with each batch, counting every message once), and
in quarantine only the malformed messages.

Runs go two at a time (each on its own database), to stay well inside CI's
time on two cores.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from connectors.mbox import MboxConnector
from tests.support.cli import run_cli, start_cli
from tests.support.mailbuilder import message, write_mbox

RUNS = 30
LANES = 2
MESSAGES = 2000
MALFORMED_EVERY = 200
OWNER = "priya@northwind.example"
SEED = 20260302

CONFIG = f"""
[agent]
interval = "5m"
internal_domains = ["northwind.example"]

[[connectors]]
name = "priya"
kind = "mbox"
account = "{OWNER}"
path = "priya.mbox"
"""


def _mailbox() -> Iterator[bytes]:
    base = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    for i in range(MESSAGES):
        if i % MALFORMED_EVERY == MALFORMED_EVERY // 2:
            yield (
                f"Message-ID: <scan-{i}@printer.example>\nSubject: Scanned document\n"
                f"To: {OWNER}\n\nScanned by NW-PRINT-02.\n"
            ).encode()
            continue
        customer = f"Customer {i % 150} <buyer{i % 150}@company{i % 40}.example>"
        sent = i % 3 == 0
        yield message(
            sender=f"Priya Raman <{OWNER}>" if sent else customer,
            to=[customer if sent else OWNER],
            cc=[f"ops{i % 7}@company{i % 40}.example"] if i % 5 == 0 else [],
            subject=f"Order {i}",
            body=f"Hello,\n\nabout order {i}.\n",
            date=base + timedelta(minutes=7 * i),
            message_id=f"<order-{i}@mail.example>",
        )


@dataclass(frozen=True)
class Corpus:
    folder: Path
    template: Path
    malformed: frozenset[str]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    folder = tmp_path_factory.mktemp("crash")
    mbox = write_mbox(folder / "priya.mbox", _mailbox())
    malformed = frozenset(
        item.source_id
        for batch in MboxConnector("priya", mbox, OWNER).fetch(None)
        for item in batch.items
        if b"\nDate:" not in b"\n" + getattr(item, "raw", b"")
    )
    assert len(malformed) == MESSAGES // MALFORMED_EVERY
    (folder / "crm-sync.toml").write_text(CONFIG)
    template = folder / "template.db"
    upgraded = run_cli("db", "upgrade", cwd=folder, env=_env(folder, template))
    assert upgraded.returncode == 0, upgraded.stderr
    return Corpus(folder, template, malformed)


def _env(folder: Path, database: Path) -> dict[str, str]:
    return {
        "CRM_SYNC_CONFIG": str(folder / "crm-sync.toml"),
        "CRM_SYNC_DATABASE_URL": f"sqlite:///{database}",
    }


def snapshot(database: Path) -> dict[str, Any]:
    """Everything a sync writes, in a form two databases can be compared by."""
    with sqlite3.connect(database) as db:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return sorted(db.execute(sql).fetchall())

        counters = db.execute("SELECT counters FROM sync_state WHERE connector = 'priya'")
        return {
            "interactions": rows(
                "SELECT dedupe_key, kind, direction, occurred_at, subject FROM interactions"
            ),
            "participants": rows(
                "SELECT i.dedupe_key, p.email, p.role, p.contact_id IS NOT NULL "
                "FROM interaction_participants p JOIN interactions i ON i.id = p.interaction_id"
            ),
            "sources": rows("SELECT connector, source_id FROM interaction_sources"),
            "quarantine": rows("SELECT connector, source_id, reason FROM quarantine"),
            "contacts": rows("SELECT email FROM contact_emails"),
            "observations": rows(
                "SELECT e.email, o.field, o.value, o.source FROM observations o "
                "JOIN contact_emails e ON e.contact_id = o.contact_id"
            ),
            "audit": sorted(Counter(db.execute("SELECT entity, action FROM audit_log")).items()),
            "counters": _counted(counters.fetchone()),
        }


def _counted(row: tuple[str] | None) -> dict[str, Any]:
    counters = json.loads(row[0]) if row else {}
    return {k: counters.get(k) for k in ("items", "logged", "quarantined", "skipped")}


def _progress(database: Path) -> tuple[str | None, int]:
    """The connector's status and committed mbox offset, read as another process would."""
    try:
        with sqlite3.connect(database, timeout=5) as db:
            row = db.execute(
                "SELECT status, json_extract(cursor, '$.offset') FROM sync_state "
                "WHERE connector = 'priya'"
            ).fetchone()
    except sqlite3.OperationalError:
        return None, 0
    return (row[0], row[1] or 0) if row else (None, 0)


def duplicates(run: dict[str, Any], reference: dict[str, Any]) -> int:
    """Rows and counts beyond the reference's: what a message written twice would add."""
    extra = sum(
        max(0, len(run[key]) - len(reference[key]))
        for key in ("interactions", "participants", "sources", "quarantine", "contacts")
    )
    audit = dict(run["audit"])
    extra += sum(max(0, audit.get(k, 0) - n) for k, n in reference["audit"])
    for key in ("items", "logged", "quarantined"):
        extra += max(0, (run["counters"][key] or 0) - (reference["counters"][key] or 0))
    return extra


@dataclass(frozen=True)
class Outcome:
    index: int
    killed_after: float
    committed_at_kill: int
    status_at_kill: str | None
    finished_before_kill: bool
    restart_seconds: float
    matches: bool
    duplicates: int
    problem: str


def crash_run(corpus: Corpus, index: int, window: float, reference: dict[str, Any]) -> Outcome:
    folder = corpus.folder / f"run-{index:02d}"
    folder.mkdir()
    database = folder / "crm.db"
    shutil.copy(corpus.template, database)
    env = _env(corpus.folder, database)
    rng = random.Random(SEED + index)
    agent = start_cli("run", "--once", cwd=corpus.folder, output=folder / "agent.log", env=env)
    deadline = time.monotonic() + 60
    while _progress(database)[0] not in ("syncing", "ok") and agent.poll() is None:
        assert time.monotonic() < deadline, "the sync never started"
        time.sleep(0.02)
    delay = rng.uniform(0, window)
    time.sleep(delay)
    finished = agent.poll() is not None
    if not finished:
        agent.send_signal(signal.SIGKILL)
    agent.wait(timeout=30)
    status, committed = _progress(database)
    started = time.monotonic()
    again = run_cli("run", "--once", cwd=corpus.folder, env=env)
    restart = time.monotonic() - started
    problem = "" if again.returncode == 0 else f"restart exited {again.returncode}: {again.stderr}"
    state = snapshot(database)
    return Outcome(
        index=index,
        killed_after=delay,
        committed_at_kill=committed,
        status_at_kill=status,
        finished_before_kill=finished,
        restart_seconds=restart,
        matches=state == reference,
        duplicates=duplicates(state, reference),
        problem=problem or ("" if state == reference else _difference(state, reference)),
    )


def _difference(state: dict[str, Any], reference: dict[str, Any]) -> str:
    return "; ".join(
        f"{key}: {len(state[key])} vs {len(reference[key])}"
        if isinstance(state[key], list)
        else f"{key}: {state[key]} vs {reference[key]}"
        for key in reference
        if state[key] != reference[key]
    )


def test_sigkill_at_any_moment_loses_and_duplicates_nothing(corpus: Corpus) -> None:
    started = time.monotonic()
    reference_db = corpus.folder / "reference.db"
    shutil.copy(corpus.template, reference_db)
    journal = corpus.folder / "reference.jsonl"
    whole = run_cli(
        "run",
        "--once",
        "--journal",
        str(journal),
        cwd=corpus.folder,
        env=_env(corpus.folder, reference_db),
    )
    assert whole.returncode == 0, whole.stderr
    run = json.loads(journal.read_text().splitlines()[-1])
    uninterrupted = (
        datetime.fromisoformat(run["ended_at"]) - datetime.fromisoformat(run["started_at"])
    ).total_seconds()
    reference = snapshot(reference_db)
    assert reference["counters"]["items"] == MESSAGES
    assert {source for _, source, _ in reference["quarantine"]} == corpus.malformed
    assert len(reference["interactions"]) == MESSAGES - len(corpus.malformed)

    with ThreadPoolExecutor(LANES) as lanes:
        outcomes = list(
            lanes.map(lambda i: crash_run(corpus, i, uninterrupted, reference), range(RUNS))
        )

    size = (corpus.folder / "priya.mbox").stat().st_size
    mid_sync = [o for o in outcomes if not o.finished_before_kill and o.committed_at_kill > 0]
    before_commit = [o for o in outcomes if not o.finished_before_kill and not o.committed_at_kill]
    print(
        f"\ncrash test: {RUNS} runs of a {MESSAGES}-message first sync "
        f"(the sync alone, uninterrupted: {uninterrupted:.1f} s); "
        f"kills {sum(not o.finished_before_kill for o in outcomes)} "
        f"({len(mid_sync)} after some batches committed, {len(before_commit)} before the first), "
        f"finished before the kill {sum(o.finished_before_kill for o in outcomes)}; "
        f"resumes from a committed cursor {len(mid_sync)} "
        f"(at {', '.join(f'{o.committed_at_kill * 100 // size}%' for o in mid_sync)}); "
        f"duplicates found {sum(o.duplicates for o in outcomes)}; "
        f"mean restart {sum(o.restart_seconds for o in outcomes) / RUNS:.1f} s; "
        f"total {time.monotonic() - started:.0f} s"
    )
    assert [o.problem for o in outcomes if o.problem] == []
    assert all(o.matches for o in outcomes)
    assert sum(o.duplicates for o in outcomes) == 0
    assert len(mid_sync) >= RUNS // 2, "most kills should land after a batch committed"
