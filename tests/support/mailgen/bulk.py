"""Newsletters, service notifications and spam: bulk mail the filters must recognise.

Lists carry ``List-Id``, ``List-Unsubscribe`` and ``Precedence: bulk`` as
real ones do; service notifications carry less, and spam none of them.
"""

from __future__ import annotations

import html
import random

from tests.support.mailgen.clients import escape_html
from tests.support.mailgen.mime import (
    address_header,
    date_header,
    mime_boundary,
    multipart,
    new_message_id,
    random_token,
    subject_header,
    text_part,
    transport_headers,
)
from tests.support.mailgen.rendering import OpenThread, Rendered, finish
from tests.support.mailgen.senders import NEWSLETTERS


def render_list(rng: random.Random, opened: OpenThread, i: int, sizes: tuple[int, int]) -> Rendered:
    """A newsletter or a service notification: bulk headers, HTML-heavy, never a person."""
    thread, step = opened.thread, opened.thread.steps[0]
    source = thread.source or NEWSLETTERS[0]
    person, when = step.sender, opened.dates[i]
    domain = source.email.split("@", 1)[1]
    token = random_token(rng, 24)
    items = rng.sample(source.lines, k=min(len(source.lines), 3))
    if source.kind == "newsletter":
        intro = ("From the editor: " if rng.random() < 0.5 else "") + (
            f"This week: {items[0]}, and more."
        )
        lines = [intro, ""]
        for item in items:
            lines += [f"* {item}", f"  https://{domain}/r/{random_token(rng, 10)}", ""]
        lines += [
            "",
            f"From the {source.name} team.",
            "",
            f"You are receiving this because you subscribed at {domain}.",
            f"Unsubscribe: https://{domain}/u/{token}",
        ]
    else:
        lines = [
            thread.subject,
            "",
            f"{items[0]}.",
            f"View it here: https://{domain}/n/{random_token(rng, 12)}",
            "",
            "This is an automated message; please do not reply.",
        ]
    text = "\n".join(lines) + "\n"
    cells = "".join(
        f'<tr><td style="padding:16px 24px;font-family:Helvetica,Arial,sans-serif;font-size:'
        f'15px;color:#222"><a href="https://{domain}/r/{random_token(rng, 10)}?utm_source='
        f'email&amp;utm_medium={source.kind}" style="color:#1a5fb4">{html.escape(item)}</a>'
        "</td></tr>"
        for item in items
    )
    document = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width='
        f'device-width"><title>{html.escape(thread.subject)}</title></head><body style="margin:0;'
        'background:#f4f4f4"><table role="presentation" width="100%" cellpadding="0" '
        'cellspacing="0"><tr><td align="center"><table role="presentation" width="600" '
        f'style="background:#ffffff"><tr><td style="padding:24px"><h1>{html.escape(source.name)}'
        f'</h1><p>{html.escape(lines[0])}</p></td></tr>{cells}<tr><td style="padding:24px;'
        f'font-size:12px;color:#777"><a href="https://{domain}/u/{token}">Unsubscribe</a></td>'
        f'</tr></table></td></tr></table><img src="https://t.{domain}/o/{token}.gif" width="1" '
        'height="1" alt=""></body></html>\n'
    )
    plain = text_part("plain", text, "utf-8", "quoted-printable")
    rich = text_part("html", document, "utf-8", "quoted-printable")
    top = multipart("alternative", mime_boundary(rng, "list"), (plain, rich))
    if source.kind == "notification" and rng.random() < 0.3:
        top = rich
    message_id = new_message_id(rng, person)
    head = [
        *transport_headers(rng, person, step.to[0], when),
        "MIME-Version: 1.0",
        date_header(when, person),
        f"Message-ID: {message_id}",
        subject_header(thread.subject, "utf-8"),
        address_header("From", (person,)),
        address_header("To", step.to),
    ]
    tail: list[str] = []
    if source.list_id:
        tail += [
            f"List-Id: {source.list_id}",
            f"List-Unsubscribe: <https://{domain}/u/{token}>,\n <mailto:unsubscribe-{token}"
            f"@{domain}>",
            "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
            "Precedence: bulk",
            f"Feedback-ID: {rng.randint(1000, 9999)}:{source.kind}:{domain}",
        ]
    elif "github" in domain:
        tail += [
            "List-ID: northwind/insights <insights.northwind.github.example>",
            "Precedence: list",
            "X-GitHub-Reason: review_requested",
        ]
    else:
        tail += ["Auto-Submitted: auto-generated"] if rng.random() < 0.5 else []
    return finish(head, tail, top, message_id, person.email, text=text)


def render_spam(rng: random.Random, opened: OpenThread, i: int, sizes: tuple[int, int]) -> Rendered:
    thread, step = opened.thread, opened.thread.steps[0]
    person, when = step.sender, opened.dates[i]
    text = (
        f"{thread.topic}\n\nYour account has been selected for an exclusive reward worth "
        "£500. Confirm your details within 24 hours to claim it: "
        f"https://claim.{person.company.domain}/{random_token(rng, 8)}\n"
    )
    top = text_part(
        "html", f"<html><body><p>{escape_html(text)}</p></body></html>\n", "utf-8", "base64"
    )
    message_id = f"<{rng.getrandbits(96):024x}@{person.company.domain}>"
    head = [
        "MIME-Version: 1.0",
        date_header(when, person),
        f"Message-ID: {message_id}",
        subject_header(thread.subject, "utf-8"),
        address_header("From", (person,)),
        address_header("To", step.to),
        f"Reply-To: winner-{rng.randint(100, 999)}@claims-desk.example",
    ]
    return finish(head, [], top, message_id, person.email, text=text)
