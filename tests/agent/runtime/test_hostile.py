"""The hostile corpus through every way mail and calendars arrive, on both databases.

Each source (an mbox file, a real Dovecot over IMAP, a folder of .ics files)
is synced by the real ``crm-sync sync`` in its own process, once into SQLite
and once into PostgreSQL. Each run must end with the agent alive (exit 0),
the ordinary mail logged, every hostile case bounded or quarantined with its
reason, the process's peak memory under :data:`MEMORY_CAP_MIB`, and the two
databases holding the same thing. The cases are described in
``tests/support/hostile_corpus.py``; the bounds are ``config.limits``.
"""

from __future__ import annotations

import filecmp
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from config.limits import DEFAULT, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_PARTICIPANTS
from storage.db import make_engine
from storage.models import (
    Contact,
    ContactEmail,
    Interaction,
    InteractionParticipant,
    Quarantine,
    SyncState,
)
from tests.support.cli import (
    FAST_AGENT,
    run_cli,
    run_measured,
    start_cli,
    upgrade_database,
)
from tests.support.dovecot import DovecotServer, ImapUser
from tests.support.hostile_corpus import BOB, CAROL, HOSTILE, OWNER, build
from tests.support.mailbuilder import write_mbox

MEMORY_CAP_MIB = 300
"""A first sync of the whole corpus peaks near 130 MiB; the cap leaves room, not leaks."""

MAIL = sorted((HOSTILE / "mail").glob("*.eml"))
Outcome = dict[str, Any]


def test_the_committed_corpus_is_what_its_script_builds(tmp_path: Path) -> None:
    built = build(tmp_path)
    committed = sorted(p.relative_to(HOSTILE) for p in HOSTILE.rglob("*") if p.is_file())
    assert sorted(p.relative_to(tmp_path) for p in built) == committed
    for path in built:
        assert filecmp.cmp(path, HOSTILE / path.relative_to(tmp_path), shallow=False), path


def _mbox_connector(folder: Path) -> str:
    mbox = write_mbox(folder / "hostile.mbox", [path.read_bytes() for path in MAIL])
    return f'kind = "mbox"\npath = "{mbox}"\n'


def _ics_connector(_folder: Path) -> str:
    return f'kind = "ics"\npath = "{HOSTILE / "calendars"}"\n'


def _imap_connector(server: DovecotServer, user: ImapUser) -> Callable[[Path], str]:
    def table(_folder: Path) -> str:
        return (
            f'kind = "imap"\nhost = "{server.host}"\nport = {server.port}\n'
            f'security = "plain"\nusername = "{user.login}"\npassword = "{user.password}"\n'
        )

    return table


def _config(folder: Path, url: str, connector: str) -> Path:
    path = folder / "crm-sync.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n'
        '[agent]\ninternal_domains = ["northwind.example"]\n'
        f'[[connectors]]\nname = "hostile"\naccount = "{OWNER}"\n{connector}'
    )
    return path


def _sync_both(
    tmp_path: Path, sqlite_url: str, pg_url: str, connector: Callable[[Path], str]
) -> Outcome:
    """Sync the source into each database in a process of its own; the (equal) outcome."""
    outcomes: dict[str, Outcome] = {}
    for name, url in (("sqlite", sqlite_url), ("postgresql", pg_url)):
        folder = tmp_path / name
        folder.mkdir()
        config = _config(folder, url, connector(folder))
        upgrade = run_measured("--config", str(config), "db", "upgrade", cwd=folder)
        assert upgrade.returncode == 0, upgrade.stderr
        run = run_measured("--config", str(config), "sync", cwd=folder)
        assert run.returncode == 0, (run.stdout, run.stderr)
        assert run.peak_rss_mib < MEMORY_CAP_MIB, run.peak_rss_mib
        print(f"{name}: {run.seconds:.1f} s, peak RSS {run.peak_rss_mib:.0f} MiB")
        outcomes[name] = _outcome(url)
        _assert_status_shows(outcomes[name], config, folder)
    assert outcomes["sqlite"] == outcomes["postgresql"]
    return outcomes["sqlite"]


