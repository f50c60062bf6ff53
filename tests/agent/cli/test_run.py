"""``crm-sync run`` as an admin runs it: a real process, real servers, real signals.

The agent syncs an mbox file, a Dovecot IMAP mailbox (in IDLE) and a Gmail
mailbox on the fake Google server, every second. Mail added to each while
it runs must be in the database within two intervals; SIGTERM must end it
with status 0 within the stop bound, leaving no lease held -- also while
its runs are overdue. Intervals this short need ``FAST_AGENT`` (a config
may not ask for less than 10 s).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from config.secrets import TokenStore, ensure_key_file
from connectors.google.auth import gmail_scopes
from storage.db import make_engine
from storage.models import Interaction, SyncState
from tests.support.cli import FAST_AGENT, run_cli, start_cli, upgrade_database
from tests.support.dovecot import DovecotServer, ImapUser
from tests.support.fake_google.mailbox import make_email
from tests.support.fake_google.server import FakeGoogle
from tests.support.mailbuilder import message, write_mbox

INTERVAL = 2.0  # short, yet long enough that two of them mean something on a loaded CI machine
STOP_TIMEOUT = 10.0
GMAIL_ACCOUNT = "bob@example.com"
HUNG_IMAP_ACCOUNT = "alice@example.com"
MBOX_OWNER = "carol@example.com"


def _customer_mail(n: int, to: str) -> bytes:
    return message(
        sender=f"Customer {n} <customer{n}@acme.example>",
        to=[to],
        subject=f"Order {n}",
        message_id=f"<order-{n}@acme.example>",
    )


def _append_mbox(path: Path, raw: bytes) -> None:
    """Append one message the way a mail client adds to an mbox: a new ``From `` block."""
    with path.open("ab") as out:
        out.write(b"From customer@acme.example Mon Mar  2 09:30:00 2026\n" + raw + b"\n")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``crm-sync ARGS``, allowed the short intervals of these tests."""
    return run_cli(*args, cwd=cwd, env=FAST_AGENT)


def start(*args: str, cwd: Path, output: Path) -> subprocess.Popen[bytes]:
    """``crm-sync ARGS`` in the background, allowed the short intervals of these tests."""
    return start_cli(*args, cwd=cwd, output=output, env=FAST_AGENT)


def write_config(
    tmp_path: Path, body: str, interval: float = INTERVAL, *, create_database: bool = True
) -> Path:
    """The config, and with ``create_database`` its database (``crm-sync db upgrade``)."""
    config = tmp_path / "crm-sync.toml"
    config.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "crm.db"}"

[agent]
interval = "{interval}s"
internal_domains = ["example.com"]

[secrets]
key_file = "crm-sync.key"
token_dir = "tokens"
{body}"""
    )
    if create_database:
        upgrade_database(tmp_path, "--config", str(config), env=FAST_AGENT)
    return config


def imap_table(server: DovecotServer, name: str, user: ImapUser, password: str) -> str:
    return f"""
[[connectors]]
name = "{name}"
kind = "imap"
account = "{user.address}"
host = "{server.host}"
port = {server.port}
security = "plain"
username = "{user.login}"
password = "{password}"
idle = true
"""


def gmail_table(fake: FakeGoogle, tmp_path: Path, name: str, account: str) -> tuple[str, str]:
    """The connector's table, and the refresh token stored for it (to revoke it)."""
    scopes = gmail_scopes("metadata")
    token = fake.issue_refresh_token(account, scopes)
    key_file = ensure_key_file(tmp_path / "crm-sync.key")
    store = TokenStore.open(tmp_path / "tokens", key_file=key_file)
    store.save(
        name,
        {
            "refresh_token": token,
            "client_id": "test-client",
            "client_secret": "test-secret",
            "scopes": scopes,
            "token_uri": fake.token_uri,
        },
    )
    table = f"""
[[connectors]]
name = "{name}"
kind = "gmail"
account = "{account}"
auth = "oauth"
api_endpoint = "{fake.url}"
"""
    return table, token


def mbox_table(name: str, path: Path, account: str = MBOX_OWNER) -> str:
    return f"""
[[connectors]]
name = "{name}"
kind = "mbox"
account = "{account}"
path = "{path}"
"""


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Seconds until ``condition`` held; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - started


def states(engine: Engine) -> dict[str, SyncState]:
    """The ``sync_state`` rows by connector; none while the agent is still creating the schema."""
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(SyncState)).all()
    except OperationalError:
        return {}
    return {row.connector: row for row in rows}  # type: ignore[misc]


