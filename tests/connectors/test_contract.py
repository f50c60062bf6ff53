"""The connector contract: every kind of source keeps DESIGN.md's protocol, held to one suite.

As vdirsyncer holds every storage backend to one test suite, every connector
kind here builds a populated source and, without asking the connector under
test, the source ids a full fetch must yield: worked out from what the
fixture wrote (the bytes of each mbox message, the Maildir file names, the
occurrences of a recurrence rule, the UIDs Dovecot's APPEND returned, the
ids the fake Google server gave) through the kind's id scheme. A lost,
repeated or invented item therefore fails. The same tests then run against
every kind: batches that each end with a JSON cursor naming its version,
resuming exactly where any cursor points, nothing new after the last cursor,
a cursor the connector did not write refused as ``CursorInvalid``, and items
that pickle (worker processes plan them).

What a connector can do beyond fetching (:mod:`connectors.capabilities`) is
held to what it promises, for the kinds that declare it: :data:`DECLARES`
flags which kinds have which ability, the ability tests run for those kinds
only, and :func:`test_each_kind_declares_what_its_flags_say` holds the flags
to the connectors themselves, so that neither can drift.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connectors.capabilities import Closeable, Inventoried, Positioned, Sized
from connectors.errors import CursorInvalid
from connectors.ical.files import IcsConnector
from connectors.imap.connector import ImapConnector
from connectors.mbox import MboxConnector
from connectors.memory import MemoryConnector
from connectors.microsoft.calendar import MicrosoftCalendarConnector
from connectors.microsoft.mail import MicrosoftMailConnector
from connectors.records import Batch, Connector, Item, MailMessage
from tests.support.dovecot import DovecotServer, ImapUser
from tests.support.fake_google.server import FakeGoogle
from tests.support.fake_graph import FakeGraph
from tests.support.fake_graph import Recurrence as GraphRecurrence
from tests.support.google_connectors import (
    ALICE,
    ZONE,
    calendar_connector,
    gmail_connector,
    meeting,
    weekly,
)
from tests.support.graph_connectors import app_client
from tests.support.icsbuilder import LUNCH, MEETING, ics, write_ics
from tests.support.mailbuilder import message, write_maildir, write_maildir_folder, write_mbox

OWNER = "me@northwind.example"
MAIL = [
    *(
        message(
            sender="Ann Lee <ann@acme.example>",
            to=[OWNER],
            subject=f"Order {n}",
            body=f"From the desk of Ann, order {n}.\n>From a quoted line.\nFrom here on, more.",
            message_id=f"<order-{n}@acme.example>",
        )
        for n in range(7)
    ),
    message(sender="bob@acme.example", to=[OWNER], subject="Sent without a Message-ID"),
]
"""Mail with ``From `` at the start of body lines (quoted in an mbox) and one message
without a Message-ID."""
TEAM = "team@group.calendar.google.com"


@dataclass(frozen=True)
class Source:
    """A connector over a populated source, and what the fixture knows the source holds."""

    connector: Connector
    expected: frozenset[str]
    """The source ids a full fetch must yield, each once."""
    absent: str
    """An id shaped like this kind's ids that the source does not hold."""


KINDS = [
    "memory",
    "mbox",
    "maildir",
    "ics",
    "imap",
    "gmail",
    "google_calendar",
    "microsoft_mail",
    "microsoft_calendar",
]
ABILITIES: tuple[type, ...] = (Inventoried, Sized, Positioned, Closeable)
DECLARES: dict[str, frozenset[type]] = {
    "memory": frozenset(),
    "mbox": frozenset({Inventoried, Sized, Positioned}),
    "maildir": frozenset({Inventoried, Sized, Positioned}),
    "ics": frozenset({Sized}),
    "imap": frozenset({Inventoried, Sized, Closeable}),
    "gmail": frozenset({Inventoried, Sized}),
    "google_calendar": frozenset(),
    "microsoft_mail": frozenset({Sized, Closeable}),
    "microsoft_calendar": frozenset({Closeable}),
}
"""The abilities each kind's connector declares, among those the contract can check."""
ESTIMATES_ONLY = frozenset({"gmail"})
"""Kinds whose first-sync size is the provider's estimate, which cannot be checked exactly."""
NO_POSITIONS = frozenset({"maildir"})
"""A Maildir is a folder of files: a Positioned connector knows no byte position in it."""


