"""The sample-mail generator: reproducible, parseable, threaded, and the committed demo current."""

from __future__ import annotations

import mailbox
import re
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from functools import cache
from pathlib import Path

import icalendar
import pytest
import recurring_ical_events

import agent.cli
from tests.support.mailgen.calendars import generate_calendar
from tests.support.mailgen.cli import main
from tests.support.mailgen.dates import BASE_DATE, DEFAULT_DAYS
from tests.support.mailgen.demo import write_demo
from tests.support.mailgen.mailboxes import (
    TAKEOUT_LABELS,
    Mail,
    generate_mailboxes,
    iter_mail,
    iter_messages,
)
from tests.support.mailgen.mbox import write_mbox
from tests.support.mailgen.people import INTERNAL_DOMAIN, PRIYA, TOM
from tests.support.mailgen.presets import (
    DEMO_ATTACHMENT_BYTES,
    DEMO_CONTACTS,
    DEMO_MAILBOXES,
    DEMO_MESSAGES,
    DEMO_SEED,
)
from tests.support.mailgen.threads import MALFORMED

DEMO_DIR = Path(agent.cli.__file__).parent / "demo_data"
PARSER = BytesParser(policy=policy.default)
SYSTEM_DOMAINS = {
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "icloud.com",
    "gmx.de",
    "googlemail.com",
    "google.com",
}
PER_MAILBOX = re.compile(rb"^(X-GM-THRID|X-Gmail-Labels|Delivered-To|Bcc): .*\n", re.MULTILINE)


def fresh(raw: bytes) -> EmailMessage:
    message = PARSER.parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


parse = cache(fresh)
"""For reading only: tests share the parsed message."""


def problems(raw: bytes) -> list[str]:
    """Everything the stdlib finds wrong, including defects it only notices when decoding."""
    message = fresh(raw)
    found = [f"no {name}" for name in ("From", "Date", "Message-ID") if message[name] is None]
    for name, value in message.items():
        found += [f"{name}: {type(d).__name__}" for d in getattr(value, "defects", ())]
    if message["Date"] is not None and message["Date"].datetime is None:
        found.append("unreadable Date")
    for part in message.walk():
        if not part.is_multipart():
            part.get_payload(decode=True)
            if part.get_content_maintype() == "text":
                part.get_content()
        found += [type(d).__name__ for d in part.defects]
    return found


def message_ids(header: str | None) -> list[str]:
    return re.findall(r"<[^<>\s]+>", header or "")


def read_mboxrd(path: Path) -> list[bytes]:
    """Split an mboxrd file and undo its From-quoting: the exact inverse of ``write_mbox``."""
    chunks = re.split(rb"(?m)^From [^\n]*\n", path.read_bytes())[1:]
    return [re.sub(rb"(?m)^>(>*From )", rb"\1", c.removesuffix(b"\n")) for c in chunks]


@pytest.fixture(scope="module")
def demo() -> list[Mail]:
    return list(
        iter_mail(
            DEMO_SEED,
            DEMO_MESSAGES,
            DEMO_CONTACTS,
            mailboxes=DEMO_MAILBOXES,
            takeout=True,
            attachment_bytes=DEMO_ATTACHMENT_BYTES,
        )
    )


@pytest.fixture(scope="module")
def bench() -> list[Mail]:
    """A bigger world with full-size attachments, as the benchmark makes it."""
    return list(iter_mail(7, 800, 500, mailboxes=(PRIYA, TOM), days=365))


@pytest.fixture(scope="module")
def demo_boxes(demo: list[Mail]) -> dict[str, list[bytes]]:
    boxes: dict[str, list[bytes]] = {m: [] for m in DEMO_MAILBOXES}
    for mail in demo:
        for owner, raw in mail.copies.items():
            boxes[owner].append(raw)
    return boxes


def copies(mails: list[Mail]) -> Iterator[tuple[Mail, str, bytes]]:
    for mail in mails:
        for owner, raw in mail.copies.items():
            yield mail, owner, raw


# -- determinism -------------------------------------------------------------------------


def test_same_seed_gives_the_same_bytes() -> None:
    def once() -> tuple[dict[str, list[bytes]], bytes, list[bytes]]:
        return (
            generate_mailboxes(3, 60, 30, takeout=True),
            generate_calendar(3, 30),
            list(iter_messages(3, 40, 30, mailbox=TOM)),
        )

    assert once() == once()


