"""The report pages in a real Chromium, against ``crm-sync serve`` on both databases.

The seeded team (:func:`tests.support.web.seed_team`) gets a past as well: Bob
and Fay were busy six weeks ago and have gone quiet, and the hostile contact
wrote to Bob often before its one recent message, so both are going cold and
the hostile name is drawn in the cooling chart. What a person must see: the
charts with their bars, hostile names as text with nothing run or loaded,
and the sources report closed to members.

With ``CRM_SYNC_SCREENSHOTS=FOLDER`` (on SQLite only) the activity and cooling
pages are written there at 1280×800, as :mod:`tests.agent.web.test_browser` does.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from storage.connector_days import record
from storage.ingest import BatchWrite, InteractionRecord, NewContact, ParticipantRecord, write_batch
from tests.agent.web.conftest import Served
from tests.support.browser import Watch, new_page, sign_in
from tests.support.web import HOSTILE
from tests.support.web import sign_in as web_sign_in

BOB = "bob@ourteam.example"
COOLING = {"fay@gamma.example": 4, "mallory@evil.example": 8}
"""Who went quiet, and how many emails they traded with Bob six to eight weeks ago."""


@pytest.fixture(scope="module", autouse=True)
def past(engine: Engine) -> None:
    now = datetime.now(timezone.utc)
    records = [
        InteractionRecord(
            kind="email",
            dedupe_key=f"<past-{address}-{n}@test>",
            occurred_at=now - timedelta(days=40 + 2 * n),
            direction="outbound" if n % 2 else "inbound",
            connector="bob-mail",
            source_id=f"past-{address}-{n}",
            participants=(
                ParticipantRecord(BOB if n % 2 else address, "", "from"),
                ParticipantRecord(address if n % 2 else BOB, "", "to"),
            ),
            subject=HOSTILE,
            thread=f"past-{address}",
        )
        for address, count in COOLING.items()
        for n in range(count)
    ]
    with Session(engine) as session, session.begin():
        write_batch(
            session,
            BatchWrite(
                interactions=records,
                new_contacts=[NewContact("fay@gamma.example", "gamma.example", "Gamma")],
            ),
            propagate_deletes=False,
        )
        for days, (items, logged) in enumerate(((14, 9), (30, 22), (0, 0), (12, 12), (40, 31))):
            for mailbox in ("bob-mail", "cat-mail"):
                measures = {"items": items, "logged": logged, "skipped:automated": items - logged}
                record(session, mailbox, now.date() - timedelta(days=days), measures)


def _inert(page: Page, watch: Watch, served: Served) -> None:
    """Nothing from a hostile name ran, opened or loaded; it shows as text."""
    assert page.evaluate("typeof window.__pwned") == "undefined", "a hostile script ran"
    assert watch.dialogs == []
    strangers = [url for url in watch.requests if not url.startswith(served.url + "/")]
    assert strangers == [], "requests to other hosts"
    scripts = page.evaluate("[...document.scripts].map(s => s.src)")
    assert scripts == [f"{served.url}/static/app.js"]
    for tag in ("iframe", "img", "object", "embed", "style", "svg:not(.chart)", "svg svg"):
        assert page.locator(tag).count() == 0, tag
    assert page.locator("[onerror], [onload], [style]").count() == 0
    assert [line for line in watch.console if "Content Security Policy" in line] == []


def _chart(page: Page) -> None:
    chart = page.locator("svg.chart").first
    expect(chart).to_be_visible()
    assert chart.locator("rect.bar").count() > 0
    assert chart.locator("title").count() > 0


def _shoot(page: Page, served: Served, name: str) -> None:
    shot = page.screenshot(full_page=False)
    assert shot.startswith(b"\x89PNG")
    folder = os.environ.get("CRM_SYNC_SCREENSHOTS", "")
    if folder and served.database_url.startswith("sqlite"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(shot)


def test_the_cooling_report_draws_who_went_quiet(served: Served, browser: Browser) -> None:
    watch = Watch()
    with new_page(browser, watch) as page:
        sign_in(page, served.url, served.team.member, served.team.password)
        page.get_by_role("link", name="Reports").click()
        expect(page).to_have_url(f"{served.url}/reports/activity")
        page.get_by_role("link", name="Going cold").click()
        expect(page.get_by_role("heading", name="Going cold")).to_be_visible()
        page.wait_for_load_state("networkidle")
        _chart(page)
        table = page.locator("table.report")
        expect(table).to_contain_text("fay@gamma.example")
        expect(table).to_contain_text("<script>window.__pwned=1</script>")
        expect(table.locator("tbody tr")).to_have_count(len(COOLING))
        assert page.locator("svg.chart rect.bar").count() == 2 * len(COOLING)
        _inert(page, watch, served)
        _shoot(page, served, "report-cooling.png")


def test_the_activity_report_draws_each_teammate(served: Served, browser: Browser) -> None:
    watch = Watch()
    with new_page(browser, watch) as page:
        sign_in(page, served.url, served.team.member, served.team.password)
        page.goto(f"{served.url}/reports/activity?period=week&periods=8")
        page.wait_for_load_state("networkidle")
        _chart(page)
        expect(page.locator("svg.chart .label").filter(has_text="bob@")).to_have_count(1)
        expect(page.locator("table.report")).to_contain_text(BOB)
        _inert(page, watch, served)
        _shoot(page, served, "report-activity.png")


def test_coverage_for_everyone_sources_for_admins(served: Served, browser: Browser) -> None:
    with new_page(browser) as bob, new_page(browser) as ann:
        sign_in(bob, served.url, served.team.member, served.team.password)
        response = bob.goto(f"{served.url}/reports/coverage")
        assert response is not None and response.status == 200
        _chart(bob)
        _shoot(bob, served, "report-coverage.png")
        expect(bob.get_by_role("link", name="Sources")).to_have_count(0)
        response = bob.goto(f"{served.url}/reports/sources")
        assert response is not None and response.status == 403

        sign_in(ann, served.url, served.team.admin, served.team.password)
        response = ann.goto(f"{served.url}/reports/sources")
        assert response is not None and response.status == 200
        expect(ann.get_by_role("heading", name="Sources")).to_be_visible()
        expect(ann.locator("svg.chart")).to_have_count(1)
        expect(ann.locator("table.report")).to_contain_text("automated 22")
        _shoot(ann, served, "report-sources.png")


REPORTS = ("activity", "cooling", "coverage", "sources")


def test_the_reports_api_answers_as_the_pages_do(served: Served) -> None:
    """Signed out: the pages send to sign-in and the API says 401; a member reads every
    report but sources, which an admin reads."""
    with httpx.Client(base_url=served.url, trust_env=False, timeout=30) as anonymous:
        for name in REPORTS:
            assert anonymous.get(f"/reports/{name}").status_code in (303, 307), name
            assert anonymous.get(f"/api/v1/reports/{name}").status_code == 401, name
    with httpx.Client(base_url=served.url, trust_env=False, timeout=30) as bob:
        assert web_sign_in(bob, served.team.member).status_code == 303
        cooling = bob.get("/api/v1/reports/cooling")
        assert cooling.status_code == 200
        assert sorted(row["email"] for row in cooling.json()) == sorted(COOLING)
        activity = bob.get("/api/v1/reports/activity", params={"period": "day", "periods": 3})
        assert activity.status_code == 200 and len(activity.json()["periods"]) == 3
        assert bob.get("/api/v1/reports/activity", params={"period": "year"}).status_code == 422
        coverage = bob.get("/api/v1/reports/coverage").json()
        assert set(coverage["by_teammates"]) == {"0", "1", "2", "3+"}
        assert bob.get("/api/v1/reports/sources").status_code == 403
    with httpx.Client(base_url=served.url, trust_env=False, timeout=30) as ann:
        assert web_sign_in(ann, served.team.admin).status_code == 303
        sources = ann.get("/api/v1/reports/sources", params={"days": 7})
        assert sources.status_code == 200 and len(sources.json()["days"]) == 7
