"""The headers Gmail's metadata requests name are every header the agent reads.

In ``metadata`` mode Gmail returns only the headers a request names, so a header
the envelope or a filter reads but :data:`connectors.headers.HEADERS_READ` omits
is silently absent there: the same message would be skipped when synced in
``readonly`` mode and logged in ``metadata`` mode. These tests do not keep a
second list of names that could drift from the code: they run the envelope
extraction and every filter step on objects that record each header name asked
for, and check what was asked against ``HEADERS_READ``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any, ClassVar

from agent.mail.envelope import Envelope, build_envelope
from agent.pipeline.filters import CHAIN, FilterPolicy, NeverLog
from connectors.errors import BadItem
from connectors.google.gmail import METADATA_HEADERS
from connectors.headers import HEADERS_READ
from connectors.records import Address, MailMessage

EXEMPT = {
    "x-gmail-labels": "Takeout's export of the labels; the Gmail API reports them as labelIds",
}
"""Headers the agent reads that a Gmail API message never needs, with the reason."""


class _RecordingName(str):
    """A header name as ``raw_items`` yields it: records every plain name it is compared with."""

    seen: set[str]

    def __new__(cls, value: str, seen: set[str]) -> _RecordingName:
        name = super().__new__(cls, value)
        name.seen = seen
        return name

    def lower(self) -> _RecordingName:
        return _RecordingName(str.lower(self), self.seen)

    def __eq__(self, other: object) -> bool:
        if type(other) is str:
            self.seen.add(other.lower())
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__


class _RecordingMessage(Message):
    """A parsed message that records the name of every header read from it."""

    seen: ClassVar[set[str]] = set()

    def get(self, name: str, failobj: Any = None) -> Any:
        self.seen.add(name.lower())
        return super().get(name, failobj)

    def __getitem__(self, name: str) -> Any:
        self.seen.add(name.lower())
        return super().__getitem__(name)

    def __contains__(self, name: str) -> bool:
        self.seen.add(name.lower())
        return super().__contains__(name)

    def get_all(self, name: str, failobj: Any = None) -> Any:
        self.seen.add(name.lower())
        return super().get_all(name, failobj)

    def raw_items(self) -> Iterator[tuple[str, Any]]:
        for key, value in super().raw_items():
            yield _RecordingName(key, self.seen), value

    def items(self) -> list[tuple[str, Any]]:
        return [(_RecordingName(k, self.seen), v) for k, v in super().items()]

    def keys(self) -> list[str]:
        return [_RecordingName(k, self.seen) for k, _ in super().items()]


class _RecordingHeaders(Mapping[str, str]):
    """``Envelope.headers`` that holds nothing and records every name looked up, so that
    each filter step reads all it can read before deciding."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.iterated = False

    def __getitem__(self, name: str) -> str:
        self.seen.add(name.lower())
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        if isinstance(name, str):
            self.seen.add(name.lower())
        return False

    def __iter__(self) -> Iterator[str]:
        self.iterated = True
        return iter(())

    def __len__(self) -> int:
        return 0


MESSAGES = [
    # every header the envelope reads, encoded words and all
    b"From: =?utf-8?q?M=C3=BCller=2C_Hans?= <hans@customer.example>\r\n"
    b"Reply-To: Hans <hans.private@customer.example>\r\n"
    b"To: alice@example.com\r\nCc: bob@example.com\r\nBcc: carol@example.com\r\n"
    b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Date: Wed, 01 May 2024 09:00:00 +0000\r\n"
    b"Message-ID: <m1@customer.example>\r\nIn-Reply-To: <m0@customer.example>\r\n"
    b"References: <m0@customer.example>\r\n"
    b"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n"
    b"List-Id: =?utf-8?q?list?= <l.example>\r\nAuto-Submitted: auto-replied\r\n"
    b"\r\n",
    # no From (the Sender stands in), no Date, no Message-ID (the content hash)
    b"Sender: hans@customer.example\r\nTo: alice@example.com\r\n\r\n",
    # nothing usable at all
    b"X-Nothing: here\r\n\r\n",
]


def _read_by_envelope() -> set[str]:
    _RecordingMessage.seen = set()
    parser = BytesParser(_class=_RecordingMessage, policy=policy.compat32)
    for index, raw in enumerate(MESSAGES):
        message = MailMessage(
            source_id=str(index),
            mailbox="alice@example.com",
            raw=raw,
            internal_date=datetime(2024, 5, 1, tzinfo=UTC),
            truncated=True,
        )
        with contextlib.suppress(BadItem):  # one nothing can be logged from is still read
            build_envelope(message, parser.parsebytes(raw), ["example.com"])
    return set(_RecordingMessage.seen)


def _read_by_filters() -> set[str]:
    seen: set[str] = set()
    customer = Address("hans@customer.example", "Hans")
    for policy_ in (
        FilterPolicy(),
        FilterPolicy(
            never_log=NeverLog.from_patterns(["nobody.example"]),
            internal_domains=frozenset({"example.com"}),
            private_label="Private",
            share_label="Shared",
        ),
    ):
        headers = _RecordingHeaders()
        envelope = Envelope(
            source_id="1",
            mailbox="alice@example.com",
            message_id="m1@customer.example",
            dedupe_key="m1@customer.example",
            subject="Hello",
            occurred_at=datetime(2024, 5, 1, tzinfo=UTC),
            sender=customer,
            participants=((customer, "from"), (Address("alice@example.com", ""), "to")),
            direction="inbound",
            thread_key=None,
            headers=headers,
        )
        for step in CHAIN:
            step(envelope, policy_)
        assert not headers.iterated, "a filter iterates over the headers: list what it reads"
        seen |= headers.seen
    return seen


def test_the_recorders_see_what_the_envelope_and_the_filters_read() -> None:
    """Guards the recorders themselves: a broken one would pass everything."""
    assert {"from", "sender", "to", "date", "subject", "message-id"} <= _read_by_envelope()
    assert {"x-autoreply", "return-path", "content-class", "list-id"} <= _read_by_filters()


def test_every_header_the_agent_reads_is_asked_for_in_metadata_mode() -> None:
    asked = {name.lower() for name in HEADERS_READ}
    read = (_read_by_envelope() | _read_by_filters()) - set(EXEMPT)
    assert sorted(read - asked) == []


def test_metadata_requests_name_the_headers_read() -> None:
    assert tuple(METADATA_HEADERS) == HEADERS_READ
    assert len({name.lower() for name in HEADERS_READ}) == len(HEADERS_READ)
