"""Data at rest: owner-only files whatever the umask, warnings for loose ones, and an
erasure that leaves no bytes of the person in the database files -- with an agent
holding them open -- on real SQLite files, the real PostgreSQL server and real processes.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from agent.pipeline.policy import Policy
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.memory import MemoryConnector
from connectors.records import Item, MailMessage
from storage.db import make_engine, purge_freed_space, session_factory, transaction, upgrade
from storage.erase import ERASURE_TABLES, REDACTED
from storage.models import ContactEmail, Interaction, Quarantine, SyncState
from tests.support.cli import run_cli, start_cli
from tests.support.mailbuilder import message, write_mbox

UMASK = 0o022
OWNER = "carol@example.com"
SURNAME = "Quixotic-Marker"
ZELDA_NAME = f"Zelda {SURNAME}"
ZELDA = "zelda.unique-marker@erased.example"
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


def write_config(folder: Path, database: Path, mbox: Path | None = None) -> None:
    connector = (
        f'[[connectors]]\nname = "carol-mbox"\nkind = "mbox"\naccount = "{OWNER}"\n'
        f'path = "{mbox}"\n'
        if mbox
        else ""
    )
    (folder / "crm-sync.toml").write_text(
        f'[database]\nurl = "sqlite:///{database}"\n\n'
        '[agent]\ninterval = "10s"\ninternal_domains = ["example.com"]\n\n'
        f"{connector}"
    )


def logged_count(database: Path) -> int:
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Interaction)) or 0)
    except Exception:  # the agent is still creating the schema
        return 0
    finally:
        engine.dispose()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Callable[[int], subprocess.Popen[bytes]]]:
    """Start ``crm-sync run`` (umask 022) on the database ``db upgrade`` made, and wait until
    it logged ``n`` interactions."""
    started: list[subprocess.Popen[bytes]] = []
    output = tmp_path / "agent.log"

    def start(n: int) -> subprocess.Popen[bytes]:
        upgraded = run_cli("db", "upgrade", cwd=tmp_path, umask=UMASK)
        assert upgraded.returncode == 0, upgraded.stderr
        process = start_cli("run", cwd=tmp_path, output=output, umask=UMASK)
        started.append(process)
        wait_for(lambda: logged_count(tmp_path / "data" / "crm.db") >= n, 60, "the agent's sync")
        assert process.poll() is None, output.read_text()
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    if output.exists():
        print(output.read_text(errors="replace")[-3000:])


def customer_mail(n: int) -> bytes:
    return message(
        sender=f"Customer {n} <customer{n}@acme{n % 7}.example>",
        to=[OWNER],
        subject=f"Order {n} for {'x' * (n % 50)}",
        body=f"Please ship order {n}. " * 5,
        message_id=f"<order-{n}@acme.example>",
        date=START + timedelta(minutes=n),
    )


def zelda_mail(n: int) -> bytes:
    """Mail with Zelda alone outside: erased whole with her, subject and snippet included."""
    ours, theirs = OWNER, f"{ZELDA_NAME} <{ZELDA}>"
    sender, to = (ours, theirs) if n % 2 == 0 else (theirs, ours)
    return message(
        sender=sender,
        to=[to],
        subject=f"Renewal for {ZELDA_NAME} #{n}",
        body=f"Dear {ZELDA_NAME}, write to {ZELDA} about renewal {n}.",
        message_id=f"<renewal-{n}@example.com>",
        date=START + timedelta(days=1, minutes=n),
    )


def shared_mail() -> bytes:
    """Zelda and another customer: kept, only her participation goes."""
    return message(
        sender=OWNER,
        to=[f"{ZELDA_NAME} <{ZELDA}>", "Dan Other <dan@other.example>"],
        subject="Quarterly review",
        body="Hello both.",
        message_id="<review@example.com>",
        date=START + timedelta(days=2),
    )


def checkpoint(database: Path) -> None:
    """What SQLite does by itself as the log grows: copy it into the file, keep its bytes."""
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        connection.close()


def database_bytes(database: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in (database, *(database.with_name(database.name + s) for s in ("-wal", "-shm")))
        if path.exists()
    }


def traces(files: dict[str, bytes]) -> list[str]:
    """Where the address or the surname (also stored apart from the first name) still
    occurs: as UTF-8 in any case, or as UTF-16."""
    needles = [ZELDA, SURNAME.lower()]
    return [
        f"{name}: {needle!r}"
        for name, data in files.items()
        for needle in needles
        if needle.encode() in data.lower() or needle.encode("utf-16-le") in data.lower()
    ]


# ------------------------------------------------------------------------------- file modes


def test_files_are_created_owner_only_under_umask_022(
    tmp_path: Path, agent: Callable[[int], subprocess.Popen[bytes]]
) -> None:
    database = tmp_path / "data" / "crm.db"
    mbox = write_mbox(tmp_path / "carol.mbox", [customer_mail(n) for n in range(5)])
    assert run_cli("init", cwd=tmp_path, umask=UMASK).returncode == 0
    write_config(tmp_path, database, mbox)
    refused = run_cli("db", "upgrade", cwd=tmp_path, umask=UMASK)
    assert refused.returncode == 2, "a folder that is not there is a mistyped path, not made"
    assert f"the folder {database.parent} of the SQLite database" in refused.stderr
    assert not database.parent.exists()
    database.parent.mkdir()
    upgraded = run_cli("db", "upgrade", cwd=tmp_path, umask=UMASK)
    assert upgraded.returncode == 0, upgraded.stderr
    assert mode(database) == 0o600
    assert mode(tmp_path / "crm-sync.key") == 0o600

    agent(5)
    for suffix in ("-wal", "-shm", ".agent.lock"):
        log = database.with_name(database.name + suffix)
        assert log.exists(), f"the running agent holds {log.name}"
        assert mode(log) == 0o600, log

    store = textwrap.dedent(
        f"""
        from config.secrets import TokenStore
        store = TokenStore.open({str(tmp_path / "crm-sync-tokens")!r},
                                key_file={str(tmp_path / "crm-sync.key")!r}, environ={{}})
        store.save("alice-gmail", {{"refresh_token": "1//secret"}})
        """
    )
    saved = subprocess.run([sys.executable, "-c", store], umask=UMASK, check=False)
    assert saved.returncode == 0
    assert mode(tmp_path / "crm-sync-tokens") == 0o700
    assert mode(tmp_path / "crm-sync-tokens" / "alice-gmail.token") == 0o600

    status = run_cli("status", cwd=tmp_path)
    assert "warning: " not in status.stdout + status.stderr, "no file is loose"


def test_status_warns_about_loose_files_and_changes_nothing(tmp_path: Path) -> None:
    database = tmp_path / "crm.db"
    assert run_cli("init", cwd=tmp_path).returncode == 0
    write_config(tmp_path, database)
    assert run_cli("db", "upgrade", cwd=tmp_path).returncode == 0
    tokens = tmp_path / "crm-sync-tokens"
    tokens.mkdir(mode=0o700)
    (tokens / "alice-gmail.token").write_bytes(b"sealed")
    loose = {
        database: (0o644, "600"),
        tmp_path / "crm-sync.key": (0o640, "600"),
        tokens: (0o755, "700"),
        tokens / "alice-gmail.token": (0o604, "600"),
    }
    for path, (loose_mode, _) in loose.items():
        path.chmod(loose_mode)

    human = run_cli("status", cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    for path, (loose_mode, fix) in loose.items():
        line = next(line for line in human.stdout.splitlines() if f"warning: {path} " in line)
        assert f"mode {loose_mode:04o}" in line and f"`chmod {fix} {path}`" in line, line
        assert mode(path) == loose_mode, "status only warns"

    as_json = run_cli("status", "--json", cwd=tmp_path)
    assert as_json.returncode == 0
    assert json.loads(as_json.stdout) == []
    assert f"run `chmod 600 {database}`" in as_json.stderr

    for path, (_, fix) in loose.items():
        path.chmod(int(fix, 8))
    quiet = run_cli("status", cwd=tmp_path)
    assert "warning: " not in quiet.stdout + quiet.stderr, "no file is loose"


# ---------------------------------------------------------------------------------- forget


def test_forget_leaves_no_bytes_of_the_person_while_an_agent_holds_the_database(
    tmp_path: Path, agent: Callable[[int], subprocess.Popen[bytes]]
) -> None:
    database = tmp_path / "data" / "crm.db"
    database.parent.mkdir()
    mail = [customer_mail(n) for n in range(150)]
    mail += [zelda_mail(n) for n in range(40)] + [shared_mail()]
    mail += [customer_mail(n) for n in range(150, 300)]
    write_config(tmp_path, database, write_mbox(tmp_path / "carol.mbox", mail))
    running = agent(len(mail))
    checkpoint(database)
    assert any(t.startswith("crm.db:") for t in traces(database_bytes(database))), "seeded"

    forget = run_cli("forget", ZELDA, "--yes", "--json", cwd=tmp_path, timeout=300)

    assert forget.returncode == 0, forget.stdout + forget.stderr
    counts = json.loads(forget.stdout)
    assert (counts["contacts"], counts["interactions_deleted"]) == (1, 40)
    assert counts["interactions_trimmed"] == 1
    assert running.poll() is None, "the agent kept the database open throughout"
    assert traces(database_bytes(database)) == []
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(Interaction)) == len(mail) - 40
        assert connection.scalar(select(func.count()).where(ContactEmail.email == ZELDA)) == 0
    engine.dispose()

    running.send_signal(signal.SIGTERM)
    assert running.wait(timeout=60) == 0
    assert traces(database_bytes(database)) == []


def test_a_reader_that_never_lets_go_is_reported_and_db_vacuum_finishes_later(
    tmp_path: Path,
) -> None:
    database = tmp_path / "crm.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    with transaction(session_factory(engine)) as session:
        session.add(Quarantine(connector="c", source_id="1", reason="x" * 5000))
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "db.execute('BEGIN'); db.execute('SELECT count(*) FROM quarantine').fetchall()\n"
            "print('reading', flush=True); time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"
        with transaction(session_factory(engine), secure_delete=True) as session:
            session.execute(text("DELETE FROM quarantine"))
        problem = purge_freed_space(engine, ERASURE_TABLES, wait=2)
        assert problem is not None and "write-ahead log could not be emptied" in problem
    finally:
        reader.kill()
        reader.wait()
    engine.dispose()
    write_config(tmp_path, database)
    done = run_cli("db", "vacuum", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "freed space overwritten" in done.stdout
    assert not (tmp_path / "crm.db-wal").exists() or (tmp_path / "crm.db-wal").stat().st_size == 0


# -------------------------------------------------------------- both databases, in process


def _log_mail(engine: Engine) -> None:
    settings = parse_settings({"agent": {"internal_domains": ["example.com"]}}, None)
    items: list[Item] = [
        MailMessage(f"m{n}", OWNER, zelda_mail(n) if n < 3 else customer_mail(n)) for n in range(6)
    ]
    policy = Policy.from_settings(settings, "carol-mail", OWNER)
    result = sync_connector(
        session_factory(engine), MemoryConnector("carol-mail", items), policy, kind="t"
    )
    assert result.logged == len(items), result


def test_forget_redacts_the_address_in_errors_and_quarantine_reasons(
    tmp_path: Path, db_url: str
) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    _log_mail(engine)
    with transaction(session_factory(engine)) as session:
        session.add(SyncState(connector="other", last_error=f"refused: {ZELDA.upper()}!"))
        session.add(Quarantine(connector="c", source_id="1", reason=f"bad <{ZELDA}> header"))
        session.add(Quarantine(connector="c", source_id="2", reason="dan@other.example is bad"))
        session.add(Quarantine(connector="c", source_id="3", reason=f"not her: a{ZELDA}"))
    (tmp_path / "crm-sync.toml").write_text('[agent]\ninternal_domains = ["example.com"]\n')

    done = run_cli("forget", ZELDA, "--yes", cwd=tmp_path, env={"CRM_SYNC_DATABASE_URL": db_url})

    assert done.returncode == 0, done.stderr
    with engine.connect() as connection:
        error = select(SyncState.last_error).where(SyncState.connector == "other")
        assert connection.scalar(error) == f"refused: {REDACTED}!"
        reasons = set(connection.scalars(select(Quarantine.reason)))
    assert reasons == {
        f"bad <{REDACTED}> header",
        "dan@other.example is bad",
        f"not her: a{ZELDA}",
    }
    engine.dispose()


def test_forget_vacuums_the_tables_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    _log_mail(engine)
    env = {"CRM_SYNC_DATABASE_URL": pg_url}
    (tmp_path / "crm-sync.toml").write_text('[agent]\ninternal_domains = ["example.com"]\n')
    started = datetime.now(timezone.utc)

    done = run_cli("forget", ZELDA, "--yes", "--json", cwd=tmp_path, env=env)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["interactions_deleted"] == 3
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).where(ContactEmail.email == ZELDA)) == 0
        stats = "SELECT relname, last_vacuum FROM pg_stat_user_tables WHERE relname = ANY(:t)"
        rows = connection.execute(text(stats), {"t": list(ERASURE_TABLES)}).all()
    vacuumed: dict[str, datetime | None] = {name: at for name, at in rows}
    assert set(vacuumed) == set(ERASURE_TABLES)
    assert all(at is not None and at >= started for at in vacuumed.values()), vacuumed
    again = run_cli("db", "vacuum", cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    engine.dispose()
