"""Planning batches in worker processes while the syncing process fetches and writes.

Parsing and planning mail (``agent.pipeline.batch.plan_batch``) is pure CPU work
and most of what a first sync of a big mailbox costs; fetching is I/O and
writing must stay in one process, in order. So once a pass has a backlog,
its batches are planned by a pool of worker processes: the syncing process
hands a batch over, goes on fetching the next ones, and writes the plans in
the order the batches came, each with its own cursor. Nothing about the
result changes: ``plan_batch`` is pure, and the plans are the same wherever
they are made.

Raw mail is held no longer than planning needs it: a planned batch reaches
the writer with its messages emptied of their bytes (the plan holds what is
written, and each item's own plan, should the database refuse the batch and
it be written in parts), and the batches handed to workers and not yet
planned are bounded by count and by their bytes.

A pass with little to do (an incremental sync, a small mailbox) never starts
the pool: starting worker processes costs about what planning a thousand
messages does. Workers are started with ``spawn``, which is safe in a
process that runs threads (the scheduler, IDLE watchers). Their log records
are handed to the syncing process and go through its handlers, so the
privacy filter and the log format apply to them as to any other record.
"""

from __future__ import annotations

import logging
import logging.handlers
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from types import TracebackType

from agent.pipeline.batch import plan_batch
from agent.pipeline.planned import BatchPlan
from agent.pipeline.policy import Policy
from connectors.batching import raw_bytes
from connectors.records import Batch, Item, MailMessage

START_AFTER_ITEMS = 1000
"""Items a pass plans itself before it starts worker processes for the rest."""

MAX_PROCESSES = 8

IN_FLIGHT_BYTES_PER_PROCESS = 32 * 1024 * 1024
"""Raw mail handed to workers and not yet planned, per worker: past it the syncing
process waits for the oldest plan before it fetches more. Batches of small mail
stay bounded by count instead (two per worker)."""


@dataclass(frozen=True)
class PlannedBatch(Batch):
    """A batch once planned: its items without their raw bytes, and each item's own plan.

    Writing needs only the batch's plan; the items' plans, in the items' order,
    let a batch the database refuses be written in parts without its mail.
    """

    parts: Sequence[BatchPlan] = ()
    raw_bytes: int = 0
    """The raw mail the batch held before it was planned."""


def plan_items(items: list[Item], policy: Policy) -> list[BatchPlan]:
    """Each item's plan: what ``plan_batch`` makes of the items, item by item.

    Each message in ``items`` is emptied of its raw bytes once planned, so a
    batch's mail is let go message by message, an attachment as soon as its
    message's plan is made, rather than all of it once the batch is done.
    """
    parts = []
    for index, item in enumerate(items):
        parts.append(plan_batch([item], policy))
        items[index] = _hollow(item)
    return parts


def merge_plans(parts: Iterable[BatchPlan]) -> BatchPlan:
    """One plan of many, in order: the plan of the items the parts were made of."""
    total = BatchPlan()
    for part in parts:
        for name in (f.name for f in fields(total.write)):
            getattr(total.write, name).extend(getattr(part.write, name))
        total.skipped.update(part.skipped)
        total.logged += part.logged
        total.limited += part.limited
    return total


def _hollow(item: Item) -> Item:
    return replace(item, raw=b"") if isinstance(item, MailMessage) else item


def _planned(batch: Batch, parts: list[BatchPlan], size: int) -> tuple[PlannedBatch, BatchPlan]:
    hollow = PlannedBatch([_hollow(item) for item in batch.items], batch.cursor, parts, size)
    return hollow, merge_plans(parts)


def processes_for(setting: int | None) -> int:
    """Worker processes for the ``agent.planning_processes`` setting.

    None means one per CPU but one: the syncing process keeps a CPU busy
    itself, fetching and writing (on two CPUs, one worker beats two).
    """
    if setting is None:
        return max(1, min((os.cpu_count() or 1) - 1, MAX_PROCESSES))
    return max(setting, 0)


