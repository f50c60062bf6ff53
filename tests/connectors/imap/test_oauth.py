"""IMAP with OAuth (SASL XOAUTH2), from the config file to a real Dovecot.

An ``imap`` connector with ``auth = "oauth"`` logs in with the access token of
the grant kept in the encrypted token store: Google's authorized-user record
(scope ``https://mail.google.com/``) or Microsoft's MSAL cache from the device
code flow (``IMAP.AccessAsUser.All``). Gmail and Outlook check such a token
against their own identity platform; here Dovecot's oauth2 passdb asks a token
introspection endpoint (RFC 7662) that answers from the fake Google and
Microsoft identity platforms that issued the tokens, so a revoked token is
refused at the IMAP login as the providers refuse it.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from agent.mail.text import parse_mime
from agent.runtime.registry import IMAP_GOOGLE_SCOPE, build_connector, token_store
from config import ConfigError, load_settings
from config.schema import ImapConnector as ImapConfig
from config.schema import Settings
from config.secrets import ensure_key_file
from connectors.errors import AuthError
from connectors.microsoft.auth import IMAP_SCOPES, Tenant, device_code_grant
from connectors.records import Connector, MailMessage
from tests.support.dovecot import DovecotServer, DovecotUnavailable, ImapUser, running_dovecot
from tests.support.fake_google.server import FakeGoogle
from tests.support.fake_graph import FakeGraph
from tests.support.graph_connectors import graph
from tests.support.server_fixtures import IMAP_USERS
from tests.support.servers import need_server
from tests.support.token_introspection import (
    OUTLOOK_IMAP_SCOPE,
    TokenIntrospection,
    google_imap_tokens,
    outlook_imap_tokens,
)

__all__ = ["graph"]

NAME = "ann-imap"
IMAP_APP = "22222222-aaaa-bbbb-cccc-000000000001"
"""A public client registration holding Outlook's IMAP delegated permission."""
DOVECOT_CLIENT = ("dovecot", "introspection-secret")


def _nobody(_token: str) -> str | None:
    return None