def kinds_with(ability: type, *, leaving_out: frozenset[str] = frozenset()) -> pytest.MarkDecorator:
    """Run a test for the kinds that declare ``ability`` (``source`` re-parametrised)."""
    kinds = [kind for kind in KINDS if ability in DECLARES[kind] and kind not in leaving_out]
    return pytest.mark.parametrize("source", kinds, indirect=True)


@pytest.fixture(params=KINDS)
def source(request: pytest.FixtureRequest) -> Source:
    """Each contract test runs once per kind, against the ``<kind>_source`` fixture."""
    built = request.getfixturevalue(f"{request.param}_source")
    assert isinstance(built, Source)
    return built


# --------------------------------------------------------------------------- the kinds


@pytest.fixture
def memory_source() -> Source:
    items = [MailMessage(f"m{n}", OWNER, raw) for n, raw in enumerate(MAIL)]
    connector = MemoryConnector("memory", list(items), batch_size=3)
    return Source(connector, frozenset(f"m{n}" for n in range(len(MAIL))), "m-absent")


def _mbox_id(raw: bytes) -> str:
    """An mbox message's id: ``mbox:`` and the start of its SHA-256, the file's bytes unquoted."""
    return "mbox:" + hashlib.sha256(raw).hexdigest()[:32]


@pytest.fixture
def mbox_source(tmp_path: Path) -> Source:
    path = write_mbox(tmp_path / "all.mbox", MAIL)
    connector = MboxConnector("mbox", path, OWNER, batch_size=3)
    expected = frozenset(_mbox_id(raw) for raw in MAIL)
    return Source(connector, expected, _mbox_id(b"Subject: not in the file\n\nNo.\n"))


@pytest.fixture
def maildir_source(tmp_path: Path) -> Source:
    """A Maildir tree. An INBOX message's id is ``maildir:`` and its file name up to the
    flags (``:2,S``); another folder's puts the folder's directory first
    (``maildir:.Sent/...``). Junk is not read, nor what ``tmp/`` holds."""
    root = write_maildir(tmp_path / "Maildir", MAIL[:4])
    write_maildir_folder(root, "Sent", MAIL[4:6])
    write_maildir_folder(root, "Archive/2023", MAIL[6:], layout="nested", sub="new")
    write_maildir_folder(root, "Junk", [message(sender="win@spam.example", subject="won")])
    write_maildir_folder(root, "Sent", [message(sender=OWNER, subject="half-way")], sub="tmp")
    expected = {
        f"maildir:{prefix}{path.name.split(':', 1)[0]}"
        for prefix, directory in (
            ("", root / "cur"),
            (".Sent/", root / ".Sent" / "cur"),
            ("Archive/2023/", root / "Archive" / "2023" / "new"),
        )
        for path in directory.iterdir()
    }
    assert len(expected) == len(MAIL)
    connector = MboxConnector("maildir", root, OWNER, batch_size=3)
    return Source(connector, frozenset(expected), "maildir:.Sent/1600000000.M0P0.absent")


