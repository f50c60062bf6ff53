"""`crm-sync connectors ...` as an admin runs them: the real entry point in a subprocess."""

from __future__ import annotations

import gc
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import tomllib
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import pytest
import tomlkit
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func
from sqlalchemy import select as sql_select

from agent.cli.demo import demo_data
from agent.cli.init_config import template
from agent.cli.main import main
from config import edit as config_edit
from config.secrets import TokenStore
from connectors.google.auth import GMAIL_METADATA_SCOPE, GMAIL_READONLY_SCOPE
from storage.db import make_engine, session_factory, upgrade
from storage.models import Interaction, InteractionSource, SyncState
from tests.support import cli as subprocess_cli
from tests.support.cli import run_cli
from tests.support.dovecot import DovecotServer, ImapUser
from tests.support.fake_google.mailbox import make_email
from tests.support.fake_google.oauth import write_service_account_key
from tests.support.fake_google.server import FakeGoogle
from tests.support.terminal import run_on_terminal

PRIYA = "priya.raman@northwind.example"
PRIYA_MBOX = demo_data() / f"{PRIYA}.mbox"
SA_EMAIL = "crm-sync@test-project.iam.gserviceaccount.com"


@pytest.fixture(autouse=True)
def _in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Most calls run ``agent.cli.main.main`` in this process: the same code as the entry point,
    without a second's interpreter start per call. A few tests keep the subprocess."""
    root = logging.getLogger()
    saved = list(root.handlers), root.level

    def invoke(
        *args: str, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 0
    ) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            patch.chdir(cwd)
            for name in [n for n in os.environ if n.startswith("CRM_SYNC_")]:
                patch.delenv(name)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            capsys.readouterr()
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
            finally:
                root.handlers[:] = saved[0]
                root.setLevel(saved[1])
                gc.collect()
            out, err = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), code, out, err)

    monkeypatch.setattr(sys.modules[__name__], "run_cli", invoke)
    monkeypatch.setenv("COLUMNS", "200")


def _init(tmp_path: Path, db_url: str | None = None) -> tuple[Path, dict[str, str]]:
    env = {"CRM_SYNC_DATABASE_URL": db_url} if db_url else {}
    assert run_cli("init", cwd=tmp_path, env=env).returncode == 0
    return tmp_path / "crm-sync.toml", env


