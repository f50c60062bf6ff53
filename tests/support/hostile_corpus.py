"""The hostile corpus: mail and calendars written to hurt the agent, one file per case.

``python -m tests.support.hostile_corpus`` writes ``tests/fixtures/hostile/``
(``mail/*.eml``, ``calendars/*.ics``); a test checks that the files there are
what this module builds, so the corpus and its description never drift apart.
Every case is something a stranger can send. What the agent must make of each
is asserted in ``tests/agent/runtime/test_hostile.py``; the bounds are ``config.limits``.

The mailbox belongs to ``alice@northwind.example`` (internal domain
``northwind.example``); customers write from ``acme.example`` and
``globex.example``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from tests.support.mailbuilder import message

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
OWNER = "alice@northwind.example"
BOB = "bob@acme.example"
CAROL = "carol@globex.example"
RECIPIENTS = 10_000
LONG_ID = "x" * 600 + "@acme.example"
LONG_NAME = "Bob " + "Very" * 500
ESCAPES = "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ \x1b[2J\x1b[1A [link=https://evil.example]x[/link]"

_DATE = "Tue, 03 Nov 2026 10:00:00 +0000"


def _raw(headers: list[tuple[str, str]], body: str = "Hello Alice,\n\nsee below.\n") -> bytes:
    """A message written header by header, as a hostile client writes it: nothing re-encoded."""
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return (head + "\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


def _normal(index: int) -> bytes:
    outbound = index % 2 == 0
    return message(
        sender=OWNER if outbound else BOB,
        to=[BOB if outbound else OWNER],
        subject=f"Proposal, part {index}",
        body=f"Message {index} of an ordinary conversation.",
        message_id=f"<normal-{index}@northwind.example>",
    )


def _invitation(uid: str, rule: str, start: str = "20261103T100000Z") -> bytes:
    calendar = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//hostile//EN",
            "METHOD:REQUEST",
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20261102T090000Z",
            f"DTSTART:{start}",
            "DURATION:PT1S",
            f"RRULE:{rule}",
            "SUMMARY:Sync",
            f"ORGANIZER;CN=Bob:mailto:{BOB}",
            f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{OWNER}",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    msg = EmailMessage()
    msg["From"] = f"Bob <{BOB}>"
    msg["To"] = OWNER
    msg["Subject"] = "Invitation: Sync"
    msg["Date"] = _DATE
    msg["Message-ID"] = f"<invite-{uid}>"
    msg.set_content("You are invited.")
    msg.add_attachment(
        calendar.encode(), maintype="text", subtype="calendar", params={"method": "REQUEST"}
    )
    msg.set_boundary("hostile-boundary")  # the same bytes on every build
    return bytes(msg)


def _many_recipients() -> bytes:
    to = ", ".join(f"person{i}@company{i}.example" for i in range(RECIPIENTS))
    return _raw(
        [
            ("From", OWNER),
            ("To", to),
            ("Subject", "Our new price list"),
            ("Date", _DATE),
            ("Message-ID", "<blast@northwind.example>"),
        ]
    )


def _dated(date: str, tag: str) -> bytes:
    return _raw(
        [
            ("From", BOB),
            ("To", OWNER),
            ("Subject", f"Dated {tag}"),
            ("Date", date),
            ("Message-ID", f"<dated-{tag}@acme.example>"),
        ]
    )


MAIL: dict[str, Callable[[], bytes]] = {
    **{f"normal-{i}": (lambda i=i: _normal(i)) for i in range(1, 7)},
    "secondly-invitation": lambda: _invitation("secondly@acme.example", "FREQ=SECONDLY"),
    "impossible-invitation": lambda: _invitation(
        "impossible@acme.example", "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"
    ),
    "long-ids": lambda: _raw(
        [
            ("From", BOB),
            ("To", OWNER),
            ("Subject", "Long identifiers"),
            ("Date", _DATE),
            ("Message-ID", f"<{LONG_ID}>"),
            ("In-Reply-To", f"<{LONG_ID}.parent>"),
            ("References", f"<{LONG_ID}.root> <{LONG_ID}.parent>"),
        ]
    ),
    "long-name": lambda: _raw(
        [
            ("From", f'"{LONG_NAME}" <{BOB}>'),
            ("To", OWNER),
            ("Subject", "Long name"),
            ("Date", _DATE),
            ("Message-ID", "<long-name@acme.example>"),
        ]
    ),
    "many-recipients": _many_recipients,
    "year-0": lambda: _dated("Sat, 7 Jun 0 09:12:00 +0000", "year-0"),
    "year-0000": lambda: _dated("Sat, 7 Jun 0000 09:12:00 +0000", "year-0000"),
    "far-future": lambda: _dated("Mon, 7 Jun 2999 09:12:00 +0000", "far-future"),
    "collision-first": lambda: _raw(
        [
            ("From", f"Bob <{BOB}>"),
            ("To", OWNER),
            ("Subject", "Confidential quote for Acme"),
            ("Date", "Mon, 02 Nov 2026 09:00:00 +0000"),
            ("Message-ID", "<quote-7@acme.example>"),
        ],
        "Our price is 120,000.\n",
    ),
    "collision-second": lambda: _raw(
        [
            ("From", f"Carol <{CAROL}>"),
            ("To", OWNER),
            ("Subject", "Hello from Globex"),
            ("Date", "Wed, 04 Nov 2026 09:00:00 +0000"),
            ("Message-ID", "<quote-7@acme.example>"),
        ],
        "Nice to meet you.\n",
    ),
    "nul-subject": lambda: _raw(
        [
            ("From", BOB),
            ("To", OWNER),
            ("Subject", "=?utf-8?q?Hi=00there?="),
            ("Date", _DATE),
            ("Message-ID", "<nul@acme.example>"),
        ]
    ),
    "terminal-escapes": lambda: _raw(
        [
            ("From", f'"Bob {ESCAPES}" <{BOB}>'),
            ("To", OWNER),
            ("Subject", f"Pricing {ESCAPES}"),
            ("Date", _DATE),
            ("Message-ID", "<escapes@acme.example>"),
        ],
        f"Body {ESCAPES}\n",
    ),
}
"""Case name -> the message's bytes."""


