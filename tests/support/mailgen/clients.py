"""How each mail client lays out a message: plain and HTML bodies, quoted history, MIME tree.

Gmail, Outlook, Apple Mail, Thunderbird and webmail each quote and attribute
differently (top- or bottom-posting, ``From:/Sent:`` blocks, "wrote:" lines
in the replier's language); the pipeline has to read all of them, so the
generator writes all of them.
"""

from __future__ import annotations

import base64
import html
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tests.support.mailgen.attachments import LOGO_PNG
from tests.support.mailgen.dates import (
    MONTHS,
    MONTHS_DE,
    MONTHS_FR,
    WEEKDAYS,
    WEEKDAYS_DE,
    WEEKDAYS_FR,
)
from tests.support.mailgen.mime import Part, binary_part, mime_boundary, multipart, text_part
from tests.support.mailgen.people import LONDON, Person, time_zone


@dataclass(frozen=True)
class Quote:
    """The message being answered or forwarded, as the replying client shows it."""

    person: Person
    when: datetime
    to: tuple[Person, ...]
    cc: tuple[Person, ...]
    subject: str
    text: str
    html: str
    forward: bool = False


def _uk_date(when: datetime) -> str:
    return f"{WEEKDAYS[when.weekday()][:3]}, {when.day} {MONTHS[when.month - 1][:3]} {when.year}"


def _twelve_hour(when: datetime) -> str:
    return f"{(when.hour - 1) % 12 + 1}:{when.minute:02d} {'AM' if when.hour < 12 else 'PM'}"


def _attribution(replier: Person, quoted: Person, when: datetime) -> str:
    """The "On ... wrote:" line in the replier's client, language and time zone."""
    at = when.astimezone(replier.zone)
    hm = f"{at.hour:02d}:{at.minute:02d}"
    who = f"{quoted.name} <{quoted.email}>"
    lang = "en" if replier.staff else replier.lang
    if replier.client == "thunderbird":
        if lang == "fr":
            return f"Le {at:%d/%m/%Y} à {hm}, {quoted.name} a écrit :"
        if lang == "de":
            return f"Am {at:%d.%m.%y} um {hm} schrieb {quoted.name}:"
        return f"On {at:%d/%m/%Y} {hm}, {quoted.name} wrote:"
    if replier.client == "apple":
        return f"On {at.day} {MONTHS[at.month - 1][:3]} {at.year}, at {hm}, {who} wrote:"
    if lang == "fr":
        return (
            f"Le {WEEKDAYS_FR[at.weekday()][:3]}. {at.day} {MONTHS_FR[at.month - 1]} "
            f"{at.year} à {hm}, {who} a écrit :"
        )
    if lang == "de":
        return (
            f"Am {WEEKDAYS_DE[at.weekday()][:2]}., {at.day}. {MONTHS_DE[at.month - 1]} "
            f"{at.year} um {hm} Uhr schrieb {who}:"
        )
    if replier.company.tz.startswith("America/"):
        return (
            f"On {WEEKDAYS[at.weekday()][:3]}, {MONTHS[at.month - 1][:3]} {at.day}, "
            f"{at.year} at {_twelve_hour(at)} {who} wrote:"
        )
    return f"On {_uk_date(at)} at {hm}, {who} wrote:"


def _wrap_attribution(line: str) -> str:
    """Gmail breaks a long attribution inside the address, a classic trap for parsers."""
    if len(line) <= 76 or "<" not in line:
        return line
    cut = line.index("<") + 1
    return line[:cut] + "\n" + line[cut:]


