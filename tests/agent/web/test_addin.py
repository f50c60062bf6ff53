"""The Outlook add-in's pages and its record endpoint, over real HTTP against ``crm-sync serve``
on both databases.

Signed out, the record endpoint answers 401 and nothing else; signed in, it answers what
the contact page shows, filtered by the same viewer (read here with the same storage
functions the page uses). The add-in's two pages alone may load Office.js from Microsoft's
CDN, and the task pane alone may be framed by Outlook; every other page keeps the app's
policy.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from agent.web.addin import OFFICE_JS, OUTLOOK_HOSTS, router
from agent.web.security import CSP, POLICY
from storage.contacts import find_contact
from storage.profiles import contact_profile
from storage.users import get_user, viewer_of
from tests.agent.web.conftest import Served
from tests.support.web import HOSTILE, PASSWORD, csrf_of, sign_in

DANA = "dana@acme.example"
OFFICE_HOST = "https://appsforoffice.microsoft.com"


def client(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.url, trust_env=False, timeout=30)


@contextmanager
def signed_in(served: Served, email: str) -> Iterator[httpx.Client]:
    with client(served) as http:
        answer = sign_in(http, email)
        assert answer.status_code == 303, answer.text
        yield http


def directives(answer: httpx.Response) -> dict[str, str]:
    policy = answer.headers["content-security-policy"]
    parts = (part.strip().split(" ", 1) for part in policy.split(";"))
    return {name: value for name, value in parts}


def expected(engine: Engine, email: str, address: str) -> Any:
    """The contact page's profile of ``address`` for ``email``, read the way the page reads it."""
    with Session(engine) as session:
        user = get_user(session, email)
        contact = find_contact(session, address)
        assert user is not None and contact is not None
        return contact_profile(session, viewer_of(user), contact)


def test_the_add_in_has_these_routes_only() -> None:
    """They answer signed-out visitors themselves (no sign-in redirect) and send their own
    policy: each is tested here, so a new one must be too."""
    routes = [route for route in router.routes if isinstance(route, APIRoute)]
    assert len(routes) == len(router.routes)
    found = {(route.path, method) for route in routes for method in route.methods or ()}
    assert found == {
        ("/addin/taskpane", "GET"),
        ("/addin/signed-in", "GET"),
        ("/addin/record", "GET"),
    }


# -- the record


def test_signed_out_the_record_is_401_and_holds_nothing(served: Served) -> None:
    with client(served) as http:
        for address in (DANA, "nobody@nowhere.example", "not an address", ""):
            answer = http.get("/addin/record", params={"address": address})
            assert answer.status_code == 401, address
            assert answer.headers["content-type"].startswith("application/json")
            assert answer.json() == {"detail": "sign in to crm-sync"}
            assert answer.headers["cache-control"] == "no-store"
    with client(served) as http:
        http.cookies.set("crm_sync_session", "forged")
        assert http.get("/addin/record", params={"address": DANA}).status_code == 401


def test_a_member_gets_the_record_the_contact_page_shows(served: Served, engine: Engine) -> None:
    team = served.team
    with signed_in(served, team.member) as bob:
        answer = bob.get("/addin/record", params={"address": "Dana@ACME.example"})
    assert answer.status_code == 200
    record = answer.json()
    profile = expected(engine, team.member, DANA)
    assert record["viewer"] == team.member
    assert record["id"] == team.dana_id
    assert record["url"] == f"/contacts/{team.dana_id}"
    assert record["name"] == "Dana Whitfield"
    assert record["emails"] == [DANA]
    assert record["company"] == "Acme Widgets"
    assert record["last"]["subject"] == profile.last.subject == "Re: " + team.shared_subject
    assert [t["email"] for t in record["teammates"]] == [t.email for t in profile.teammates]
    assert record["not_shown"] == profile.timeline.hidden == 1
    assert {"name": "title", "value": "CFO"} in record["fields"]
    assert [f["name"] for f in record["fields"]] == [f.name for f in profile.fields if f.value]
    assert team.private_subject not in answer.text
    assert "Personal matter" not in answer.text
    assert team.other not in [t["email"] for t in record["teammates"]]


def test_the_owner_of_a_private_thread_sees_it_counted(served: Served, engine: Engine) -> None:
    team = served.team
    with signed_in(served, team.other) as cat:
        record = cat.get("/addin/record", params={"address": DANA}).json()
    profile = expected(engine, team.other, DANA)
    assert record["viewer"] == team.other
    assert record["not_shown"] == 0
    assert [t["email"] for t in record["teammates"]] == [t.email for t in profile.teammates]
    assert team.other in [t["email"] for t in record["teammates"]]


def test_an_unknown_or_malformed_address(served: Served) -> None:
    with signed_in(served, served.team.member) as bob:
        unknown = bob.get("/addin/record", params={"address": "someone@else.example"})
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "no contact", "address": "someone@else.example"}
        for bad in ("not an address", "", "a@b"):
            answer = bob.get("/addin/record", params={"address": bad})
            assert answer.status_code == 422, bad
        too_long = bob.get("/addin/record", params={"address": "a" * 400 + "@x.example"})
        assert too_long.status_code == 422