def _calendar(*events: list[str]) -> bytes:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//hostile//EN"]
    for event in events:
        lines += ["BEGIN:VEVENT", *event, "END:VEVENT"]
    return ("\r\n".join([*lines, "END:VCALENDAR", ""])).encode()


def _event(
    uid: str, organizer: str, rule: str | None = None, summary: str = "Meeting"
) -> list[str]:
    return [
        f"UID:{uid}",
        "DTSTAMP:20261102T090000Z",
        "DTSTART:20261103T100000Z",
        "DTEND:20261103T103000Z" if rule is None or "SECONDLY" not in rule else "DURATION:PT1S",
        *([f"RRULE:{rule}"] if rule else []),
        f"SUMMARY:{summary}",
        f"ORGANIZER:mailto:{organizer}",
        f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{OWNER}",
    ]


CALENDARS: dict[str, Callable[[], bytes]] = {
    "normal": lambda: _calendar(
        _event("weekly@acme.example", BOB, "FREQ=WEEKLY;COUNT=4", "Weekly review")
    ),
    "secondly": lambda: _calendar(_event("secondly-ics@acme.example", BOB, "FREQ=SECONDLY")),
    "impossible": lambda: _calendar(
        _event("impossible-ics@acme.example", BOB, "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30")
    ),
    "long-uid": lambda: _calendar(_event("u" * 700 + "@acme.example", BOB, None, "Long UID")),
    "uid-first": lambda: _calendar(_event("shared-uid@acme.example", BOB, None, "Acme review")),
    "uid-second": lambda: _calendar(_event("shared-uid@acme.example", CAROL, None, "Globex call")),
}
"""Case name -> the .ics file's bytes."""


def build(root: Path = HOSTILE) -> list[Path]:
    """Write every case under ``root``; the paths written."""
    written = []
    for folder, cases, suffix in (("mail", MAIL, ".eml"), ("calendars", CALENDARS, ".ics")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, make in cases.items():
            path = root / folder / f"{name}{suffix}"
            path.write_bytes(make())
            written.append(path)
    return written


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HOSTILE):
        print(path)