def test_another_seed_gives_other_mail() -> None:
    assert generate_mailboxes(3, 40, 30) != generate_mailboxes(4, 40, 30)
    assert generate_calendar(3, 30) != generate_calendar(4, 30)


@pytest.mark.parametrize("messages", [0, 1, 37, 250], ids=["none", "one", "odd", "many"])
def test_messages_counts_distinct_messages(messages: int) -> None:
    mails = list(iter_mail(5, messages, 40))
    assert len(mails) == messages
    assert len({m.message_id for m in mails}) == messages
    assert len(list(iter_messages(5, messages, 40, mailbox=PRIYA))) == messages


def test_unknown_mailbox_is_refused() -> None:
    with pytest.raises(ValueError, match="not a member of staff"):
        next(iter_messages(1, 10, 10, mailbox="someone@acme.example"))


# -- every message is mail ---------------------------------------------------------------


@pytest.mark.parametrize("corpus", ["demo", "bench"])
def test_every_message_parses_cleanly_except_the_malformed(
    corpus: str, request: pytest.FixtureRequest
) -> None:
    mails: list[Mail] = request.getfixturevalue(corpus)
    unexpected = {}
    for mail, owner, raw in copies(mails):
        found = problems(raw)
        if bool(found) != bool(mail.defect):
            unexpected[(owner, mail.message_id)] = (mail.defect, found)
    assert unexpected == {}


@pytest.mark.parametrize(
    ("defect", "expected"),
    [
        ("missing-from-date", {"no From", "no Date"}),
        ("broken-base64", {"InvalidBase64CharactersDefect", "InvalidBase64PaddingDefect"}),
        ("truncated", {"CloseBoundaryNotFoundDefect"}),
    ],
    ids=MALFORMED,
)
def test_malformed_messages_are_broken_as_named(
    defect: str, expected: set[str], demo: list[Mail]
) -> None:
    broken = [raw for mail, _, raw in copies(demo) if mail.defect == defect]
    assert broken, f"the demo has no {defect} message"
    for raw in broken:
        assert expected <= set(problems(raw))


@pytest.mark.parametrize("corpus", ["demo", "bench"])
def test_addresses_use_reserved_domains(corpus: str, request: pytest.FixtureRequest) -> None:
    mails: list[Mail] = request.getfixturevalue(corpus)
    domains: Counter[str] = Counter()
    for _, _, raw in copies(mails):
        message = parse(raw)
        fields = [
            str(v)
            for k in ("From", "To", "Cc", "Bcc", "Reply-To", "Sender")
            for v in message.get_all(k, [])
        ]
        for _, address in getaddresses(fields):
            domains[address.rsplit("@", 1)[1]] += 1
    outside = {d for d in domains if not d.endswith(".example") and d not in SYSTEM_DOMAINS}
    assert outside == set()


def test_dates_lie_in_the_window_before_the_base_date(demo: list[Mail], bench: list[Mail]) -> None:
    for mails, days in ((demo, DEFAULT_DAYS), (bench, 365)):
        dates = [m.date for m in mails]
        assert dates == sorted(dates)
        assert BASE_DATE - timedelta(days=days + 2) <= dates[0]
        assert dates[-1] < BASE_DATE


def test_sizes_are_like_real_mail(bench: list[Mail]) -> None:
    sizes = [len(raw) for _, _, raw in copies(bench)]
    assert 1_500 < statistics.median(sizes) < 10_000
    assert 0.02 < sum(s > 50_000 for s in sizes) / len(sizes) < 0.15
    assert max(sizes) < 250_000


def _attachments(raws: list[bytes]) -> list[int]:
    """The decoded size of every attached document in ``raws`` (not a bounce's report)."""
    return [
        size
        for raw in raws
        for part in fresh(raw).walk()
        if part.get_content_disposition() == "attachment"
        and (size := len(part.get_payload(decode=True))) > 2_000
    ]


def test_attachments_take_the_size_and_share_asked_for() -> None:
    usual = list(iter_messages(7, 300, 100))
    assert list(iter_messages(7, 300, 100, attachment_share=1.0)) == usual

    big = list(iter_messages(7, 300, 100, attachment_bytes=(300_000, 300_000)))
    fewer = list(
        iter_messages(7, 300, 100, attachment_bytes=(300_000, 300_000), attachment_share=0.3)
    )

    assert len(big) == len(fewer) == len(usual)
    assert len(_attachments(big)) == len(_attachments(usual)) > 10
    assert all(300_000 <= size < 300_200 for size in _attachments(big))
    assert 0 < len(_attachments(fewer)) < len(_attachments(big)) * 0.6
    with pytest.raises(ValueError, match="attachment_share"):
        next(iter_messages(7, 10, 10, attachment_share=1.5))