@pytest.fixture
def ics_source(tmp_path: Path) -> Source:
    """An occurrence's id is ``<file>/<UID>/<original start, UTC ISO>``: a moved instance
    keeps its original start, a cancelled one is yielded (cancelled) too."""
    write_ics(tmp_path / "meeting.ics", ics(*MEETING))
    write_ics(tmp_path / "lunch.ics", ics(LUNCH))
    berlin = datetime(2024, 3, 6, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    weekly_starts = [(berlin + timedelta(weeks=n)).astimezone(UTC) for n in range(6)]
    expected = {f"meeting.ics/weekly@example.com/{start.isoformat()}" for start in weekly_starts}
    expected.add("lunch.ics/lunch@example.com/2024-03-15T12:00:00+00:00")
    connector = IcsConnector(
        "team-calendars",
        tmp_path,
        OWNER,
        since=datetime(2024, 1, 1, tzinfo=UTC),
        now=lambda: datetime(2024, 3, 1, 12, tzinfo=UTC),
        batch_size=4,
    )
    return Source(
        connector,
        frozenset(expected),
        "meeting.ics/absent@example.com/2024-03-06T09:00:00+00:00",
    )


@pytest.fixture
def imap_source(dovecot: DovecotServer, imap_user: ImapUser) -> Source:
    """A message's id is ``<folder>/<UIDVALIDITY>/<UID>``; Drafts is not synced."""
    inbox = dovecot.append(imap_user, "INBOX", MAIL[:5])
    sent = dovecot.append(imap_user, "Sent", MAIL[5:])
    dovecot.append(imap_user, "Drafts", [message(sender=OWNER, subject="unsent")])
    with dovecot.client(imap_user) as client:
        validity = {
            folder: client.folder_status(folder, [b"UIDVALIDITY"])[b"UIDVALIDITY"]
            for folder in ("INBOX", "Sent")
        }
    expected = {f"INBOX/{validity['INBOX']}/{uid}" for uid in inbox}
    expected |= {f"Sent/{validity['Sent']}/{uid}" for uid in sent}
    connector = ImapConnector(
        "imap",
        host=dovecot.host,
        port=dovecot.port,
        username=imap_user.login,
        password=imap_user.password,
        security="plain",
        batch_size=2,
    )
    return Source(connector, frozenset(expected), f"INBOX/{validity['INBOX']}/{max(inbox) + 100}")


@pytest.fixture
def gmail_source(fake_google: FakeGoogle) -> Source:
    """A message's id is Gmail's; the synced scope is INBOX and SENT, never SPAM."""
    mailbox = fake_google.add_mailbox(ALICE)
    expected = {mailbox.add_message(raw, ["INBOX", "UNREAD"]) for raw in MAIL[:5]}
    expected |= {mailbox.add_message(raw, ["SENT"]) for raw in MAIL[5:7]}
    expected.add(mailbox.add_message(MAIL[7], ["INBOX", "SENT"]))
    mailbox.add_message(message(sender="spam@spam.example", subject="spam"), ["SPAM"])
    connector = gmail_connector(fake_google, page_size=2, quota_rate=None)
    return Source(connector, frozenset(expected), "ffffffffffffffff")


@pytest.fixture
def google_calendar_source(fake_google: FakeGoogle) -> Source:
    """An occurrence's id is ``<calendar>/<iCalUID>/<original start, UTC ISO>``; a moved
    instance keeps its original start."""
    alice = fake_google.add_calendar_user(ALICE, time_zone=ZONE)
    team = fake_google.add_calendar(TEAM, owner=ALICE)
    expected = set()
    for day in (3, 4, 5, 6, 9):
        start = datetime(2026, 3, day, 15, tzinfo=UTC)
        event_id = meeting(alice, start, summary=f"day {day}")
        expected.add(f"{ALICE}/{event_id}@google.com/{start.isoformat()}")
    first = datetime(2026, 3, 3, 10, tzinfo=ZoneInfo(ZONE))
    series = weekly(team, first, count=4)
    starts = [(first + timedelta(weeks=n)).astimezone(UTC) for n in range(4)]
    moved = starts[1] + timedelta(days=1)
    team.move_instance(series, starts[1], moved, moved + timedelta(hours=1))
    expected |= {f"{TEAM}/{series}@google.com/{start.isoformat()}" for start in starts}
    connector = calendar_connector(
        fake_google, calendars=["primary", TEAM], page_size=2, batch_size=3
    )
    return Source(
        connector, frozenset(expected), f"{ALICE}/absent@google.com/2026-03-03T15:00:00+00:00"
    )


@pytest.fixture
def microsoft_mail_source(graph: FakeGraph) -> Source:
    """A message's id is ``<folder>/<immutable id>``; Inbox and Sent Items, never Junk Email."""
    mailbox = graph.add_user(OWNER, "Owner")
    expected = {f"inbox/{mailbox.deliver(raw).immutable_id}" for raw in MAIL[:5]}
    expected |= {f"sentitems/{mailbox.deliver(raw, 'sentitems').immutable_id}" for raw in MAIL[5:]}
    mailbox.deliver(message(sender="spam@spam.example", subject="spam"), "junkemail")
    connector = MicrosoftMailConnector(
        "outlook", OWNER, app_client(graph), mode="readonly", page_size=2
    )
    return Source(connector, frozenset(expected), "inbox/AAkALgabsent")


@pytest.fixture
def microsoft_calendar_source(graph: FakeGraph) -> Source:
    """An occurrence's id is ``<account>/<UID>/<original start, UTC ISO>``, the UID of a
    series' occurrences being the series master's; a moved one keeps its original start."""
    calendar = graph.add_user(OWNER, "Owner").calendar
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    expected = set()
    for day in (1, 2, 3, 6):
        start = now + timedelta(days=day)
        single = calendar.add_event(f"day {day}", start, start + timedelta(hours=1))
        expected.add(f"{OWNER}/{single.ical_uid}/{start.astimezone(UTC).isoformat()}")
    first = now + timedelta(days=1, hours=3)
    series = calendar.add_event(
        "weekly", first, first + timedelta(hours=1), recurrence=GraphRecurrence("weekly", count=4)
    )
    starts = [first + timedelta(weeks=n) for n in range(4)]
    calendar.modify_occurrence(series.id, starts[1], start=starts[1] + timedelta(days=1))
    expected |= {
        f"{OWNER}/{series.ical_uid}/{start.astimezone(UTC).isoformat()}" for start in starts
    }
    connector = MicrosoftCalendarConnector(
        "outlook-calendar", OWNER, app_client(graph), page_size=3
    )
    return Source(connector, frozenset(expected), f"{OWNER}/absent/2026-03-03T15:00:00+00:00")


# --------------------------------------------------------------------------- fetching


def source_ids(batches: Iterable[Batch]) -> list[str]:
    return [item.source_id for batch in batches for item in batch.items]


def _by_id(items: Iterable[Item]) -> dict[str, Item]:
    return {item.source_id: item for item in items}


def test_a_full_fetch_yields_every_item_once(source: Source) -> None:
    assert Counter(source_ids(source.connector.fetch(None))) == Counter(source.expected)


def test_every_cursor_is_json(source: Source) -> None:
    for batch in source.connector.fetch(None):
        assert json.loads(json.dumps(batch.cursor)) == batch.cursor


def test_every_cursor_names_its_version(source: Source) -> None:
    """A cursor a later version reads must say which version wrote it."""
    for batch in source.connector.fetch(None):
        assert isinstance(batch.cursor.get("v"), int)


def test_resuming_from_any_cursor_loses_and_repeats_nothing(source: Source) -> None:
    batches = list(source.connector.fetch(None))
    for index, batch in enumerate(batches):
        before = source_ids(batches[: index + 1])
        after = source_ids(source.connector.fetch(batch.cursor))
        assert Counter(before + after) == Counter(source.expected), f"resuming after {index}"


def test_the_final_cursor_yields_nothing_new(source: Source) -> None:
    final = list(source.connector.fetch(None))[-1].cursor
    assert source_ids(source.connector.fetch(final)) == []


def test_a_cursor_it_did_not_write_is_cursor_invalid(source: Source) -> None:
    with pytest.raises(CursorInvalid):
        list(source.connector.fetch({"v": -1, "nonsense": True}))


def test_items_survive_pickling(source: Source) -> None:
    """Batches are planned in worker processes once a pass has a backlog
    (agent.pipeline.workers)."""
    for batch in source.connector.fetch(None):
        assert pickle.loads(pickle.dumps(batch.items)) == batch.items


# --------------------------------------------------------------------------- abilities


def test_each_kind_declares_what_its_flags_say(
    source: Source, request: pytest.FixtureRequest
) -> None:
    kind = request.node.callspec.params["source"]
    assert {a for a in ABILITIES if isinstance(source.connector, a)} == DECLARES[kind]


@kinds_with(Inventoried)
def test_inventory_lists_every_source_id_once(source: Source) -> None:
    """``verify`` compares the inventory with what was logged: it must name each item."""
    connector = source.connector
    assert isinstance(connector, Inventoried)
    assert Counter(connector.inventory()) == Counter(source.expected)


@kinds_with(Inventoried)
def test_inventory_at_a_cursor_claims_only_what_the_sync_delivered(source: Source) -> None:
    """An import stopped half-way has not read the rest: those items cannot be missing yet."""
    connector = source.connector
    assert isinstance(connector, Inventoried)
    batches = list(connector.fetch(None))
    for index, batch in enumerate(batches):
        delivered = set(source_ids(batches[: index + 1]))
        held = set(connector.inventory(batch.cursor))
        assert held <= delivered, f"claimed before delivery, after batch {index}"
    assert set(connector.inventory(batches[-1].cursor)) == source.expected


@kinds_with(Inventoried)
def test_lookup_gives_each_item_as_fetch_does(source: Source) -> None:
    connector = source.connector
    assert isinstance(connector, Inventoried)
    fetched = _by_id(item for batch in connector.fetch(None) for item in batch.items)
    assert _by_id(connector.lookup(sorted(source.expected))) == fetched


@kinds_with(Inventoried)
def test_lookup_leaves_out_what_the_source_does_not_hold(source: Source) -> None:
    connector = source.connector
    assert isinstance(connector, Inventoried)
    held = sorted(source.expected)[0]
    assert [item.source_id for item in connector.lookup([source.absent, held])] == [held]


ITEM_UNITS = frozenset({"messages", "meeting occurrences"})
"""Units that count items one by one; others (Google's estimates) are approximate."""


@kinds_with(Sized)
def test_first_sync_size_names_each_scope_with_a_count_and_a_unit(source: Source) -> None:
    connector = source.connector
    assert isinstance(connector, Sized)
    sizes = connector.first_sync_size()
    assert sizes
    assert all(size.scope and size.unit and size.count >= 0 for size in sizes), sizes


@kinds_with(Sized, leaving_out=ESTIMATES_ONLY)
def test_first_sync_size_counts_what_a_first_sync_yields(source: Source) -> None:
    """``connectors test`` tells the admin how much a first sync reads, before it runs."""
    connector = source.connector
    assert isinstance(connector, Sized)
    exact = [size for size in connector.first_sync_size() if size.unit in ITEM_UNITS]
    assert exact
    assert sum(size.count for size in exact) == len(source.expected)


@kinds_with(Sized)
def test_first_sync_size_is_the_same_after_a_sync(source: Source) -> None:
    """It describes a first sync, whatever has been synced: it neither reads nor moves a cursor."""
    connector = source.connector
    assert isinstance(connector, Sized)
    before = connector.first_sync_size()
    list(connector.fetch(None))
    assert connector.first_sync_size() == before


@kinds_with(Positioned, leaving_out=NO_POSITIONS)
def test_positions_move_forward_within_the_total(source: Source) -> None:
    connector = source.connector
    assert isinstance(connector, Positioned)
    total = connector.progress_total()
    positions = [connector.position(batch) for batch in connector.fetch(None)]
    known = [position for position in positions if position is not None]
    assert known == positions
    assert known == sorted(known) and known[0] >= 0
    if total is not None:
        assert known[-1] <= total


@kinds_with(Positioned, leaving_out=NO_POSITIONS)
def test_the_last_batch_is_positioned_at_the_total(source: Source) -> None:
    """The progress bar of ``sync`` ends full."""
    connector = source.connector
    assert isinstance(connector, Positioned)
    total = connector.progress_total()
    assert total is not None
    assert connector.position(list(connector.fetch(None))[-1]) == total


@kinds_with(Closeable)
def test_close_may_come_any_time_and_a_later_fetch_starts_afresh(source: Source) -> None:
    """The agent closes a connector when a run or a watch ends and fetches with it again."""
    connector = source.connector
    assert isinstance(connector, Closeable)
    connector.close()
    first = source_ids(connector.fetch(None))
    connector.close()
    connector.close()
    assert Counter(source_ids(connector.fetch(None))) == Counter(first) == Counter(source.expected)
