"""The Microsoft connectors over the fake Graph server: one app registration, real MSAL.

``graph`` is a started :class:`~tests.support.fake_graph.FakeGraph` with an app
holding every application permission the connectors use, a read-basic-only
app and a public client for the device code flow; requests (and so MSAL and
the Graph client) trust the fake's certificate through ``REQUESTS_CA_BUNDLE``,
the variable an admin behind a TLS-inspecting proxy sets as well.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from connectors.microsoft.auth import AppTokens, Tenant
from connectors.microsoft.graph import GraphClient
from tests.support.fake_graph import FakeGraph

APP = "11111111-aaaa-bbbb-cccc-000000000001"
BASIC_APP = "11111111-aaaa-bbbb-cccc-000000000002"
PUBLIC_APP = "11111111-aaaa-bbbb-cccc-000000000003"
SECRET = "app-secret"
ALICE = "alice@contoso.com"
BOB = "bob@contoso.com"


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGraph]:
    with FakeGraph(seed=11) as fake:
        fake.add_app(
            APP,
            secret=SECRET,
            app_permissions={"Mail.Read", "User.Read.All", "Calendars.Read"},
        )
        fake.add_app(BASIC_APP, secret=SECRET, app_permissions={"Mail.ReadBasic.All"})
        fake.add_app(
            PUBLIC_APP,
            delegated_permissions={"User.Read", "Mail.ReadBasic", "Mail.Read", "Calendars.Read"},
        )
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_file)
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        yield fake


def tenant(fake: FakeGraph, client_id: str = APP) -> Tenant:
    return Tenant(fake.tenant_id, client_id, fake.url)


def no_sleep(_seconds: float) -> None:
    return None


def app_client(fake: FakeGraph, client_id: str = APP, **options: object) -> GraphClient:
    """A Graph client with app-only tokens; retries do not wait (``sleep`` is a no-op)."""
    tokens = AppTokens(tenant(fake, client_id), SECRET, hint="grant the app its permission")
    settings: dict[str, object] = {"sleep": no_sleep, **options}
    return GraphClient(tokens, fake.graph_url, **settings)  # type: ignore[arg-type]


def approve_when_asked(fake: FakeGraph, upn: str, timeout: float = 20.0) -> threading.Thread:
    """``upn`` enters the device code on "another device" as soon as a flow is pending."""

    def approve() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                fake.approve_device_code(upn)
                return
            except LookupError:
                time.sleep(0.05)

    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    return thread
