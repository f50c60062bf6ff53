"""Reconciliation: a silent loss cannot hide, and a skip is told with its reason."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from agent.pipeline.policy import Policy
from agent.runtime.reconcile import Missing, NotVerifiable, judge, record_result, verify_connector
from agent.runtime.sync_pass import sync_connector
from config import parse_settings
from connectors.google.auth import gmail_scopes, user_credentials
from connectors.google.gmail import GmailConnector
from connectors.ical.files import IcsConnector
from connectors.imap.connector import ImapConnector
from connectors.mbox import MboxConnector
from connectors.records import Item, MailMessage, Unreadable
from storage.db import make_engine, session_factory
from storage.models import InteractionSource, Quarantine, SyncState
from tests.support.cli import run_cli
from tests.support.dovecot import DovecotServer, ImapUser
from tests.support.fake_google.mailbox import make_email
from tests.support.fake_google.server import FakeGoogle
from tests.support.mailbuilder import message, write_mbox

ME = "alice@northwind.example"
SETTINGS = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
POLICY = Policy.from_settings(SETTINGS, "alice-mail", ME)
LAST_RUN = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def _mail(n: int, **options: object) -> bytes:
    defaults: dict[str, object] = {
        "sender": f"Customer {n} <c{n}@acme.example>",
        "to": [ME],
        "subject": f"Order {n}",
        "message_id": f"<order-{n}@acme.example>",
    }
    return message(**(defaults | options))  # type: ignore[arg-type]


CUSTOMER = _mail(1)
NEWSLETTER = _mail(2, sender="news@shop.example", headers={"List-Id": "<news.shop.example>"})
NO_DATE = _mail(3, date=None)


@pytest.mark.parametrize(
    ("item", "logged", "expected"),
    [
        (
            MailMessage("m2", ME, NEWSLETTER),
            set(),
            ("skipped", "automated_list", True),
        ),
        (MailMessage("m1", ME, CUSTOMER), set(), ("would_log", "the pipeline logs it", False)),
        (MailMessage("m1", ME, CUSTOMER), {"m1"}, None),
        (
            MailMessage(
                "m1", ME, CUSTOMER, internal_date=datetime(2019, 1, 1, tzinfo=timezone.utc)
            ),
            set(),
            ("outside_window", "since", True),
        ),
        (
            MailMessage("m1", ME, CUSTOMER, internal_date=LAST_RUN + timedelta(minutes=1)),
            set(),
            ("pending", "arrived after the last sync", True),
        ),
        (
            MailMessage("m3", ME, NO_DATE),
            set(),
            ("would_quarantine", "no usable Date header", False),
        ),
        (Unreadable("m4", "truncated FETCH"), set(), ("unreadable", "truncated FETCH", False)),
    ],
    ids=[
        "skipped-with-reason",
        "would-log-is-a-loss",
        "logged",
        "outside-window",
        "arrived-after-the-sync",
        "unquarantined-bad-item",
        "unreadable-now",
    ],
)
def test_judge(item: Item, logged: set[str], expected: tuple[str, str, bool] | None) -> None:
    since = datetime(2020, 1, 1, tzinfo=timezone.utc)
    judged = judge(item, POLICY, logged, since=since, last_run=LAST_RUN)
    if expected is None:
        assert judged is None
        return
    assert isinstance(judged, Missing)
    assert (judged.outcome, judged.reason, judged.explained) == expected


def test_skip_detail_and_message_id_help_the_admin_find_it() -> None:
    judged = judge(MailMessage("m2", ME, NEWSLETTER), POLICY, set())
    assert judged is not None
    assert judged.message_id == "<order-2@acme.example>"
    assert "news.shop.example" in judged.detail


# ---------------------------------------------------------------------------- mbox, both DBs


MAILS = [
    *(_mail(n) for n in range(10)),
    *(_mail(n, sender=f"noreply@s{n}.example") for n in range(10, 13)),
    *(_mail(n, headers={"Precedence": "bulk"}) for n in range(13, 15)),
    NO_DATE,
]


def _sync(sessions: sessionmaker[Session], connector: object, policy: Policy = POLICY) -> None:
    result = sync_connector(sessions, connector, policy, kind="mbox")  # type: ignore[arg-type]
    assert result.status == "ok", result.error


def test_verify_accounts_for_every_message_and_catches_a_loss(
    engine: Engine, tmp_path: Path
) -> None:
    sessions = session_factory(engine)
    connector = MboxConnector("alice-mail", write_mbox(tmp_path / "a.mbox", MAILS), ME)
    _sync(sessions, connector)

    clean = verify_connector(sessions, connector, POLICY)
    assert (clean.held, clean.logged, clean.quarantined) == (16, 10, 1)
    assert {(m.outcome, m.reason) for m in clean.missing} == {
        ("skipped", "automated_sender"),
        ("skipped", "automated_bulk"),
    }
    assert clean.unexplained == 0 and clean.extra == 0

    with sessions() as session, session.begin():
        lost = session.scalars(select(InteractionSource).limit(2)).all()
        for row in lost:
            session.delete(row)
        session.execute(delete(Quarantine))
    report = verify_connector(sessions, connector, POLICY)
    unexplained = sorted(m.outcome for m in report.missing if not m.explained)
    assert unexplained == ["would_log", "would_log", "would_quarantine"]
    losses = {m.source_id for m in report.missing if m.outcome == "would_log"}
    assert losses == {row.source_id for row in lost}
    assert report.unexplained == 3

    record_result(sessions, report)
    with sessions() as session:
        recorded = session.get(SyncState, "alice-mail")
        assert recorded is not None
        assert recorded.counters["verify"]["unexplained"] == 3
        assert recorded.counters["items"] == 16


def test_skips_the_sync_never_counted_are_unexplained(engine: Engine, tmp_path: Path) -> None:
    sessions = session_factory(engine)
    connector = MboxConnector("alice-mail", write_mbox(tmp_path / "a.mbox", MAILS), ME)
    _sync(sessions, connector)
    with sessions() as session, session.begin():
        state = session.get(SyncState, "alice-mail")
        assert state is not None
        state.counters = dict(state.counters) | {"skipped": {"automated_sender": 3}}
    report = verify_connector(sessions, connector, POLICY)
    assert report.uncounted_skips == 2 and report.unexplained == 2


def test_a_stopped_import_is_judged_only_up_to_its_cursor(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    sessions = session_factory(sqlite_engine)
    path = write_mbox(tmp_path / "a.mbox", MAILS)
    connector = MboxConnector("alice-mail", path, ME, batch_size=5)

    class Stop(BaseException):
        pass

    def stop_after_first_batch(*_args: object) -> None:
        raise Stop

    with pytest.raises(Stop):
        sync_connector(sessions, connector, POLICY, kind="mbox", progress=stop_after_first_batch)
    report = verify_connector(sessions, connector, POLICY)
    assert report.held == 5 and report.unexplained == 0


def test_never_synced_and_unlistable_connectors(sqlite_engine: Engine, tmp_path: Path) -> None:
    sessions = session_factory(sqlite_engine)
    connector = MboxConnector("new-mail", write_mbox(tmp_path / "a.mbox", MAILS), ME)
    report = verify_connector(sessions, connector, POLICY)
    assert not report.synced and report.unexplained == 0
    with pytest.raises(NotVerifiable):
        verify_connector(sessions, IcsConnector("cal", tmp_path, ME), POLICY)


def test_cli_exit_status_tells_a_loss(tmp_path: Path) -> None:
    mbox = write_mbox(tmp_path / "a.mbox", MAILS)
    (tmp_path / "crm-sync.toml").write_text(
        '[agent]\ninternal_domains = ["northwind.example"]\n'
        f'[[connectors]]\nname = "alice-mail"\nkind = "mbox"\naccount = "{ME}"\npath = "{mbox}"\n'
    )
    assert run_cli("db", "upgrade", cwd=tmp_path).returncode == 0
    assert run_cli("sync", cwd=tmp_path).returncode == 0
    clean = run_cli("verify", "alice-mail", "--json", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["unexplained"] == 0

    engine = make_engine(f"sqlite:///{tmp_path / 'crm-sync.db'}")
    with session_factory(engine)() as session, session.begin():
        session.execute(
            update(InteractionSource)
            .where(InteractionSource.id == select(InteractionSource.id).limit(1).scalar_subquery())
            .values(source_id="renamed")
        )
    engine.dispose()
    lost = run_cli("verify", "alice-mail", cwd=tmp_path)
    assert lost.returncode == 1
    assert "1 unexplained" in lost.stdout and "would_log" in lost.stdout
    assert "logged but no longer there" in lost.stdout
    unknown = run_cli("verify", "nobody", cwd=tmp_path)
    assert unknown.returncode == 2


# ------------------------------------------------------------------------- Gmail, fake server


def test_verify_gmail_over_the_fake_server(sqlite_engine: Engine, fake_google: FakeGoogle) -> None:
    sessions = session_factory(sqlite_engine)
    box = fake_google.add_mailbox(ME)
    for n in range(6):
        box.add_message(_mail(n), labels=("INBOX",))
    box.add_message(NEWSLETTER, labels=("INBOX",))
    box.add_message(_mail(7), labels=("SPAM",))
    record = {
        "refresh_token": fake_google.issue_refresh_token(ME, gmail_scopes("metadata")),
        "client_id": "test-client",
        "client_secret": "test-secret",
        "token_uri": fake_google.token_uri,
    }
    connector = GmailConnector(
        "alice-gmail",
        ME,
        user_credentials(record),
        api_endpoint=fake_google.url,
        sleep=lambda _: None,
    )
    policy = Policy.from_settings(SETTINGS, "alice-gmail", ME)
    assert sync_connector(sessions, connector, policy, kind="gmail").logged == 6

    clean = verify_connector(sessions, connector, policy)
    assert (clean.held, clean.logged, clean.unexplained) == (7, 6, 0)
    assert [m.reason for m in clean.missing] == ["automated_list"]

    box.add_message(
        make_email(subject="just now", to=ME, date=datetime.now(timezone.utc)),
        internal_date=datetime.now(timezone.utc),
    )
    with sessions() as session, session.begin():
        session.execute(delete(InteractionSource).where(InteractionSource.id == 1))
    report = verify_connector(sessions, connector, policy)
    assert sorted(m.outcome for m in report.missing) == [
        "pending",
        "skipped",
        "would_log",
    ]
    assert report.unexplained == 1
    assert not [
        c for c in fake_google.api_calls("users.messages.get") if c.format in ("full", "raw")
    ]


# ------------------------------------------------------------------------------- IMAP, Dovecot


def test_verify_imap_against_dovecot(
    sqlite_engine: Engine, dovecot: DovecotServer, imap_user: ImapUser
) -> None:
    dovecot.append(imap_user, "INBOX", [*MAILS[:4], NEWSLETTER])
    connector = ImapConnector(
        "verify-imap",
        host=dovecot.host,
        port=dovecot.port,
        username=imap_user.login,
        password=imap_user.password,
        security="plain",
    )
    assert {size.scope: size.count for size in connector.first_sync_size()} == {
        "INBOX": 5,
        "Sent": 0,
    }
    sessions = session_factory(sqlite_engine)
    policy = Policy.from_settings(SETTINGS, "verify-imap", imap_user.address)
    sync_connector(sessions, connector, policy, kind="imap")
    dovecot.append(imap_user, "INBOX", [_mail(99)])

    report = verify_connector(sessions, connector, policy)

    assert (report.held, report.logged, report.unexplained) == (5, 4, 0)
    assert [m.reason for m in report.missing] == ["automated_list"]
    with sessions() as session, session.begin():
        session.execute(delete(InteractionSource).where(InteractionSource.id == 1))
    lost = verify_connector(sessions, connector, policy)
    assert [m.outcome for m in lost.missing if not m.explained] == ["would_log"]


def test_gmail_inventory_in_metadata_mode_stops_at_the_window(
    sqlite_engine: Engine, fake_google: FakeGoogle
) -> None:
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sessions = session_factory(sqlite_engine)
    box = fake_google.add_mailbox(ME)
    for n in range(12):
        when = since + timedelta(days=10 - n * 3)
        box.add_message(_mail(n, date=when), labels=("INBOX",), internal_date=when)
    record = {
        "refresh_token": fake_google.issue_refresh_token(ME, gmail_scopes("metadata")),
        "client_id": "test-client",
        "client_secret": "test-secret",
        "token_uri": fake_google.token_uri,
    }
    connector = GmailConnector(
        "alice-gmail",
        ME,
        user_credentials(record),
        labels=("INBOX",),
        since=since,
        api_endpoint=fake_google.url,
        page_size=2,
        sleep=lambda _: None,
    )
    policy = Policy.from_settings(SETTINGS, "alice-gmail", ME)
    assert sync_connector(sessions, connector, policy, kind="gmail").logged == 4

    report = verify_connector(sessions, connector, policy)

    assert report.logged == 4 and report.unexplained == 0
    assert [m.outcome for m in report.missing] == ["outside_window"] * 2
    assert report.held == 6
