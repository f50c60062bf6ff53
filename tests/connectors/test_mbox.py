"""The mbox and Maildir connector, held to the connector contract and to real files."""

from __future__ import annotations

import mailbox
from datetime import datetime, timezone
from pathlib import Path

import pytest

from connectors.errors import CursorInvalid
from connectors.mbox import MboxConnector
from connectors.memory import MemoryConnector
from connectors.records import MailMessage
from tests.support.contract import ConnectorContract, Source, source_ids
from tests.support.mailbuilder import message, write_maildir, write_mbox
from tests.support.paths import FIXTURES

MESSAGES = [
    message(
        sender="ann@acme.example",
        to=["me@northwind.example"],
        subject=f"Note {n}",
        body=f"From the desk of Ann, note {n}.\nFrom here on, a quoted-looking line.",
        message_id=f"<n{n}@acme.example>",
    )
    for n in range(7)
]


class TestMemoryContract(ConnectorContract):
    @pytest.fixture
    def source(self) -> Source:
        items = [MailMessage(f"m{n}", "me@x.example", raw) for n, raw in enumerate(MESSAGES)]
        return MemoryConnector("memory", list(items), batch_size=3), {f"m{n}" for n in range(7)}


class TestMboxContract(ConnectorContract):
    @pytest.fixture
    def source(self, tmp_path: Path) -> Source:
        path = write_mbox(tmp_path / "all.mbox", MESSAGES)
        connector = MboxConnector("mbox", path, "me@northwind.example", batch_size=3)
        return connector, set(source_ids(connector.fetch(None)))


class TestMaildirContract(ConnectorContract):
    @pytest.fixture
    def source(self, tmp_path: Path) -> Source:
        root = write_maildir(tmp_path / "Maildir", MESSAGES)
        connector = MboxConnector("maildir", root, "me@northwind.example", batch_size=2)
        return connector, set(source_ids(connector.fetch(None)))


def test_mbox_bodies_round_trip_with_from_quoting(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "all.mbox", MESSAGES)
    got = [i.raw for b in MboxConnector("m", path, "me@x.example").fetch(None) for i in b.items]
    assert got == MESSAGES
    assert len(set(source_ids(MboxConnector("m", path, "me@x.example").fetch(None)))) == 7


def test_a_real_netscape_mbox_splits_like_the_stdlib() -> None:
    path = FIXTURES / "mimekit-mbox" / "content-length.mbox.txt"
    ours = [i.raw for b in MboxConnector("m", path, "me@x.example").fetch(None) for i in b.items]
    stdlib = mailbox.mbox(str(path))
    assert len(ours) == len(stdlib) == 29
    subjects = [m["subject"] for m in stdlib]
    assert all(f"Subject: {s}".encode() in raw for raw, s in zip(ours, subjects, strict=True))


def test_takeout_labels_and_thread_ids(tmp_path: Path) -> None:
    raw = message(
        sender="ann@acme.example",
        to=["me@northwind.example"],
        headers={"X-GM-THRID": "1790000000000000001", "X-Gmail-Labels": "Inbox,Important,Opened"},
    )
    path = write_mbox(tmp_path / "takeout.mbox", [raw])
    (item,) = [i for b in MboxConnector("t", path, "me@x.example").fetch(None) for i in b.items]
    assert isinstance(item, MailMessage)
    assert item.thread_id == "1790000000000000001"
    assert item.labels == {"Inbox", "Important", "Opened"}


def test_since_window_bounds_what_is_read(tmp_path: Path) -> None:
    old = message(sender="a@acme.example", date=datetime(2023, 5, 1, tzinfo=timezone.utc))
    new = message(sender="b@acme.example", date=datetime(2024, 5, 1, tzinfo=timezone.utc))
    path = write_mbox(tmp_path / "w.mbox", [old, new])
    since = datetime(2024, 1, 1, tzinfo=timezone.utc)
    items = [
        i
        for b in MboxConnector("w", path, "me@x.example", since=since).fetch(None)
        for i in b.items
    ]
    assert len(items) == 1 and isinstance(items[0], MailMessage)
    assert b"b@acme.example" in items[0].raw


def test_a_rewritten_file_invalidates_the_cursor(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "x.mbox", MESSAGES)
    connector = MboxConnector("x", path, "me@x.example", batch_size=2)
    cursor = next(iter(connector.fetch(None))).cursor
    write_mbox(path, MESSAGES[:1])
    with pytest.raises(CursorInvalid):
        list(connector.fetch(cursor))
