"""Several ``serve`` processes on one PostgreSQL database: any of them serves any session."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.web import WebServer, seeded_database, sign_in


def test_a_session_made_by_one_server_is_good_on_another(tmp_path: Path) -> None:
    with seeded_database("postgresql", tmp_path) as (url, team):
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with WebServer(tmp_path / "a", url) as first, WebServer(tmp_path / "b", url) as second:
            with httpx.Client(base_url=first.url) as client:
                assert sign_in(client, team.member).status_code == 303
                cookies = client.cookies
            with httpx.Client(base_url=second.url, cookies=cookies) as client:
                page = client.get(f"/contacts/{team.dana_id}")
            assert page.status_code == 200
            assert team.shared_subject in page.text