# -- threads and mailboxes ---------------------------------------------------------------


def test_replies_reference_messages_in_the_same_mailbox(
    demo_boxes: dict[str, list[bytes]],
) -> None:
    for owner, raws in demo_boxes.items():
        messages = [parse(raw) for raw in raws]
        known = {str(m["Message-ID"]) for m in messages}
        replies = 0
        for m in messages:
            cited = message_ids(m["In-Reply-To"]) + message_ids(m["References"])
            replies += bool(cited)
            assert set(cited) <= known, (owner, m["Subject"])
        assert replies > len(messages) / 3


def test_references_end_with_the_message_replied_to(demo: list[Mail]) -> None:
    for _, _, raw in copies(demo):
        message = parse(raw)
        if message["References"] and not message["Auto-Submitted"]:
            assert message_ids(message["References"])[-1] == str(message["In-Reply-To"])


def test_a_thread_with_several_staff_is_in_each_of_their_mailboxes(demo: list[Mail]) -> None:
    shared = [mail for mail in demo if len(mail.copies) > 1]
    assert len(shared) >= 10
    for mail in shared:
        bodies = {PER_MAILBOX.sub(b"", raw) for raw in mail.copies.values()}
        assert len(bodies) == 1
        assert {str(parse(raw)["Message-ID"]) for raw in mail.copies.values()} == {mail.message_id}


def test_each_mailbox_holds_what_its_owner_sent_and_received(
    demo_boxes: dict[str, list[bytes]],
) -> None:
    for owner, raws in demo_boxes.items():
        senders = Counter(
            parse(raw)["From"].addresses[0].addr_spec == owner
            for raw in raws
            if parse(raw)["From"] is not None
        )
        assert senders[True] > 5 and senders[False] > 5, owner


def test_takeout_headers_appear_only_when_asked(demo: list[Mail]) -> None:
    plain = generate_mailboxes(DEMO_SEED, 40, DEMO_CONTACTS)
    assert not any(
        b"X-GM-THRID" in raw or b"X-Gmail-Labels" in raw for raws in plain.values() for raw in raws
    )
    seen: Counter[str] = Counter()
    threads: dict[int, set[str]] = {}
    for mail, owner, raw in copies(demo):
        message = parse(raw)
        labels = str(message["X-Gmail-Labels"]).split(",")
        assert set(labels) <= TAKEOUT_LABELS
        seen.update(labels)
        sender = message["From"]
        sent = sender is not None and sender.addresses[0].addr_spec == owner
        if mail.kind == "chat":
            assert labels == ["Chat"]
        else:
            assert ("Sent" in labels) == sent
        threads.setdefault(mail.thread, set()).add(str(message["X-GM-THRID"]))
    assert {"Inbox", "Sent", "Important", "Category Promotions", "Spam", "Trash", "Chat"} <= set(
        seen
    )
    assert all(len(ids) == 1 and ids.pop().isdigit() for ids in threads.values())


# -- what the demo shows -----------------------------------------------------------------


def _has_part(raw: bytes, kind: str) -> bool:
    return any(p.get_content_type() == kind for p in parse(raw).walk())


def _html_only(raw: bytes) -> bool:
    return parse(raw).get_content_type() == "text/html"


def _attachment(raw: bytes) -> bool:
    return any(p.get_content_disposition() == "attachment" for p in parse(raw).walk())


def _charset(name: str) -> Callable[[bytes], bool]:
    return lambda raw: any(p.get_content_charset() == name for p in parse(raw).walk())


def _header(name: str, value: str = "") -> Callable[[bytes], bool]:
    return lambda raw: value in str(parse(raw).get(name, "\0"))


def _address(pattern: str) -> Callable[[bytes], bool]:
    def check(raw: bytes) -> bool:
        message = parse(raw)
        fields = [str(v) for k in ("From", "To", "Cc") for v in message.get_all(k, [])]
        return any(re.search(pattern, a) for _, a in getaddresses(fields))

    return check


def _internal_only(raw: bytes) -> bool:
    message = parse(raw)
    fields = [str(v) for k in ("From", "To", "Cc") for v in message.get_all(k, [])]
    addresses = [a for _, a in getaddresses(fields)]
    return len(addresses) > 1 and all(a.endswith("@" + INTERNAL_DOMAIN) for a in addresses)


def _text(raw: bytes) -> str:
    part = parse(raw).get_body(("plain",))
    return "" if part is None else str(part.get_content())


