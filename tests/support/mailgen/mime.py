"""MIME by hand: entities, transfer encodings, boundaries, Message-IDs and header lines.

Built as text rather than with ``email.message`` so that each client's marks
come out as that client writes them (Outlook's boundaries and Message-IDs,
Gmail's, folded address lists) and the bytes depend on the seed alone.
"""

from __future__ import annotations

import base64
import quopri
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr
from urllib.parse import quote

from tests.support.mailgen.people import FREE_MAIL, INTERNAL_DOMAIN, Person


@dataclass(frozen=True)
class Part:
    """A MIME entity: a leaf with encoded bytes, or a multipart with children."""

    headers: tuple[str, ...]
    body: bytes = b""
    parts: tuple[Part, ...] = ()
    boundary: str = ""
    preamble: bytes = b""


def flatten(part: Part) -> bytes:
    """The entity's body; its own headers go in front of it, wherever it sits."""
    if not part.parts:
        return part.body
    chunks = [part.preamble]
    for child in part.parts:
        content = flatten(child)
        chunks.append(f"--{part.boundary}\n".encode())
        chunks.append("\n".join(child.headers).encode("ascii") + b"\n\n")
        chunks.append(content if content.endswith(b"\n") else content + b"\n")
        chunks.append(b"\n")
    chunks.append(f"--{part.boundary}--\n".encode())
    return b"".join(chunks)


def multipart(
    subtype: str, boundary: str, parts: Sequence[Part], params: str = "", preamble: bytes = b""
) -> Part:
    header = f'Content-Type: multipart/{subtype};{params} boundary="{boundary}"'
    return Part((header,), parts=tuple(parts), boundary=boundary, preamble=preamble)


def text_part(subtype: str, text: str, charset: str, cte: str, label: str = "") -> Part:
    data = text.encode(charset, errors="replace")
    if data.isascii() and cte != "base64" and max(map(len, data.split(b"\n"))) <= 998:
        cte = "7bit"
    if cte == "quoted-printable":
        body = quopri.encodestring(data)
    elif cte == "base64":
        body = base64.encodebytes(data)
    else:
        body = data
    label = label or charset
    return Part(
        (f'Content-Type: text/{subtype}; charset="{label}"', f"Content-Transfer-Encoding: {cte}"),
        body,
    )


def binary_part(ctype: str, filename: str, data: bytes, *, inline_id: str = "") -> Part:
    if filename.isascii():
        name, disposition = f'name="{filename}"', f'filename="{filename}"'
    else:
        encoded = Header(filename, "utf-8").encode()
        name = f'name="{encoded}"'
        disposition = f"filename*=utf-8''{quote(filename, safe='')}"
    kind = "inline" if inline_id else "attachment"
    headers = [
        f"Content-Type: {ctype}; {name}",
        f"Content-Disposition: {kind}; {disposition}",
        "Content-Transfer-Encoding: base64",
    ]
    if inline_id:
        headers.append(f"Content-ID: <{inline_id}>")
    return Part(tuple(headers), base64.encodebytes(data))


def random_token(rng: random.Random, length: int, alphabet: str = "") -> str:
    letters = alphabet or "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choices(letters, k=length))


def random_uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def mime_boundary(rng: random.Random, client: str) -> str:
    if client == "outlook":
        return f"_00{rng.randint(0, 9)}_{random_token(rng, 36, '0123456789' + _UPPER)}_"
    if client == "apple":
        return f"Apple-Mail={random_uuid(rng).upper()}"
    if client == "thunderbird":
        return "------------" + random_token(rng, 24)
    if client in ("gmail", "html"):
        return f"000000000000{rng.getrandbits(64):016x}"
    return f"----=_Part_{rng.randint(100000, 999999)}_{rng.randint(10**8, 10**9)}"


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_GMAIL_ID = _UPPER + _UPPER.lower() + "0123456789+_-"


