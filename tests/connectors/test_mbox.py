"""The mbox and Maildir connector against real files; its contract is in test_contract.py."""

from __future__ import annotations

import mailbox
from datetime import datetime, timezone
from pathlib import Path

import pytest

from connectors.errors import CursorInvalid
from connectors.mbox import MboxConnector
from connectors.records import MailMessage
from tests.support.mailbuilder import message, write_mbox
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


def test_mbox_bodies_round_trip_with_from_quoting(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "all.mbox", MESSAGES)
    got = [i.raw for b in MboxConnector("m", path, "me@x.example").fetch(None) for i in b.items]
    assert got == MESSAGES
    ids = {
        i.source_id for b in MboxConnector("m", path, "me@x.example").fetch(None) for i in b.items
    }
    assert len(ids) == 7


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


def test_a_batch_closes_before_a_message_that_would_pass_the_byte_bound(tmp_path: Path) -> None:
    """A file of large attachments holds no more in memory per batch than one of notes."""
    small = MESSAGES[0]
    large = message(sender="ann@acme.example", body="attachment " * 1000)
    path = write_mbox(tmp_path / "b.mbox", [small, small, large, small, small, small])
    connector = MboxConnector("b", path, "me@x.example", batch_bytes=2 * len(small) + 10)
    batches = list(connector.fetch(None))
    sizes = [
        [len(item.raw) for item in batch.items if isinstance(item, MailMessage)]
        for batch in batches
    ]
    assert sizes == [[len(small), len(small)], [len(large)], [len(small)] * 2, [len(small)]]
    resumed = [i.raw for b in connector.fetch(batches[0].cursor) for i in b.items]
    assert resumed == [large, small, small, small]