def _outlook_header(replier: Person, quote: Quote) -> list[str]:
    at = quote.when.astimezone(replier.zone)
    lang = replier.lang if not replier.staff else "en"
    hm = f"{at.hour:02d}:{at.minute:02d}"
    to = "; ".join(f"{p.name} <{p.email}>" for p in quote.to)
    cc = "; ".join(f"{p.name} <{p.email}>" for p in quote.cc)
    if lang == "de":
        sent = f"{WEEKDAYS_DE[at.weekday()]}, {at.day}. {MONTHS_DE[at.month - 1]} {at.year} {hm}"
        labels = ("Von", "Gesendet", "An", "Cc", "Betreff")
    elif lang == "fr":
        sent = f"{WEEKDAYS_FR[at.weekday()]} {at.day} {MONTHS_FR[at.month - 1]} {at.year} {hm}"
        labels = ("De ", "Envoyé ", "À ", "Cc ", "Objet ")
    elif replier.company.tz.startswith("America/"):
        sent = (
            f"{WEEKDAYS[at.weekday()]}, {MONTHS[at.month - 1]} {at.day}, {at.year} "
            f"{_twelve_hour(at)}"
        )
        labels = ("From", "Sent", "To", "Cc", "Subject")
    else:
        sent = f"{at.day:02d} {MONTHS[at.month - 1]} {at.year} {hm}"
        labels = ("From", "Sent", "To", "Cc", "Subject")
    values = (f"{quote.person.name} <{quote.person.email}>", sent, to, cc, quote.subject)
    return [f"{label}: {value}" for label, value in zip(labels, values, strict=True) if value]


def _quoted(text: str) -> str:
    return "\n".join(
        ">" + line if line.startswith(">") else "> " + line if line else ">"
        for line in text.split("\n")
    )


def _forward_header(quote: Quote) -> list[str]:
    at = quote.when.astimezone(time_zone(LONDON))
    return [
        "---------- Forwarded message ---------",
        f"From: {quote.person.name} <{quote.person.email}>",
        f"Date: {_uk_date(at)} at {at.hour:02d}:{at.minute:02d}",
        f"Subject: {quote.subject}",
        "To: " + ", ".join(f"{p.name} <{p.email}>" for p in quote.to),
    ]


def _wrap(text: str, width: int = 72) -> str:
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > width and " " in line[:width]:
            cut = line.rindex(" ", 0, width)
            out.append(line[:cut])
            line = line[cut + 1 :]
        out.append(line)
    return "\n".join(out)


def plain_text(
    person: Person, blocks: list[str], sig: list[str], quote: Quote | None, disclaimer: str
) -> str:
    """The text/plain body, laid out the way ``person``'s client lays out a reply."""
    client = person.client
    new = "\n\n".join(b for b in blocks if b)
    if client == "thunderbird":
        new = _wrap(new)
    signature = "\n".join(sig)
    if client in ("outlook", "apple"):
        new += "\n\n" + signature
    elif sig:
        new += "\n\n-- \n" + signature
    if disclaimer:
        new += "\n\n" + _wrap(disclaimer, 76)
    if quote is None:
        return new + "\n"
    if quote.forward:
        return new + "\n\n" + "\n".join(_forward_header(quote)) + "\n\n" + quote.text
    if client == "outlook":
        block = "\n".join(_outlook_header(person, quote))
        return f"{new}\n\n________________________________\n{block}\n\n{quote.text}"
    attribution = _attribution(person, quote.person, quote.when)
    if client == "apple":
        return new + "\n\n" + _quoted(f"{attribution}\n\n{quote.text}".rstrip("\n")) + "\n"
    if client == "thunderbird":
        return f"{attribution}\n{_quoted(quote.text.rstrip(chr(10)))}\n\n{new}\n"
    quoted = _quoted(quote.text.rstrip("\n"))
    return f"{new}\n\n{_wrap_attribution(attribution)}\n\n{quoted}\n"


def escape_html(text: str) -> str:
    return html.escape(text, quote=False).replace("\n", "<br>\n")


