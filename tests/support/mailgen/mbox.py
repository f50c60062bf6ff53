"""The mboxrd writer: generated mail as a file that reads like a Google Takeout export."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parseaddr, parsedate_to_datetime
from os import PathLike

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FROM_ = re.compile(rb"^(>*From )", re.MULTILINE)
_UNFOLD = re.compile(rb"\r?\n[ \t]+")


def write_mbox(path: str | PathLike[str], messages: Iterable[bytes]) -> int:
    """Write an mboxrd file, one message at a time; returns how many were written.

    mboxrd quotes every body line that matches ``>*From `` with one more
    ``>``, so a reader can undo it exactly; readers that only split on
    ``From `` lines (Python's ``mailbox.mbox``) still count right. Lines end
    in LF, and a message that does not end in one gets one, as mbox requires.
    """
    count = 0
    with open(path, "wb") as out:
        for raw in messages:
            data = raw.replace(b"\r\n", b"\n")
            out.write(_envelope(data))
            out.write(_FROM_.sub(rb">\1", data))
            out.write(b"\n" if data.endswith(b"\n") else b"\n\n")
            count += 1
    return count


def _envelope(raw: bytes) -> bytes:
    """The ``From sender date`` separator, from the message's own From and Date."""
    end = raw.find(b"\n\n")
    head = _UNFOLD.sub(b" ", raw if end < 0 else raw[:end])
    sender, when = "MAILER-DAEMON", _EPOCH
    for line in head.split(b"\n"):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"from":
            address = parseaddr(value.decode("ascii", "replace"))[1]
            if address and not any(c.isspace() for c in address):
                sender = address
        elif name == b"date":
            try:
                parsed = parsedate_to_datetime(value.decode("ascii", "replace").strip())
            except (TypeError, ValueError):
                continue
            when = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return f"From {sender} {time.asctime(when.astimezone(UTC).timetuple())}\n".encode()
