"""What rendering a message produces, and what an open thread keeps for its later messages.

A reply quotes the text and HTML of the message it answers and extends its
References chain, so both stay with the thread until its last message is out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tests.support.mailgen.mime import Part, flatten
from tests.support.mailgen.threads import Thread


@dataclass(frozen=True)
class Rendered:
    """One message's bytes before the per-mailbox headers (Takeout, Delivered-To, Bcc) go on."""

    head: tuple[str, ...]
    tail: tuple[str, ...]
    body: bytes
    message_id: str
    sender: str = ""
    bcc: str = ""
    text: str = ""
    html: str = ""


def finish(
    head: list[str],
    tail: list[str],
    top: Part,
    message_id: str,
    sender: str,
    bcc: str = "",
    text: str = "",
    inner: str = "",
) -> Rendered:
    return Rendered(
        tuple(head), (*tail, *top.headers), flatten(top), message_id, sender, bcc, text, inner
    )


@dataclass
class OpenThread:
    """A thread being rendered: what its later messages quote and reference."""

    thread: Thread
    dates: list[datetime]
    pending: int
    done: list[Rendered] = field(default_factory=list)
    chains: list[tuple[str, ...]] = field(default_factory=list)
