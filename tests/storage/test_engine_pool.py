"""A busy process keeps its database connections instead of opening new ones."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, event, text

AT_ONCE = 8
ROUNDS = 5


def test_eight_requests_at_a_time_reuse_the_connections_of_the_first(engine: Engine) -> None:
    """SQLAlchemy's default pool keeps five: every round of eight opened three more and
    closed them again, and a PostgreSQL connection is a new server process."""
    engine.dispose()
    opened: list[int] = []
    event.listen(engine, "connect", lambda *_: opened.append(1))
    together = threading.Barrier(AT_ONCE)

    def request(_: int) -> int:
        with engine.connect() as connection:
            together.wait(timeout=30)
            return int(connection.execute(text("SELECT 1")).scalar_one())

    for _ in range(ROUNDS):
        with ThreadPoolExecutor(AT_ONCE) as threads:
            assert list(threads.map(request, range(AT_ONCE))) == [1] * AT_ONCE
    assert len(opened) == AT_ONCE