def logged(engine: Engine, message_id: str) -> bool:
    query = select(Interaction.id).where(Interaction.dedupe_key == message_id.strip("<>").lower())
    try:
        with engine.connect() as connection:
            return connection.scalar(query) is not None
    except OperationalError:
        return False


def _scrape(agent_output: Path) -> str:
    """The agent's metrics, from the port its log announced."""
    found = re.search(r"metrics on (http://127\.0\.0\.1:\d+/metrics)", agent_output.read_text())
    assert found, "the agent announces its metrics endpoint"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(found.group(1), timeout=10) as answer:
        return str(answer.read().decode())


def stop(agent: subprocess.Popen[bytes], bound: float) -> tuple[int, float]:
    started = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    code = agent.wait(timeout=bound + 30)
    return code, time.monotonic() - started


@pytest.fixture
def agent_output(tmp_path: Path) -> Iterator[Path]:
    output = tmp_path / "agent.log"
    yield output
    if output.exists():
        print(output.read_text(errors="replace")[-4000:])


def test_the_agent_syncs_new_mail_within_two_intervals_and_stops_cleanly(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    fake_google: FakeGoogle,
    agent_output: Path,
) -> None:
    mbox = write_mbox(tmp_path / "carol.mbox", [_customer_mail(n, MBOX_OWNER) for n in range(5)])
    dovecot.append(
        imap_user, "INBOX", [_customer_mail(n, imap_user.address) for n in range(10, 13)]
    )
    gmail = fake_google.add_mailbox(GMAIL_ACCOUNT)
    for n in range(20, 23):
        gmail.add_message(_customer_mail(n, GMAIL_ACCOUNT))
    gmail_config, _token = gmail_table(fake_google, tmp_path, "bob-gmail", GMAIL_ACCOUNT)
    config = write_config(
        tmp_path,
        mbox_table("carol-mbox", mbox)
        + imap_table(dovecot, "alice-imap", imap_user, imap_user.password)
        + gmail_config,
    )
    journal = tmp_path / "runs.jsonl"
    agent = start(
        "--config",
        str(config),
        "run",
        "--json-logs",
        "--journal",
        str(journal),
        "--stop-timeout",
        f"{STOP_TIMEOUT}s",
        "--metrics-port",
        "0",
        cwd=tmp_path,
        output=agent_output,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        names = {"carol-mbox", "alice-imap", "bob-gmail"}

        def first_syncs_done() -> bool:
            found = states(engine)
            return names <= found.keys() and all(found[n].last_success_at for n in names)

        wait_for(first_syncs_done, 60, "first syncs")
        for n in (0, 10, 20):
            assert logged(engine, f"<order-{n}@acme.example>")
        scraped = _scrape(agent_output)
        assert 'crm_sync_connector_items_total{connector="carol-mbox"} 5.0' in scraped

        latencies: dict[str, float] = {}
        added = time.monotonic()
        _append_mbox(mbox, _customer_mail(100, MBOX_OWNER))
        dovecot.append(imap_user, "INBOX", [_customer_mail(110, imap_user.address)])
        gmail.add_message(
            make_email(
                subject="Order 120",
                sender="Customer <c120@acme.example>",
                to=GMAIL_ACCOUNT,
                message_id="<order-120@acme.example>",
            )
        )
        for source, n in (("mbox", 100), ("imap", 110), ("gmail", 120)):
            wait_for(lambda n=n: logged(engine, f"<order-{n}@acme.example>"), 30, source)  # type: ignore[misc]
            latencies.setdefault(source, time.monotonic() - added)
        print("seconds from new mail to the database:", latencies)
        assert max(latencies.values()) < 2 * INTERVAL, latencies

        code, seconds = stop(agent, STOP_TIMEOUT)
        print(f"SIGTERM to exit: {seconds:.2f} s (bound {STOP_TIMEOUT} s)")
        assert code == 0
        assert seconds < STOP_TIMEOUT
        assert {n: row.lease_owner for n, row in states(engine).items()} == dict.fromkeys(names)
        assert all(row.status == "ok" for row in states(engine).values())
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        engine.dispose()

    lines = agent_output.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= entries[0].keys()
    runs = [json.loads(line) for line in journal.read_text().splitlines()]
    ended = [r for r in runs if r["event"] == "end"]
    assert {r["connector"] for r in ended} == names
    assert all(r["status"] == "ok" for r in ended), ended


def test_a_second_agent_on_one_sqlite_database_is_refused(
    tmp_path: Path, agent_output: Path
) -> None:
    mbox = write_mbox(tmp_path / "carol.mbox", [_customer_mail(1, MBOX_OWNER)])
    config = write_config(tmp_path, mbox_table("carol-mbox", mbox), interval=60)
    agent = start("--config", str(config), "run", cwd=tmp_path, output=agent_output)
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        wait_for(
            lambda: bool(getattr(states(engine).get("carol-mbox"), "last_success_at", None)),
            60,
            "first sync",
        )
        second = cli("--config", str(config), "run", "--once", cwd=tmp_path)
        assert second.returncode == 1
        refusal = " ".join(second.stderr.split())
        assert f"pid {agent.pid}" in refusal
        assert "SQLite takes one agent process" in refusal
        code, _seconds = stop(agent, 30)
        assert code == 0
        again = cli("--config", str(config), "run", "--once", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lease-ttl", "soon"], "not a duration"),
        (["--stop-timeout", "0s"], "must be more than 0"),
        (["--workers", "0"], "0 is not in the range"),
    ],
    ids=["bad-duration", "zero-timeout", "no-workers"],
)
def test_bad_options_are_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    config = write_config(tmp_path, mbox_table("m", tmp_path / "m.mbox"), create_database=False)
    result = cli("--config", str(config), "run", *args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


def test_no_connectors_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "", create_database=False)
    result = cli("--config", str(config), "run", "--once", cwd=tmp_path)
    assert result.returncode == 2
    assert "no enabled connectors" in result.stderr
    assert not os.path.exists(tmp_path / "crm.db")