CASES: list[tuple[str, Callable[[bytes], bool]]] = [
    ("multipart-alternative", lambda raw: _has_part(raw, "multipart/alternative")),
    ("html-only", _html_only),
    ("outlook-related-logo", lambda raw: _has_part(raw, "multipart/related")),
    ("attachment", _attachment),
    (
        "non-ascii-filename",
        lambda raw: any(not (p.get_filename() or "").isascii() for p in parse(raw).walk()),
    ),
    ("cc", _header("Cc", "@")),
    ("bcc", _header("Bcc", "@")),
    (
        "newsletter",
        lambda raw: (
            all(_header(h)(raw) for h in ("List-Id", "List-Unsubscribe"))
            and _header("Precedence", "bulk")(raw)
        ),
    ),
    ("no-reply", _address(r"^no-?reply@")),
    ("auto-reply", _header("Auto-Submitted", "auto-replied")),
    ("bounce", _address(r"^mailer-daemon@")),
    ("calendar-invitation", lambda raw: _has_part(raw, "text/calendar")),
    ("internal-only", _internal_only),
    ("iso-8859-1", _charset("iso-8859-1")),
    ("windows-1252", _charset("windows-1252")),
    ("free-mail-customer", _address(r"@(gmail\.com|icloud\.com)$")),
    ("sub-domain-customer", _address(r"@mail\.acme\.example$")),
    ("on-wrote-quote", lambda raw: bool(re.search(r"^On .*(\n.*)?wrote:$", _text(raw), re.M))),
    ("outlook-quote", lambda raw: "\nFrom: " in _text(raw) and "\nSent: " in _text(raw)),
    ("forwarded", lambda raw: "---------- Forwarded message ---------" in _text(raw)),
    (
        "signature-with-title",
        lambda raw: "\n-- \n" in _text(raw) and "Account Executive" in _text(raw),
    ),
    (
        "mbox-from-line-in-body",
        lambda raw: bool(re.search(rb"(?m)^From ", raw.split(b"\n\n", 1)[1])),
    ),
]


@pytest.mark.parametrize(("case", "check"), CASES, ids=[c for c, _ in CASES])
def test_demo_shows_every_case(case: str, check: Callable[[bytes], bool], demo: list[Mail]) -> None:
    assert any(check(raw) for _, _, raw in copies(demo)), case


def test_demo_is_the_promised_size(demo: list[Mail]) -> None:
    total = sum(len(mail.copies) for mail in demo)
    assert len(demo) == DEMO_MESSAGES
    assert 150 <= total <= 300
    assert {m.defect for m in demo} == {None, *MALFORMED}


# -- mbox --------------------------------------------------------------------------------


def test_mbox_round_trips_through_the_stdlib(
    tmp_path: Path, demo_boxes: dict[str, list[bytes]], bench: list[Mail]
) -> None:
    samples = {**demo_boxes, "bench": [raw for _, _, raw in copies(bench)][:300]}
    for name, raws in samples.items():
        path = tmp_path / f"{name}.mbox"
        assert write_mbox(path, iter(raws)) == len(raws)
        box = mailbox.mbox(path, create=False)
        assert len(box) == len(raws)
        assert [m["Message-ID"] for m in box] == [parse(r)["Message-ID"] for r in raws]
        assert read_mboxrd(path) == raws


@pytest.mark.parametrize(
    ("line", "written"),
    [
        (b"From the editor", b">From the editor"),
        (b">From a quote", b">>From a quote"),
        (b">>From deeper", b">>>From deeper"),
        (b"Fromage", b"Fromage"),
        (b" From indented", b" From indented"),
        (b"from lower case", b"from lower case"),
    ],
    ids=["from", "quoted-from", "twice-quoted", "no-space", "indented", "lower-case"],
)
def test_mboxrd_quotes_from_lines(tmp_path: Path, line: bytes, written: bytes) -> None:
    raw = b"From: a@acme.example\nSubject: x\n\nfirst\n" + line + b"\nlast\n"
    path = tmp_path / "one.mbox"
    write_mbox(path, [raw, raw])
    body = path.read_bytes().split(b"\n\n", 1)[1]
    assert body.startswith(b"first\n" + written + b"\nlast\n")
    assert len(mailbox.mbox(path, create=False)) == 2
    assert read_mboxrd(path) == [raw, raw]