def html_inner(
    person: Person,
    blocks: list[str],
    sig: list[str],
    quote: Quote | None,
    disclaimer: str,
    logo_id: str,
) -> str:
    """The part of an HTML body that a later reply nests inside its own quote."""
    client = person.client
    paras = [b for b in blocks if b]
    if client == "outlook":
        body = "".join(
            f'<p class="MsoNormal">{escape_html(p)}<o:p></o:p></p>\n'
            '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>\n'
            for p in paras
        )
        body += f'<p class="MsoNormal">{"<br>".join(html.escape(s) for s in sig)}</p>\n'
        if logo_id:
            body += (
                f'<p class="MsoNormal"><img width="120" height="32" '
                f'src="cid:{logo_id}" alt="{html.escape(person.company.name)}"></p>\n'
            )
        if disclaimer:
            body += (
                '<p class="MsoNormal"><span style="font-size:8.0pt">'
                f"{escape_html(disclaimer)}</span></p>\n"
            )
        if quote:
            rows = "<br>\n".join(
                f"<b>{html.escape(k)}:</b> {html.escape(v.strip())}"
                for k, v in (line.split(":", 1) for line in _outlook_header(person, quote))
            )
            body += (
                '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm '
                f'0cm 0cm">\n<p class="MsoNormal">{rows}</p>\n</div>\n{quote.html}'
            )
        return f'<div class="WordSection1">\n{body}</div>\n'
    if client == "apple":
        body = "".join(
            f'<div dir="ltr">{escape_html(p)}</div><div dir="ltr"><br></div>' for p in paras
        )
        body += f'<div dir="ltr">{"<br>".join(html.escape(s) for s in sig)}</div>'
        if quote:
            attribution = html.escape(_attribution(person, quote.person, quote.when))
            body += (
                f'<div dir="ltr"><br><blockquote type="cite">{attribution}<br><br>'
                f'</blockquote></div><blockquote type="cite"><div dir="ltr">{quote.html}'
                "</div></blockquote>"
            )
        return body
    if client == "html":
        body = "".join(f"<p>{escape_html(p)}</p>" for p in paras)
        body += f"<p>-- <br>{'<br>'.join(html.escape(s) for s in sig)}</p>"
        if quote:
            attribution = html.escape(_attribution(person, quote.person, quote.when))
            body += (
                f'<div>{attribution}</div><blockquote style="border-left: 2px solid '
                f'#1010FF; margin-left: 5px; padding-left: 5px">{quote.html}</blockquote>'
            )
        return f'<div style="font-family: Arial, sans-serif; font-size: 10pt">{body}</div>'
    if client == "thunderbird":
        plain = plain_text(person, blocks, sig, quote, disclaimer)
        return f'<pre class="moz-quote-pre">{html.escape(plain)}</pre>'
    body = "".join(f"<div>{escape_html(p)}</div><div><br></div>" for p in paras)
    if sig:
        body += (
            '<span class="gmail_signature_prefix">-- </span><br><div dir="ltr" '
            f'class="gmail_signature">{"<br>".join(html.escape(s) for s in sig)}</div>'
        )
    inner = f'<div dir="ltr">{body}</div>'
    if quote and quote.forward:
        header = "<br>".join(html.escape(line) for line in _forward_header(quote))
        inner += (
            '<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
            f"{header}<br><br></div>{quote.html}</div>"
        )
    elif quote:
        attribution = html.escape(_attribution(person, quote.person, quote.when))
        inner += (
            '<br><div class="gmail_quote gmail_quote_container"><div dir="ltr" '
            f'class="gmail_attr">{attribution}<br></div><blockquote class="gmail_quote" '
            'style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
            f'padding-left:1ex">{quote.html}</blockquote></div>'
        )
    return inner


