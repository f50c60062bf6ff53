"""Google credentials against the fake token endpoint: service accounts, user tokens, consent."""

from __future__ import annotations

import io
import json
import re
import sys
import threading
import urllib.request
import webbrowser
from pathlib import Path
from typing import Any

import google_auth_httplib2
import httplib2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2.credentials import Credentials

from connectors.errors import AuthError
from connectors.google.auth import (
    GMAIL_METADATA_SCOPE,
    GMAIL_READONLY_SCOPE,
    GOOGLE_TOKEN_URI,
    authorized_user_info,
    gmail_scopes,
    reauth_hint,
    refresh_now,
    run_oauth_flow,
    service_account_credentials,
    user_credentials,
)
from connectors.google.gmail import GmailConnector
from tests.support.fake_google.mailbox import Mailbox, make_email
from tests.support.fake_google.oauth import write_service_account_key
from tests.support.fake_google.server import FakeGoogle

ACCOUNT = "alice@example.com"
SA_EMAIL = "crm-sync@test-project.iam.gserviceaccount.com"


def no_sleep(_seconds: float) -> None:
    return None


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def mailbox(fake_google: FakeGoogle) -> Mailbox:
    box = fake_google.add_mailbox(ACCOUNT)
    box.add_message(make_email(subject="hello"))
    return box


@pytest.fixture
def key_file(fake_google: FakeGoogle, tmp_path: Path, private_key: rsa.RSAPrivateKey) -> Path:
    key = write_service_account_key(
        tmp_path / "sa.json",
        token_uri=fake_google.token_uri,
        client_email=SA_EMAIL,
        key=private_key,
    )
    fake_google.add_service_account(SA_EMAIL, key.public_key, [GMAIL_METADATA_SCOPE])
    return key.path


def http_request() -> google_auth_httplib2.Request:
    return google_auth_httplib2.Request(httplib2.Http(proxy_info=None, timeout=10))


@pytest.mark.parametrize(
    ("mode", "scopes"),
    [("metadata", [GMAIL_METADATA_SCOPE]), ("readonly", [GMAIL_READONLY_SCOPE])],
    ids=["metadata", "readonly"],
)
def test_one_least_privilege_scope_per_mode(mode: Any, scopes: list[str]) -> None:
    assert gmail_scopes(mode) == scopes


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown Gmail mode"):
        gmail_scopes("full")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- service accounts


def test_service_account_syncs_through_a_jwt_grant(
    fake_google: FakeGoogle, mailbox: Mailbox, key_file: Path
) -> None:
    credentials = service_account_credentials(key_file, gmail_scopes("metadata"), ACCOUNT)
    connector = GmailConnector(
        "alice-gmail", ACCOUNT, credentials, api_endpoint=fake_google.url, sleep=no_sleep
    )
    items = [item for batch in connector.fetch(None) for item in batch.items]
    assert len(items) == 1
    assert fake_google.log[0].api_method == "oauth2.token" and fake_google.log[0].status == 200
    assert {c.account for c in fake_google.api_calls()} == {ACCOUNT}


@pytest.mark.parametrize(
    ("subject", "scopes", "message"),
    [
        ("nobody@example.com", [GMAIL_METADATA_SCOPE], "invalid_grant"),
        (ACCOUNT, [GMAIL_READONLY_SCOPE], "unauthorized_client"),
    ],
    ids=["unknown-mailbox", "scope-not-delegated"],
)
def test_service_account_refusals_are_auth_errors(
    fake_google: FakeGoogle,
    mailbox: Mailbox,
    key_file: Path,
    subject: str,
    scopes: list[str],
    message: str,
) -> None:
    credentials = service_account_credentials(key_file, scopes, subject)
    mode: Any = "readonly" if GMAIL_READONLY_SCOPE in scopes else "metadata"
    connector = GmailConnector(
        "alice-gmail", subject, credentials, mode=mode, api_endpoint=fake_google.url, sleep=no_sleep
    )
    with pytest.raises(AuthError, match=message) as raised:
        list(connector.fetch(None))
    assert "domain-wide delegation" in raised.value.hint
    assert SA_EMAIL in raised.value.hint


def test_unreadable_key_file_is_an_auth_error(tmp_path: Path) -> None:
    (tmp_path / "sa.json").write_text(json.dumps({"type": "service_account"}))
    with pytest.raises(AuthError, match=r"sa\.json"):
        service_account_credentials(tmp_path / "sa.json", [GMAIL_METADATA_SCOPE], ACCOUNT)
    with pytest.raises(AuthError, match=r"missing\.json"):
        service_account_credentials(tmp_path / "missing.json", [GMAIL_METADATA_SCOPE], ACCOUNT)


# --------------------------------------------------------------------------- user tokens


def stored_record(fake_google: FakeGoogle, **extra: Any) -> dict[str, Any]:
    return {
        "refresh_token": fake_google.issue_refresh_token(ACCOUNT, [GMAIL_METADATA_SCOPE]),
        "client_id": "test-client",
        "client_secret": "test-secret",
        "scopes": [GMAIL_METADATA_SCOPE],
        **extra,
    }


