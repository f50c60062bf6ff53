"""The demo data set committed in ``agent/cli/demo_data`` for ``crm-sync demo``.

Regenerate it with ``python -m tests.support.mailgen demo agent/cli/demo_data``;
``tests/support/test_mailgen.py`` fails when the committed files differ
from what ``write_demo`` writes.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

from tests.support.mailgen.calendars import generate_calendar
from tests.support.mailgen.mailboxes import generate_mailboxes
from tests.support.mailgen.mbox import write_mbox
from tests.support.mailgen.presets import (
    DEMO_ATTACHMENT_BYTES,
    DEMO_CONTACTS,
    DEMO_MAILBOXES,
    DEMO_MESSAGES,
    DEMO_SEED,
)


def write_demo(outdir: str | PathLike[str]) -> list[Path]:
    """The bundled demo set: three Takeout-style staff mailboxes and one calendar."""
    folder = Path(outdir)
    folder.mkdir(parents=True, exist_ok=True)
    boxes = generate_mailboxes(
        DEMO_SEED,
        DEMO_MESSAGES,
        DEMO_CONTACTS,
        mailboxes=DEMO_MAILBOXES,
        takeout=True,
        attachment_bytes=DEMO_ATTACHMENT_BYTES,
    )
    written = []
    for owner, messages in boxes.items():
        path = folder / f"{owner}.mbox"
        write_mbox(path, messages)
        written.append(path)
    calendar = folder / "calendar.ics"
    calendar.write_bytes(generate_calendar(DEMO_SEED, DEMO_CONTACTS, owner=DEMO_MAILBOXES[0]))
    written.append(calendar)
    return written
