"""The Gmail connector against the fake Google server: the real client over real HTTP."""

from __future__ import annotations

import email.policy
import pickle
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.errors import AuthError, CursorInvalid, TransientError
from connectors.google.auth import user_credentials
from connectors.google.gmail import METADATA_HEADERS, GmailConnector, Mode, in_scope
from connectors.records import Batch, Cursor, Item, MailMessage, SourceRemoved
from connectors.retry import RetryPolicy
from tests.support.fake_google.gmail import GMAIL_METADATA
from tests.support.fake_google.mailbox import Mailbox, make_email
from tests.support.fake_google.server import FakeGoogle, FaultPlan
from tests.support.google_connectors import gmail_connector, no_sleep
from tests.support.paths import FIXTURES

ACCOUNT = "alice@example.com"
NAME = "alice-gmail"
REPLIES = FIXTURES / "talon" / "standard_replies"
EMLS = sorted(REPLIES.glob("*.eml"))
GENEROUS = RetryPolicy(max_retries=10_000, max_seconds=1e9)


@dataclass
class Run:
    """Everything one ``fetch`` yielded."""

    items: list[Item] = field(default_factory=list)
    cursors: list[Cursor] = field(default_factory=list)

    @property
    def cursor(self) -> Cursor:
        return self.cursors[-1]

    @property
    def messages(self) -> list[MailMessage]:
        return [i for i in self.items if isinstance(i, MailMessage)]

    @property
    def ids(self) -> list[str]:
        return [m.source_id for m in self.messages]

    @property
    def removed(self) -> list[str]:
        return [i.source_id for i in self.items if isinstance(i, SourceRemoved)]


def sync(connector: GmailConnector, cursor: Cursor | None = None) -> Run:
    run = Run()
    for batch in connector.fetch(cursor):
        run.items.extend(batch.items)
        run.cursors.append(batch.cursor)
    return run


@pytest.fixture
def mailbox(fake_google: FakeGoogle) -> Mailbox:
    return fake_google.add_mailbox(ACCOUNT)


def deliver_fixtures(mailbox: Mailbox) -> dict[str, bytes]:
    """The talon replies into INBOX; Gmail id -> the exact bytes."""
    return {
        mailbox.add_message(path.read_bytes(), ["INBOX", "UNREAD"]): path.read_bytes()
        for path in EMLS
    }


def deliver(mailbox: Mailbox, count: int, labels: tuple[str, ...] = ("INBOX",)) -> list[str]:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    return [
        mailbox.add_message(
            make_email(subject=f"Quote {i}", date=start + timedelta(hours=i)), labels
        )
        for i in range(count)
    ]


def scoped_ids(mailbox: Mailbox, labels: tuple[str, ...] = ("INBOX", "SENT")) -> set[str]:
    return {m.id for m in mailbox.messages.values() if in_scope(frozenset(m.labels), labels)}


# --------------------------------------------------------------------------- first sync