class Planner:
    """Plans one pass's batches, in order; in worker processes once the pass has a backlog.

    Use as a context manager: leaving it stops the workers, also when the
    pass ends early (a lost lease, a stop request, an error), dropping plans
    that were never written; the next pass fetches those batches again.
    """

    def __init__(self, policy: Policy, processes: int, *, start_after: int | None = None) -> None:
        self.policy = policy
        self.processes = processes
        self.start_after = START_AFTER_ITEMS if start_after is None else start_after
        self.planned_by_workers = 0
        """Items whose plans came from a worker process (for tests and figures)."""
        self.in_flight_bytes = 0
        """Raw bytes of the batches handed to workers and not yet planned."""
        self._pool: ProcessPoolExecutor | None = None
        self._listener: logging.handlers.QueueListener | None = None

    def __enter__(self) -> Planner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def plans(self, batches: Iterable[Batch]) -> Iterator[tuple[PlannedBatch, BatchPlan]]:
        """Each batch, emptied of its raw mail, with its plan, in the order the batches came.

        With workers, up to two batches per worker are in flight, fewer where
        their raw mail passes :data:`IN_FLIGHT_BYTES_PER_PROCESS` per worker
        (the newest goes in flight whatever its size): enough to keep them busy
        while this process writes, little enough to bound memory. When the
        source fails (a dropped connection, an expired grant), the batches it
        delivered before are still handed out, so the pass keeps the progress
        it made, as it does without workers.
        """
        seen = 0
        pending: deque[tuple[Batch, int, Future[list[BatchPlan]]]] = deque()
        source = iter(batches)
        while True:
            try:
                batch = next(source)
            except StopIteration:
                break
            except Exception:
                while pending:
                    yield self._collect(pending.popleft())
                raise
            seen += len(batch.items)
            pool = self._pool_once(seen)
            if pool is None:
                items, cursor = list(batch.items), batch.cursor
                del batch
                size = raw_bytes(items)
                parts = plan_items(items, self.policy)
                yield PlannedBatch(items, cursor, parts, size), merge_plans(parts)
                continue
            size = raw_bytes(batch.items)
            pending.append((batch, size, pool.submit(_plan_in_worker, batch.items)))
            self.in_flight_bytes += size
            del batch
            while pending and (self._over_bound(len(pending)) or pending[0][2].done()):
                yield self._collect(pending.popleft())
        while pending:
            yield self._collect(pending.popleft())

    def _over_bound(self, batches: int) -> bool:
        """Whether this many batches in flight, with their bytes, must wait for a plan."""
        return batches > 2 * self.processes or (
            batches > 1 and self.in_flight_bytes > IN_FLIGHT_BYTES_PER_PROCESS * self.processes
        )

    def _collect(
        self, entry: tuple[Batch, int, Future[list[BatchPlan]]]
    ) -> tuple[PlannedBatch, BatchPlan]:
        batch, size, future = entry
        parts = future.result()
        self.in_flight_bytes -= size
        self.planned_by_workers += len(batch.items)
        return _planned(batch, parts, size)

    def _pool_once(self, seen: int) -> ProcessPoolExecutor | None:
        """The pool, started once the pass has seen more than ``start_after`` items."""
        if self._pool is None and self.processes > 0 and seen > self.start_after:
            context = multiprocessing.get_context("spawn")
            records = context.Queue()
            self._listener = logging.handlers.QueueListener(records, _Redispatch())
            self._listener.start()
            self._pool = ProcessPoolExecutor(
                max_workers=self.processes,
                mp_context=context,
                initializer=_start_worker,
                initargs=(self.policy, records, logging.getLogger().getEffectiveLevel()),
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None


class _Redispatch(logging.Handler):
    """Hands a worker's record to the logger of the same name in this process."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = logging.getLogger(record.name)
        if logger.isEnabledFor(record.levelno):
            logger.handle(record)


_worker_policy: Policy | None = None


def _start_worker(policy: Policy, records: multiprocessing.Queue[object], level: int) -> None:
    global _worker_policy
    _worker_policy = policy
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level)


def _exit_with_parent() -> None:
    """A syncing process that is killed cannot stop its workers; they stop themselves."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)


def _plan_in_worker(items: Sequence[Item]) -> list[BatchPlan]:
    if _worker_policy is None:
        raise RuntimeError("planning worker started without a policy")
    return plan_items(list(items), _worker_policy)
