"""The Gmail connector's pure parts: cursors, history netting, scope, message records."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import BadItem, CursorInvalid
from connectors.google.gmail import (
    Change,
    FullCursor,
    IncrementalCursor,
    decode_base64url,
    header_block,
    in_scope,
    needs_fetch,
    net_changes,
    parse_cursor,
    resolve_change,
    to_mail_message,
)
from connectors.records import MailMessage, SourceRemoved

SYNCED = ("INBOX", "SENT")


@pytest.mark.parametrize(
    ("cursor", "expected"),
    [
        (None, None),
        ({"v": 1, "phase": "incremental", "history_id": "1234"}, IncrementalCursor("1234")),
        (
            {"v": 1, "phase": "full", "label_index": 1, "page_token": "t", "history_id": "9"},
            FullCursor(1, "t", "9"),
        ),
        (
            {"v": 1, "phase": "full", "label_index": 0, "page_token": None, "history_id": "9"},
            FullCursor(0, None, "9"),
        ),
    ],
    ids=["none", "incremental", "full-mid-label", "full-label-start"],
)
def test_parse_cursor(cursor: dict[str, Any] | None, expected: object) -> None:
    assert parse_cursor(cursor, 2) == expected


@pytest.mark.parametrize(
    "cursor",
    [
        {},
        {"v": 2, "phase": "incremental", "history_id": "1"},
        {"v": 1, "phase": "incremental"},
        {"v": 1, "phase": "incremental", "history_id": 12},
        {"v": 1, "phase": "incremental", "history_id": "12a"},
        {"v": 1, "phase": "partial", "history_id": "1"},
        {"v": 1, "phase": "full", "label_index": 2, "page_token": None, "history_id": "1"},
        {"v": 1, "phase": "full", "label_index": -1, "page_token": None, "history_id": "1"},
        {"v": 1, "phase": "full", "label_index": True, "page_token": None, "history_id": "1"},
        {"v": 1, "phase": "full", "label_index": 0, "page_token": 5, "history_id": "1"},
        {"history_id": "1"},
    ],
    ids=[
        "empty",
        "future-version",
        "no-history-id",
        "history-id-not-string",
        "history-id-not-digits",
        "unknown-phase",
        "label-index-past-end",
        "label-index-negative",
        "label-index-bool",
        "page-token-not-string",
        "no-version",
    ],
)
def test_parse_cursor_rejects(cursor: dict[str, Any]) -> None:
    with pytest.raises(CursorInvalid):
        parse_cursor(cursor, 2)


def test_cursors_round_trip() -> None:
    for cursor in (FullCursor(1, "abc", "77"), FullCursor(0, None, "1"), IncrementalCursor("5")):
        assert parse_cursor(cursor.to_json(), 2) == cursor


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"INBOX"}, True),
        ({"SENT", "UNREAD"}, True),
        ({"INBOX", "TRASH"}, False),
        ({"INBOX", "SPAM"}, False),
        ({"CHAT"}, False),
        ({"Label_1"}, False),
        ({"DRAFT"}, False),
        (set(), False),
    ],
    ids=["inbox", "sent", "trashed", "spam", "chat", "user-label-only", "draft", "no-labels"],
)
def test_in_scope(labels: set[str], expected: bool) -> None:
    assert in_scope(frozenset(labels), SYNCED) is expected


def added(mid: str, *labels: str) -> dict[str, Any]:
    return {"message": {"id": mid, "threadId": mid, "labelIds": list(labels)}}


def test_net_changes_folds_records_per_message() -> None:
    records = [
        {"id": "10", "messagesAdded": [added("a", "INBOX")]},
        {"id": "11", "labelsAdded": [{**added("b", "INBOX", "Label_1"), "labelIds": ["Label_1"]}]},
        {"id": "12", "labelsRemoved": [{**added("c", "INBOX"), "labelIds": ["UNREAD"]}]},
        {"id": "13", "messagesDeleted": [{"message": {"id": "a", "threadId": "a"}}]},
        {"id": "14", "labelsAdded": [{**added("d", "INBOX", "TRASH"), "labelIds": ["TRASH"]}]},
    ]
    changes = net_changes(records)
    assert list(changes) == ["a", "b", "c", "d"]
    assert changes["a"] == Change(added=True, deleted=True, labels=frozenset({"INBOX"}))
    assert changes["b"].relabelled
    assert not changes["c"].relabelled
    assert changes["d"].relabelled and changes["d"].labels == frozenset({"INBOX", "TRASH"})


@pytest.mark.parametrize(
    ("change", "fetch"),
    [
        (Change(added=True, labels=frozenset({"INBOX"})), True),
        (Change(added=True, labels=frozenset({"DRAFT"})), False),
        (Change(added=True), True),
        (Change(added=True, deleted=True), False),
        (Change(deleted=True), False),
        (Change(relabelled=True, labels=frozenset({"INBOX", "Label_1"})), True),
        (Change(relabelled=True), True),
        (Change(relabelled=True, labels=frozenset({"Label_1"})), False),
        (Change(relabelled=True, labels=frozenset({"INBOX", "TRASH"})), False),
        (Change(added=True, relabelled=True, labels=frozenset({"INBOX"})), True),
        (Change(added=True, relabelled=True, labels=frozenset({"DRAFT"})), False),
        (Change(labels=frozenset({"INBOX"})), False),
    ],
    ids=[
        "added-in-scope",
        "added-draft",
        "added-labels-unknown",
        "added-then-deleted",
        "deleted",
        "relabelled-in-scope",
        "relabelled-labels-unknown",
        "archived",
        "trashed",
        "added-then-relabelled",
        "added-then-moved-out",
        "only-cosmetic",
    ],
)
def test_needs_fetch(change: Change, fetch: bool) -> None:
    assert needs_fetch(change, SYNCED) is fetch


def message(mid: str, *labels: str) -> MailMessage:
    return MailMessage(source_id=mid, mailbox="a@x", raw=b"\r\n", labels=frozenset(labels))


@pytest.mark.parametrize(
    ("change", "fetched", "expected"),
    [
        (Change(added=True), message("m", "INBOX"), message("m", "INBOX")),
        (
            Change(relabelled=True),
            message("m", "INBOX", "Label_1"),
            message("m", "INBOX", "Label_1"),
        ),
        (Change(relabelled=True), message("m", "Label_1"), SourceRemoved("m")),
        (Change(relabelled=True), message("m", "INBOX", "TRASH"), SourceRemoved("m")),
        (Change(deleted=True), None, SourceRemoved("m")),
        (Change(added=True, deleted=True), None, None),
        (Change(added=True), None, None),
        (Change(added=True), message("m", "DRAFT"), None),
        (Change(relabelled=True), None, SourceRemoved("m")),
    ],
    ids=[
        "new-in-scope",
        "private-label-added",
        "archived",
        "trashed",
        "deleted",
        "added-and-deleted-net-out",
        "added-then-gone",
        "added-out-of-scope",
        "relabelled-then-gone",
    ],
)
def test_resolve_change(change: Change, fetched: MailMessage | None, expected: object) -> None:
    assert resolve_change("m", change, fetched, SYNCED) == expected


@given(st.binary(max_size=300))
def test_decode_base64url_accepts_padded_and_unpadded(data: bytes) -> None:
    encoded = base64.urlsafe_b64encode(data).decode()
    assert decode_base64url(encoded) == data
    assert decode_base64url(encoded.rstrip("=")) == data


def test_header_block_is_a_header_only_message() -> None:
    headers = [
        {"name": "From", "value": "Carol <carol@customer.example>"},
        {"name": "Subject", "value": "Multi\r\n line"},
        {"name": "Bad Name", "value": "dropped"},
        {"name": "Message-ID", "value": "<x@y>"},
    ]
    assert header_block(headers) == (
        b"From: Carol <carol@customer.example>\r\nSubject: Multi line\r\nMessage-ID: <x@y>\r\n\r\n"
    )


def test_to_mail_message_in_both_modes() -> None:
    raw = b"From: a@b\r\nSubject: hi\r\n\r\nbody\r\n"
    resource = {
        "id": "18c",
        "threadId": "18b",
        "labelIds": ["INBOX", "UNREAD"],
        "internalDate": "1714554000123",
        "raw": base64.urlsafe_b64encode(raw).decode(),
        "payload": {"headers": [{"name": "Subject", "value": "hi"}]},
    }
    full = to_mail_message(resource, mailbox="alice@example.com", mode="readonly")
    assert full == MailMessage(
        source_id="18c",
        mailbox="alice@example.com",
        raw=raw,
        labels=frozenset({"INBOX", "UNREAD"}),
        thread_id="18b",
        internal_date=datetime(2024, 5, 1, 9, 0, 0, 123000, tzinfo=UTC),
        truncated=False,
    )
    meta = to_mail_message(resource, mailbox="alice@example.com", mode="metadata")
    assert meta.raw == b"Subject: hi\r\n\r\n"
    assert meta.truncated


@pytest.mark.parametrize(
    "resource",
    [
        {"id": "1", "internalDate": "soon", "raw": ""},
        {"id": "1", "internalDate": "1"},
        {"id": "1", "raw": "@@@"},
    ],
    ids=["bad-internal-date", "no-raw", "bad-base64"],
)
def test_unreadable_resource_is_a_bad_item(resource: dict[str, Any]) -> None:
    with pytest.raises(BadItem) as raised:
        to_mail_message(resource, mailbox="a@x", mode="readonly")
    assert raised.value.source_id == "1"