@pytest.mark.parametrize(
    ("headers", "envelope"),
    [
        (
            b"From: Ann <ann@acme.example>\nDate: Tue, 4 Mar 2025 10:12:33 -0500\n",
            b"From ann@acme.example Tue Mar  4 15:12:33 2025\n",
        ),
        (
            b"Date: Tue, 4 Mar 2025 10:12:33 +0000\n",
            b"From MAILER-DAEMON Tue Mar  4 10:12:33 2025\n",
        ),
        (
            b"From: ann@acme.example\nDate: yesterday\n",
            b"From ann@acme.example Thu Jan  1 00:00:00 1970\n",
        ),
        (
            b"From: =?utf-8?q?Zo=C3=AB?=\n <zoe@northwind.example>\n",
            b"From zoe@northwind.example Thu Jan  1 00:00:00 1970\n",
        ),
    ],
    ids=["from-and-date", "no-from", "bad-date", "folded-encoded-from"],
)
def test_the_envelope_line_comes_from_the_message(
    tmp_path: Path, headers: bytes, envelope: bytes
) -> None:
    path = tmp_path / "one.mbox"
    write_mbox(path, [headers + b"\nbody\n"])
    assert path.read_bytes().startswith(envelope)


def test_write_mbox_streams(tmp_path: Path) -> None:
    """It takes an iterator and never needs the whole mailbox at once."""
    taken: list[int] = []

    def messages() -> Iterator[bytes]:
        for n, raw in enumerate(iter_messages(2, 30, 20)):
            taken.append(n)
            yield raw

    path = tmp_path / "stream.mbox"
    assert write_mbox(path, messages()) == 30 == len(taken)
    assert len(mailbox.mbox(path, create=False)) == 30


# -- calendar ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calendar_bytes() -> bytes:
    return generate_calendar(DEMO_SEED, DEMO_CONTACTS, owner=PRIYA)


@pytest.fixture(scope="module")
def calendar(calendar_bytes: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(calendar_bytes)


def _events(calendar: icalendar.Calendar) -> list[icalendar.Component]:
    return list(calendar.walk("VEVENT"))


def _attendees(event: icalendar.Component) -> list[icalendar.vCalAddress]:
    found = event.get("ATTENDEE", [])
    return [
        a
        for a in (found if isinstance(found, list) else [found])
        if isinstance(a, icalendar.vCalAddress)
    ]


def _time(event: icalendar.Component, name: str) -> datetime | date:
    """A DTSTART-like property's value; EXDATE gives its first date."""
    prop = event.get(name)
    if isinstance(prop, icalendar.vDDDLists):
        prop = prop.dts[0]
    assert isinstance(prop, icalendar.vDDDTypes)
    value = prop.dt
    assert isinstance(value, date)
    return value


def _param(event: icalendar.Component, name: str, param: str) -> str | None:
    prop = event.get(name)
    assert isinstance(prop, icalendar.vDDDTypes)
    value = prop.params.get(param)
    return None if value is None else str(value)


def test_calendar_is_folded_rfc5545_text(calendar_bytes: bytes) -> None:
    assert calendar_bytes.endswith(b"\r\n")
    lines = calendar_bytes.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in lines)
    assert b"\n" not in b"".join(lines)
    assert calendar_bytes.decode("utf-8")


def test_calendar_times_are_london_with_a_vtimezone(calendar: icalendar.Calendar) -> None:
    zones = [str(z["TZID"]) for z in calendar.walk("VTIMEZONE")]
    assert zones == ["Europe/London"]
    tzids = {_param(e, "DTSTART", "TZID") for e in _events(calendar)}
    assert "Europe/London" in tzids


CALENDAR_CASES: list[tuple[str, Callable[[icalendar.Component], bool]]] = [
    ("recurring-with-exdate", lambda e: "RRULE" in e and "EXDATE" in e),
    ("moved-instance", lambda e: "RECURRENCE-ID" in e),
    ("cancelled", lambda e: e.get("STATUS") == "CANCELLED"),
    ("room", lambda e: any(a.params.get("CUTYPE") == "ROOM" for a in _attendees(e))),
    (
        "internal-only",
        lambda e: (
            len(_attendees(e)) > 1
            and all(str(a).endswith("@" + INTERNAL_DOMAIN) for a in _attendees(e))
        ),
    ),
    ("customer-organised", lambda e: not str(e["ORGANIZER"]).endswith(INTERNAL_DOMAIN)),
    ("all-day", lambda e: not isinstance(_time(e, "DTSTART"), datetime)),
    (
        "optional-attendee",
        lambda e: any(a.params.get("ROLE") == "OPT-PARTICIPANT" for a in _attendees(e)),
    ),
]


