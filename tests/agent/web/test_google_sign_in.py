"""Signing in with Google (OpenID Connect) against the fake Google issuer, over real HTTP.

``crm-sync serve`` discovers the fake's endpoints from ``[web] google_issuer``,
sends the browser to its consent screen, and takes the code back at
``/login/google/callback``. Only people in the users table get in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from agent.web.asgi import SESSION_COOKIE
from tests.support.fake_google.server import FakeGoogle
from tests.support.web import Team, WebServer, csrf_of, seeded_database

CLIENT_ID, CLIENT_SECRET = "crm-sync-web", "crm-sync-web-secret"


@dataclass(frozen=True)
class Site:
    url: str
    team: Team
    fake: FakeGoogle


@pytest.fixture
def site(fake_google: FakeGoogle, tmp_path: Path) -> Iterator[Site]:
    """The seeded team's app (SQLite), signing in with Google at the fake."""
    fake_google.clients[CLIENT_ID] = CLIENT_SECRET
    with seeded_database("sqlite", tmp_path) as (url, team):
        server = WebServer(tmp_path, url)
        web = (
            f'google_client_id = "{CLIENT_ID}"\n'
            f'google_client_secret = "{CLIENT_SECRET}"\n'
            f'google_issuer = "{fake_google.oidc_issuer}"\n'
            f'base_url = "{server.url}"\n'
        )
        server.config.write_text(server.config.read_text() + web)
        with server:
            yield Site(server.url, team, fake_google)


def browser(site: Site) -> httpx.Client:
    return httpx.Client(base_url=site.url, trust_env=False, timeout=30, follow_redirects=False)


def to_google(http: httpx.Client, site: Site, next: str | None = None) -> httpx.URL:
    """``/login/google``, then the fake's consent screen: the callback URL it sends back to."""
    start = http.get("/login/google", params={"next": next} if next else None)
    assert start.status_code == 302, start.text
    authorize = httpx.URL(start.headers["location"])
    assert str(authorize).startswith(site.fake.url + "/o/oauth2/auth?")
    params = authorize.params
    assert params["client_id"] == CLIENT_ID
    assert params["redirect_uri"] == site.url + "/login/google/callback"
    assert set(params["scope"].split()) == {"openid", "email", "profile"}
    assert params["code_challenge_method"] == "S256" and params["state"] and params["nonce"]
    consent = http.get(authorize)  # the cookie jar is scoped by host: the app's stays put
    assert consent.status_code == 302, consent.text
    back = httpx.URL(consent.headers["location"])
    assert str(back).startswith(site.url + "/login/google/callback?")
    assert back.params["state"] == params["state"] and back.params["code"]
    return back


def error_of(html: str) -> str:
    marker = '<p class="flash error" role="alert">'
    start = html.index(marker) + len(marker)
    return html[start : html.index("</p>", start)]


def test_the_login_page_offers_google(site: Site) -> None:
    with browser(site) as http:
        assert "/login/google?" in http.get("/login", params={"next": "/activity"}).text


def test_a_user_signs_in_with_google(site: Site) -> None:
    site.fake.sign_in_next(site.team.member)
    with browser(site) as http:
        back = to_google(http, site, next="/activity")
        done = http.get(back)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/activity"
        page = http.get("/search")
        assert page.status_code == 200
        assert f'<span class="who">{site.team.member}</span>' in page.text
        assert f"Signed in as {site.team.member}." in page.text
        assert http.get("/api/v1/me").json() == {"email": site.team.member, "role": "member"}
        assert http.get(back).status_code == 401  # the code and state are spent
    assert [c.api_method for c in site.fake.log if c.api_method.startswith("oauth2.")] == [
        "oauth2.auth",
        "oauth2.token",
    ]


def test_a_google_account_without_a_user_is_refused(site: Site) -> None:
    site.fake.sign_in_next("stranger@else.example")
    with browser(site) as http:
        refused = http.get(to_google(http, site))
        assert refused.status_code == 403
        assert "stranger@else.example has no account here" in error_of(refused.text)
        assert http.get("/search").status_code == 303
        assert http.get("/api/v1/me").status_code == 401


def test_a_wrong_state_is_refused(site: Site) -> None:
    site.fake.sign_in_next(site.team.member)
    with browser(site) as http:
        back = to_google(http, site)
        forged = back.copy_set_param("state", "not-the-state")
        refused = http.get(forged)
        assert refused.status_code == 401
        assert "Google sign-in failed" in error_of(refused.text)
        assert http.get("/search").status_code == 303
    assert "oauth2.token" not in [c.api_method for c in site.fake.log]


def test_a_callback_from_another_browser_is_refused(site: Site) -> None:
    """The code and state were handed to Bob's browser; an attacker's browser replaying that
    URL (login CSRF, or a leaked callback URL) has no matching state in its session."""
    site.fake.sign_in_next(site.team.member)
    with browser(site) as bob, browser(site) as attacker:
        back = to_google(bob, site)
        csrf_of(attacker.get("/login").text)  # an ordinary anonymous session
        refused = attacker.get(back)
        assert refused.status_code == 401
        assert SESSION_COOKIE in attacker.cookies
        assert attacker.get("/search").status_code == 303
