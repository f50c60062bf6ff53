"""Person-to-person mail: replies with quoted history, forwards, out-of-office answers, Chat.

Customer threads are what the pipeline is there to log; internal threads
and Chat lines, written by the same people, are what it must skip.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from tests.support.mailgen.attachments import attachment_part
from tests.support.mailgen.clients import (
    Quote,
    body_part,
    client_headers,
    escape_html,
    html_document,
    html_inner,
    plain_text,
    reply_prefix,
)
from tests.support.mailgen.dates import MONTHS, weekday_after
from tests.support.mailgen.mime import (
    address_header,
    date_header,
    mime_boundary,
    multipart,
    new_message_id,
    references_header,
    subject_header,
    text_part,
    transport_headers,
)
from tests.support.mailgen.people import CAST, INTERNAL_DOMAIN, Person
from tests.support.mailgen.rendering import OpenThread, Rendered, finish
from tests.support.mailgen.threads import Step, Thread
from tests.support.mailgen.topics import TOPIC_BY_KEY
from tests.support.mailgen.writing import (
    CHAT_LINES,
    DISCLAIMER,
    greeting,
    paragraphs,
    signature_lines,
    signoff,
    text_context,
)


def render_conversation(
    rng: random.Random, opened: OpenThread, i: int, sizes: tuple[int, int]
) -> Rendered:
    thread, step = opened.thread, opened.thread.steps[i]
    when = opened.dates[i]
    if step.auto_reply:
        return _render_auto_reply(rng, opened, i)
    person = step.sender
    ctx = text_context(thread, step, when)
    answered = thread.steps[step.replies_to] if step.replies_to >= 0 else None
    quote: Quote | None = None
    forward = thread.topic == "forward" and answered is None
    if answered is not None:
        previous = opened.done[step.replies_to]
        quote = Quote(
            answered.sender,
            opened.dates[step.replies_to],
            answered.to,
            answered.cc,
            _subject_of(thread, step.replies_to, answered.sender),
            previous.text,
            previous.html,
        )
    elif forward and thread.about is not None:
        quote = _forwarded(rng, thread, person, when)
    blocks = [
        greeting(rng, step),
        *paragraphs(rng, thread, step, answered, ctx),
        signoff(rng, person),
    ]
    if forward:
        blocks[1:-1] = [
            f"Can you take this one? {thread.about.first if thread.about else ''} is one of yours."
        ]
    if person.client == "outlook" and person.charset != "iso-8859-1":
        blocks = [_autocorrect(b) for b in blocks]
    sig = signature_lines(rng, person)
    disclaimer = ""
    if person.client == "outlook" and not person.staff and len(person.company.domain) % 3 == 0:
        disclaimer = DISCLAIMER.format(company=person.company.name)
    logo_id = ""
    if person.client == "outlook" and rng.random() < 0.5:
        logo_id = f"image001.png@01DB{rng.getrandbits(32):08X}.{rng.getrandbits(32):08X}"
    text = plain_text(person, blocks, sig, quote, disclaimer)
    inner = html_inner(person, blocks, sig, quote, disclaimer, logo_id)
    attachments = (
        [attachment_part(rng, step.attachment, ctx, person, sizes)] if step.attachment else []
    )
    top = body_part(rng, person, text, inner, attachments, logo_id)
    message_id = new_message_id(rng, person)
    subject = _subject_of(thread, i, person)
    head = [
        *transport_headers(rng, person, step.to[0], when),
        "MIME-Version: 1.0",
        date_header(when, person),
        f"Message-ID: {message_id}",
    ]
    if answered is not None:
        head += [
            f"In-Reply-To: {opened.done[step.replies_to].message_id}",
            references_header(opened.chains[step.replies_to]),
        ]
    head += [
        subject_header(subject, person.charset),
        address_header("From", (person,), person.charset),
        address_header("To", step.to, person.charset),
    ]
    if step.cc:
        head.append(address_header("Cc", step.cc, person.charset))
    bcc = address_header("Bcc", step.bcc) if step.bcc else ""
    tail = client_headers(rng, person, thread.subject, i, bool(attachments))
    return finish(head, tail, top, message_id, person.email, bcc, text, inner)


def _autocorrect(text: str) -> str:
    """Outlook's AutoCorrect: curly apostrophes and en dashes, outside ASCII and Latin-1."""
    return text.replace("'", "\u2019").replace(" - ", " \u2013 ")