def test_hostile_text_comes_back_as_data(served: Served) -> None:
    """The pane sets it as text (``taskpane.js``); the JSON carries it unchanged, as JSON."""
    with signed_in(served, served.team.member) as bob:
        answer = bob.get("/addin/record", params={"address": "mallory@evil.example"})
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["name"] == HOSTILE
    assert answer.json()["last"]["subject"] == HOSTILE


# -- the pages and their policies


def test_the_task_pane_signed_out_offers_sign_in(served: Served) -> None:
    with client(served) as http:
        answer = http.get("/addin/taskpane")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    assert f'<script src="{OFFICE_JS}"></script>' in html
    assert '<script src="/static/taskpane.js" defer></script>' in html
    assert 'href="/login?next=%2Faddin%2Ftaskpane"' in html
    assert 'data-dialog="/login?next=%2Faddin%2Fsigned-in"' in html
    assert "Dana" not in html


def test_the_task_pane_alone_may_be_framed_by_outlook(served: Served) -> None:
    with client(served) as http:
        answer = http.get("/addin/taskpane")
    found = directives(answer)
    assert found["script-src"] == f"'self' {OFFICE_HOST}"
    assert found["frame-ancestors"].split() == list(OUTLOOK_HOSTS)
    assert all(host.startswith("https://") for host in OUTLOOK_HOSTS)
    widened = {"script-src", "frame-ancestors"}
    assert {k: v for k, v in found.items() if k not in widened} == {
        k: v for k, v in POLICY.items() if k not in widened
    }
    assert "x-frame-options" not in answer.headers
    assert "unsafe-inline" not in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


def test_the_sign_in_dialog_ends_on_a_page_that_tells_the_pane(served: Served) -> None:
    with client(served) as http:
        answer = http.get("/addin/signed-in")
        assert answer.status_code == 200
        assert "data-signed-in" not in answer.text
        assert 'href="/login?next=%2Faddin%2Fsigned-in"' in answer.text
        found = directives(answer)
        assert found["script-src"] == f"'self' {OFFICE_HOST}"
        assert found["frame-ancestors"] == "'none'"
        assert answer.headers["x-frame-options"] == "DENY"

        form = http.get("/login", params={"next": "/addin/signed-in"}).text
        assert 'name="next" value="/addin/signed-in"' in form
        done = sign_in_to(http, served, "/addin/signed-in")
        assert done.headers["location"] == "/addin/signed-in"
        page = http.get("/addin/signed-in")
        assert 'data-signed-in="yes"' in page.text
        assert served.team.member in page.text
        assert f'<script src="{OFFICE_JS}"></script>' in page.text


def pane_token_of(page: str) -> str:
    found = re.search(r'data-pane-token="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_the_pane_token_reads_without_a_session_until_the_user_signs_out(
    served: Served,
) -> None:
    """Outlook on the web withholds the session cookie from the framed pane: the token the
    dialog hands over reads alone, and ends with the session it came from."""
    with signed_in(served, served.team.member) as dialog:
        token = pane_token_of(dialog.get("/addin/signed-in").text)
        with client(served) as pane:
            bearer = {"Authorization": f"Bearer {token}"}
            read = pane.get("/addin/record", params={"address": DANA}, headers=bearer)
            assert read.status_code == 200 and read.json()["viewer"] == served.team.member
            forged = {"Authorization": f"Bearer {token[:-2]}xx"}
            assert (
                pane.get("/addin/record", params={"address": DANA}, headers=forged).status_code
                == 401
            )
            out = dialog.post("/logout", data={"csrf": csrf_of(dialog.get("/search").text)})
            assert out.status_code == 303, out.text
            after = pane.get("/addin/record", params={"address": DANA}, headers=bearer)
            assert after.status_code == 401 and "Dana" not in after.text


def sign_in_to(http: httpx.Client, served: Served, target: str) -> httpx.Response:
    token = csrf_of(http.get("/login").text)
    form = {"email": served.team.member, "password": PASSWORD, "csrf": token, "next": target}
    return http.post("/login", data=form)


def test_every_other_page_keeps_the_app_policy(served: Served) -> None:
    """Only the add-in's pages load from another host or may be framed."""
    team = served.team
    with signed_in(served, team.admin) as ann, client(served) as anonymous:
        answers = [
            anonymous.get("/login"),
            anonymous.get("/search"),
            anonymous.get("/addin/record", params={"address": DANA}),
            ann.get("/search"),
            ann.get(f"/contacts/{team.dana_id}"),
            ann.get("/admin/connectors"),
            ann.get("/api/v1/me"),
            ann.get("/addin/record", params={"address": DANA}),
            ann.get("/contacts/999999"),
        ]
    for answer in answers:
        where = str(answer.url)
        assert answer.headers["content-security-policy"] == CSP, where
        assert directives(answer)["script-src"] == "'self'", where
        assert directives(answer)["frame-ancestors"] == "'none'", where
        assert answer.headers["x-frame-options"] == "DENY", where
        assert OFFICE_HOST not in answer.text, where


def test_the_icons_the_manifest_names_are_served(served: Served) -> None:
    with client(served) as http:
        for size in (16, 32, 64, 80, 128):
            answer = http.get(f"/static/addin-icon-{size}.png")
            assert answer.status_code == 200, size
            assert answer.headers["content-type"] == "image/png"
            assert answer.content.startswith(b"\x89PNG\r\n\x1a\n")
            width = int.from_bytes(answer.content[16:20], "big")
            assert width == size
