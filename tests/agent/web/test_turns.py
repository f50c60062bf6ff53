"""A worker runs ``[web] concurrent_requests`` requests at once; the others wait their turn
without touching the database, and are answered once the ones ahead are done.

A real ``serve`` on PostgreSQL: the test holds an exclusive lock on ``users``, which every
signed-in request reads first, so the requests that have their turn wait on the lock where
PostgreSQL shows them, and the ones without a turn never reach it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Connection, text

from storage.db import make_engine
from tests.support.web import WebServer, seeded_database, sign_in

REQUESTS = 6


def _waiting_on_lock(connection: Connection) -> int:
    """Read in a transaction of its own: PostgreSQL keeps one view of the activity for the
    length of a transaction."""
    count = connection.execute(
        text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
    ).scalar_one()
    connection.rollback()
    return int(count)


def _settled(connection: Connection, expected: int, timeout: float = 15.0) -> int:
    """The count of requests waiting on the lock once it has reached ``expected`` and held
    there for a second (or whatever it is at the timeout)."""
    deadline = time.monotonic() + timeout
    seen = _waiting_on_lock(connection)
    while time.monotonic() < deadline:
        if seen == expected:
            time.sleep(1.0)
            return _waiting_on_lock(connection)
        time.sleep(0.05)
        seen = _waiting_on_lock(connection)
    return seen


@pytest.mark.parametrize("at_once", [1, 3])
def test_a_worker_runs_its_turns_at_once_and_the_rest_wait_outside_the_database(
    at_once: int, tmp_path: Path
) -> None:
    with (
        seeded_database("postgresql", tmp_path) as (url, team),
        WebServer(tmp_path, url, web=f"concurrent_requests = {at_once}") as server,
    ):
        with httpx.Client(base_url=server.url) as browser:
            assert sign_in(browser, team.admin, team.password).status_code == 303
            cookies = dict(browser.cookies)
        engine = make_engine(url)
        try:
            with engine.connect() as locker, engine.connect() as watcher:
                locker.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))

                def fetch(_: int) -> int:
                    with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as c:
                        return c.get(f"/contacts/{team.dana_id}").status_code

                with ThreadPoolExecutor(REQUESTS) as pool:
                    answers = pool.map(fetch, range(REQUESTS))
                    waiting = _settled(watcher, at_once)
                    locker.commit()
                    statuses = list(answers)
        finally:
            engine.dispose()
    assert waiting == at_once
    assert statuses == [200] * REQUESTS
