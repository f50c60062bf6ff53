"""Tags and segments in the JSON API and on the pages, over real HTTP on both databases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import Engine, select

from storage import segments, tags
from storage.db import session_factory, transaction
from storage.models import AuditLog, CompanyFigures, ContactFigures, utcnow
from tests.agent.web.conftest import Served
from tests.agent.web.test_api import api, get, new_token
from tests.agent.web.test_security import browser, client, csrf, is_login_redirect
from tests.support.web import csrf_of

EVIL_TAG = "<img src=x onerror=window.__pwned=9>"
BOB_MAIL = "bob@ourteam.example"


@dataclass(frozen=True)
class Seeded:
    bob: str
    """Bob's API token."""


@pytest.fixture(scope="module")
def seeded(served: Served, engine: Engine) -> Seeded:
    """Figures for Dana (medium, Bob's) and the hostile contact (weak), Acme's figures,
    two segments, and the hostile contact tagged with markup."""
    team = served.team
    now = utcnow()
    with transaction(session_factory(engine)) as session:
        session.add_all(
            [
                ContactFigures(
                    contact_id=team.dana_id, as_of=date.today(), last_at=now - timedelta(days=1),
                    strength=8.0, level="medium", trend="warming", closest_teammate=BOB_MAIL,
                ),
                ContactFigures(
                    contact_id=team.hostile_id, as_of=date.today(), last_at=now - timedelta(days=4),
                    strength=1.0, level="weak", trend="steady", closest_teammate=BOB_MAIL,
                ),
                CompanyFigures(
                    company_id=team.company_id, as_of=date.today(), last_at=now,
                    strength=8.0, level="medium", trend="warming", closest_teammate=BOB_MAIL,
                ),
            ]
        )  # fmt: skip
        segments.add_segment(
            session, "bobs people", "contact", {"closest_teammate": BOB_MAIL}, actor="user:test"
        )
        segments.add_segment(
            session, "warm companies", "company", {"level_at_least": "medium"}, actor="user:test"
        )
        tags.add_tag(
            session, "contact", [team.hostile_id], EVIL_TAG, source="user:test", actor="user:test"
        )
    return Seeded(bob=new_token(engine, team.member, "segments", used=True))


def test_the_api_reads_tags_and_segments(served: Served, seeded: Seeded) -> None:
    team = served.team
    with api(served, seeded.bob) as bob:
        assert {"name": EVIL_TAG.lower(), "contacts": 1, "companies": 0} in get(bob, "/api/v1/tags")
        listed = {s["name"]: s for s in get(bob, "/api/v1/segments")}
        assert listed["bobs people"]["members"] == 2
        assert listed["warm companies"]["subject"] == "company"
        assert listed["warm companies"]["definition"] == {"level_at_least": "medium"}

        people = get(bob, "/api/v1/segments/bobs people")
        assert (people["members"], people["limit"], people["offset"]) == (2, 100, 0)
        dana, hostile = people["rows"]
        assert (dana["id"], dana["email"], dana["domain"]) == (
            team.dana_id,
            "dana@acme.example",
            "acme.example",
        )
        assert (dana["level"], dana["strength"], dana["trend"]) == ("medium", 8.0, "warming")
        assert dana["closest_teammate"] == BOB_MAIL and dana["idle_days"] == 1
        assert hostile["id"] == team.hostile_id
        assert [r["id"] for r in get(bob, "/api/v1/segments/bobs people", offset=1)["rows"]] == [
            team.hostile_id
        ]

        companies = get(bob, "/api/v1/segments/warm companies")
        assert [(c["id"], c["domain"]) for c in companies["rows"]] == [
            (team.company_id, "acme.example")
        ]
        assert bob.get("/api/v1/segments/nothing").status_code == 404
        assert bob.get("/api/v1/segments/bobs people", params={"limit": 0}).status_code == 422


def test_the_api_tags_a_contact_with_a_token(
    served: Served, seeded: Seeded, engine: Engine
) -> None:
    path = f"/api/v1/contacts/{served.team.dana_id}/tags"
    with api(served, seeded.bob) as bob:
        made = bob.post(path, json={"tag": "  Renewal 2027 "})
        assert made.status_code == 201, made.text
        assert [(t["name"], t["source"]) for t in made.json()["tags"]] == [
            ("renewal 2027", f"user:{BOB_MAIL}")
        ]
        assert bob.post(path, json={"tag": "renewal 2027"}).json() == made.json()
        refused = bob.post(path, json={"tag": "x" * 65})
        assert refused.status_code == 422 and "at most 64" in refused.json()["detail"]
        assert bob.post("/api/v1/contacts/999999/tags", json={"tag": "x"}).status_code == 404

        gone = bob.delete(f"{path}/{quote('renewal 2027')}")
        assert gone.status_code == 200 and gone.json()["tags"] == []
        assert bob.delete(f"{path}/renewal%202027").status_code == 200
    with transaction(session_factory(engine)) as session:
        actions = session.execute(
            select(AuditLog.actor, AuditLog.action).where(
                AuditLog.entity == "contact",
                AuditLog.entity_id == served.team.dana_id,
                AuditLog.action.in_(["tag", "untag"]),
            )
        ).all()
    assert [tuple(a) for a in actions] == [
        (f"user:{BOB_MAIL}", "tag"),
        (f"user:{BOB_MAIL}", "untag"),
    ]


