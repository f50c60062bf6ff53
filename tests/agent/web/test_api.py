"""The JSON API under ``/api/v1`` read with personal tokens, over real HTTP on both databases."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, update

from storage.db import session_factory, transaction
from storage.models import ApiToken, Interaction, utcnow
from storage.users import create_token, revoke_token
from tests.agent.web.conftest import Served
from tests.agent.web.test_security import app_routes

API_PATHS = {
    "/api/v1/me",
    "/api/v1/search",
    "/api/v1/contacts/{contact_id}",
    "/api/v1/contacts/{contact_id}/interactions",
    "/api/v1/companies/{company_id}",
    "/api/v1/interactions/{interaction_id}",
    "/api/v1/status",
    "/api/v1/reports/activity",
    "/api/v1/reports/cooling",
    "/api/v1/reports/coverage",
    "/api/v1/reports/sources",
    "/api/v1/tags",
    "/api/v1/segments",
    "/api/v1/segments/{name}",
    "/api/v1/contacts/{contact_id}/tags",
    "/api/v1/contacts/{contact_id}/tags/{tag}",
}
WRITES = {
    "/api/v1/contacts/{contact_id}/tags": {"post"},
    "/api/v1/contacts/{contact_id}/tags/{tag}": {"delete"},
}
"""The paths that change something; every other one only reads."""
"""Every API path, as written down here: a new one must be added (and tested) by hand."""


@dataclass(frozen=True)
class Tokens:
    bob: str
    cat: str
    ann: str
    revoked: str
    shared: int
    private: int


def new_token(engine: Engine, email: str, name: str, *, used: bool) -> str:
    """A token as ``crm-sync tokens create`` makes it; ``used``: as if just used, so that
    reading with it writes nothing for minutes (see ``test_a_new_token_read_in_parallel``)."""
    with transaction(session_factory(engine)) as session:
        token = create_token(session, email, name, actor="user:test")
        if used:
            session.execute(
                update(ApiToken).where(ApiToken.name == name).values(last_used_at=utcnow())
            )
    return token


@pytest.fixture(scope="module")
def tokens(served: Served, engine: Engine) -> Tokens:
    team = served.team
    bob = new_token(engine, team.member, "laptop", used=True)
    cat = new_token(engine, team.other, "laptop", used=True)
    ann = new_token(engine, team.admin, "laptop", used=True)
    revoked = new_token(engine, team.member, "old", used=True)
    with transaction(session_factory(engine)) as session:
        assert revoke_token(session, team.member, "old", actor="user:test") == 1
        shared, private = (
            session.scalars(select(Interaction.id).where(Interaction.subject == s)).one()
            for s in (team.shared_subject, team.private_subject)
        )
    return Tokens(bob, cat, ann, revoked, shared, private)


def api(served: Served, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=served.url,
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=30,
    )


def get(http: httpx.Client, path: str, **params: Any) -> Any:
    answer = http.get(path, params=params)
    assert answer.status_code == 200, (path, answer.status_code, answer.text)
    assert answer.headers["content-type"] == "application/json"
    return answer.json()


def test_a_token_reads_the_api(served: Served, tokens: Tokens) -> None:
    team = served.team
    with api(served, tokens.bob) as bob:
        assert get(bob, "/api/v1/me") == {"email": team.member, "role": "member"}

        found = get(bob, "/api/v1/search", q="acme")
        assert found["query"] == "acme"
        assert [(c["id"], c["name"]) for c in found["contacts"]] == [
            (team.dana_id, "Dana Whitfield")
        ]
        assert [(c["id"], c["name"]) for c in found["companies"]] == [
            (team.company_id, "Acme Widgets")
        ]

        dana = get(bob, f"/api/v1/contacts/{team.dana_id}")
        assert dana["id"] == team.dana_id and dana["name"] == "Dana Whitfield"
        assert dana["emails"] == ["dana@acme.example"]
        assert dana["company_id"] == team.company_id
        assert {f["name"]: f["value"] for f in dana["fields"]}["title"] == "CFO"

        timeline = get(bob, f"/api/v1/contacts/{team.dana_id}/interactions")
        subjects = [e["subject"] for e in timeline["entries"]]
        assert subjects == ["Re: " + team.shared_subject, team.shared_subject]
        assert timeline["page"] == 1 and timeline["has_more"] is False

        acme = get(bob, f"/api/v1/companies/{team.company_id}")
        assert acme["name"] == "Acme Widgets"
        assert "acme.example" in str(acme)

        one = get(bob, f"/api/v1/interactions/{tokens.shared}")
        assert one["id"] == tokens.shared and one["subject"] == team.shared_subject
        assert {p["email"] for p in one["people"]} == {"dana@acme.example", team.member}


def test_wrong_and_revoked_tokens_are_refused(served: Served, tokens: Tokens) -> None:
    wrong = tokens.bob[:-2] + ("AA" if not tokens.bob.endswith("AA") else "BB")
    for token in (wrong, tokens.revoked, "crm_", "not-even-a-crm-token", tokens.bob + " x"):
        with api(served, token) as http:
            for path in ("/api/v1/me", f"/api/v1/contacts/{served.team.dana_id}"):
                answer = http.get(path)
                assert answer.status_code == 401, (token, path)
                assert answer.headers["www-authenticate"].startswith("Bearer")
                assert "Dana" not in answer.text


def test_a_private_interaction_is_its_owners_only(served: Served, tokens: Tokens) -> None:
    team = served.team
    timeline = f"/api/v1/contacts/{team.dana_id}/interactions"
    with api(served, tokens.bob) as bob, api(served, tokens.cat) as cat:
        bobs = get(bob, timeline)
        assert tokens.private not in [e["id"] for e in bobs["entries"]]
        assert team.private_subject not in bob.get(timeline).text
        assert bobs["hidden"] == 1
        refused = bob.get(f"/api/v1/interactions/{tokens.private}")
        assert refused.status_code == 404
        assert team.private_subject not in refused.text
        profile = bob.get(f"/api/v1/contacts/{team.dana_id}").text
        assert team.private_subject not in profile and "Personal matter" not in profile
        company = bob.get(f"/api/v1/companies/{team.company_id}").text
        assert team.private_subject not in company and "Personal matter" not in company

        cats = get(cat, timeline)
        assert tokens.private in [e["id"] for e in cats["entries"]]
        own = get(cat, f"/api/v1/interactions/{tokens.private}")
        assert own["subject"] == team.private_subject
        assert own["visibility"] == "private"


def test_missing_things_are_404(served: Served, tokens: Tokens) -> None:
    with api(served, tokens.bob) as bob:
        for path in (
            "/api/v1/contacts/999999",
            "/api/v1/contacts/999999/interactions",
            "/api/v1/companies/999999",
            "/api/v1/interactions/999999",
        ):
            answer = bob.get(path)
            assert answer.status_code == 404, path
            assert answer.headers["content-type"] == "application/json"
        bad = bob.get("/api/v1/contacts/x")
        assert bad.status_code == 422 and "detail" in bad.json()


def test_status_is_for_admins(served: Served, tokens: Tokens) -> None:
    with api(served, tokens.bob) as bob, api(served, tokens.ann) as ann:
        assert bob.get("/api/v1/status").status_code == 403
        connectors = get(ann, "/api/v1/status")
        assert isinstance(connectors, list) and len(connectors) == 3


def test_the_openapi_document_lists_every_path(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    with httpx.Client(base_url=served.url, trust_env=False) as http:
        answer = http.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    assert document["openapi"].startswith("3.")
    routes = app_routes(served.folder / "crm-sync.toml", monkeypatch)
    assert set(document["paths"]) == {r.path for r in routes if r.api} == API_PATHS
    for path, operations in document["paths"].items():
        assert set(operations) == WRITES.get(path, {"get"}), path
    schemes = document.get("components", {}).get("securitySchemes", {})
    assert any(
        s.get("type") == "http" and s.get("scheme", "").lower() == "bearer"
        for s in schemes.values()
    )


def test_a_new_token_read_in_parallel(served: Served, engine: Engine) -> None:
    """A script's first calls with a new token (or one unused for 5 minutes), a few at a
    time: each request notes the token's last use, and none may fail for it."""

    def status(http: httpx.Client) -> int | str:
        try:
            return http.get(f"/api/v1/contacts/{served.team.dana_id}").status_code
        except httpx.TransportError as exc:  # seen too: the connection reset mid-answer
            return type(exc).__name__

    statuses: list[int | str] = []
    for n in range(10):
        token = new_token(engine, served.team.member, f"script-{n}", used=False)
        with api(served, token) as http, ThreadPoolExecutor(6) as pool:
            statuses += pool.map(status, [http] * 6)
    assert statuses == [200] * 60