@pytest.fixture(scope="module")
def introspection() -> Iterator[TokenIntrospection]:
    """The endpoint Dovecot checks tokens at; each test points it at its own fake."""
    with TokenIntrospection(_nobody, client=DOVECOT_CLIENT) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def oauth_dovecot(introspection: TokenIntrospection) -> Iterator[DovecotServer]:
    """The module's Dovecot taking XOAUTH2 and OAUTHBEARER as well as passwords."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(
                running_dovecot(IMAP_USERS, oauth_introspection_url=introspection.dovecot_url())
            )
        except DovecotUnavailable as exc:
            need_server(str(exc))
        yield server


@pytest.fixture
def google_tokens(
    introspection: TokenIntrospection, fake_google: FakeGoogle
) -> Iterator[FakeGoogle]:
    introspection.check = google_imap_tokens(fake_google)
    yield fake_google
    introspection.check = _nobody


@pytest.fixture
def outlook_tokens(introspection: TokenIntrospection, graph: FakeGraph) -> Iterator[FakeGraph]:
    graph.add_app(IMAP_APP, delegated_permissions={OUTLOOK_IMAP_SCOPE})
    introspection.check = outlook_imap_tokens(graph)
    yield graph
    introspection.check = _nobody


def _message(n: int) -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {n} <customer{n}@acme.test>"
    message["To"] = "user@example.com"
    message["Subject"] = f"Order {n}"
    message["Message-ID"] = f"<order-{n}@acme.test>"
    message["Date"] = "Mon, 06 May 2024 10:00:00 +0000"
    message.set_content(f"Hello, about order {n}.\n")
    return message.as_bytes()


def _settings(tmp_path: Path, lines: str) -> Settings:
    """The config file an admin writes, read as the agent reads it, with a key for
    the token store beside it."""
    ensure_key_file(tmp_path / "crm-sync.key")
    path = tmp_path / "crm-sync.toml"
    path.write_text(f'[[connectors]]\nname = "{NAME}"\nkind = "imap"\n{lines}\n')
    settings, _ = load_settings(path)
    return settings


def _imap_lines(server: DovecotServer, user: ImapUser, provider: str) -> str:
    return (
        f'account = "{user.address}"\nhost = "{server.host}"\nport = {server.port}\n'
        f'security = "plain"\nauth = "oauth"\nprovider = "{provider}"\n'
    )


def _google_settings(
    tmp_path: Path, server: DovecotServer, user: ImapUser, fake: FakeGoogle
) -> tuple[Settings, str]:
    """A Google grant of Gmail's IMAP scope, stored as ``connectors auth`` stores it;
    with its refresh token."""
    settings = _settings(tmp_path, _imap_lines(server, user, "google"))
    refresh_token = fake.issue_refresh_token(user.login, [IMAP_GOOGLE_SCOPE])
    record = {
        "refresh_token": refresh_token,
        "client_id": "test-client",
        "client_secret": "test-secret",
        "token_uri": fake.token_uri,
    }
    token_store(settings, tmp_path).save(NAME, record)
    return settings, refresh_token


def _microsoft_settings(
    tmp_path: Path, server: DovecotServer, user: ImapUser, fake: FakeGraph
) -> Settings:
    """A Microsoft grant from the device code flow, the user entering the code shown."""
    fake.add_user(user.login, "Mailbox User")
    settings = _settings(
        tmp_path,
        _imap_lines(server, user, "microsoft")
        + f'tenant = "{fake.tenant_id}"\nclient_id = "{IMAP_APP}"\n'
        f'authority_host = "{fake.url}"\n',
    )
    config = settings.connectors[0]
    assert isinstance(config, ImapConfig)
    assert config.tenant is not None and config.client_id is not None

    def enter_code(message: str) -> None:
        code = re.search(r"enter the code (\w+)", message)
        assert code is not None, message
        fake.approve_device_code(user.login, code.group(1))

    tenant = Tenant(config.tenant, config.client_id, config.authority_host)
    record = device_code_grant(tenant, IMAP_SCOPES, say=enter_code)
    assert record["account"] == user.login
    token_store(settings, tmp_path).save(NAME, record)
    return settings


def _fetch(settings: Settings, base: Path) -> list[str]:
    """Build the connector from the config, as the agent does each run, and read it all."""
    connector: Connector = build_connector(settings.connectors[0], settings, base)
    return [
        str(parse_mime(item.raw)["Subject"])
        for batch in connector.fetch(None)
        for item in batch.items
        if isinstance(item, MailMessage)
    ]


def _logins(server: DovecotServer, user: ImapUser, method: str, expected: int = 1) -> int:
    """Successful logins of ``user`` with ``method`` in Dovecot's log, waiting a moment
    for ``expected`` of them (another process writes the log)."""
    line = f"Login: user=<{user.login}>, method={method},"
    deadline = time.monotonic() + 5
    while (count := server.log_path.read_text().count(line)) < expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return count


def _stored(settings: Settings, base: Path) -> dict[str, Any]:
    record = token_store(settings, base).load(NAME)
    assert record is not None
    return record


# -- logging in with a grant ----------------------------------------------------------------


def test_a_google_grant_logs_in_with_xoauth2_and_reads_the_mailbox(
    oauth_dovecot: DovecotServer,
    introspection: TokenIntrospection,
    google_tokens: FakeGoogle,
    imap_user: ImapUser,
    tmp_path: Path,
) -> None:
    oauth_dovecot.append(imap_user, "INBOX", [_message(1), _message(2)])
    settings, _ = _google_settings(tmp_path, oauth_dovecot, imap_user, google_tokens)

    assert _fetch(settings, tmp_path) == ["Order 1", "Order 2"]

    assert [c.status for c in google_tokens.log if c.api_method == "oauth2.token"] == [200]
    token = _stored(settings, tmp_path)["token"]
    assert [(q.token, q.username) for q in introspection.questions(token)] == [
        (token, imap_user.login)
    ]
    assert _logins(oauth_dovecot, imap_user, "XOAUTH2") == 1


def test_a_microsoft_grant_from_the_device_code_flow_logs_in_with_xoauth2(
    oauth_dovecot: DovecotServer,
    introspection: TokenIntrospection,
    outlook_tokens: FakeGraph,
    imap_user: ImapUser,
    tmp_path: Path,
) -> None:
    oauth_dovecot.append(imap_user, "INBOX", [_message(3)])
    oauth_dovecot.append(imap_user, "Sent", [_message(4)])
    settings = _microsoft_settings(tmp_path, oauth_dovecot, imap_user, outlook_tokens)

    assert _fetch(settings, tmp_path) == ["Order 3", "Order 4"]

    [asked] = [q for q in introspection.questions() if q.username == imap_user.login]
    assert asked.mode == "post"
    assert _logins(oauth_dovecot, imap_user, "XOAUTH2") == 1
    assert _fetch(settings, tmp_path) == ["Order 3", "Order 4"]
    assert _logins(oauth_dovecot, imap_user, "XOAUTH2", expected=2) == 2
    grants = [c for c in outlook_tokens.log if c.endpoint == "identity.token"]
    assert len(grants) == 1, "the second run reuses the cached access token"


# -- a grant that no longer works -----------------------------------------------------------


def test_a_revoked_google_grant_is_an_auth_error(
    oauth_dovecot: DovecotServer,
    introspection: TokenIntrospection,
    google_tokens: FakeGoogle,
    imap_user: ImapUser,
    tmp_path: Path,
) -> None:
    oauth_dovecot.append(imap_user, "INBOX", [_message(5)])
    settings, refresh_token = _google_settings(tmp_path, oauth_dovecot, imap_user, google_tokens)
    assert _fetch(settings, tmp_path) == ["Order 5"]
    token = _stored(settings, tmp_path)["token"]

    google_tokens.revoke(refresh_token)
    # The stored access token has not expired: Dovecot is offered it and refuses it.
    with pytest.raises(AuthError, match="IMAP login refused") as refused:
        _fetch(settings, tmp_path)
    assert refused.value.hint == f"run `crm-sync connectors auth {NAME}` to renew the OAuth grant"
    assert [q.active for q in introspection.questions(token)] == [True, False]

    # Once it has, the refresh is refused before any login.
    token_store(settings, tmp_path).save(
        NAME, {k: v for k, v in _stored(settings, tmp_path).items() if k not in ("token", "expiry")}
    )
    with pytest.raises(AuthError, match="invalid_grant") as refreshing:
        _fetch(settings, tmp_path)
    assert refreshing.value.hint and NAME in refreshing.value.hint
    assert _logins(oauth_dovecot, imap_user, "XOAUTH2") == 1


def test_a_revoked_microsoft_grant_is_an_auth_error(
    oauth_dovecot: DovecotServer,
    introspection: TokenIntrospection,
    outlook_tokens: FakeGraph,
    imap_user: ImapUser,
    tmp_path: Path,
) -> None:
    oauth_dovecot.append(imap_user, "INBOX", [_message(6)])
    settings = _microsoft_settings(tmp_path, oauth_dovecot, imap_user, outlook_tokens)
    assert _fetch(settings, tmp_path) == ["Order 6"]
    [asked] = [q for q in introspection.questions() if q.username == imap_user.login]

    outlook_tokens.revoke(imap_user.login)
    with pytest.raises(AuthError, match="IMAP login refused") as refused:
        _fetch(settings, tmp_path)
    assert refused.value.hint == f"run `crm-sync connectors auth {NAME}` to renew the OAuth grant"
    assert [q.active for q in introspection.questions(asked.token)] == [True, False]
    assert _logins(oauth_dovecot, imap_user, "XOAUTH2") == 1


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_without_a_stored_grant_the_error_names_the_auth_command(
    oauth_dovecot: DovecotServer, imap_user: ImapUser, provider: str, tmp_path: Path
) -> None:
    extra = 'tenant = "contoso.onmicrosoft.com"\nclient_id = "app"\n'
    lines = _imap_lines(oauth_dovecot, imap_user, provider)
    settings = _settings(tmp_path, lines + (extra if provider == "microsoft" else ""))
    with pytest.raises(AuthError) as caught:
        _fetch(settings, tmp_path)
    assert caught.value.hint == f"run `crm-sync connectors auth {NAME}`"


# -- the config -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        ('auth = "oauth"', "provider"),
        ('auth = "oauth"\nprovider = "google"\npassword = "hunter2"', "password"),
        ('auth = "oauth"\nprovider = "microsoft"\nclient_id = "app"', "tenant"),
        ('auth = "oauth"\nprovider = "microsoft"\ntenant = "contoso.com"', "client_id"),
        ('auth = "oauth"\nprovider = "yahoo"', "provider"),
        ('auth = "token"', "auth"),
    ],
    ids=[
        "no-provider",
        "password-too",
        "microsoft-without-tenant",
        "microsoft-without-client-id",
        "unknown-provider",
        "unknown-auth",
    ],
)
def test_an_incomplete_oauth_config_names_the_key(tmp_path: Path, lines: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(tmp_path, f'account = "ann@example.com"\nhost = "imap.example.com"\n{lines}')
    [problem] = caught.value.problems
    assert named in problem
    assert "hunter2" not in str(caught.value)


# -- the test server itself -----------------------------------------------------------------


def test_the_oauth_server_still_takes_passwords_and_takes_oauthbearer(
    oauth_dovecot: DovecotServer,
    introspection: TokenIntrospection,
    google_tokens: FakeGoogle,
    imap_user: ImapUser,
) -> None:
    token = google_tokens.issue_access_token(imap_user.login, [IMAP_GOOGLE_SCOPE])
    other = google_tokens.issue_access_token(imap_user.login, ["email"])
    with oauth_dovecot.client(imap_user) as client:
        assert client.select_folder("INBOX")
    for secret, accepted in ((token, True), (other, False), (imap_user.password, False)):
        client = IMAPClient(oauth_dovecot.host, port=oauth_dovecot.port, ssl=False, timeout=30)
        try:
            if accepted:
                client.oauthbearer_login(imap_user.login, secret)
                assert client.select_folder("INBOX")
            else:
                with pytest.raises(LoginError):
                    client.oauthbearer_login(imap_user.login, secret)
        finally:
            with contextlib.suppress(Exception):
                client.logout()
    assert _logins(oauth_dovecot, imap_user, "OAUTHBEARER") == 1
    assert _logins(oauth_dovecot, imap_user, "PLAIN") == 1
    assert introspection.refused_callers == 0