@pytest.mark.parametrize(("case", "check"), CALENDAR_CASES, ids=[c for c, _ in CALENDAR_CASES])
def test_calendar_has_every_case(
    case: str, check: Callable[[icalendar.Component], bool], calendar: icalendar.Calendar
) -> None:
    assert any(check(e) for e in _events(calendar)), case


def test_calendar_answers_cover_every_partstat(calendar: icalendar.Calendar) -> None:
    states = {a.params.get("PARTSTAT") for e in _events(calendar) for a in _attendees(e)}
    assert {"ACCEPTED", "DECLINED", "TENTATIVE", "NEEDS-ACTION"} <= states


def test_calendar_recurrence_expands_with_the_exception_and_the_move(
    calendar: icalendar.Calendar,
) -> None:
    master = next(e for e in _events(calendar) if "EXDATE" in e)
    moved = next(e for e in _events(calendar) if "RECURRENCE-ID" in e)
    assert moved["UID"] == master["UID"]
    excluded = _time(master, "EXDATE")
    original = _time(moved, "RECURRENCE-ID")
    new_start = _time(moved, "DTSTART")
    instances = [
        i
        for i in recurring_ical_events.of(calendar).between(date(2025, 1, 1), date(2026, 1, 1))
        if i["UID"] == master["UID"]
    ]
    starts = [_time(i, "DTSTART") for i in instances]
    assert excluded not in starts and original not in starts
    assert new_start in starts
    assert {s.hour for s in starts if isinstance(s, datetime) and s != new_start} == {15}


def test_calendar_attendees_are_the_mail_worlds_people(
    calendar: icalendar.Calendar, demo: list[Mail]
) -> None:
    in_mail = {
        a
        for _, _, raw in copies(demo)
        for _, a in getaddresses(
            [str(v) for k in ("From", "To", "Cc") for v in parse(raw).get_all(k, [])]
        )
    }
    people = {str(a).removeprefix("mailto:") for e in _events(calendar) for a in _attendees(e)}
    rooms = {p for p in people if p.startswith("room-")}
    assert len((people - rooms) & in_mail) >= len(people - rooms) // 2


# -- the committed demo set and the command line -----------------------------------------


def test_committed_demo_data_is_what_the_generator_makes(tmp_path: Path) -> None:
    written = write_demo(tmp_path)
    for path in written:
        committed = DEMO_DIR / path.name
        assert committed.exists(), f"{committed} is missing; regenerate (see its README.md)"
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed.name} is stale: python -m tests.support.mailgen demo agent/cli/demo_data"
        )
    data = {p.name for p in DEMO_DIR.iterdir() if p.suffix in (".mbox", ".ics")}
    assert data == {p.name for p in written}
    assert sum(p.stat().st_size for p in written) < 1_000_000


def test_demo_command_writes_three_mailboxes_and_a_calendar(tmp_path: Path) -> None:
    assert main(["demo", str(tmp_path / "out")]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted([f"{m}.mbox" for m in DEMO_MAILBOXES] + ["calendar.ics"])


def test_bench_command_writes_one_mbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.mbox"
    args = ["bench", str(out), "--messages", "120", "--contacts", "60", "--seed", "9", "--takeout"]
    assert main(args) == 0
    box = mailbox.mbox(out, create=False)
    assert len(box) == 120
    assert all(m["X-Gmail-Labels"] for m in box)
    assert "wrote 120 messages" in capsys.readouterr().out


def test_bench_command_sizes_attachments(tmp_path: Path) -> None:
    out = tmp_path / "big.mbox"
    args = ["bench", str(out), "--messages", "150", "--contacts", "60", "--seed", "9"]
    assert main([*args, "--attachment-bytes", "250000", "--attachment-share", "0.5"]) == 0
    sizes = _attachments(read_mboxrd(out))
    assert sizes and all(250_000 <= size < 250_200 for size in sizes)


@pytest.mark.parametrize("value", ["0", "big", "9-3"])
def test_bench_command_refuses_a_bad_attachment_size(tmp_path: Path, value: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", str(tmp_path / "x.mbox"), "--messages", "5", "--attachment-bytes", value])
    assert exit_info.value.code == 2


def test_bench_command_refuses_a_customer_mailbox(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "bench",
                str(tmp_path / "x.mbox"),
                "--messages",
                "5",
                "--mailbox",
                "dana.whitfield@acme.example",
            ]
        )
    assert exit_info.value.code == 2
