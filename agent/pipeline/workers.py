"""Planning batches in worker processes while the syncing process fetches and writes.

Parsing and planning mail (``agent.pipeline.batch.plan_batch``) is pure CPU work
and most of what a first sync of a big mailbox costs; fetching is I/O and
writing must stay in one process, in order. So once a pass has a backlog,
its batches are planned by a pool of worker processes: the syncing process
hands a batch over, goes on fetching the next ones, and writes the plans in
the order the batches came, each with its own cursor. Nothing about the
result changes: ``plan_batch`` is pure, and the plans are the same wherever
they are made.

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
from types import TracebackType

from agent.pipeline.batch import plan_batch
from agent.pipeline.planned import BatchPlan
from agent.pipeline.policy import Policy
from connectors.records import Batch, Item

START_AFTER_ITEMS = 1000
"""Items a pass plans itself before it starts worker processes for the rest."""

MAX_PROCESSES = 8


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

    def plans(self, batches: Iterable[Batch]) -> Iterator[tuple[Batch, BatchPlan]]:
        """Each batch with its plan, in the order the batches came.

        With workers, up to two batches per worker are in flight: enough to
        keep them busy while this process writes, little enough to bound
        memory. When the source fails (a dropped connection, an expired
        grant), the batches it delivered before are still handed out, so the
        pass keeps the progress it made, as it does without workers.
        """
        seen = 0
        pending: deque[tuple[Batch, Future[BatchPlan]]] = deque()
        source = iter(batches)
        while True:
            try:
                batch = next(source)
            except StopIteration:
                break
            except Exception:
                while pending:
                    yield self._collect(*pending.popleft())
                raise
            seen += len(batch.items)
            pool = self._pool_once(seen)
            if pool is None:
                yield batch, plan_batch(batch.items, self.policy)
                continue
            pending.append((batch, pool.submit(_plan_in_worker, batch.items)))
            while pending and (len(pending) > 2 * self.processes or pending[0][1].done()):
                yield self._collect(*pending.popleft())
        while pending:
            yield self._collect(*pending.popleft())

    def _collect(self, batch: Batch, future: Future[BatchPlan]) -> tuple[Batch, BatchPlan]:
        plan = future.result()
        self.planned_by_workers += len(batch.items)
        return batch, plan

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


def _plan_in_worker(items: Sequence[Item]) -> BatchPlan:
    if _worker_policy is None:
        raise RuntimeError("planning worker started without a policy")
    return plan_batch(items, _worker_policy)
