"""Small, explicit RFC 5322 messages for tests, and mbox/Maildir writers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path


def message(
    *,
    sender: str,
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    subject: str = "Hello",
    body: str = "Hi there.",
    date: datetime | None = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc),
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
    html: str | None = None,
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    if date is not None:
        msg["Date"] = format_datetime(date)
    if message_id:
        msg["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return bytes(msg)


def write_mbox(path: Path, messages: Iterable[bytes]) -> Path:
    """mboxrd: a ``From `` line per message, body ``From `` lines quoted."""
    with path.open("wb") as out:
        for raw in messages:
            out.write(b"From sender@example.invalid Mon Mar  2 09:30:00 2026\n")
            for line in raw.splitlines(keepends=True):
                stripped = line.lstrip(b">")
                out.write(b">" + line if stripped.startswith(b"From ") else line)
            if not raw.endswith(b"\n"):
                out.write(b"\n")
            out.write(b"\n")
    return path


def write_maildir(root: Path, messages: Iterable[bytes]) -> Path:
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for index, raw in enumerate(messages):
        (root / "cur" / f"{1700000000 + index}.M{index}P1.host:2,S").write_bytes(raw)
    return root