def _blackhole() -> socket.socket:
    """A port that accepts connections and never answers: an IMAP server that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def test_failing_connectors_never_delay_the_others_and_status_says_what_to_do(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_user: ImapUser,
    fake_google: FakeGoogle,
    agent_output: Path,
) -> None:
    good = write_mbox(tmp_path / "good.mbox", [_customer_mail(n, MBOX_OWNER) for n in range(3)])
    fake_google.add_mailbox(GMAIL_ACCOUNT).add_message(_customer_mail(1, GMAIL_ACCOUNT))
    gmail_config, token = gmail_table(fake_google, tmp_path, "bob-gmail", GMAIL_ACCOUNT)
    fake_google.revoke(token)
    hung = _blackhole()
    hanging = imap_table(dovecot, "hung-imap", imap_user, imap_user.password)
    hanging = hanging.replace(f"port = {dovecot.port}", f"port = {hung.getsockname()[1]}")
    config = write_config(
        tmp_path,
        mbox_table("good-mbox", good)
        + imap_table(dovecot, "alice-imap", imap_user, "wrong-password").replace("true", "false")
        + gmail_config
        + mbox_table("gone-mbox", tmp_path / "moved-away.mbox")
        + hanging.replace("idle = true", "idle = false"),
    )
    started = time.monotonic()
    agent = start(
        "--config", str(config), "run", "--stop-timeout", "2s", cwd=tmp_path, output=agent_output
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        wait_for(lambda: logged(engine, "<order-2@acme.example>"), 60, "good mailbox")
        first_sync = time.monotonic() - started
        expected = {"alice-imap": "needs_auth", "bob-gmail": "needs_auth", "gone-mbox": "failing"}
        wait_for(
            lambda: (
                {n: getattr(states(engine).get(n), "status", None) for n in expected} == expected
            ),
            30,
            "failures recorded",
        )
        assert states(engine)["hung-imap"].lease_owner is not None, "still waiting for a greeting"
        added = time.monotonic()
        _append_mbox(good, _customer_mail(50, MBOX_OWNER))
        wait_for(lambda: logged(engine, "<order-50@acme.example>"), 30, "new mail")
        latency = time.monotonic() - added
        print(f"good mailbox synced {first_sync:.1f} s after start; new mail in {latency:.2f} s")
        assert latency < 2 * INTERVAL
        code, seconds = stop(agent, 2)
        print(f"SIGTERM to exit with a run hung in connect: {seconds:.2f} s (bound 2 s)")
        assert code == 0 and seconds < 2 + 1
        assert all(row.lease_owner is None for row in states(engine).values())
    finally:
        hung.close()
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        engine.dispose()

    shown = cli("--config", str(config), "status", cwd=tmp_path)
    assert shown.returncode == 1
    rows = {
        row["connector"]: row
        for row in json.loads(cli("--config", str(config), "status", "--json", cwd=tmp_path).stdout)
    }
    assert {n: rows[n]["state"] for n in expected} == expected
    assert rows["good-mbox"]["state"] in ("ok", "lagging")
    assert "correct the password" in rows["alice-imap"]["fix"]
    assert "crm-sync connectors auth bob-gmail" in rows["bob-gmail"]["fix"]
    assert "no such mbox file" in rows["gone-mbox"]["last_error"]
    assert "crm-sync sync --connector gone-mbox" in rows["gone-mbox"]["fix"]
    table = " ".join(shown.stdout.split())
    assert "crm-sync connectors auth bob-gmail" in table.replace("│ ", "").replace(" │", "")


def test_run_once_exits_1_when_a_connector_fails(tmp_path: Path) -> None:
    good = write_mbox(tmp_path / "good.mbox", [_customer_mail(1, MBOX_OWNER)])
    config = write_config(
        tmp_path, mbox_table("good-mbox", good) + mbox_table("gone-mbox", tmp_path / "gone.mbox")
    )
    result = cli("--config", str(config), "run", "--once", cwd=tmp_path)
    assert result.returncode == 1
    assert "gone-mbox: failing" in result.stderr
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        assert logged(engine, "<order-1@acme.example>")
    finally:
        engine.dispose()


def test_run_once_stops_within_the_bound_on_sigterm(tmp_path: Path, agent_output: Path) -> None:
    good = write_mbox(tmp_path / "good.mbox", [_customer_mail(1, MBOX_OWNER)])
    hung = _blackhole()
    hanging = f"""
