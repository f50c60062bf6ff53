"""Google Calendar's invitation and acceptance mail, with the event as ``text/calendar``.

A real mailbox holds these beside the customer mail, and the pipeline must
tell them apart from it.
"""

from __future__ import annotations

import base64
import random
from datetime import datetime, timedelta

from tests.support.mailgen.clients import escape_html
from tests.support.mailgen.dates import MONTHS, WEEKDAYS, weekday_after
from tests.support.mailgen.ics import ics_lines, ics_person, ics_text, ics_utc
from tests.support.mailgen.mime import (
    Part,
    address_header,
    date_header,
    format_address,
    mime_boundary,
    multipart,
    new_message_id,
    random_token,
    subject_header,
    text_part,
    transport_headers,
)
from tests.support.mailgen.people import LONDON, STAFF, time_zone
from tests.support.mailgen.rendering import OpenThread, Rendered, finish
from tests.support.mailgen.senders import CALENDAR_SENDER


def render_invite(
    rng: random.Random, opened: OpenThread, i: int, sizes: tuple[int, int]
) -> Rendered:
    """Google Calendar's invitation (and acceptance) mail, with the event as text/calendar."""
    thread, step = opened.thread, opened.thread.steps[i]
    when = opened.dates[i]
    first = thread.steps[0]
    organizer, guest = first.sender, first.to[0]
    day = weekday_after(when.date() + timedelta(days=int(thread.facts["in_days"])))
    start = datetime(day.year, day.month, day.day, 15, tzinfo=time_zone(LONDON))
    end = start + timedelta(minutes=45)
    zone = "BST" if start.dst() else "GMT"
    span = (
        f"{WEEKDAYS[day.weekday()][:3]} {day.day} {MONTHS[day.month - 1][:3]} "
        f"{day.year} 15:00 - 15:45 ({zone})"
    )
    uid = f"{random.Random(f'{thread.index}:uid').getrandbits(104):026x}@google.com"
    accepted = i > 0
    partstat = "ACCEPTED" if accepted else "NEEDS-ACTION"
    event = [
        "BEGIN:VCALENDAR",
        "PRODID:-//Google Inc//Google Calendar 70.9054//EN",
        "VERSION:2.0",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'REPLY' if accepted else 'REQUEST'}",
        "BEGIN:VEVENT",
        f"DTSTART:{ics_utc(start)}",
        f"DTEND:{ics_utc(end)}",
        f"DTSTAMP:{ics_utc(when)}",
        ics_person("ORGANIZER", organizer, ()),
        f"UID:{uid}",
        ics_person(
            "ATTENDEE",
            guest,
            (
                ("CUTYPE", "INDIVIDUAL"),
                ("ROLE", "REQ-PARTICIPANT"),
                ("PARTSTAT", partstat),
                ("RSVP", "TRUE"),
            ),
        ),
        ics_person(
            "ATTENDEE",
            organizer,
            (("CUTYPE", "INDIVIDUAL"), ("ROLE", "REQ-PARTICIPANT"), ("PARTSTAT", "ACCEPTED")),
        ),
        f"SUMMARY:{ics_text(thread.subject)}",
        "LOCATION:Google Meet",
        "DESCRIPTION:"
        + ics_text(
            f"Join with Google Meet: https://meet.google.example/"
            f"{random_token(rng, 3).lower()}-{random_token(rng, 4).lower()}"
        ),
        "SEQUENCE:0",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    if accepted:
        subject = f"Accepted: {thread.subject} @ {span}"
        text = f"{guest.name} has accepted this invitation.\n\n{thread.subject}\n{span}\n"
    else:
        subject = f"Invitation: {thread.subject} @ {span} ({guest.email})"
        text = (
            f"{organizer.name} has invited you to a meeting.\n\n{thread.subject}\n{span}\n"
            f"Organizer: {organizer.email}\nGuests: {guest.email}\n\n"
            "Invitation from Google Calendar\n"
        )
    method = "REPLY" if accepted else "REQUEST"
    calendar = Part(
        (
            f'Content-Type: text/calendar; charset="UTF-8"; method={method}',
            "Content-Transfer-Encoding: 7bit",
        ),
        ics_lines(event, "\n"),
    )
    plain = text_part("plain", text, "utf-8", "quoted-printable", "UTF-8")
    rich = text_part(
        "html", f"<div>{escape_html(text)}</div>\n", "utf-8", "quoted-printable", "UTF-8"
    )
    alternative = multipart("alternative", mime_boundary(rng, "gmail"), (plain, rich, calendar))
    if accepted:
        top = alternative
    else:
        attached = Part(
            (
                'Content-Type: application/ics; name="invite.ics"',
                'Content-Disposition: attachment; filename="invite.ics"',
                "Content-Transfer-Encoding: base64",
            ),
            base64.encodebytes(ics_lines(event)),
        )
        top = multipart("mixed", mime_boundary(rng, "gmail"), (alternative, attached))
    person = step.sender
    message_id = new_message_id(rng, STAFF[0] if person.staff else person)
    head = [
        *transport_headers(rng, person, step.to[0], when),
        "MIME-Version: 1.0",
        date_header(when, person),
        f"Message-ID: {message_id}",
        subject_header(subject, "utf-8"),
        address_header("From", (person,)),
        address_header("To", step.to),
    ]
    tail = [f"Sender: {CALENDAR_SENDER}", "Reply-To: " + format_address(person)]
    return finish(head, tail, top, message_id, person.email, text=text)
