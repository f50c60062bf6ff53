"""Which abilities each connector declares, and how the agent does without one.

A connector has an ability by having its methods (``connectors.capabilities``),
so a method added or removed by mistake changes what the agent does with it:
the table below pins the set for every connector class.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.oauth2.credentials import Credentials

from agent.cli.main import main
from connectors.capabilities import (
    Closeable,
    Inventoried,
    Metered,
    Positioned,
    Sized,
    Watchable,
)
from connectors.google.calendar import GoogleCalendarConnector
from connectors.google.gmail import GmailConnector
from connectors.ical.files import IcsConnector
from connectors.imap.connector import ImapConnector
from connectors.mbox import MboxConnector
from connectors.memory import MemoryConnector
from connectors.records import Batch

ME = "me@example.com"
ABILITIES = {
    "Sized": Sized,
    "Positioned": Positioned,
    "Inventoried": Inventoried,
    "Watchable": Watchable,
    "Metered": Metered,
    "Closeable": Closeable,
}


def _mbox(tmp_path: Path) -> MboxConnector:
    return MboxConnector("box", tmp_path / "box.mbox", ME)


def _ics(tmp_path: Path) -> IcsConnector:
    return IcsConnector("cal", tmp_path / "cal.ics", ME)


def _imap(_tmp_path: Path) -> ImapConnector:
    return ImapConnector("imap", host="127.0.0.1", username=ME, password="x", security="plain")


def _gmail(_tmp_path: Path) -> GmailConnector:
    return GmailConnector("gmail", ME, Credentials(token="t"))


def _calendar(_tmp_path: Path) -> GoogleCalendarConnector:
    return GoogleCalendarConnector("calendar", ME, Credentials(token="t"))


def _memory(_tmp_path: Path) -> MemoryConnector:
    return MemoryConnector("memory")


TABLE = [
    ("mbox", _mbox, {"Sized", "Positioned", "Inventoried"}),
    ("ics", _ics, {"Sized"}),
    ("imap", _imap, {"Sized", "Inventoried", "Watchable", "Closeable"}),
    ("gmail", _gmail, {"Sized", "Inventoried", "Metered"}),
    ("google_calendar", _calendar, {"Metered"}),
    ("memory", _memory, set()),
]


@pytest.mark.parametrize(
    ("build", "expected"), [row[1:] for row in TABLE], ids=[r[0] for r in TABLE]
)
def test_each_connector_declares_exactly_its_abilities(
    tmp_path: Path, build: Callable[[Path], object], expected: set[str]
) -> None:
    connector = build(tmp_path)
    found = {name for name, ability in ABILITIES.items() if isinstance(connector, ability)}
    assert found == expected


def test_quota_spent_is_a_mapping_per_api_method(tmp_path: Path) -> None:
    """Metered promises a method: ``status`` records what it returns after each run."""
    for connector in (_gmail(tmp_path), _calendar(tmp_path)):
        spent = connector.units_spent()
        assert isinstance(spent, Mapping) and dict(spent) == {}


def test_an_mbox_file_positions_each_batch_by_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "box.mbox"
    path.write_bytes(b"".join(_mbox_message(n) for n in range(5)))
    connector = MboxConnector("box", path, ME, batch_size=2)
    positions = [connector.position(batch) for batch in connector.fetch(None)]
    assert connector.progress_total() == path.stat().st_size
    assert positions == sorted(positions) and positions[-1] == path.stat().st_size


def test_a_maildir_has_no_position_so_progress_counts_items(tmp_path: Path) -> None:
    (tmp_path / "cur").mkdir()
    (tmp_path / "new").mkdir()
    (tmp_path / "cur" / "1.msg:2,S").write_bytes(_mbox_message(1).partition(b"\n")[2])
    connector = MboxConnector("box", tmp_path, ME)
    assert connector.progress_total() is None
    assert [connector.position(batch) for batch in connector.fetch(None)] == [None]
    assert connector.position(Batch([], {"v": 1, "last": "1.msg"})) is None


def _mbox_message(n: int) -> bytes:
    return (
        f"From sender{n}@acme.test Mon Jan  1 00:00:00 2024\n"
        f"From: sender{n}@acme.test\nTo: {ME}\nSubject: n{n}\n"
        "Date: Mon, 1 Jan 2024 00:00:00 +0000\n\nbody\n\n"
    ).encode()


# ------------------------------------------------------------- the agent without an ability


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The CLI run in this process from ``tmp_path``, its logging set back afterwards."""
    for name in [n for n in os.environ if n.startswith("CRM_SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield tmp_path
    root.handlers[:] = handlers
    root.setLevel(level)


def _cli(*args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``crm-sync args``: its exit status and what it wrote to stderr."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _service_account_key(path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "crm-sync@test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def test_connectors_test_says_a_connector_that_cannot_size_its_first_sync_cannot_be_tested(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _service_account_key(in_tmp / "sa.json")
    assert _cli("init", capsys=capsys)[0] == 0
    added = _cli(
        "connectors", "add", "google_calendar", "--name", "cal", "--account", ME,
        "--auth", "service_account", "--key-file", str(key), capsys=capsys,
    )  # fmt: skip
    assert added[0] == 0, added[1]

    code, err = _cli("connectors", "test", "cal", capsys=capsys)

    assert code == 1
    assert "cal: failed: connector 'cal' cannot be tested yet" in err