_OUTLOOK_HEAD = (
    '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:'
    'office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns="http://www.w3.org/TR/REC-'
    'html40">\n<head>\n<meta http-equiv="Content-Type" content="text/html; charset={charset}">\n'
    '<meta name="Generator" content="Microsoft Word 15 (filtered medium)">\n<style><!--\n'
    "@font-face\n\t{{font-family:Calibri;}}\np.MsoNormal, li.MsoNormal, div.MsoNormal\n\t"
    '{{margin:0cm;\n\tfont-size:11.0pt;\n\tfont-family:"Calibri",sans-serif;}}\n'
    "a:link, span.MsoHyperlink\n\t{{color:#0563C1;\n\ttext-decoration:underline;}}\n"
    "--></style>\n</head>\n"
    '<body lang="EN-GB" link="#0563C1" vlink="#954F72" style="word-wrap:break-word">\n'
)


def html_document(person: Person, inner: str) -> str:
    if person.client == "outlook":
        return _OUTLOOK_HEAD.format(charset=person.charset) + inner + "</body>\n</html>\n"
    if person.client == "apple":
        return (
            '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8">'
            f'</head><body dir="auto">{inner}</body></html>\n'
        )
    if person.client == "html":
        return f"<html><head></head><body>{inner}</body></html>\n"
    return inner + "\n"


def body_part(
    rng: random.Random,
    person: Person,
    text: str,
    inner: str,
    attachments: Sequence[Part],
    logo_id: str,
) -> Part:
    """The MIME tree each client builds: plain, HTML only, alternative, related, mixed."""
    client, charset = person.client, person.charset
    label = "UTF-8" if client == "gmail" and charset == "utf-8" else charset
    text_cte = {"thunderbird": "8bit"}.get(client, "quoted-printable")
    if client == "gmail" and rng.random() < 0.2:
        text_cte = "base64"
    plain = text_part("plain", text, charset, text_cte, label)
    main: Part
    if (
        client == "thunderbird"
        or (client == "apple" and rng.random() < 0.6)
        or (client == "gmail" and rng.random() < 0.12)
    ):
        main = plain
    else:
        html_cte = "base64" if client == "html" and rng.random() < 0.5 else "quoted-printable"
        rich = text_part("html", html_document(person, inner), charset, html_cte, label)
        if client == "html":
            main = rich
        else:
            main = multipart("alternative", mime_boundary(rng, client), (plain, rich))
            if logo_id:
                logo = binary_part("image/png", "image001.png", LOGO_PNG, inline_id=logo_id)
                main = multipart(
                    "related",
                    mime_boundary(rng, client),
                    (main, logo),
                    ' type="multipart/alternative";',
                )
    if attachments:
        preamble = (
            b"This is a multi-part message in MIME format.\n" if client == "thunderbird" else b""
        )
        main = multipart(
            "mixed", mime_boundary(rng, client), (main, *attachments), preamble=preamble
        )
    return main


def client_headers(
    rng: random.Random, person: Person, subject: str, index: int, attached: bool
) -> list[str]:
    if person.client == "outlook":
        thread_index = base64.b64encode(rng.randbytes(22 + 5 * index)).decode()
        lang = {"de": "de-DE", "fr": "fr-FR"}.get(person.lang, "en-GB")
        return [
            f"Thread-Topic: {subject}" if subject.isascii() else "Thread-Topic: (non-ASCII)",
            f"Thread-Index: {thread_index}",
            f"Accept-Language: {lang}, en-US",
            f"Content-Language: {lang}",
            "X-MS-Has-Attach:" + (" yes" if attached else ""),
            "X-MS-TNEF-Correlator:",
        ]
    if person.client == "apple":
        return ["X-Mailer: iPhone Mail (22E240)"]
    if person.client == "thunderbird":
        lang = {"de": "de-DE", "fr": "fr"}.get(person.lang, "en-GB")
        return ["User-Agent: Mozilla Thunderbird", f"Content-Language: {lang}"]
    return []


def reply_prefix(person: Person, forward: bool) -> str:
    if person.client == "outlook":
        if forward:
            return "WG: " if person.lang == "de" else "FW: "
        return {"de": "AW: ", "fr": "RE : "}.get(person.lang, "RE: ")
    return "Fwd: " if forward else "Re: "
