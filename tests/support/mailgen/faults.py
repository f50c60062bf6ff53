"""Mail that went wrong: a bounce from the mailer daemon, and the deliberately broken messages.

Real mailboxes hold both, and quarantine needs something to show; the
defects are listed in ``threads.MALFORMED``.
"""

from __future__ import annotations

import base64
import random
from datetime import UTC, timedelta
from email.utils import format_datetime

from tests.support.mailgen.attachments import pdf_bytes
from tests.support.mailgen.mime import (
    Part,
    address_header,
    binary_part,
    date_header,
    flatten,
    format_address,
    mime_boundary,
    multipart,
    new_message_id,
    random_uuid,
    subject_header,
    text_part,
    transport_headers,
)
from tests.support.mailgen.people import CAST
from tests.support.mailgen.rendering import OpenThread, Rendered, finish
from tests.support.mailgen.senders import DAEMON


def render_bounce(
    rng: random.Random, opened: OpenThread, i: int, sizes: tuple[int, int]
) -> Rendered:
    thread, step = opened.thread, opened.thread.steps[0]
    when = opened.dates[i]
    about = thread.about or CAST[0]
    local, domain = about.email.split("@", 1)
    wrong = f"{local[:-1]}{local[-1] * 2}@{domain}"
    staff = step.to[0]
    sent = when - timedelta(seconds=rng.randint(2, 40))
    stamp = format_datetime(sent.astimezone(UTC))
    explanation = (
        f"** Address not found **\n\nYour message wasn't delivered to {wrong} because the "
        "address couldn't be found, or is unable to receive mail.\n\nThe response from the "
        "remote server was:\n550 5.1.1 <" + wrong + ">: Recipient address rejected: User "
        "unknown\n"
    )
    status = (
        f"Reporting-MTA: dns; googlemail.com\nArrival-Date: {stamp}\n\n"
        f"Final-Recipient: rfc822; {wrong}\nAction: failed\nStatus: 5.1.1\n"
        f"Remote-MTA: dns; mail.{domain}\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n"
        f"Last-Attempt-Date: {stamp}\n"
    )
    original = (
        f"From: {format_address(staff)}\nTo: {wrong}\nSubject: Following up\nDate: {stamp}\n"
        f"Message-ID: {new_message_id(rng, staff)}\nMIME-Version: 1.0\n"
    )
    parts = (
        text_part("plain", explanation, "utf-8", "7bit", "UTF-8"),
        Part(("Content-Type: message/delivery-status",), status.encode()),
        Part(("Content-Type: text/rfc822-headers",), original.encode()),
    )
    top = multipart("report", mime_boundary(rng, "gmail"), parts, " report-type=delivery-status;")
    message_id = f"<{random_uuid(rng)}@mx.googlemail.com>"
    head = [
        date_header(when, staff),
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        f"Subject: {thread.subject}",
        address_header("From", (DAEMON,)),
        address_header("To", (staff,)),
    ]
    return finish(
        head, ["Auto-Submitted: auto-replied"], top, message_id, DAEMON.email, text=explanation
    )


def render_malformed(
    rng: random.Random, opened: OpenThread, i: int, sizes: tuple[int, int]
) -> Rendered:
    """Mail broken the ways real mail breaks; see ``MALFORMED``."""
    thread, step = opened.thread, opened.thread.steps[0]
    person, when = step.sender, opened.dates[i]
    staff = step.to[0]
    message_id = new_message_id(rng, person)
    text = (
        f"Hi {staff.first},\n\nPlease find the updated figures below. Revenue is up 8% on "
        "last quarter and churn is flat.\n\nThanks,\n" + person.first + "\n"
    )
    if thread.defect == "missing-from-date":
        scan = binary_part("application/pdf", "scan0001.pdf", pdf_bytes(rng, 1200))
        top = multipart(
            "mixed",
            mime_boundary(rng, "list"),
            (text_part("plain", "Scanned by NW-PRINT-02.\n", "utf-8", "7bit"), scan),
        )
        head = [
            f"Message-ID: {message_id}",
            "MIME-Version: 1.0",
            f"Subject: {thread.subject}",
            address_header("To", (staff,)),
        ]
        return finish(head, [], top, message_id, "", text="")
    head = [
        *transport_headers(rng, person, staff, when),
        "MIME-Version: 1.0",
        date_header(when, person),
        f"Message-ID: {message_id}",
        subject_header(thread.subject, person.charset),
        address_header("From", (person,), person.charset),
        address_header("To", (staff,)),
    ]
    if thread.defect == "broken-base64":
        encoded = base64.encodebytes(text.encode()).decode()
        broken = encoded[:30] + "!*~" + encoded[33:-4] + "\n"
        top = Part(
            ('Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: base64"),
            broken.encode(),
        )
        return finish(head, [], top, message_id, person.email, text=text)
    attachment = binary_part(
        "application/pdf", f"{thread.facts['invoice']}.pdf", pdf_bytes(rng, max(sizes[0], 2000))
    )
    whole = multipart(
        "mixed",
        mime_boundary(rng, person.client),
        (text_part("plain", text, "utf-8", "quoted-printable"), attachment),
    )
    body = flatten(whole)
    start = body.index(b"JVBER")
    cut = body[: start + (len(body) - start) // 2 + 37] + b"\n"
    return Rendered(tuple(head), whole.headers, cut, message_id, person.email, text=text)