def new_message_id(rng: random.Random, person: Person) -> str:
    domain = person.email.rsplit("@", 1)[1]
    if person.client == "gmail" or person.staff or domain == "gmail.com":
        return f"<CA{random_token(rng, 52, _GMAIL_ID)}=@mail.gmail.com>"
    if person.client == "outlook":
        server = (
            f"{random_token(rng, 2, _UPPER)}{rng.randint(1, 9)}PR0{rng.randint(1, 9)}"
            f"MB{rng.randint(1000, 9999)}.eurprd0{rng.randint(1, 9)}"
        )
        return f"<{random_token(rng, 40, '0123456789ABCDEF')}@{server}.prod.outlook.com>"
    if person.client == "apple":
        return f"<{random_uuid(rng).upper()}@{domain}>"
    if person.client == "thunderbird":
        return f"<{random_uuid(rng)}@{domain}>"
    return f"<{rng.getrandbits(128):032x}.{rng.randint(1, 99)}@mailer.{domain}>"


def format_address(person: Person, charset: str = "utf-8") -> str:
    name = person.name
    try:
        name.encode(charset)
    except UnicodeEncodeError:
        charset = "utf-8"
    return formataddr((name, person.email), charset=charset)


def address_header(name: str, people: Sequence[Person], charset: str = "utf-8") -> str:
    """Fold between addresses, as mail clients do, so no line runs past 78 characters."""
    items = [format_address(p, charset) for p in people]
    lines: list[str] = []
    line = f"{name}:"
    for j, item in enumerate(items):
        piece = item + ("," if j < len(items) - 1 else "")
        if len(line) + 1 + len(piece) > 78 and line != f"{name}:":
            lines.append(line)
            line = " " + piece
        else:
            line += " " + piece
    lines.append(line)
    return "\n".join(lines)


def subject_header(subject: str, charset: str) -> str:
    try:
        subject.encode("ascii")
    except UnicodeEncodeError:
        try:
            subject.encode(charset)
        except UnicodeEncodeError:
            charset = "utf-8"
        return (
            Header(subject, charset, header_name="Subject")
            .encode(linesep="\n")
            .join(("Subject: ", ""))
        )
    return "Subject: " + subject


def references_header(ids: Sequence[str]) -> str:
    return "References: " + "\n ".join(ids)


def date_header(when: datetime, person: Person) -> str:
    return "Date: " + format_datetime(when.astimezone(person.zone))


def transport_headers(rng: random.Random, sender: Person, to: Person, when: datetime) -> list[str]:
    """A Received line and, for real domains, a DKIM signature: the bulk of real headers."""
    stamp = format_datetime(when.astimezone(UTC))
    domain = sender.email.rsplit("@", 1)[1]
    if sender.staff:
        host = f"2002:a05:{rng.randint(4096, 65535):x}:{rng.randint(4096, 65535):x}"
        received = f"Received: by {host} with SMTP id {random_token(rng, 12)};\n        {stamp}"
    else:
        ip = f"{rng.choice(('203.0.113', '198.51.100', '192.0.2'))}.{rng.randint(2, 250)}"
        received = (
            f"Received: from mail.{domain} (mail.{domain} [{ip}])\n"
            f"        by mx.{INTERNAL_DOMAIN} with ESMTPS id {random_token(rng, 16)}\n"
            f"        for <{to.email}>; {stamp}"
        )
    lines = [received]
    if domain not in FREE_MAIL and "google" not in domain:
        bh = base64.b64encode(rng.randbytes(32)).decode()
        b = base64.b64encode(rng.randbytes(256)).decode()
        signed = "\n        ".join(b[i : i + 70] for i in range(0, len(b), 70))
        lines.append(
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain};\n"
            f"        s=selector{rng.randint(1, 2)}; t={int(when.timestamp())};\n"
            "        h=from:to:cc:subject:date:message-id:references:in-reply-to;\n"
            f"        bh={bh};\n        b={signed}"
        )
    return lines
