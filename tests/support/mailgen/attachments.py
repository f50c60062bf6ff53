"""Attachment bytes: PDF-, PNG- and XLSX-shaped files of a chosen size, and Outlook's logo.

A real format's first bytes and then random ones: the pipeline needs a
file's type and size, not its content, and random bytes keep the
benchmark's mail as large on the wire as real attachments make it.
"""

from __future__ import annotations

import base64
import random
import re
from collections.abc import Mapping

from tests.support.mailgen.mime import Part, binary_part
from tests.support.mailgen.people import Person

LOGO_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


def pdf_bytes(rng: random.Random, size: int) -> bytes:
    """PDF-shaped bytes: a real header and trailer around an incompressible stream."""
    head = (
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"3 0 obj\n<< /Length " + str(size).encode() + b" /Filter /FlateDecode >>\nstream\n"
    )
    tail = b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
    return head + rng.randbytes(size) + tail


def attachment_part(
    rng: random.Random, kind: str, ctx: Mapping[str, str], sender: Person, sizes: tuple[int, int]
) -> Part:
    size = rng.randint(*sizes)
    company = ctx["company"]
    slug = re.sub(r"[^A-Za-z0-9]+", "_", company).strip("_")
    if kind == "screenshot":
        clock = f"{rng.randint(9, 17)}.{rng.randint(10, 59)}.{rng.randint(10, 59)}"
        name = f"Screenshot {ctx['iso']} at {clock}.png"
        data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(size)
        return binary_part("image/png", name, data)
    if kind == "policy":
        if rng.random() < 0.5:
            data = b"PK\x03\x04\x14\x00\x06\x00" + rng.randbytes(size)
            return binary_part(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                f"Forecast {ctx['quarter']}.xlsx",
                data,
            )
        return binary_part("application/pdf", "Travel policy 2025.pdf", pdf_bytes(rng, size))
    names = {
        "quote": f"Northwind_Quote_{slug}_{ctx['po'][-4:]}.pdf",
        "po": f"{ctx['po']}.pdf",
        "contract": rng.choice((f"Order Form - {company}.pdf", "Northwind MSA v3.pdf")),
        "plan": f"Onboarding plan - {company}.pdf",
    }
    name = names.get(kind, "document.pdf")
    if sender.lang == "fr":
        name = f"Bon de commande {ctx['po']} - Lumière.pdf" if kind == "po" else name
    return binary_part("application/pdf", name, pdf_bytes(rng, size))
