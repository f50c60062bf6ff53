"""Planning in worker processes: the same plans, in the same order, and nothing left running.

Real worker processes (``spawn``) plan real mail from the fixture corpora;
only the backlog threshold is lowered, so a small test pass uses them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from agent.pipeline import workers
from agent.pipeline.batch import plan_batch
from agent.pipeline.workers import PlannedBatch, Planner, processes_for
from agent.runtime.sync_pass import sync_connector
from connectors.batching import raw_bytes
from connectors.errors import TransientError
from connectors.memory import MemoryConnector
from connectors.records import Batch, MailMessage
from storage.db import make_engine, session_factory, upgrade
from storage.models import Interaction, InteractionParticipant, Quarantine, SyncState
from tests.support.corpus_mail import ME, batches, corpus_mail, corpus_policy
from tests.support.paths import REPO

BROKEN_SERIES_INVITATION = b"""\
From: Ann Lee <ann@acme.example>
To: Alice <alice@northwind.example>
Subject: Invitation: fortnightly sync
Date: Fri, 27 Feb 2026 09:00:00 +0000
Message-ID: <broken-series@acme.example>
MIME-Version: 1.0
Content-Type: text/calendar; method=REQUEST; charset=utf-8

BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//crm-sync tests//EN
METHOD:REQUEST
BEGIN:VEVENT
UID:fortnightly@acme.example
DTSTART:20260302T100000Z
RRULE:FREQ=FORTNIGHTLY
SUMMARY:Fortnightly sync
ORGANIZER:mailto:ann@acme.example
ATTENDEE:mailto:alice@northwind.example
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture(autouse=True)
def no_workers_left() -> Iterator[None]:
    yield
    assert multiprocessing.active_children() == []


def test_workers_make_the_same_plans_in_the_same_order() -> None:
    pol = corpus_policy()
    work = batches(corpus_mail(), 20)

    with Planner(pol, 2, start_after=0) as planner:
        planned = list(planner.plans(work))

    assert planner.planned_by_workers == sum(len(batch.items) for batch in work)
    assert [batch.cursor for batch, _ in planned] == [batch.cursor for batch in work]
    assert [plan for _, plan in planned] == [plan_batch(batch.items, pol) for batch in work]


def test_a_pass_plans_itself_until_it_has_a_backlog() -> None:
    work = batches(corpus_mail(), 20)

    with Planner(corpus_policy(), 2, start_after=50) as planner:
        planned = list(planner.plans(work))

    assert len(planned) == len(work)
    # the first two batches (40 items) were planned here; the third brought the backlog past 50
    assert planner.planned_by_workers == sum(len(batch.items) for batch in work[2:])


def _in_flight(work: list[Batch], planner: Planner) -> tuple[list[Batch], int]:
    """The planned batches, and the most batches fetched and not yet handed out at the
    moment the planner asked its source for another."""
    counts = {"pulled": 0, "out": 0, "most": 0}

    def source() -> Iterator[Batch]:
        for batch in work:
            counts["most"] = max(counts["most"], counts["pulled"] - counts["out"])
            counts["pulled"] += 1
            yield batch

    planned = []
    for batch, _plan in planner.plans(source()):
        counts["out"] += 1
        planned.append(batch)
    return planned, counts["most"]


def test_planned_batches_hold_no_raw_mail() -> None:
    work = batches(corpus_mail(), 20)
    for processes, start_after in ((0, 0), (1, 0)):
        with Planner(corpus_policy(), processes, start_after=start_after) as planner:
            planned = [batch for batch, _ in planner.plans(work)]

        assert [b.cursor for b in planned] == [b.cursor for b in work]
        assert [b.raw_bytes for b in planned] == [raw_bytes(b.items) for b in work]
        assert all(item.raw == b"" for b in planned for item in b.items)
        assert [[i.source_id for i in b.items] for b in planned] == [
            [i.source_id for i in b.items] for b in work
        ]
        assert all(len(b.parts) == len(b.items) for b in planned)
        assert all(isinstance(b, PlannedBatch) for b in planned)


def test_batches_in_flight_are_bounded_by_count() -> None:
    work = batches(corpus_mail(), 5)

    with Planner(corpus_policy(), 2, start_after=0) as planner:
        planned, most = _in_flight(work, planner)

    assert len(planned) == len(work)
    assert 1 <= most <= 2 * 2
    assert planner.in_flight_bytes == 0