def _ok(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = run_cli(*args, cwd=cwd, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _add_priya(cwd: Path) -> str:
    """``connectors add mbox`` for Priya's mailbox, the connector most tests start from."""
    return _ok(
        "connectors", "add", "mbox", "--name", "priya", "--account", PRIYA,
        "--path", str(PRIYA_MBOX), cwd=cwd,
    )  # fmt: skip


def _comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def _states(db_url: str) -> dict[str, SyncState]:
    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        rows = {s.connector: s for s in session.scalars(sql_select(SyncState))}
    engine.dispose()
    return rows


def _set_status(db_url: str, name: str, status: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    with session_factory(engine)() as session, session.begin():
        session.merge(SyncState(connector=name, kind="gmail", status=status, counters={}))
    engine.dispose()


# ------------------------------------------------------------------------------ add / list


def test_add_writes_a_table_and_keeps_every_comment(tmp_path: Path) -> None:
    config, _ = _init(tmp_path)
    before = config.read_text()
    out = _ok(
        "connectors",
        "add",
        "mbox",
        "--name",
        "priya",
        "--account",
        PRIYA,
        "--path",
        str(PRIYA_MBOX),
        "--since",
        "2024-01-01",
        cwd=tmp_path,
    )
    assert "next: crm-sync connectors test priya" in out
    after = config.read_text()
    assert after.startswith(before)
    assert _comments(after) == _comments(before)
    (table,) = tomllib.loads(after)["connectors"]
    assert table == {
        "name": "priya",
        "kind": "mbox",
        "account": PRIYA,
        "path": str(PRIYA_MBOX),
        "since": "2024-01-01",
    }

    _ok(
        "connectors",
        "add",
        "imap",
        "--name",
        "bob",
        "--account",
        "bob@example.com",
        "--host",
        "imap.example.com",
        "--password-env",
        "BOB_PASSWORD",
        "--folder",
        "Clients",
        "--set",
        "idle=true",
        "--port",
        "993",
        cwd=tmp_path,
    )
    bob = tomllib.loads(config.read_text())["connectors"][1]
    assert bob["password"] == "${BOB_PASSWORD}" and bob["idle"] is True
    assert bob["folders"] == ["Clients"] and bob["port"] == 993

    env = {"BOB_PASSWORD": "from-the-unit-file"}
    _ok("db", "upgrade", cwd=tmp_path, env=env)
    listed = json.loads(_ok("connectors", "list", "--json", cwd=tmp_path, env=env))
    assert [(c["name"], c["kind"], c["state"]) for c in listed] == [
        ("priya", "mbox", "never_synced"),
        ("bob", "imap", "never_synced"),
    ]
    assert "password" not in listed[1]["settings"]
    assert listed[1]["settings"]["host"] == "imap.example.com"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["mbox", "--name", "priya", "--account", "x@y.example", "--path", "/x"], "exists"),
        (["mbox", "--name", "m2", "--account", "x@y.example", "--host", "h"], "host: unknown key"),
        (["mbox", "--name", "m3", "--account", "x@y.example"], "path: required key is missing"),
        (
            [
                "imap",
                "--name",
                "i1",
                "--account",
                "a@b.example",
                "--host",
                "h",
                "--set",
                "password=hunter2",
            ],
            "--password-env",
        ),
        (["ics", "--name", "bad name", "--account", "a@b.example", "--path", "/x"], "name"),
        (["gmail", "--name", "g1", "--account", "a@b.example", "--set", "scope=full"], "scope"),
        (["mbox", "--name", "m4", "--set", "novalue"], "KEY=VALUE"),
        (["exchange", "--name", "e1"], "exchange"),
    ],
    ids=[
        "duplicate-name",
        "option-of-another-kind",
        "missing-required",
        "literal-password",
        "invalid-name",
        "invalid-value",
        "bad-set-syntax",
        "unknown-kind",
    ],
)
def test_add_refuses_with_the_reason_and_writes_nothing(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    config, _ = _init(tmp_path)
    _add_priya(tmp_path)
    before = config.read_bytes()
    refused = run_cli("connectors", "add", *args, cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert reason in refused.stderr
    assert config.read_bytes() == before


def test_add_without_a_config_file_says_what_to_do(tmp_path: Path) -> None:
    refused = subprocess_cli.run_cli("connectors", "add", "mbox", "--name", "a", cwd=tmp_path)
    assert refused.returncode == 2 and "crm-sync init" in refused.stderr


def test_init_makes_a_private_token_key_and_keeps_it(tmp_path: Path) -> None:
    _init(tmp_path)
    key = tmp_path / "crm-sync.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_bytes()
    assert run_cli("init", "--force", cwd=tmp_path).returncode == 0
    assert key.read_bytes() == first


# ----------------------------------------------------------------------- pause / resume / remove


def test_pause_resume_and_remove(tmp_path: Path, db_url: str) -> None:
    config, env = _init(tmp_path, db_url)
    pristine = config.read_text()
    _add_priya(tmp_path)
    _ok("db", "upgrade", cwd=tmp_path, env=env)
    _ok("sync", "--connector", "priya", cwd=tmp_path, env=env)

    assert "ok -> paused" in _ok("connectors", "pause", "priya", cwd=tmp_path, env=env)
    status = json.loads(run_cli("status", "--json", cwd=tmp_path, env=env).stdout)
    assert status[0]["state"] == "paused"
    assert "paused -> ok" in _ok("connectors", "resume", "priya", cwd=tmp_path, env=env)
    _set_status(db_url, "priya", "needs_auth")
    assert "needs_auth -> ok" in _ok("connectors", "resume", "priya", cwd=tmp_path, env=env)
    unknown = run_cli("connectors", "pause", "nobody", cwd=tmp_path, env=env)
    assert unknown.returncode == 2 and "no connector named 'nobody'" in unknown.stderr

    engine = make_engine(db_url)
    with session_factory(engine)() as session:
        interactions = session.scalar(sql_select(func.count()).select_from(Interaction))
    assert interactions

    out = _ok("connectors", "remove", "priya", "--yes", cwd=tmp_path, env=env)
    assert "the interactions it logged stay" in out
    assert config.read_text() == pristine
    with session_factory(engine)() as session:
        assert session.get(SyncState, "priya") is None
        assert not session.scalars(sql_select(InteractionSource)).all()
        assert session.scalar(sql_select(func.count()).select_from(Interaction)) == interactions
    engine.dispose()
    again = run_cli("connectors", "remove", "priya", cwd=tmp_path, env=env)
    assert again.returncode == 2 and "no connector named 'priya'" in again.stderr


def test_remove_keep_data_keeps_the_cursor_so_adding_back_resumes(tmp_path: Path) -> None:
    _init(tmp_path)
    add = (
        "connectors",
        "add",
        "mbox",
        "--name",
        "priya",
        "--account",
        PRIYA,
        "--path",
        str(PRIYA_MBOX),
    )
    _ok(*add, cwd=tmp_path)
    _ok("db", "upgrade", cwd=tmp_path)
    _ok("sync", cwd=tmp_path)
    _ok("connectors", "remove", "priya", "--keep-data", "--yes", cwd=tmp_path)
    db_url = f"sqlite:///{tmp_path / 'crm-sync.db'}"
    assert _states(db_url)["priya"].cursor
    _ok(*add, cwd=tmp_path)
    assert "read 0" in _ok("sync", cwd=tmp_path)


def test_remove_asks_on_a_terminal_and_refuses_without_one(tmp_path: Path) -> None:
    config, _ = _init(tmp_path)
    _add_priya(tmp_path)
    _ok("db", "upgrade", cwd=tmp_path)
    _ok("sync", cwd=tmp_path)
    added = config.read_text()

    script = subprocess_cli.run_cli("connectors", "remove", "priya", cwd=tmp_path)
    assert script.returncode == 2
    assert script.stderr.strip().endswith("without a terminal to confirm on, add --yes")
    assert config.read_text() == added

    declined = run_on_terminal(
        "connectors", "remove", "priya", cwd=tmp_path, answers=[("[y/N]: ", "n")]
    )
    assert declined.returncode == 1, declined.screen
    assert f"Remove connector priya from {config.name}? (its sync state, " in declined.screen
    assert "priya not removed: nothing changed" in declined.screen
    assert config.read_text() == added
    assert _states(f"sqlite:///{tmp_path / 'crm-sync.db'}")["priya"].cursor

    accepted = run_on_terminal(
        "connectors", "remove", "priya", cwd=tmp_path, answers=[("[y/N]: ", "y")]
    )
    assert accepted.returncode == 0, accepted.screen
    assert "removed connector priya" in accepted.screen
    assert "priya" not in config_edit.connector_names(config_edit.read(config))


# ---------------------------------------------------------------------------------- test


def test_test_counts_what_a_first_sync_would_read_and_writes_nothing(tmp_path: Path) -> None:
    _init(tmp_path)
    _add_priya(tmp_path)
    _ok(
        "connectors",
        "add",
        "ics",
        "--name",
        "cal",
        "--account",
        PRIYA,
        "--path",
        str(demo_data() / "calendar.ics"),
        "--since",
        "2025-01-01",
        cwd=tmp_path,
    )
    rows = json.loads(_ok("connectors", "test", "priya", "--json", cwd=tmp_path))
    assert rows == [{"scope": str(PRIYA_MBOX), "count": 98, "unit": "messages"}]
    (cal,) = json.loads(_ok("connectors", "test", "cal", "--json", cwd=tmp_path))
    assert cal["unit"] == "meeting occurrences" and cal["count"] > 0
    assert not (tmp_path / "crm-sync.db").exists()

    _ok(
        "connectors",
        "add",
        "mbox",
        "--name",
        "gone",
        "--account",
        PRIYA,
        "--path",
        str(tmp_path / "missing.mbox"),
        cwd=tmp_path,
    )
    failed = subprocess_cli.run_cli("connectors", "test", "gone", cwd=tmp_path)
    assert failed.returncode == 1 and "missing.mbox" in failed.stderr


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_test_gmail_uses_googles_estimate_and_checks_the_scope(
    tmp_path: Path, fake_google: FakeGoogle, private_key: rsa.RSAPrivateKey
) -> None:
    box = fake_google.add_mailbox("alice@example.com")
    for n in range(3):
        box.add_message(make_email(subject=f"in {n}"), labels=("INBOX",))
    box.add_message(make_email(subject="sent", sender="alice@example.com"), labels=("SENT",))
    box.add_message(make_email(subject="spam"), labels=("SPAM",))
    key = write_service_account_key(
        tmp_path / "sa.json",
        token_uri=fake_google.token_uri,
        client_email=SA_EMAIL,
        key=private_key,
    )
    fake_google.add_service_account(SA_EMAIL, key.public_key, [GMAIL_METADATA_SCOPE])
    _init(tmp_path)
    common = (
        "--auth",
        "service_account",
        "--key-file",
        str(key.path),
        "--api-endpoint",
        fake_google.url,
    )
    _ok(
        "connectors",
        "add",
        "gmail",
        "--name",
        "alice-gmail",
        "--account",
        "alice@example.com",
        *common,
        cwd=tmp_path,
    )
    _ok(
        "connectors",
        "add",
        "gmail",
        "--name",
        "alice-full",
        "--account",
        "alice@example.com",
        "--scope",
        "readonly",
        *common,
        cwd=tmp_path,
    )

    rows = json.loads(_ok("connectors", "test", "alice-gmail", "--json", cwd=tmp_path))
    assert [(r["scope"], r["count"]) for r in rows] == [
        ("label INBOX", 3),
        ("label SENT", 1),
        ("mailbox alice@example.com", 5),
    ]
    assert not fake_google.api_calls("users.history.list")
    assert {c.format for c in fake_google.api_calls("users.messages.get")} == {"metadata"}

    refused = run_cli("connectors", "test", "alice-full", cwd=tmp_path)
    assert refused.returncode == 1
    assert "unauthorized_client" in refused.stderr and "domain-wide delegation" in refused.stderr


# ---------------------------------------------------------------------------------- auth


def _client_secrets(tmp_path: Path, fake_google: FakeGoogle) -> Path:
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
    return path


def _run_auth(tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    """`connectors auth --no-browser`, opening the printed URL as the admin would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_SYNC_")}
    env |= {"OAUTHLIB_INSECURE_TRANSPORT": "1", "NO_PROXY": "127.0.0.1,localhost"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agent",
            "connectors",
            "auth",
            name,
            "--no-browser",
            "--timeout",
            "30",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    printed: list[str] = []

    def admin() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            printed.append(line)
            if line.startswith("http://"):
                _visit(line.strip())

    reader = threading.Thread(target=admin, daemon=True)
    reader.start()
    assert process.stderr is not None
    err = process.stderr.read()
    process.wait(timeout=60)
    reader.join(timeout=10)
    return subprocess.CompletedProcess(process.args, process.returncode, "".join(printed), err)


def _visit(url: str) -> None:
    """A browser tab: load the consent URL and follow its redirect to the loopback listener."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    opener.open(url, timeout=20).read()


def test_auth_stores_an_encrypted_grant_and_sets_the_connector_back_to_ok(
    tmp_path: Path, fake_google: FakeGoogle
) -> None:
    fake_google.consent_account = "alice@example.com"
    fake_google.add_mailbox("alice@example.com").add_message(make_email(subject="hello"))
    secrets_file = _client_secrets(tmp_path, fake_google)
    config = tmp_path / "crm-sync.toml"
    config.write_text(
        "[[connectors]]\n"
        'name = "alice-gmail"\nkind = "gmail"\naccount = "alice@example.com"\n'
        f'client_secrets = "{secrets_file}"\napi_endpoint = "{fake_google.url}"\n'
    )
    db_url = f"sqlite:///{tmp_path / 'crm-sync.db'}"
    _set_status(db_url, "alice-gmail", "needs_auth")

    result = _run_auth(tmp_path, "alice-gmail")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "needs_auth -> ok" in result.stdout
    key = tmp_path / "crm-sync.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    record = TokenStore.open(tmp_path / "crm-sync-tokens", key_file=key, environ={}).load(
        "alice-gmail"
    )
    assert record is not None and record["refresh_token"].startswith("1//fake-")
    assert record["scopes"] == [GMAIL_METADATA_SCOPE]
    assert fake_google.log[0].param("scope") == GMAIL_METADATA_SCOPE
    assert GMAIL_READONLY_SCOPE not in str(fake_google.log[0].param("scope"))
    stored = (tmp_path / "crm-sync-tokens" / "alice-gmail.token").read_bytes()
    assert record["refresh_token"].encode() not in stored
    assert _states(db_url)["alice-gmail"].status == "ok"
    assert json.loads(_ok("connectors", "test", "alice-gmail", "--json", cwd=tmp_path))


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ('kind = "mbox"\npath = "/x"', "reads files and needs no grant"),
        ('kind = "gmail"\nauth = "service_account"\nkey_file = "/sa.json"', "service account"),
        ('kind = "gmail"', "client_secrets"),
    ],
    ids=["not-google", "service-account", "no-client-secrets"],
)
def test_auth_refuses_what_it_cannot_authorise(tmp_path: Path, table: str, reason: str) -> None:
    (tmp_path / "crm-sync.toml").write_text(
        f'[[connectors]]\nname = "c"\naccount = "a@b.example"\n{table}\n'
    )
    refused = run_cli("connectors", "auth", "c", "--no-browser", cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert reason in refused.stderr


# ------------------------------------------------------------------------------ add-team


def test_add_team_adds_mail_and_calendar_per_user_skipping_opt_outs_and_existing(
    tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    config, _ = _init(tmp_path)
    key = write_service_account_key(
        tmp_path / "sa.json", token_uri="http://127.0.0.1:9/token", key=private_key
    )
    _ok(
        "connectors",
        "add",
        "gmail",
        "--name",
        "bob-gmail",
        "--account",
        "bob@example.com",
        "--auth",
        "oauth",
        cwd=tmp_path,
    )
    team = (
        "connectors",
        "add-team",
        "--domain",
        "example.com",
        "--key-file",
        "sa.json",
        "--users",
        "alice,bob",
        "--users",
        "carol@example.com",
        "--opt-out",
        "carol",
    )

    rows = json.loads(_ok(*team, "--json", cwd=tmp_path))

    assert [(r["connector"], r["result"]) for r in rows] == [
        ("alice-gmail", "added"),
        ("alice-calendar", "added"),
        ("bob-gmail", "skipped: exists"),
        ("bob-calendar", "added"),
        ("carol-gmail", "skipped: opted out"),
        ("carol-calendar", "skipped: opted out"),
    ]
    tables = {t["name"]: t for t in tomllib.loads(config.read_text())["connectors"]}
    assert tables["alice-calendar"] == {
        "name": "alice-calendar",
        "kind": "google_calendar",
        "account": "alice@example.com",
        "auth": "service_account",
        "key_file": str(key.path),
    }
    assert tables["alice-gmail"]["scope"] == "metadata"
    assert tables["bob-gmail"]["auth"] == "oauth"

    before = config.read_bytes()
    again = json.loads(_ok(*team, "--json", cwd=tmp_path))
    assert {r["result"] for r in again} == {"skipped: exists", "skipped: opted out"}
    assert config.read_bytes() == before

    (tmp_path / "not-sa.json").write_text('{"type": "authorized_user"}')
    refused = run_cli(
        "connectors",
        "add-team",
        "--domain",
        "example.com",
        "--key-file",
        "not-sa.json",
        "--users",
        "dave",
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and "not a service account key" in refused.stderr


def test_listing_takes_json_and_states_come_from_the_database(tmp_path: Path, db_url: str) -> None:
    _, env = _init(tmp_path, db_url)
    _ok(
        "connectors",
        "add",
        "mbox",
        "--name",
        "priya",
        "--account",
        PRIYA,
        "--path",
        str(PRIYA_MBOX),
        "--interval",
        "90s",
        cwd=tmp_path,
    )
    _ok("db", "upgrade", cwd=tmp_path, env=env)
    _set_status(db_url, "priya", "failing")
    (row,) = json.loads(_ok("connectors", "list", "--json", cwd=tmp_path, env=env))
    assert row["state"] == "failing" and row["interval"] == 90.0
    table = _ok("connectors", "list", cwd=tmp_path, env=env)
    assert "priya" in table and "failing" in table


def test_test_counts_imap_folders_and_names_a_refused_login(
    tmp_path: Path, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "INBOX", [make_email(subject=f"n{n}") for n in range(3)])
    dovecot.append(imap_user, "Clients", [make_email(subject="c")])
    _init(tmp_path)
    _ok(
        "connectors",
        "add",
        "imap",
        "--name",
        "tester",
        "--account",
        imap_user.address,
        "--host",
        dovecot.host,
        "--port",
        str(dovecot.port),
        "--security",
        "plain",
        "--password-env",
        "TESTER_PASSWORD",
        "--folder",
        "Clients",
        cwd=tmp_path,
    )
    env = {"TESTER_PASSWORD": imap_user.password}
    rows = json.loads(_ok("connectors", "test", "tester", "--json", cwd=tmp_path, env=env))
    assert {r["scope"]: r["count"] for r in rows} == {"INBOX": 3, "Sent": 0, "Clients": 1}

    refused = run_cli("connectors", "test", "tester", cwd=tmp_path, env={"TESTER_PASSWORD": "x"})
    assert refused.returncode == 1
    assert "app password" in refused.stderr


# ---------------------------------------------------------------------- config_edit, pure

COMMENTED = """\
# head
[database]
url = "sqlite:///x.db"

# about alice
[[connectors]]
name = "alice"   # inline
kind = "mbox"
account = "alice@example.com"
path = "/a"

# about bob
[[connectors]]
name = "bob"
kind = "mbox"
account = "bob@example.com"
path = "/b"
# trailing bob comment

# tail comment
"""


@pytest.mark.parametrize(
    ("text", "name", "kept", "gone"),
    [
        (COMMENTED, "alice", ["# about alice", "# about bob", 'name = "bob"'], ['"alice"']),
        (COMMENTED, "bob", ["# trailing bob comment", "# tail comment", "# about bob"], ['"bob"']),
        (
            'connectors = [\n  {name = "a", kind = "mbox", account = "a@x.example", path = "/a"},'
            '\n  {name = "b", kind = "mbox", account = "b@x.example", path = "/b"},\n]\n',
            "a",
            ['name = "b"'],
            ['name = "a"'],
        ),
    ],
    ids=["first-of-two", "last-of-two", "inline-array"],
)
def test_remove_drops_the_table_and_keeps_every_comment(
    text: str, name: str, kept: list[str], gone: list[str]
) -> None:
    document = tomlkit.parse(text)
    config_edit.remove_connector(document, name)
    result = tomlkit.dumps(document)
    assert _comments(result) == [c for c in _comments(text) if c.strip() != "# inline"]
    for fragment in kept:
        assert fragment in result
    for fragment in gone:
        assert fragment not in result
    assert config_edit.validate(tomlkit.parse(result), None)


def test_add_then_remove_gives_back_the_file() -> None:
    document = tomlkit.parse(COMMENTED)
    config_edit.add_connector(
        document, {"name": "carol", "kind": "ics", "account": "c@x.example", "path": Path("/c")}
    )
    added = tomlkit.dumps(document)
    assert added.startswith(COMMENTED) and '\n\n[[connectors]]\nname = "carol"' in added
    again = tomlkit.parse(added)
    config_edit.remove_connector(again, "carol")
    assert tomlkit.dumps(again) == COMMENTED


@pytest.mark.parametrize("order", [("a", "b"), ("b", "a")], ids=["first-first", "last-first"])
def test_adding_to_the_shipped_example_and_removing_gives_it_back(order: tuple[str, str]) -> None:
    """Every table of the example is empty (its settings are commented out), which the
    removal must not take for "no table before the connectors"."""
    shipped = template()
    document = tomlkit.parse(shipped)
    for name in ("a", "b"):
        config_edit.add_connector(
            document, {"name": name, "kind": "ics", "account": "c@x.io", "path": Path("/c")}
        )
    for name in order:
        document = tomlkit.parse(tomlkit.dumps(document))
        config_edit.remove_connector(document, name)
    assert tomlkit.dumps(document) == shipped
