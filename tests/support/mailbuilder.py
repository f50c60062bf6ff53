"""Small, explicit RFC 5322 messages for tests, and mbox/Maildir writers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Literal

from imapclient import imap_utf7


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


def write_maildir(
    root: Path, messages: Iterable[bytes], *, sub: Literal["cur", "new", "tmp"] = "cur"
) -> Path:
    """A Maildir at ``root``; messages go to ``sub`` (``cur/`` with the Seen flag)."""
    for part in ("cur", "new", "tmp"):
        (root / part).mkdir(parents=True, exist_ok=True)
    flags = ":2,S" if sub == "cur" else ""
    for index, raw in enumerate(messages):
        (root / sub / f"{1700000000 + index}.M{index}P1.host{flags}").write_bytes(raw)
    return root


Layout = Literal["maildir++", "nested"]
"""How a Maildir tree lays out its folders (:func:`maildir_folder`)."""


def maildir_folder(root: Path, folder: str, layout: Layout) -> Path:
    """Where a folder (``Sent``, ``Archive/2023``) of the Maildir tree at ``root`` lives.

    Maildir++ (Courier, Dovecot's default): ``.Sent``, ``.Archive.2023``, names
    that are not ASCII in IMAP's modified UTF-7, as Dovecot writes them.
    Nested (Dovecot's ``LAYOUT=fs``, mbsync's ``SubFolders Verbatim``):
    ``Sent``, ``Archive/2023``.
    """
    if folder == "INBOX":
        return root
    if layout == "nested":
        return root.joinpath(*folder.split("/"))
    encoded: bytes = imap_utf7.encode(folder.replace("/", "."))
    return root / ("." + encoded.decode("ascii"))


def write_maildir_folder(
    root: Path,
    folder: str,
    messages: Iterable[bytes],
    *,
    layout: Layout = "maildir++",
    sub: Literal["cur", "new", "tmp"] = "cur",
) -> Path:
    """Write ``messages`` into ``folder`` of the tree at ``root`` (see :func:`maildir_folder`);
    a Maildir++ subfolder gets the ``maildirfolder`` marker file Maildir++ gives it."""
    path = write_maildir(maildir_folder(root, folder, layout), messages, sub=sub)
    if layout == "maildir++" and path != root:
        (path / "maildirfolder").touch()
    return path