def test_batches_in_flight_are_bounded_by_their_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches bigger than the bytes a worker may have waiting go one at a time: the
    newest is handed over, and the source is asked for more only once the one before
    it has been planned."""
    work = batches(corpus_mail(), 10)
    monkeypatch.setattr(workers, "IN_FLIGHT_BYTES_PER_PROCESS", 1)

    with Planner(corpus_policy(), 2, start_after=0) as planner:
        planned, most = _in_flight(work, planner)

    assert planner.planned_by_workers == sum(len(b.items) for b in work)
    assert [b.cursor for b in planned] == [b.cursor for b in work]
    assert most == 1
    assert planner.in_flight_bytes == 0


def test_a_small_pass_starts_no_process() -> None:
    work = batches(corpus_mail()[:30], 10)

    with Planner(corpus_policy(), 2) as planner:
        for _ in planner.plans(work):
            assert multiprocessing.active_children() == []

    assert planner.planned_by_workers == 0


def test_leaving_a_pass_early_stops_the_workers() -> None:
    with Planner(corpus_policy(), 2, start_after=0) as planner:
        for _batch, plan in planner.plans(batches(corpus_mail(), 10)):
            assert plan.write.interactions or plan.skipped or plan.write.quarantined
            break
        assert multiprocessing.active_children() != []
    # the fixture checks that none is left


def test_a_worker_log_record_goes_through_this_process_handlers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    invitation = MailMessage("invite", ME, BROKEN_SERIES_INVITATION.replace(b"\n", b"\r\n"))
    work = batches([*corpus_mail()[:10], invitation], 5)

    with caplog.at_level(logging.WARNING), Planner(corpus_policy(), 1, start_after=0) as planner:
        list(planner.plans(work))

    assert planner.planned_by_workers == 11
    (record,) = [r for r in caplog.records if "fortnightly@acme.example" in r.getMessage()]
    assert record.name == "connectors.ical.recurrence"
    assert record.process != multiprocessing.current_process().pid


def test_a_sync_planned_by_workers_writes_what_one_process_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "START_AFTER_ITEMS", 0)
    contents = []
    for processes in (0, 2):
        engine = make_engine(f"sqlite:///{tmp_path / f'p{processes}.db'}")
        upgrade(engine)
        result = sync_connector(
            session_factory(engine),
            MemoryConnector("corpus", corpus_mail(), batch_size=15),
            corpus_policy(),
            kind="imap",
            processes=processes,
        )
        assert result.status == "ok"
        contents.append(_content(engine))
        engine.dispose()

    alone, with_workers = contents
    assert alone == with_workers
    assert alone["interactions"] and alone["quarantined"]


def _content(engine: Engine) -> dict[str, set[tuple[Any, ...]]]:
    with session_factory(engine)() as session:
        return {
            "interactions": set(
                session.execute(
                    select(
                        Interaction.dedupe_key,
                        Interaction.kind,
                        Interaction.occurred_at,
                        Interaction.subject,
                        Interaction.summary,
                    )
                ).all()
            ),
            "participants": set(
                session.execute(
                    select(InteractionParticipant.email, InteractionParticipant.role)
                ).all()
            ),
            "quarantined": set(session.execute(select(Quarantine.source_id)).all()),
        }


@pytest.mark.parametrize(
    ("setting", "cpus", "expected"),
    [(None, 2, 1), (None, 1, 1), (None, 16, 8), (0, 4, 0), (3, 2, 3)],
)
def test_processes_for_the_setting(
    setting: int | None, cpus: int, expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers.os, "cpu_count", lambda: cpus)
    assert processes_for(setting) == expected


KILLED_PARENT = """
import multiprocessing, sys, time
from agent.pipeline.workers import Planner
from tests.support.corpus_mail import batches, corpus_mail, corpus_policy

if __name__ == "__main__":
    planner = Planner(corpus_policy(), 2, start_after=0)
    for _ in planner.plans(batches(corpus_mail()[:40], 10)):
        pass
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    time.sleep(60)
"""


def test_workers_of_a_killed_sync_exit_on_their_own(tmp_path: Path) -> None:
    script = tmp_path / "killed_parent.py"
    script.write_text(KILLED_PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    workers = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(workers) == 2

    parent.send_signal(signal.SIGKILL)
    parent.wait()

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_a_source_failing_mid_pass_keeps_what_it_delivered_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workers, "START_AFTER_ITEMS", 0)
    engine = make_engine(f"sqlite:///{tmp_path / 'fail.db'}")
    upgrade(engine)
    connector = MemoryConnector(
        "corpus", corpus_mail(), batch_size=10, fail_at={60: TransientError("503")}
    )

    result = sync_connector(
        session_factory(engine), connector, corpus_policy(), kind="imap", processes=2
    )

    assert result.status == "failing" and result.items == 60
    with session_factory(engine)() as session:
        state = session.get(SyncState, "corpus")
        assert state is not None and state.cursor == {"v": 1, "position": 60}
    engine.dispose()