def _subject_of(thread: Thread, i: int, person: Person) -> str:
    step = thread.steps[i]
    if step.replies_to < 0:
        return thread.subject
    return reply_prefix(person, forward=False) + thread.subject


def _forwarded(rng: random.Random, thread: Thread, forwarder: Person, when: datetime) -> Quote:
    """The customer mail a colleague forwards: written here, never sent on its own."""
    about = thread.about or CAST[0]
    step = Step(about, (forwarder,))
    ctx = text_context(thread, step, when)
    topic = TOPIC_BY_KEY["support"]
    blocks = [
        greeting(rng, step),
        *(c.format_map(ctx) for slot in topic.opening if (c := rng.choice(slot))),
        signoff(rng, about),
    ]
    sig = signature_lines(rng, about)
    text = "\n\n".join(b for b in blocks if b) + "\n\n" + "\n".join(sig) + "\n"
    sent = when - timedelta(hours=rng.randint(1, 30))
    return Quote(
        about,
        sent,
        (forwarder,),
        (),
        thread.subject.removeprefix("Fwd: "),
        text,
        escape_html(text),
        forward=True,
    )


_AUTO_REPLY = {
    "en": (
        "Thank you for your email. I am out of the office until {date} with limited access "
        "to email. For anything urgent, please call the office on {phone}."
    ),
    "fr": (
        "Merci pour votre message. Je suis absente du bureau jusqu'au {date} et "
        "consulterai mes e-mails à mon retour."
    ),
    "de": (
        "Vielen Dank für Ihre Nachricht. Ich bin bis einschließlich {date} nicht im Büro. "
        "In dringenden Fällen erreichen Sie uns unter {phone}."
    ),
}


def _render_auto_reply(rng: random.Random, opened: OpenThread, i: int) -> Rendered:
    thread, step = opened.thread, opened.thread.steps[i]
    person, when = step.sender, opened.dates[i]
    back = weekday_after(when.date() + timedelta(days=rng.randint(3, 12)))
    text = (
        _AUTO_REPLY.get(person.lang, _AUTO_REPLY["en"]).format(
            date=f"{back.day} {MONTHS[back.month - 1]}", phone=person.phone
        )
        + "\n"
    )
    original = opened.done[step.replies_to]
    subject = (
        "Automatic reply: " if person.client == "outlook" else "Out of office: "
    ) + _subject_of(thread, step.replies_to, thread.steps[step.replies_to].sender)
    plain = text_part("plain", text, person.charset, "quoted-printable")
    rich = text_part(
        "html",
        html_document(person, f"<p>{escape_html(text)}</p>"),
        person.charset,
        "quoted-printable",
    )
    top = multipart("alternative", mime_boundary(rng, person.client), (plain, rich))
    message_id = new_message_id(rng, person)
    head = [
        *transport_headers(rng, person, step.to[0], when),
        "MIME-Version: 1.0",
        date_header(when, person),
        f"Message-ID: {message_id}",
        f"In-Reply-To: {original.message_id}",
        references_header(opened.chains[step.replies_to]),
        subject_header(subject, person.charset),
        address_header("From", (person,), person.charset),
        address_header("To", step.to, person.charset),
    ]
    tail = ["Auto-Submitted: auto-replied", "X-Auto-Response-Suppress: All"]
    return finish(head, tail, top, message_id, person.email, text=text)


def render_chat(rng: random.Random, opened: OpenThread, i: int, sizes: tuple[int, int]) -> Rendered:
    """A Google Chat line as Takeout exports it into the mbox, labelled Chat."""
    thread, step = opened.thread, opened.thread.steps[i]
    person, when = step.sender, opened.dates[i]
    line = rng.choice(CHAT_LINES).format(company=thread.facts["company"]) + "\n"
    top = text_part("plain", line, "utf-8", "quoted-printable", "UTF-8")
    message_id = f"<{rng.getrandbits(64):016x}.chat@{INTERNAL_DOMAIN}>"
    head = [
        "MIME-Version: 1.0",
        date_header(when, person),
        f"Message-ID: {message_id}",
        subject_header(thread.subject, "utf-8"),
        address_header("From", (person,)),
        address_header("To", step.to),
    ]
    return finish(head, [], top, message_id, person.email, text=line)
