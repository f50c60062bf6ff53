"""Log privacy: no body, no token and (at INFO and above) no full address ever reaches a log."""

from __future__ import annotations

import email.policy
import io
import json
import logging
import re
from collections.abc import Iterator
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.cli.demo import demo_data, demo_settings
from agent.pipeline.policy import Policy
from agent.runtime import logs
from agent.runtime.registry import build_connector, mailbox_of
from agent.runtime.sync_pass import sync_connector
from connectors.google.auth import gmail_scopes, service_account_credentials, user_credentials
from connectors.google.gmail import GmailConnector
from connectors.records import MailMessage
from storage.db import make_engine, session_factory, upgrade
from tests.support.fake_google.mailbox import make_email
from tests.support.fake_google.oauth import write_service_account_key
from tests.support.fake_google.server import FakeGoogle

SA_EMAIL = "crm-sync@test-project.iam.gserviceaccount.com"
GMAIL_ACCOUNT = "gina.gmail@northwind.example"
SECRET_BODY = "The wire transfer code for the Globex deal is 7731-ALPHA-ZULU."


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _record(level: int, msg: str, *args: Any, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logs.configure(level=logging.DEBUG, stream=stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("crm-sync-test")
    if exc is not None:
        try:
            raise exc
        except type(exc):
            logger.log(level, msg, *args, exc_info=True)
    else:
        logger.log(level, msg, *args)
    return stream.getvalue()


MESSAGE = MailMessage(source_id="m-1", mailbox="ann@acme.example", raw=b"Subject: x\n\nsecret")


@pytest.mark.parametrize(
    ("level", "msg", "args", "present", "absent"),
    [
        (logging.INFO, "from %s", ("john.doe@example.com",), ["j***@example.com"], ["john.doe"]),
        (logging.WARNING, "to <ann@acme.example>", (), ["<a***@acme.example>"], ["ann@"]),
        (logging.INFO, "GET /users/alice%40example.com/x", (), ["a***%40example.com"], ["alice"]),
        (logging.DEBUG, "from %s", ("john.doe@example.com",), ["john.doe@example.com"], []),
        (logging.DEBUG, "Authorization: Bearer ya29.a0AfH6SM", (), [], ["ya29", "a0AfH6SM"]),
        (logging.DEBUG, "grant %s", ('{"refresh_token": "1//0gLx-abc"}',), [], ["1//0gLx"]),
        (logging.INFO, "url %s", ("https://x/cb?state=s&code=4/0AX-secret",), [], ["0AX-secret"]),
        (logging.DEBUG, "raw %s", (b"From: a@b.example\r\n\r\nbody",), ["<25 bytes>"], ["body"]),
        (logging.DEBUG, "got %s", (MESSAGE,), ["<MailMessage m-1>"], ["secret"]),
        (logging.DEBUG, "text %s", ("first line\nsecond line",), ["first line"], ["second"]),
        (logging.DEBUG, "data %s", ("QUJD" * 40,), ["<160 chars of encoded data>"], ["QUJDQUJD"]),
        (logging.INFO, "status code: %d", (404,), ["status code: 404"], []),
    ],
    ids=[
        "address-info",
        "address-warning",
        "address-urlencoded",
        "address-kept-at-debug",
        "bearer-token",
        "refresh-token-json",
        "oauth-code",
        "raw-bytes",
        "mail-record",
        "multi-line-text",
        "encoded-data",
        "plain-numbers-untouched",
    ],
)
def test_privacy_filter(
    level: int, msg: str, args: tuple[Any, ...], present: list[str], absent: list[str]
) -> None:
    out = _record(level, msg, *args)
    for text in present:
        assert text in out
    for text in absent:
        assert text not in out


def test_exception_text_is_scrubbed_too() -> None:
    out = _record(logging.ERROR, "failed", exc=ValueError("login refused for bob@acme.example"))
    assert "b***@acme.example" in out and "bob@acme.example" not in out
    assert "Traceback" in out


def test_json_lines_carry_level_logger_and_masked_message() -> None:
    stream = io.StringIO()
    logs.configure(json=True, level="INFO", stream=stream)
    logging.getLogger("agent.runtime.sync_pass").debug("hidden")
    logging.getLogger("agent.runtime.sync_pass").warning("%s: failing", "ann@acme.example")
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "WARNING" and entry["logger"] == "agent.runtime.sync_pass"
    assert entry["message"] == "a***@acme.example: failing"


def test_configure_replaces_its_own_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    first = logs.configure(stream=io.StringIO())
    second = logs.configure(stream=io.StringIO())
    installed = [h for h in logging.getLogger().handlers if h in (first, second)]
    assert installed == [second]
    monkeypatch.setenv(logs.ENV_LOG_LEVEL, "debug")
    assert logs.level_from_env("WARNING") == "DEBUG"
    logs.configure(level="nonsense", stream=io.StringIO())
    assert logging.getLogger().level == logging.INFO


# ------------------------------------------------------------------------ a whole sync


def _demo_secrets(data: Path) -> tuple[set[str], set[str]]:
    """Every address in the demo mail, and every longer line of its bodies."""
    addresses: set[str] = set()
    lines: set[str] = set()
    parser = BytesParser(policy=email.policy.default)
    for mbox in data.glob("*.mbox"):
        for chunk in re.split(rb"(?m)^From .*\n", mbox.read_bytes()):
            if not chunk.strip():
                continue
            message = parser.parsebytes(chunk)
            for header in ("From", "To", "Cc", "Reply-To"):
                addresses.update(a.lower() for _, a in getaddresses(message.get_all(header, [])))
            part = message.get_body(("plain",))
            if part is not None:
                body = part.get_content()
                lines.update(line.strip() for line in body.splitlines() if len(line.strip()) > 30)
    return {a for a in addresses if "@" in a}, lines


@pytest.mark.parametrize("level", [logging.DEBUG, logging.INFO], ids=["debug", "info"])
def test_a_whole_sync_logs_no_body_token_or_full_address(
    tmp_path: Path, level: int, private_key: rsa.RSAPrivateKey, fake_google: FakeGoogle
) -> None:
    stream = io.StringIO()
    logs.configure(json=True, level=level, stream=stream)
    settings = demo_settings(tmp_path / "crm.db", demo_data())
    engine = make_engine(settings.database.url)
    upgrade(engine)
    sessions = session_factory(engine)
    for config in settings.connectors:
        connector = build_connector(config, settings)
        policy = Policy.from_settings(settings, config.name, mailbox_of(config))
        sync_connector(sessions, connector, policy, kind=config.kind)

    box = fake_google.add_mailbox(GMAIL_ACCOUNT)
    box.add_message(
        make_email(subject="Globex", to=GMAIL_ACCOUNT, body=SECRET_BODY), labels=("INBOX",)
    )
    record = {
        "refresh_token": fake_google.issue_refresh_token(GMAIL_ACCOUNT, gmail_scopes("readonly")),
        "client_id": "test-client",
        "client_secret": "test-secret",
        "token_uri": fake_google.token_uri,
    }
    user = GmailConnector(
        "gina-gmail",
        GMAIL_ACCOUNT,
        user_credentials(record, gmail_scopes("readonly")),
        mode="readonly",
        api_endpoint=fake_google.url,
    )
    policy = Policy.from_settings(settings, "gina-gmail", GMAIL_ACCOUNT)
    assert sync_connector(sessions, user, policy, kind="gmail").logged == 1
    key = write_service_account_key(
        tmp_path / "sa.json",
        token_uri=fake_google.token_uri,
        client_email=SA_EMAIL,
        key=private_key,
    )
    fake_google.add_service_account(SA_EMAIL, key.public_key, gmail_scopes("metadata"))
    outsider = GmailConnector(
        "nobody-gmail",
        "nobody@northwind.example",
        service_account_credentials(key.path, gmail_scopes("metadata"), "nobody@x.example"),
        api_endpoint=fake_google.url,
    )
    failed = sync_connector(sessions, outsider, policy, kind="gmail")
    assert failed.status == "needs_auth"
    tokens = {record["refresh_token"], *fake_google._access_tokens}
    engine.dispose()

    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    visible = [e for e in entries if logging.getLevelNamesMapping()[e["level"]] >= logging.INFO]
    text_all = "\n".join(json.dumps(e, ensure_ascii=False) for e in entries)
    text_visible = "\n".join(json.dumps(e, ensure_ascii=False) for e in visible)
    addresses, body_lines = _demo_secrets(demo_data())
    addresses |= {GMAIL_ACCOUNT, SA_EMAIL, "nobody@x.example"}
    body_lines.add(SECRET_BODY)

    assert visible, "the sync logged nothing at INFO or above: the test would prove nothing"
    assert "c***@test-project.iam.gserviceaccount.com" in text_visible
    assert not [line for line in body_lines if line in text_all]
    assert not [token for token in tokens if token in text_all]
    assert not [address for address in addresses if address in text_visible.lower()]
    if level == logging.DEBUG:
        assert len(entries) > len(visible)


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
