"""Large mailboxes, fast: one message built once, then copied with its numbers changed."""

from __future__ import annotations

from pathlib import Path

from tests.support.mailbuilder import message, write_mbox

OWNER = "alice@example.com"


def write_bulk_mbox(path: Path, prefix: str, count: int) -> Path:
    """``count`` customer mails to :data:`OWNER`, Message-IDs ``<PREFIX-N@acme.example>``."""
    template = message(
        sender="Buyer 7 <buyer-NUMBER@acme.example>",
        to=[OWNER],
        subject="order NUMBER",
        message_id=f"<{prefix}-NUMBER@acme.example>",
    )
    return write_mbox(path, (template.replace(b"NUMBER", str(n).encode()) for n in range(count)))
