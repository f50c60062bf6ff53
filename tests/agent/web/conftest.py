"""One seeded team database and one running ``crm-sync serve`` per module and database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.db import make_engine
from tests.support.web import Team, WebServer, seed_team, team_connectors, web_database


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
    with web_database(request.param, folder) as url:
        engine = make_engine(url)
        try:
            team = seed_team(engine)
        finally:
            engine.dispose()
        with WebServer(folder, url, body=team_connectors(folder)) as server:
            yield Served(server.url, url, team, folder)