def _assert_status_shows(outcome: Outcome, config: Path, folder: Path) -> None:
    """What the database holds is what an admin is shown: the bounds hit, the items refused."""
    shown = run_cli("--config", str(config), "status", "--skipped", "--json", cwd=folder)
    limited = {
        row["reason"]: row["count"]
        for row in json.loads(shown.stdout)
        if row["outcome"] == "limited"
    }
    assert limited == outcome["limited"]
    shown = run_cli("--config", str(config), "status", "--quarantined", "--json", cwd=folder)
    listed = sorted((row["source_id"], row["reason"]) for row in json.loads(shown.stdout))
    assert listed == outcome["quarantine"]


def _outcome(url: str) -> Outcome:
    """What the database holds, without its ids: comparable across databases."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            emails = {
                row.contact_id: row.email
                for row in connection.execute(select(ContactEmail.contact_id, ContactEmail.email))
            }
            people: dict[int, list[tuple[str, str, str | None, str | None]]] = {}
            for row in connection.execute(select(InteractionParticipant)):
                people.setdefault(row.interaction_id, []).append(
                    (row.email, row.role, row.name, emails.get(row.contact_id))
                )
            interactions = sorted(
                (
                    row.kind,
                    row.dedupe_key,
                    row.subject,
                    row.thread,
                    tuple(sorted(people.get(row.id, []))),
                )
                for row in connection.execute(select(Interaction))
            )
            counters = connection.execute(select(SyncState.counters)).scalar_one()
            quarantine = sorted(
                connection.execute(select(Quarantine.source_id, Quarantine.reason)).all()
            )
            contacts = connection.execute(select(Contact.id)).all()
    finally:
        engine.dispose()
    return {
        "interactions": interactions,
        "limited": counters.get("limited", {}),
        "skipped": counters.get("skipped", {}),
        "quarantine": [tuple(row) for row in quarantine],
        "contacts": sorted(emails.values()),
        "contact_rows": len(contacts),
    }


def _by_key(outcome: Outcome) -> dict[str, tuple[Any, ...]]:
    return {row[1]: row for row in outcome["interactions"]}


def _assert_mail_cases(outcome: Outcome) -> None:
    """What every mail source must make of the mail cases (invitations aside)."""
    keys = _by_key(outcome)
    for index in range(1, 7):
        assert f"normal-{index}@northwind.example" in keys
    hashed = [key for key in keys if key.startswith("sha256:")]
    assert len(hashed) == 1 and len(hashed[0]) <= MAX_ID_CHARS
    assert keys[hashed[0]][3].startswith("sha256:")  # the thread key, from References, too
    [long_name] = [p[2] for p in keys["long-name@acme.example"][4] if p[0] == BOB]
    assert len(long_name) == MAX_NAME_CHARS and long_name.endswith("…")
    assert len(keys["blast@northwind.example"][4]) == MAX_PARTICIPANTS
    assert keys["nul@acme.example"][2] == "Hithere"
    first = keys["quote-7@acme.example"]
    [second] = [row for key, row in keys.items() if key.startswith("collision:")]
    assert first[2] == "Confidential quote for Acme"
    assert {p[0] for p in first[4]} == {BOB, OWNER}
    assert second[2] == "Hello from Globex"
    assert {p[0] for p in second[4]} == {CAROL, OWNER}
    reasons = [reason for _, reason in outcome["quarantine"]]
    assert sorted(reasons) == sorted(
        [
            "Date header year '0' is not a year",
            "Date header year '0000' is not a year",
            reasons[[r.startswith("date 2999-06-07") for r in reasons].index(True)],
        ]
    )
    assert outcome["limited"]["dedupe_collision"] == 1
    assert outcome["limited"]["participants_capped"] == 1
    assert outcome["limited"]["too_many_recipients"] == 1
    assert outcome["contacts"] == [BOB]  # the owner wrote to Bob; 10,000 recipients made none


def _meetings(outcome: Outcome, thread: str) -> int:
    return sum(1 for row in outcome["interactions"] if row[0] == "meeting" and row[3] == thread)


def test_hostile_mail_from_an_mbox(tmp_path: Path, sqlite_url: str, pg_url: str) -> None:
    outcome = _sync_both(tmp_path, sqlite_url, pg_url, _mbox_connector)
    _assert_mail_cases(outcome)
    # The invitations, read whole from the file, are expanded: within bounds.
    assert _meetings(outcome, "secondly@acme.example") == DEFAULT.occurrences_per_series
    assert _meetings(outcome, "impossible@acme.example") == 1
    assert outcome["limited"]["series_capped"] == 2


def test_hostile_mail_over_imap(
    tmp_path: Path, sqlite_url: str, pg_url: str, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "INBOX", [path.read_bytes() for path in MAIL])
    outcome = _sync_both(tmp_path, sqlite_url, pg_url, _imap_connector(dovecot, imap_user))
    _assert_mail_cases(outcome)
    # IMAP reads headers and the first text part: the invitations arrive without calendars.
    assert not any(row[0] == "meeting" for row in outcome["interactions"])


def test_hostile_calendar_files(tmp_path: Path, sqlite_url: str, pg_url: str) -> None:
    outcome = _sync_both(tmp_path, sqlite_url, pg_url, _ics_connector)
    assert _meetings(outcome, "weekly@acme.example") == 4
    assert _meetings(outcome, "secondly-ics@acme.example") == DEFAULT.occurrences_per_series
    assert _meetings(outcome, "impossible-ics@acme.example") == 1
    [long_uid] = [row for row in outcome["interactions"] if row[3].startswith("sha256:")]
    assert long_uid[2] == "Long UID" and len(long_uid[1]) < 500
    shared = [row for row in outcome["interactions"] if row[2] in ("Acme review", "Globex call")]
    assert sorted((row[2], {p[0] for p in row[4]} - {OWNER}) for row in shared) == [
        ("Acme review", {BOB}),
        ("Globex call", {CAROL}),
    ]
    assert outcome["limited"] == {"dedupe_collision": 1, "series_capped": 2}
    assert outcome["quarantine"] == []


MEMORY_LIMIT = 2 * 1024**3
"""The address space ``run`` gets below: the unbounded expansion needed about 3 GB."""


def test_the_agent_runs_on_under_a_memory_limit_fed_a_secondly_invitation(
    tmp_path: Path, sqlite_url: str
) -> None:
    invitation = (HOSTILE / "mail" / "secondly-invitation.eml").read_bytes()
    normal = [path.read_bytes() for path in MAIL if path.name.startswith("normal-")]
    mbox = write_mbox(tmp_path / "mail.mbox", [normal[0], invitation, *normal[1:]])
    config = _config(tmp_path, sqlite_url, f'kind = "mbox"\npath = "{mbox}"\ninterval = "1s"\n')
    upgrade_database(tmp_path, "--config", str(config), env=FAST_AGENT)
    agent = start_cli(
        "--config",
        str(config),
        "run",
        cwd=tmp_path,
        output=tmp_path / "agent.log",
        env=FAST_AGENT,
        rlimit_as=MEMORY_LIMIT,
    )
    try:
        deadline = time.monotonic() + 120
        logged = 0
        while time.monotonic() < deadline and agent.poll() is None:
            logged = _logged_mail(sqlite_url)
            if logged == len(normal):
                break
            time.sleep(0.5)
        time.sleep(2)  # a few more runs of the agent's interval
        assert agent.poll() is None, (tmp_path / "agent.log").read_text()[-2000:]
        assert logged == len(normal)
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
    assert agent.returncode == 0, (tmp_path / "agent.log").read_text()[-2000:]


def _logged_mail(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            keys = connection.execute(select(Interaction.dedupe_key)).scalars().all()
    except Exception:
        return 0  # the agent has not created the schema yet
    finally:
        engine.dispose()
    return sum(1 for key in keys if key.startswith("normal-"))