[[connectors]]
name = "hung-imap"
kind = "imap"
account = "{HUNG_IMAP_ACCOUNT}"
host = "127.0.0.1"
port = {hung.getsockname()[1]}
security = "plain"
password = "never-asked"
"""
    config = write_config(tmp_path, mbox_table("good-mbox", good) + hanging)
    agent = start(
        "--config",
        str(config),
        "run",
        "--once",
        "--stop-timeout",
        "1s",
        cwd=tmp_path,
        output=agent_output,
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        wait_for(lambda: logged(engine, "<order-1@acme.example>"), 60, "good mailbox")
        code, seconds = stop(agent, 1)
        assert code == 0 and seconds < 1 + 1
        assert all(row.lease_owner is None for row in states(engine).values())
    finally:
        hung.close()
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        engine.dispose()


def test_sigterm_stops_the_agent_within_the_bound_while_its_runs_are_overdue(
    tmp_path: Path, agent_output: Path
) -> None:
    """Both workers hang in two IMAP connects that never answer, so every connector's runs
    fall due faster than any can start; then the whole process is frozen (SIGSTOP) for
    fifty intervals, as a suspended machine or a scheduler held up by a long run would
    leave it, and SIGTERM arrives the moment it thaws."""
    hung = [_blackhole(), _blackhole()]
    good = write_mbox(tmp_path / "good.mbox", [_customer_mail(1, MBOX_OWNER)])
    tables = [
        f'\n[[connectors]]\nname = "hung-{n}"\nkind = "imap"\naccount = "{HUNG_IMAP_ACCOUNT}"\n'
        f'host = "127.0.0.1"\nport = {listener.getsockname()[1]}\nsecurity = "plain"\n'
        'password = "never-asked"\n'
        for n, listener in enumerate(hung)
    ]
    config = write_config(tmp_path, "".join(tables) + mbox_table("good-mbox", good), 0.1)
    bound = 2.0
    agent = start(
        "--config", str(config), "run", "--workers", "2", "--stop-timeout", f"{bound}s",
        cwd=tmp_path, output=agent_output,
    )  # fmt: skip
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        wait_for(
            lambda: all(
                getattr(states(engine).get(f"hung-{n}"), "lease_owner", None) for n in (0, 1)
            ),
            60,
            "both workers hung",
        )
        time.sleep(1)  # ten intervals: every connector's next run is overdue
        agent.send_signal(signal.SIGSTOP)
        time.sleep(5)
        agent.send_signal(signal.SIGCONT)
        code, seconds = stop(agent, bound)
        print(f"SIGTERM to exit with every run overdue: {seconds:.2f} s (bound {bound} s)")
        assert code == 0
        assert seconds < bound + 1  # the bound, plus room for a loaded machine
        assert all(row.lease_owner is None for row in states(engine).values())
    finally:
        for listener in hung:
            listener.close()
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        engine.dispose()