def test_first_sync_yields_every_message_in_scope_once(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    raws = deliver_fixtures(mailbox)
    sent = deliver(mailbox, 3, ("SENT",))
    to_self = mailbox.add_message(make_email(subject="note to self"), ["INBOX", "SENT"])
    for labels in (["SPAM"], ["INBOX", "TRASH"], ["DRAFT"], ["CHAT"]):
        mailbox.add_message(make_email(subject="never"), labels)
    history_before = str(mailbox.history_id)

    run = sync(gmail_connector(fake_google, page_size=5))

    assert Counter(run.ids) == Counter({*raws, *sent, to_self})
    by_id = {m.source_id: m for m in run.messages}
    some_id = next(iter(raws))
    assert by_id[some_id].labels == frozenset({"INBOX", "UNREAD"})
    assert by_id[some_id].thread_id == mailbox.messages[some_id].thread_id
    assert by_id[some_id].internal_date == datetime.fromtimestamp(
        mailbox.messages[some_id].internal_date / 1000, tz=UTC
    )
    assert all(m.mailbox == ACCOUNT for m in run.messages)
    assert pickle.loads(pickle.dumps(run.messages)) == run.messages  # for planning workers
    phases = [c["phase"] for c in run.cursors]
    assert phases[-1] == "incremental" and set(phases[:-1]) == {"full"}
    assert run.cursor == {"v": 1, "phase": "incremental", "history_id": history_before}


def test_metadata_mode_yields_headers_only(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    raws = deliver_fixtures(mailbox)
    run = sync(gmail_connector(fake_google))
    allowed = {h.lower() for h in METADATA_HEADERS}
    for message in run.messages:
        original = BytesParser(policy=email.policy.default).parsebytes(raws[message.source_id])
        parsed = BytesParser(policy=email.policy.default).parsebytes(message.raw)
        assert message.truncated
        assert message.raw.endswith(b"\r\n\r\n")
        assert parsed.get_payload() == ""
        assert {k.lower() for k in parsed} <= allowed
        assert parsed["Subject"] == original["Subject"]
        assert parsed["Message-ID"] == original["Message-ID"]


def test_metadata_mode_never_asks_for_bodies_or_search(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    ids = deliver(mailbox, 30)
    connector = gmail_connector(fake_google, since=datetime(2024, 3, 2, tzinfo=UTC), page_size=10)
    run = sync(connector)
    mailbox.add_message(make_email(subject="new"))
    mailbox.modify(ids[-1], add=["Label_1"])
    sync(connector, run.cursor)

    gets = fake_google.api_calls("users.messages.get")
    assert gets and {c.format for c in gets} == {"metadata", "minimal"}  # minimal: the window
    fetched = [c for c in gets if c.format == "metadata"]
    assert {c.params["metadataHeaders"] for c in fetched} == {METADATA_HEADERS}
    assert all(c.param("q") is None for c in fake_google.api_calls())
    assert all(c.status == 200 for c in fake_google.api_calls())


def test_readonly_mode_yields_the_exact_rfc822_bytes(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    raws = deliver_fixtures(mailbox)
    run = sync(gmail_connector(fake_google, mode="readonly"))
    assert {m.source_id: m.raw for m in run.messages} == raws
    assert not any(m.truncated for m in run.messages)
    assert {c.format for c in fake_google.api_calls("users.messages.get")} == {"raw"}


@pytest.mark.parametrize("mode", ["metadata", "readonly"])
def test_since_bounds_the_first_sync(fake_google: FakeGoogle, mailbox: Mailbox, mode: Mode) -> None:
    ids = deliver(mailbox, 40)
    since = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=30)
    run = sync(gmail_connector(fake_google, mode=mode, since=since, labels=["INBOX"], page_size=5))
    assert sorted(run.ids) == sorted(ids[30:])
    listed = fake_google.api_calls("users.messages.list")
    if mode == "readonly":
        assert all(c.param("q") == f"after:{int(since.timestamp()) - 1}" for c in listed)
    else:
        assert len(listed) <= 4, "a page wholly before `since` ends the listing"


def test_batches_hold_at_most_fifty_calls(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    ids = deliver(mailbox, 130)
    run = sync(gmail_connector(fake_google, labels=["INBOX"]))
    assert sorted(run.ids) == sorted(ids)
    sizes = [int(c.param("parts") or 0) for c in fake_google.log if c.api_method == "batch"]
    assert sizes == [50, 50, 30]


def deliver_sized(mailbox: Mailbox, sizes: list[int], hour: int = 0) -> list[str]:
    """Messages whose text is about ``size`` bytes each, oldest first."""
    start = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(hours=hour)
    line = "a line of a long letter about the renewal and its terms\n"
    return [
        mailbox.add_message(
            make_email(
                subject=f"Letter {hour + i}",
                date=start + timedelta(hours=i),
                body=line * max(1, size // len(line)),
            ),
            ("INBOX",),
            internal_date=start + timedelta(hours=i),
        )
        for i, size in enumerate(sizes)
    ]


def raw_bytes(batch: Batch) -> int:
    return sum(len(item.raw) for item in batch.items if isinstance(item, MailMessage))


def assert_within(batches: list[Batch], bound: int) -> None:
    """Every batch holds at most ``bound`` bytes of mail, or is one larger message alone."""
    for batch in batches:
        assert raw_bytes(batch) <= bound or len(batch.items) == 1


def test_readonly_batches_close_at_the_byte_bound(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    bound = 40_000
    ids = deliver_sized(mailbox, [3_000] * 6 + [3 * bound] + [9_000] * 8)
    big = ids[6]
    connector = gmail_connector(fake_google, mode="readonly", labels=["INBOX"], batch_bytes=bound)

    batches = list(connector.fetch(None))

    fetched = [m.source_id for b in batches for m in b.items if isinstance(m, MailMessage)]
    assert sorted(fetched) == sorted(ids)
    assert len(batches) >= 4
    assert_within(batches, bound)
    (alone,) = [b for b in batches if raw_bytes(b) > bound]
    assert [m.source_id for m in alone.items] == [big]
    # batches before the page's last name the page again; the last moves on
    first_page = {"v": 1, "phase": "full", "label_index": 0, "page_token": None}
    assert all(b.cursor.items() >= first_page.items() for b in batches[:-1])
    assert batches[-1].cursor["phase"] == "incremental"


def test_a_first_sync_cut_between_byte_bound_batches_loses_nothing(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    ids = deliver_sized(mailbox, [9_000] * 12)
    connector = gmail_connector(
        fake_google, mode="readonly", labels=["INBOX"], batch_bytes=30_000, page_size=5
    )
    run = connector.fetch(None)
    delivered: list[str] = []
    for _ in range(3):
        batch = next(run)
        delivered += [m.source_id for m in batch.items]
    run.close()
    assert batch.cursor["phase"] == "full" and batch.cursor["page_token"] is not None

    resumed = sync(connector, batch.cursor)

    assert set(delivered) | set(resumed.ids) == set(ids)
    assert len(delivered) < len(ids)


def test_readonly_requests_ask_for_what_a_quarter_of_the_bound_holds(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    """The first request guesses 1 MiB a message; then the sizes received decide."""
    deliver_sized(mailbox, [1_000] * 240)
    deliver_sized(mailbox, [400_000] * 6, hour=200)
    connector = gmail_connector(
        fake_google, mode="readonly", labels=["INBOX"], batch_bytes=4 * 2**20
    )

    batches = list(connector.fetch(None))

    parts = [int(c.param("parts") or 0) for c in fake_google.log if c.api_method == "batch"]
    # newest first: the big letters come first, one a request at first, then more
    assert parts[:3] == [1, 1, 1]
    assert max(parts) == 50
    assert sum(parts) == 246
    assert_within(batches, 4 * 2**20)


def test_history_pages_are_split_at_the_byte_bound(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    bound = 40_000
    connector = gmail_connector(fake_google, mode="readonly", labels=["INBOX"], batch_bytes=bound)
    start = sync(connector).cursor
    new = deliver_sized(mailbox, [9_000] * 10 + [2 * bound])

    batches = list(connector.fetch(start))

    fetched = [m.source_id for b in batches for m in b.items if isinstance(m, MailMessage)]
    assert sorted(fetched) == sorted(new)
    assert len(batches) > 2
    assert_within(batches, bound)
    assert all(b.cursor == start for b in batches[:-1])
    assert batches[-1].cursor == {
        "v": 1,
        "phase": "incremental",
        "history_id": str(mailbox.history_id),
    }


def test_message_gone_between_list_and_get_is_skipped(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    ids = deliver(mailbox, 5)
    connector = gmail_connector(fake_google)
    run = sync(connector)
    added = mailbox.add_message(make_email(subject="gone soon"))
    mailbox.messages.pop(added)
    relabelled = ids[0]
    mailbox.modify(relabelled, add=["Label_1"])
    mailbox.messages.pop(relabelled)
    later = sync(connector, run.cursor)
    assert later.items == [SourceRemoved(relabelled)]


# --------------------------------------------------------------------------- incremental sync


def test_incremental_after_new_deleted_and_relabelled_messages(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    ids = deliver(mailbox, 8)
    connector = gmail_connector(fake_google)
    first = sync(connector)
    private = mailbox.create_label("Private")

    new = mailbox.add_message(make_email(subject="new one"), ["INBOX", "UNREAD"])
    mailbox.delete_message(ids[0])
    mailbox.modify(ids[1], remove=["INBOX"])
    mailbox.modify(ids[2], add=[private])
    mailbox.modify(ids[3], add=["TRASH"])
    mailbox.modify(ids[4], add=["SPAM"], remove=["INBOX"])
    mailbox.modify(ids[5], remove=["UNREAD"], add=["STARRED"])
    fleeting = mailbox.add_message(make_email(subject="fleeting"))
    mailbox.delete_message(fleeting)
    mailbox.add_message(make_email(subject="a draft"), ["DRAFT"])
    mailbox.modify(ids[6], add=["SENT"])

    second = sync(connector, first.cursor)

    assert sorted(second.removed) == sorted([ids[0], ids[1], ids[3], ids[4]])
    assert sorted(second.ids) == sorted([new, ids[2], ids[6]])
    by_id = {m.source_id: m for m in second.messages}
    assert private in by_id[ids[2]].labels
    assert by_id[ids[6]].labels == frozenset({"INBOX", "SENT"})
    assert second.cursor == {"v": 1, "phase": "incremental", "history_id": str(mailbox.history_id)}


def test_label_names_map_ids_for_the_agent(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    private = mailbox.create_label("crm-private")
    connector = gmail_connector(fake_google)
    names = connector.label_names()
    assert names[private] == "crm-private" and names["INBOX"] == "INBOX"
    assert connector.units_spent() == {"users.labels.list": 1}


def test_untrashed_message_comes_back(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    ids = deliver(mailbox, 2)
    connector = gmail_connector(fake_google)
    cursor = sync(connector).cursor
    mailbox.modify(ids[0], add=["TRASH"])
    run = sync(connector, cursor)
    assert run.removed == [ids[0]]
    mailbox.modify(ids[0], remove=["TRASH"])
    assert sync(connector, run.cursor).ids == [ids[0]]


def test_history_is_read_page_by_page_with_a_cursor_per_page(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    connector = gmail_connector(fake_google, page_size=3)
    cursor = sync(connector).cursor
    new = deliver(mailbox, 10)
    run = sync(connector, cursor)
    assert run.ids == new
    assert len(run.cursors) == 4
    history_ids = [int(c["history_id"]) for c in run.cursors]
    assert history_ids == sorted(history_ids)
    assert run.cursors[-1]["history_id"] == str(mailbox.history_id)

    resumed = sync(connector, run.cursors[1])
    assert resumed.ids == new[6:]


def test_no_change_incremental_is_exactly_one_api_call(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    deliver(mailbox, 5)
    cursor = sync(gmail_connector(fake_google)).cursor

    fresh = gmail_connector(fake_google)
    fake_google.reset_counters()
    run = sync(fresh, cursor)
    assert run.items == []
    assert [c.api_method for c in fake_google.log] == ["oauth2.token", "users.history.list"]

    fake_google.reset_counters()
    assert sync(fresh, cursor).items == []
    assert [c.api_method for c in fake_google.log] == ["users.history.list"]
    assert fresh.units_spent() == {"users.history.list": 2}


def test_expired_history_is_cursor_invalid_and_a_full_sync_recovers(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    ids = deliver(mailbox, 4)
    connector = gmail_connector(fake_google)
    cursor = sync(connector).cursor
    mailbox.add_message(make_email(subject="while away"))
    mailbox.expire_history()

    with pytest.raises(CursorInvalid):
        sync(connector, cursor)

    again = sync(connector, None)
    assert len(again.ids) == len(ids) + 1
    assert sync(connector, again.cursor).items == []


def test_history_window_expires_old_ids_only(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    connector = gmail_connector(fake_google)
    old = sync(connector).cursor
    deliver(mailbox, 3)
    recent = sync(connector, old).cursor
    mailbox.history_limit = 2
    deliver(mailbox, 3)
    with pytest.raises(CursorInvalid):
        sync(connector, old)
    with pytest.raises(CursorInvalid):
        sync(connector, recent)
    assert sync(connector, None).cursor["phase"] == "incremental"


def test_rejected_page_token_is_cursor_invalid(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    deliver(mailbox, 3)
    cursor = {"v": 1, "phase": "full", "label_index": 0, "page_token": "stale", "history_id": "1"}
    with pytest.raises(CursorInvalid, match="page token"):
        sync(gmail_connector(fake_google), cursor)


def test_cursor_that_does_not_parse_is_cursor_invalid(fake_google: FakeGoogle) -> None:
    with pytest.raises(CursorInvalid):
        sync(gmail_connector(fake_google), {"v": 1, "phase": "incremental", "history_id": "abc"})
    assert fake_google.log == []


# --------------------------------------------------------------------------- resumption


@pytest.mark.parametrize("stop_after", [1, 2, 5, 7])
def test_interrupted_first_sync_resumes_from_its_cursor(
    fake_google: FakeGoogle, mailbox: Mailbox, stop_after: int
) -> None:
    inbox = deliver(mailbox, 17)
    sent = deliver(mailbox, 9, ("SENT",))
    seen: list[str] = []
    batches = gmail_connector(fake_google, page_size=4).fetch(None)
    cursor: Cursor | None = None
    for _ in range(stop_after):
        batch = next(batches)
        seen += [i.source_id for i in batch.items]
        cursor = batch.cursor
    del batches
    late = mailbox.add_message(make_email(subject="arrived meanwhile"))

    run = sync(gmail_connector(fake_google, page_size=4), cursor)
    after = sync(gmail_connector(fake_google), run.cursor)

    delivered = Counter(seen + run.ids + after.ids)
    assert set(delivered) == {*inbox, *sent, late}
    assert all(n == 1 for mid, n in delivered.items() if mid != late)


# --------------------------------------------------------------------------- failures


def test_injected_faults_still_deliver_every_message_exactly_once(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    ids = deliver(mailbox, 150)
    fake_google.faults = FaultPlan(rate=0.2, statuses=(500, 503, 429), seed=3)
    connector = gmail_connector(fake_google, page_size=40, retry_policy=GENEROUS)
    first = sync(connector)
    assert Counter(first.ids) == Counter(ids)

    new = deliver(mailbox, 60)
    for mid in ids[:20]:
        mailbox.modify(mid, add=["TRASH"])
    second = sync(connector, first.cursor)
    assert Counter(second.ids) == Counter(new)
    assert sorted(second.removed) == sorted(ids[:20])

    failed = [c for c in fake_google.api_calls() if c.status >= 500 or c.status == 429]
    assert fake_google.faults.injected == len(failed) > 30
    assert any(c.in_batch for c in failed) and any(not c.in_batch for c in failed)
    assert connector.retries > 0


def test_a_spent_retry_budget_loses_nothing_across_runs(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    """Each run stops with TransientError when its budget is spent (here: two failures
    in a row with nothing answered between them); the next run starts from the last
    cursor the agent committed, as the scheduler would."""
    ids = deliver(mailbox, 120)
    fake_google.faults = FaultPlan(rate=0.6, statuses=(500, 503), seed=11)
    committed: Cursor | None = None
    delivered: list[str] = []
    transient = 0
    for _ in range(200):
        connector = gmail_connector(
            fake_google, page_size=10, retry_policy=RetryPolicy(max_retries=2)
        )
        try:
            for batch in connector.fetch(committed):
                delivered += [i.source_id for i in batch.items]
                committed = batch.cursor
        except TransientError:
            transient += 1
            continue
        if committed and committed["phase"] == "incremental":
            break
    assert transient > 0
    assert Counter(delivered) == Counter(ids)


def test_retry_after_is_honoured(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    deliver(mailbox, 3)
    fake_google.faults = FaultPlan(forced=deque([429]), retry_after=7)
    slept: list[float] = []
    sync(gmail_connector(fake_google, sleep=slept.append, quota_rate=None))
    assert slept == [7.0]


def test_dropped_connections_are_retried(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    ids = deliver(mailbox, 3)
    connector = gmail_connector(fake_google)
    fake_google.faults.drop_connections = 4
    run = sync(connector)
    assert sorted(run.ids) == sorted(ids)
    assert connector.retries >= 1


def test_expired_access_token_in_a_batch_part_is_refreshed(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    ids = deliver(mailbox, 6)
    fake_google.faults = FaultPlan(methods=frozenset({"users.messages.get"}))
    fake_google.faults.forced.extend([0, 401, 0, 401])
    run = sync(gmail_connector(fake_google))
    assert sorted(run.ids) == sorted(ids)
    assert fake_google.calls["oauth2.token"] == 2


def test_revoked_grant_is_auth_error_naming_the_command(
    fake_google: FakeGoogle, mailbox: Mailbox
) -> None:
    deliver(mailbox, 2)
    connector = gmail_connector(fake_google)
    cursor = sync(connector).cursor
    for token in fake_google.refresh_tokens_of(ACCOUNT):
        fake_google.revoke(token)

    with pytest.raises(AuthError) as raised:
        sync(connector, cursor)
    assert "invalid_grant" in str(raised.value)
    assert "crm-sync connectors auth alice-gmail" in raised.value.hint


def test_token_without_gmail_scope_is_auth_error(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    calendar_only = ["https://www.googleapis.com/auth/calendar.readonly"]
    info = {
        "refresh_token": fake_google.issue_refresh_token(ACCOUNT, calendar_only),
        "client_id": "test-client",
        "client_secret": "test-secret",
    }
    credentials = user_credentials(info, calendar_only, token_uri=fake_google.token_uri)
    connector = GmailConnector(
        NAME, ACCOUNT, credentials, api_endpoint=fake_google.url, sleep=no_sleep
    )
    with pytest.raises(AuthError, match="insufficient"):
        sync(connector)


def test_metadata_token_cannot_fetch_raw(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    """A readonly connector given a metadata-scoped token fails loudly, not silently."""
    deliver(mailbox, 1)
    info = {
        "refresh_token": fake_google.issue_refresh_token(ACCOUNT, [GMAIL_METADATA]),
        "client_id": "test-client",
        "client_secret": "test-secret",
    }
    credentials = user_credentials(info, [GMAIL_METADATA], token_uri=fake_google.token_uri)
    connector = GmailConnector(
        NAME, ACCOUNT, credentials, mode="readonly", api_endpoint=fake_google.url, sleep=no_sleep
    )
    with pytest.raises(AuthError, match="format RAW"):
        sync(connector)


# --------------------------------------------------------------------------- quota


def test_quota_units_are_counted_per_method(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    deliver(mailbox, 23)
    deliver(mailbox, 4, ("SENT",))
    connector = gmail_connector(fake_google, page_size=10)
    run = sync(connector)
    assert connector.units_spent() == {
        "users.getProfile": 1,
        "users.messages.list": 5 * 4,
        "users.messages.get": 5 * 27,
    }
    assert connector.units_spent() == {k: v for k, v in fake_google.units.items() if v}
    deliver(mailbox, 2)
    sync(connector, run.cursor)
    assert connector.units_spent() == {"users.history.list": 2, "users.messages.get": 10}


def test_quota_rate_paces_the_run(fake_google: FakeGoogle, mailbox: Mailbox) -> None:
    deliver(mailbox, 60)
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    connector = gmail_connector(
        fake_google, labels=["INBOX"], quota_rate=100.0, sleep=sleep, clock=lambda: now[0]
    )
    sync(connector)
    total = 1 + 5 + 5 * 60
    assert sum(slept) == pytest.approx((total - 100) / 100)
    assert now[0] >= (total - 100) / 100


# --------------------------------------------------------------------------- a model check


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(
            st.just("add"), st.sets(st.sampled_from(["INBOX", "SENT", "DRAFT", "SPAM"]), min_size=1)
        ),
        st.tuples(st.just("delete"), st.integers(0, 1000)),
        st.tuples(
            st.just("modify"),
            st.integers(0, 1000),
            st.sets(st.sampled_from(["INBOX", "SENT", "TRASH", "Label_1", "UNREAD"])),
            st.sets(st.sampled_from(["INBOX", "SENT", "TRASH", "Label_1", "UNREAD"])),
        ),
        st.tuples(st.just("sync")),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.integers(0, 6), operations=OPERATIONS, page_size=st.integers(1, 4))
def test_replaying_batches_reproduces_the_mailbox_scope(
    initial: int, operations: list[tuple[Any, ...]], page_size: int
) -> None:
    """Applying every batch to a copy ends with exactly the mailbox's in-scope messages,
    whatever the changes and however often the sync ran in between."""
    with FakeGoogle(seed=1) as fake:
        mailbox = fake.add_mailbox(ACCOUNT)
        deliver(mailbox, initial)
        connector = gmail_connector(fake, page_size=page_size, batch_size=3)
        copy: dict[str, frozenset[str]] = {}

        def apply(cursor: Cursor | None) -> Cursor:
            run = sync(connector, cursor)
            for item in run.items:
                if isinstance(item, MailMessage):
                    copy[item.source_id] = item.labels
                else:
                    copy.pop(item.source_id, None)
            return run.cursor if run.cursors else cursor or {}

        cursor = apply(None)
        for operation in operations:
            existing = sorted(mailbox.messages)
            if operation[0] == "add":
                mailbox.add_message(make_email(subject="x"), operation[1])
            elif operation[0] == "delete" and existing:
                mailbox.delete_message(existing[operation[1] % len(existing)])
            elif operation[0] == "modify" and existing:
                target = existing[operation[1] % len(existing)]
                mailbox.modify(target, add=operation[2], remove=operation[3] - operation[2])
            elif operation[0] == "sync":
                cursor = apply(cursor)
        apply(cursor)

        assert set(copy) == scoped_ids(mailbox)
        for mid, labels in copy.items():
            assert labels - {"UNREAD"} == frozenset(mailbox.messages[mid].labels) - {"UNREAD"}