def test_user_credentials_honour_the_token_endpoint(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    record = stored_record(fake_google, token_uri=fake_google.token_uri)
    google_way = Credentials.from_authorized_user_info(record)  # type: ignore[no-untyped-call]
    assert google_way.token_uri == GOOGLE_TOKEN_URI
    credentials = user_credentials(record)
    assert credentials.token_uri == fake_google.token_uri
    refresh_now(credentials, http_request(), connector_name="alice-gmail")
    assert credentials.valid
    assert user_credentials(record, token_uri="http://elsewhere/token").token_uri == (
        "http://elsewhere/token"
    )
    assert user_credentials({k: v for k, v in record.items() if k != "token_uri"}).token_uri == (
        GOOGLE_TOKEN_URI
    )


def test_stored_record_round_trips(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    credentials = user_credentials(stored_record(fake_google, token_uri=fake_google.token_uri))
    refresh_now(credentials, http_request(), connector_name="alice-gmail")
    record = authorized_user_info(credentials)
    again = user_credentials(record)
    assert again.token == credentials.token
    assert again.expiry == credentials.expiry
    assert again.valid and again.token_uri == fake_google.token_uri
    assert again.scopes == [GMAIL_METADATA_SCOPE]


@pytest.mark.parametrize("missing", ["refresh_token", "client_id", "client_secret"])
def test_incomplete_record_is_an_auth_error(missing: str) -> None:
    record = {"refresh_token": "r", "client_id": "c", "client_secret": "s"}
    del record[missing]
    with pytest.raises(AuthError, match=missing) as raised:
        user_credentials(record)
    assert "crm-sync connectors auth" in raised.value.hint


def test_revoked_grant_refresh_is_an_auth_error(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    record = stored_record(fake_google, token_uri=fake_google.token_uri)
    fake_google.revoke(record["refresh_token"])
    with pytest.raises(AuthError, match="invalid_grant") as raised:
        refresh_now(user_credentials(record), http_request(), connector_name="bob-gmail")
    assert raised.value.hint == "run `crm-sync connectors auth bob-gmail` to grant access again"


def test_hints_name_what_to_do(key_file: Path) -> None:
    assert "crm-sync connectors auth x" in reauth_hint("x", None)
    sa = service_account_credentials(key_file, [GMAIL_METADATA_SCOPE], ACCOUNT)
    assert "domain-wide delegation" in reauth_hint("x", sa)


# --------------------------------------------------------------------------- consent flow


class _Visitor(webbrowser.BaseBrowser):
    """A browser that consents: it follows the consent URL to the loopback redirect."""

    def __init__(self) -> None:
        super().__init__("fake")
        self.visited: list[str] = []

    def open(self, url: str, new: int = 0, autoraise: bool = True) -> bool:
        self.visited.append(url)
        visit(url)
        return True


def visit(url: str) -> None:
    """Load ``url`` in the background, following redirects, as a browser tab would."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def load() -> None:
        try:
            opener.open(url, timeout=10).read()
        except OSError:
            return

    threading.Thread(target=load, daemon=True).start()


class _UrlWatcher(io.StringIO):
    """Stands in for stdout: the admin reading the printed URL and opening it."""

    def write(self, text: str) -> int:
        for url in re.findall(r"http://\S+", text):
            visit(url)
        return super().write(text)


@pytest.fixture
def client_secrets(
    fake_google: FakeGoogle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "client_secret.json"
    path.write_text(
        json.dumps(
            {
                "installed": {
                    "client_id": "test-client",
                    "client_secret": "test-secret",
                    "auth_uri": fake_google.url + "/o/oauth2/auth",
                    "token_uri": fake_google.token_uri,
                    "redirect_uris": ["http://127.0.0.1"],
                }
            }
        )
    )
    fake_google.consent_account = ACCOUNT
    return path


@pytest.mark.parametrize("open_browser", [True, False], ids=["browser", "printed-url"])
def test_oauth_flow_stores_a_usable_grant(
    fake_google: FakeGoogle,
    mailbox: Mailbox,
    client_secrets: Path,
    monkeypatch: pytest.MonkeyPatch,
    open_browser: bool,
) -> None:
    browser = _Visitor()
    webbrowser.register("crm-sync-test", None, browser)
    monkeypatch.setattr(sys, "stdout", _UrlWatcher())

    record = run_oauth_flow(
        client_secrets,
        gmail_scopes("metadata"),
        open_browser,
        browser="crm-sync-test",
        timeout_seconds=20,
    )

    assert bool(browser.visited) is open_browser
    assert record["refresh_token"].startswith("1//fake-")
    assert record["token_uri"] == fake_google.token_uri
    assert record["scopes"] == [GMAIL_METADATA_SCOPE]
    consent = fake_google.log[0]
    assert consent.api_method == "oauth2.auth"
    assert consent.param("code_challenge_method") == "S256"
    assert consent.param("access_type") == "offline" and consent.param("prompt") == "consent"

    connector = GmailConnector(
        "alice-gmail",
        ACCOUNT,
        user_credentials(record),
        api_endpoint=fake_google.url,
        sleep=no_sleep,
    )
    assert len([i for b in connector.fetch(None) for i in b.items]) == 1
