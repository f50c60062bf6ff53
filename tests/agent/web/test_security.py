"""The web app's defences, over real HTTP against ``crm-sync serve`` on both databases.

Sign-in on every route (the routes are read from the app itself, so a new one
cannot be left out), CSRF on every form post, the session cookie's flags, the
security headers, sign-in throttling, open redirects after sign-in, sessions
after sign-out and tampering, admin-only pages, and hostile text from mail
rendered as text.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Mount
from starlette.routing import Route as Route_

from agent.runtime.app import App
from agent.web.asgi import SESSION_COOKIE, create_app
from storage.db import make_engine
from storage.edits import list_conflicts, set_fields, snapshot
from storage.models import Interaction
from storage.segments import add_segment
from storage.tags import add_tag
from tests.agent.web.conftest import Served
from tests.support.web import (
    HOSTILE,
    PASSWORD,
    SESSION_SECRET,
    WebServer,
    csrf_of,
    seed_team,
    seeded_database,
    sign_in,
    web_database,
)

DANA = "dana@acme.example"
LOGIN_ERROR = "That address and password do not match an account."
NOT_GUARDED = {"/": "/search", "/admin": "/admin/connectors"}
"""GET routes that only redirect to another route, which is the one that asks for sign-in."""
SKIPPED = ("/static", "/healthz", "/login", "/api/v1/openapi.json", "/docs", "/redoc", "/addin/")
"""Besides static files and sign-in: the Outlook add-in's pages, which answer signed-out
visitors themselves and carry their own policy (``tests/agent/web/test_addin.py``)."""


@dataclass(frozen=True)
class Route:
    path: str
    method: str

    @property
    def api(self) -> bool:
        return self.path.startswith("/api/")

    @property
    def bearer(self) -> bool:
        """Called with a bearer token, not a session: the JSON API, and the Gmail add-on's
        endpoints, which Google calls (its preview is a page)."""
        return self.api or (self.path.startswith("/addon/") and self.path != "/addon/preview")

    @property
    def admin(self) -> bool:
        return self.path.startswith("/admin")


def app_routes(config: Path, monkeypatch: pytest.MonkeyPatch) -> list[Route]:
    """Every route of the app ``serve`` runs for ``config``, built in this process only to be
    listed; static files, health, sign-in and the OpenAPI document are left out."""
    for name in [n for n in os.environ if n.startswith("CRM_SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("WEB_SECRET", SESSION_SECRET)
    app = App(config_path=config)
    try:
        built = create_app(app)
    finally:
        app.engine.dispose()
    found = [
        Route(path, method)
        for path, methods in _flatten(built.routes, "")
        if not path.startswith(SKIPPED)
        for method in sorted(methods - {"HEAD"})
    ]
    assert len(found) >= 20, f"too few routes found: {found}"
    return found


def _flatten(routes: Iterable[object], prefix: str) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route; FastAPI >= 0.16x keeps an included router whole, as a
    route holding the ``original_router`` and its include ``prefix``."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _flatten(included.routes, prefix + str(getattr(context, "prefix", "")))
        elif isinstance(route, APIRoute | Route_):
            yield prefix + route.path, set(route.methods or ())
        elif isinstance(route, Mount):
            assert route.path.startswith("/static"), f"{route.path}: a mount to test by hand"
        else:
            raise AssertionError(f"{route!r}: a kind of route this test does not know")


@dataclass(frozen=True)
class Ids:
    conflict: int
    shared: int
    private: int
    segment: str
    tag: str


@pytest.fixture(scope="module")
def ids(served: Served, engine: Engine) -> Ids:
    """Real ids for path parameters: an open conflict on Dana, and two interactions."""
    sessions = sessionmaker(engine)
    with sessions() as session:
        seen = snapshot(session, DANA)
        assert seen is not None
        shared, private = (
            session.scalars(select(Interaction.id).where(Interaction.subject == subject)).one()
            for subject in (served.team.shared_subject, served.team.private_subject)
        )
    set_fields(sessions, DANA, {"lead_source": "web"}, user=f"user:{served.team.admin}", base=seen)
    outcome = set_fields(
        sessions, DANA, {"lead_source": "fair"}, user=f"user:{served.team.member}", base=seen
    )
    (conflict,) = outcome.conflicts
    with sessions.begin() as session:
        add_segment(session, "warm", "contact", {"level_at_least": "weak"}, actor="user:test")
        add_tag(
            session, "contact", [served.team.dana_id], "customer", source="user:test", actor="t"
        )
    return Ids(conflict=conflict.id, shared=shared, private=private, segment="warm", tag="customer")


def fill(path: str, served: Served, ids: Ids) -> str:
    values = {
        "contact_id": served.team.dana_id,
        "company_id": served.team.company_id,
        "interaction_id": ids.shared,
        "conflict_id": ids.conflict,
        "name": ids.segment,
        "tag": ids.tag,
    }
    for name in re.findall(r"\{(\w+)\}", path):
        assert name in values, f"{path}: give the test a real id for {{{name}}}"
        path = path.replace(f"{{{name}}}", str(values[name]))
    return path


def client(served: Served, **kwargs: object) -> httpx.Client:
    return httpx.Client(base_url=served.url, trust_env=False, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def browser(served: Served, email: str) -> Iterator[httpx.Client]:
    """A client signed in as ``email`` through the sign-in form."""
    with client(served) as signed_in:
        answer = sign_in(signed_in, email)
        assert answer.status_code == 303, answer.text
        yield signed_in


def csrf(http: httpx.Client) -> str:
    return csrf_of(http.get("/search").text)


def dana_field(engine: Engine, name: str) -> str | None:
    with Session(engine) as session:
        seen = snapshot(session, DANA)
        assert seen is not None
        return seen.values[name]


def conflict_status(engine: Engine, conflict_id: int) -> str:
    with Session(engine) as session:
        (row,) = [c for c in list_conflicts(session, include_resolved=True) if c.id == conflict_id]
        return row.status


def is_login_redirect(answer: httpx.Response, path: str) -> bool:
    return answer.status_code == 303 and answer.headers["location"] == (
        f"/login?next={quote(path, safe='')}"
    )


# -- sign-in on every route


def test_every_route_asks_for_sign_in(
    served: Served, ids: Ids, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = app_routes(served.folder / "crm-sync.toml", monkeypatch)
    assert {r.path for r in routes} >= {"/search", "/contacts/{contact_id}", "/api/v1/me"}
    problems = []
    with client(served) as anonymous:
        for route in routes:
            path = fill(route.path, served, ids)
            if route.method == "GET":
                answer = anonymous.get(path, params={"q": "acme"} if "search" in path else None)
            else:
                token = csrf_of(anonymous.get("/login").text)  # an anonymous session's own
                answer = anonymous.request(route.method, path, data={"csrf": token})
            target = answer.request.url.raw_path.decode()
            if route.bearer:
                ok = (
                    answer.status_code == 401
                    and answer.headers.get("www-authenticate", "").startswith("Bearer")
                    and answer.headers["content-type"].startswith("application/json")
                )
            elif route.method == "GET" and route.path in NOT_GUARDED:
                ok = (
                    answer.status_code == 303
                    and answer.headers["location"] == (NOT_GUARDED[route.path])
                )
            elif route.path == "/logout":
                ok = answer.status_code == 303 and answer.headers["location"] == "/login"
            else:
                ok = is_login_redirect(answer, target)
            if not ok:
                problems.append(f"{route.method} {path}: {answer.status_code} {answer.headers}")
    assert problems == []
    assert dana_field(engine, "owner") is None
    assert conflict_status(engine, ids.conflict) == "open"


def test_api_without_a_session_or_with_a_bad_token(served: Served) -> None:
    with client(served) as anonymous:
        for headers in ({}, {"Authorization": "Bearer crm_not-a-token"}, {"Authorization": "x"}):
            answer = anonymous.get("/api/v1/me", headers=headers)
            assert answer.status_code == 401
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert "detail" in answer.json()


# -- CSRF


def test_sign_in_needs_the_csrf_token(served: Served) -> None:
    with client(served) as http:
        good = csrf_of(http.get("/login").text)
        form = {"email": served.team.admin, "password": PASSWORD, "next": "/search"}
        assert http.post("/login", data=form).status_code == 403
        assert http.post("/login", data={**form, "csrf": good + "x"}).status_code == 403
        assert is_login_redirect(http.get("/search"), "/search")
        assert http.post("/login", data={**form, "csrf": good}).status_code == 303  # control
        assert http.get("/search").status_code == 200


def test_sign_out_needs_the_csrf_token(served: Served) -> None:
    with browser(served, served.team.member) as http:
        good = csrf(http)
        assert http.post("/logout").status_code == 403
        assert http.post("/logout", data={"csrf": "wrong"}).status_code == 403
        assert http.get("/search").status_code == 200
        assert http.post("/logout", data={"csrf": good}).status_code == 303
        assert is_login_redirect(http.get("/search"), "/search")


def test_field_edit_needs_the_csrf_token(served: Served, engine: Engine) -> None:
    path = f"/contacts/{served.team.dana_id}/fields"
    with browser(served, served.team.admin) as http, browser(served, served.team.other) as cat:
        page = http.get(f"/contacts/{served.team.dana_id}").text
        version = re.search(r'name="version" value="(\d+)"', page)
        assert version is not None
        form = {"field": "owner", "version": version.group(1), "seen": "", "value": "mallory"}
        for sent in ({}, {"csrf": ""}, {"csrf": "wrong"}, {"csrf": csrf(cat)}):
            answer = http.post(path, data={**form, **sent})
            assert answer.status_code == 403, sent
            assert "Not allowed" in answer.text
            assert dana_field(engine, "owner") is None
        assert "mallory" not in http.get(f"/api/v1/contacts/{served.team.dana_id}").text

        answer = http.post(path, data={**form, "value": "ann", "csrf": csrf_of(page)})  # control
        assert answer.status_code == 303
        assert dana_field(engine, "owner") == "ann"


def test_conflict_resolve_needs_the_csrf_token(served: Served, engine: Engine, ids: Ids) -> None:
    path = f"/admin/conflicts/{ids.conflict}/resolve"
    with browser(served, served.team.admin) as http, browser(served, served.team.member) as bob:
        form = {"keep": "value", "value": "forged"}
        for sent in ({}, {"csrf": "wrong"}, {"csrf": csrf(bob)}):
            assert http.post(path, data={**form, **sent}).status_code == 403, sent
            assert conflict_status(engine, ids.conflict) == "open"
        assert f"conflict-{ids.conflict}" in http.get("/admin/conflicts").text
        assert dana_field(engine, "lead_source") != "forged"


# -- cookies and headers


def session_cookie(answer: httpx.Response) -> str:
    (cookie,) = [c for c in answer.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)]
    return cookie


def flags(cookie: str) -> set[str]:
    return {part.strip().lower() for part in cookie.split(";")[1:]}


def test_session_cookie_is_httponly_and_samesite_lax(served: Served) -> None:
    with client(served) as http:
        cookie = session_cookie(http.get("/login"))
        token = csrf_of(http.get("/login").text)
        form = {"email": served.team.member, "password": PASSWORD, "csrf": token}
        signed_in = session_cookie(http.post("/login", data=form))
    for each in (cookie, signed_in):
        assert {"httponly", "samesite=lax"} <= flags(each)
        assert "secure" not in flags(each)  # plain http: a Secure cookie would never come back


def test_session_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    with web_database("sqlite", tmp_path) as url:
        engine = make_engine(url)
        try:
            seed_team(engine)
        finally:
            engine.dispose()
        web = 'base_url = "https://crm.example.com"\n'
        with WebServer(tmp_path, url, web=web) as server, httpx.Client(base_url=server.url) as http:
            answer = http.get("/login")
            assert {"httponly", "samesite=lax", "secure"} <= flags(session_cookie(answer))
            assert answer.headers["strict-transport-security"].startswith("max-age=")


def check_headers(answer: httpx.Response, where: str) -> None:
    csp = answer.headers.get("content-security-policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("script-src") == "script-src 'self'", where
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, where
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", where
    assert answer.headers.get("x-content-type-options") == "nosniff", where
    assert answer.headers.get("cache-control") == "no-store", where


def test_security_headers_on_every_page(
    served: Served, ids: Ids, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = [
        r.path
        for r in app_routes(served.folder / "crm-sync.toml", monkeypatch)
        if r.method == "GET" and not r.api
    ]
    seen = 0
    with browser(served, served.team.admin) as http, client(served) as anonymous:
        for path in pages:
            answer = http.get(fill(path, served, ids), follow_redirects=True)
            assert answer.status_code == 200, path
            assert answer.headers["content-type"].startswith("text/html"), path
            check_headers(answer, path)
            seen += 1
        errors = [
            http.get("/contacts/999999"),  # 404 page
            http.get("/contacts/not-a-number"),  # 422 page
            anonymous.get("/login"),
            anonymous.get("/search"),  # the redirect itself
        ]
        for answer in errors:
            check_headers(answer, str(answer.url))
        with browser(served, served.team.member) as bob:
            forbidden = bob.get("/admin/users")
            assert forbidden.status_code == 403
            check_headers(forbidden, "403")
        api = http.get("/api/v1/me")
        assert api.headers["x-content-type-options"] == "nosniff"
        assert api.headers["cache-control"] == "no-store"
    assert seen >= 6


# -- sign-in throttling and its message


def error_of(html: str) -> str:
    found = re.search(r'<p class="flash error" role="alert">(.*?)</p>', html)
    assert found is not None, html
    return found.group(1)


def post_login(
    http: httpx.Client, email: str, password: str, next: str = "/search"
) -> httpx.Response:
    token = csrf_of(http.get("/login").text)
    form = {"email": email, "password": password, "csrf": token, "next": next}
    return http.post("/login", data=form)


def test_a_wrong_password_does_not_say_whether_the_address_exists(served: Served) -> None:
    with client(served) as http:
        known = post_login(http, served.team.other, "not the password")
        unknown = post_login(http, "nobody@ourteam.example", "not the password")
    assert known.status_code == unknown.status_code == 401
    assert error_of(known.text) == error_of(unknown.text) == LOGIN_ERROR
    assert served.team.other not in known.text
    assert is_login_redirect(http_get_search(served), "/search")


def http_get_search(served: Served) -> httpx.Response:
    with client(served) as http:
        return http.get("/search")


def test_sign_ins_are_throttled(tmp_path: Path) -> None:
    with seeded_database("sqlite", tmp_path) as (url, team):
        web = "login_attempts = 3\n"
        with WebServer(tmp_path, url, web=web) as server, httpx.Client(base_url=server.url) as http:
            for _ in range(3):
                assert post_login(http, team.member, "guess").status_code == 401
            refused = post_login(http, team.member, PASSWORD)
            assert refused.status_code == 429
            wait = int(refused.headers["retry-after"])
            assert 0 < wait <= 15 * 60
            assert "Too many failed sign-ins" in error_of(refused.text)
            assert is_login_redirect(http.get("/search"), "/search")
            other = post_login(http, team.other, PASSWORD)  # the same client: held back too
            assert other.status_code == 429 and "retry-after" in other.headers


# -- redirects after sign-in


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "http://evil.example/search",
        "/\\evil.example",
        "\\\\evil.example",
        "//evil.example/%2e%2e",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/\n/evil.example",
        " //evil.example",
    ],
)
def test_sign_in_never_redirects_away(served: Served, target: str) -> None:
    with client(served) as http:
        answer = post_login(http, served.team.member, PASSWORD, next=target)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/"
        form = http.get("/login", params={"next": target}).text
        assert 'name="next" value="/"' in form


def test_sign_in_returns_to_the_page_asked_for(served: Served) -> None:
    wanted = f"/contacts/{served.team.dana_id}?page=1"
    with client(served) as http:
        first = http.get(wanted)
        assert first.status_code == 303
        target = httpx.URL(first.headers["location"]).params["next"]
        assert target == wanted
        form = http.get("/login", params={"next": target}).text
        assert f'name="next" value="{wanted}"' in form
        answer = post_login(http, served.team.member, PASSWORD, next=target)
        assert answer.headers["location"] == wanted


# -- sessions


def test_sign_out_ends_the_browser_session(served: Served) -> None:
    with browser(served, served.team.member) as http:
        assert http.post("/logout", data={"csrf": csrf(http)}).status_code == 303
        assert is_login_redirect(http.get("/search"), "/search")
        assert http.get("/api/v1/me").status_code == 401


def test_a_cookie_copied_before_sign_out_is_refused_after(served: Served) -> None:
    with browser(served, served.team.member) as http:
        copied = http.cookies[SESSION_COOKIE]
        assert http.post("/logout", data={"csrf": csrf(http)}).status_code == 303
    with client(served, cookies={SESSION_COOKIE: copied}) as replay:
        assert is_login_redirect(replay.get("/search"), "/search")


def test_a_tampered_cookie_is_refused(served: Served, engine: Engine) -> None:
    with browser(served, served.team.member) as http:
        cookie = http.cookies[SESSION_COOKIE]
    payload, signature = cookie.split(".", 1)
    data = json.loads(base64.b64decode(payload))
    assert isinstance(data["uid"], int)
    admin_id = data["uid"] - 1  # Ann was added first
    forged = base64.b64encode(json.dumps({**data, "uid": admin_id}).encode()).decode()
    middle = len(payload) + 1 + len(signature) // 2  # not the last: its low bits are padding
    flipped = cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :]
    for bad in (f"{forged}.{signature}", flipped, "garbage", forged):
        with client(served, cookies={SESSION_COOKIE: bad}) as tampered:
            assert is_login_redirect(tampered.get("/search"), "/search"), bad
            assert tampered.get("/api/v1/me").status_code == 401, bad


# -- roles


def test_members_may_not_open_admin_pages(
    served: Served, ids: Ids, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = app_routes(served.folder / "crm-sync.toml", monkeypatch)
    admin_pages = [r.path for r in routes if r.admin and r.method == "GET"]
    assert len(admin_pages) >= 4
    with browser(served, served.team.member) as bob, browser(served, served.team.admin) as ann:
        for path in admin_pages:
            answer = bob.get(fill(path, served, ids), follow_redirects=True)
            assert answer.status_code == 403, path
            assert "Not allowed" in answer.text
            assert ann.get(fill(path, served, ids), follow_redirects=True).status_code == 200
        assert bob.get("/api/v1/status").status_code == 403
        assert bob.get("/api/v1/status").json() == {"detail": "not allowed"}
        status = ann.get("/api/v1/status")
        assert status.status_code == 200 and isinstance(status.json(), list)
        resolve = bob.post(
            f"/admin/conflicts/{ids.conflict}/resolve", data={"keep": "manual", "csrf": csrf(bob)}
        )
        assert resolve.status_code == 403
        assert conflict_status(engine, ids.conflict) == "open"


# -- hostile text


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def check_inert(html: str, where: str) -> None:
    lowered = html.lower()
    assert "\u202e" not in html, where
    for raw in ("<img", "<svg", "<iframe", "<style", "<link rel=stylesheet", "<object", "<embed"):
        assert raw not in lowered, (where, raw)
    assert lowered.count("<script") == 1, where  # the app's own script file
    parser = Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        assert tag not in {"img", "svg", "iframe", "style", "object", "embed", "base"}, where
        if tag == "script":
            assert attrs.get("src") == "/static/app.js", where
        if tag == "link":
            assert (attrs.get("rel"), attrs.get("href")) == ("stylesheet", "/static/app.css")
        for name, value in attrs.items():
            assert not name.startswith("on"), (where, tag, name)
            if name in {"href", "src", "action", "formaction"} and value is not None:
                assert not re.sub(r"\s", "", value).lower().startswith("javascript:"), (where, tag)


def test_hostile_text_on_admin_pages_is_shown_as_text(served: Served, engine: Engine) -> None:
    """A conflict whose both sides are hostile: the conflicts page, the contact's open
    conflicts, the audit log and the flash after resolving it."""
    sessions = sessionmaker(engine)
    with sessions() as session:
        seen = snapshot(session, "mallory@evil.example")
        assert seen is not None
    for n, who in enumerate((served.team.admin, served.team.member)):
        set_fields(
            sessions,
            "mallory@evil.example",
            {"title": f"{HOSTILE} {n}"},
            user=f"user:{who}",
            base=seen,
        )
    with browser(served, served.team.admin) as ann:
        conflicts = ann.get("/admin/conflicts")
        assert "&lt;script&gt;" in conflicts.text
        for where in ("/admin/conflicts", f"/contacts/{served.team.hostile_id}", "/admin/audit"):
            answer = ann.get(where)
            assert answer.status_code == 200, where
            check_inert(answer.text, where)
        opened = re.findall(r'action="/admin/conflicts/(\d+)/resolve"', conflicts.text)
        assert opened
        resolved = ann.post(
            f"/admin/conflicts/{opened[-1]}/resolve",
            data={"keep": "manual", "csrf": csrf_of(conflicts.text)},
            follow_redirects=True,
        )
        assert resolved.status_code == 200
        assert "resolved: title = &lt;script&gt;" in resolved.text
        check_inert(resolved.text, "flash")


def test_hostile_text_is_shown_as_text(served: Served) -> None:
    hostile = served.team.hostile_id
    with browser(served, served.team.member) as bob:
        pages = {
            "contact": bob.get(f"/contacts/{hostile}"),
            "search": bob.get("/search", params={"q": "mallory"}),
            "results": bob.get("/search/results", params={"q": "evil"}),
            "activity": bob.get("/activity"),
        }
        for where, answer in pages.items():
            assert answer.status_code == 200, where
            check_inert(answer.text, where) if where != "results" else check_fragment(answer.text)
        assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in pages["contact"].text
        assert "&lt;script&gt;" in pages["search"].text

        api = bob.get(f"/api/v1/contacts/{hostile}")
        assert api.status_code == 200
        assert api.headers["content-type"] == "application/json"
        assert api.headers["x-content-type-options"] == "nosniff"
        assert api.json()["name"] == HOSTILE
        entry = api.json()["timeline"]["entries"][0]
        assert entry["subject"] == entry["snippet"] == HOSTILE


def check_fragment(html: str) -> None:
    """The search results alone: no page around them, so not even the app's script."""
    assert "\u202e" not in html
    lowered = html.lower()
    for raw in ("<script", "<img", "<svg", "<iframe", "<style", "<link"):
        assert raw not in lowered, raw


def test_google_sign_in_is_off_unless_configured(served: Served) -> None:
    with client(served) as http:
        assert "/login/google" not in http.get("/login").text
        for path in ("/login/google", "/login/google/callback?code=x&state=y"):
            answer = http.get(path)
            assert answer.status_code == 403, path
            check_headers(answer, path)
        assert is_login_redirect(http.get("/search"), "/search")


def test_a_private_thread_stays_off_other_members_pages(served: Served) -> None:
    team = served.team
    secret = (team.private_subject, "Personal matter")
    pages = (f"/contacts/{team.dana_id}", f"/companies/{team.company_id}", "/activity")
    with browser(served, team.member) as bob, browser(served, team.other) as cat:
        for path in pages:
            answer = bob.get(path)
            assert answer.status_code == 200, path
            assert not any(text in answer.text for text in secret), path
        assert team.private_subject in cat.get(f"/contacts/{team.dana_id}").text