def test_the_api_tags_with_a_session_only_with_the_csrf_header(
    served: Served, seeded: Seeded
) -> None:
    path = f"/api/v1/contacts/{served.team.dana_id}/tags"
    with browser(served, served.team.other) as cat, client(served) as anonymous:
        assert anonymous.post(path, json={"tag": "forged"}).status_code == 401
        for headers in ({}, {"x-csrf-token": "wrong"}):
            answer = cat.post(path, json={"tag": "forged"}, headers=headers)
            assert answer.status_code == 403, headers
            assert cat.delete(f"{path}/forged", headers=headers).status_code == 403
        assert "forged" not in cat.get(f"/contacts/{served.team.dana_id}/tags").text
        token = {"x-csrf-token": csrf(cat)}
        assert cat.post(path, json={"tag": "by-cat"}, headers=token).status_code == 201
        assert cat.delete(f"{path}/by-cat", headers=token).json()["tags"] == []


def test_segment_pages_are_for_everyone_signed_in(served: Served, seeded: Seeded) -> None:
    team = served.team
    with client(served) as anonymous:
        for path in ("/segments", "/segments/bobs people", f"/contacts/{team.dana_id}/tags"):
            assert is_login_redirect(anonymous.get(path), path), path
    with browser(served, team.other) as cat:
        listing = cat.get("/segments")
        assert listing.status_code == 200
        assert 'href="/segments/bobs%20people"' in listing.text
        assert "warm companies" in listing.text
        people = cat.get("/segments/bobs people")
        assert people.status_code == 200
        assert f'href="/contacts/{team.dana_id}"' in people.text
        assert f'href="/contacts/{team.hostile_id}"' in people.text
        assert "Dana Whitfield" in people.text and "medium" in people.text
        assert "<script>window.__pwned" not in people.text
        assert "&lt;script&gt;window.__pwned=1" in people.text
        companies = cat.get("/segments/warm companies")
        assert f'href="/companies/{team.company_id}"' in companies.text
        assert cat.get("/segments/nothing").status_code == 404


def test_tags_on_the_pages_need_the_csrf_token(served: Served, seeded: Seeded) -> None:
    team = served.team
    contact = f"/contacts/{team.dana_id}"
    with browser(served, team.member) as bob, browser(served, team.other) as cat:
        page = bob.get(contact).text
        assert f'action="{contact}/tags"' in page
        for sent in ({}, {"csrf": "wrong"}, {"csrf": csrf(cat)}):
            answer = bob.post(f"{contact}/tags", data={"tag": "forged", **sent})
            assert answer.status_code == 403, sent
        assert "forged" not in bob.get(f"{contact}/tags").text

        token = csrf_of(page)
        added = bob.post(f"{contact}/tags", data={"tag": "Key Account", "csrf": token})
        assert (added.status_code, added.headers["location"]) == (303, f"{contact}/tags")
        shown = bob.get(f"{contact}/tags").text
        assert "key account" in shown and f"user:{BOB_MAIL}" in shown
        empty = bob.post(f"{contact}/tags", data={"tag": "  ", "csrf": token})
        assert empty.status_code == 303
        assert "a tag needs a name" in bob.get(f"{contact}/tags").text
        removed = bob.post(f"{contact}/tags/remove", data={"tag": "key account", "csrf": token})
        assert removed.status_code == 303
        assert "No tags yet." in bob.get(f"{contact}/tags").text

        company = f"/companies/{team.company_id}"
        assert f'action="{company}/tags"' in bob.get(company).text
        bob.post(f"{company}/tags", data={"tag": "partner", "csrf": token})
        assert "partner" in bob.get(f"{company}/tags").text


def test_hostile_tags_and_names_are_shown_as_text(served: Served, seeded: Seeded) -> None:
    with browser(served, served.team.member) as bob:
        page = bob.get(f"/contacts/{served.team.hostile_id}/tags").text
    body = page.split("</head>", 1)[1]
    assert "<script>" not in body and "<img" not in body
    assert "&lt;img src=x onerror=window.__pwned=9&gt;" in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    with httpx.Client(base_url=served.url, trust_env=False) as http:
        assert http.get(f"/contacts/{served.team.hostile_id}/tags").status_code == 303
