"""One seeded team database and one running ``crm-sync serve`` per module and database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from storage.db import make_engine
from tests.support.browser import browser
from tests.support.web import Team, WebServer, seeded_database, team_connectors

__all__ = ["Served", "browser"]
"""``browser`` is one Chromium for the whole session: two sync Playwright instances cannot
live in one process, so no test module starts its own."""


@dataclass(frozen=True)
class Served:
    url: str
    database_url: str
    team: Team
    folder: Path


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"web-{request.param}")
    with (
        seeded_database(request.param, folder) as (url, team),
        WebServer(folder, url, body=team_connectors(folder)) as server,
    ):
        yield Served(server.url, url, team, folder)


@pytest.fixture(scope="module")
def engine(served: Served) -> Iterator[Engine]:
    """The served database, for a test to look behind the app's back."""
    made = make_engine(served.database_url)
    yield made
    made.dispose()
