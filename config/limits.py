"""Bounds on everything a stranger's email or calendar controls, declared in one place.

Mail is written by strangers. Each size, count and repetition that a sender
decides -- how often a meeting repeats, how many recipients a message names,
how long its identifiers and names are, which date it claims, how big its
parts are -- has a bound here, so that one message costs at most a known
amount of time, memory and database space, and ends the same way on SQLite
and on PostgreSQL. What happens at each bound is part of its contract; "counted" means under
that reason in the connector's ``limited`` counters (``crm-sync status
--skipped``), with a log line naming the item.

Settings (``[limits]`` in the config file: a team may need more):

- ``occurrences_per_series``: a recurring meeting is logged with its newest
  this many occurrences in the window; the series is counted ``series_capped``.
- ``occurrences_per_sync``: once a pass has expanded this many occurrences,
  further series are left out and counted ``series_capped``.
- ``series_per_calendar``: series past this in one invitation by mail are left
  out and counted ``series_capped``.
- ``contact_recipients``: a message naming more people who could become
  contacts is logged but creates none (``too_many_recipients``).
- ``recurrence_steps`` (not in the file): a rule needing more candidate dates
  than this to reach its window is cut there (``connectors.ical.bounded_rules``).

Fixed, because they protect the parser and the schema:

- ``MAX_ID_CHARS``: a longer Message-ID, References id, thread id or calendar
  UID is replaced by its SHA-256 (``sha256:...``), so that it still
  deduplicates and threads.
- ``MAX_NAME_CHARS``, ``MAX_SUBJECT_CHARS``: display names, subjects and
  meeting titles are cut, ending in "…".
- ``MAX_PARTICIPANTS``: participants past this are not recorded
  (``participants_capped``); ``MAX_ADDRESS_HEADER_CHARS`` of each address
  header are read.
- ``EARLIEST``, ``LATEST_AHEAD``: a message or meeting dated outside
  ``[EARLIEST, now + LATEST_AHEAD]`` is quarantined with its date, never
  re-dated.
- ``MAX_MESSAGE_BYTES``, ``MAX_MIME_DEPTH``, ``MAX_MIME_PARTS``,
  ``MAX_TEXT_CHARS``, ``MAX_HTML_CHARS``, ``MAX_HTML_TAGS``,
  ``MAX_STRUCTURED_HEADER_CHARS``: how much of a message the parser reads;
  the rest is not looked at.
- ``MAX_CALENDAR_BYTES``: a larger calendar part is not read as an
  invitation; ``MAX_ICS_FILE_BYTES``: a larger .ics file is reported as bad.
- ``MAX_REPLY_ANSWERS``: answers read from one iTIP REPLY; the rest are
  counted as ``replies_capped``, never applied.

Whatever escapes these reaches the database's own check
(``storage.models._PortableText``): the item is quarantined, on SQLite and
PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_ID_CHARS = 255
"""Message-IDs, thread ids and calendar UIDs; real ones are well under 100 characters."""

MAX_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 2_000
MAX_PARTICIPANTS = 1_000

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=3 * 366)

MAX_MIME_DEPTH = 20
"""How deep a walk of a message's MIME tree goes; real mail nests a handful of levels."""
MAX_MIME_PARTS = 1000
"""How many MIME parts a walk visits before it gives up looking for text."""
MAX_CALENDAR_SEARCH_PARTS = 200
"""How many MIME parts are looked at for an invitation (calendar parts sit near the top)."""
MAX_STRUCTURED_HEADER_CHARS = 16_384
"""A header value longer than this skips the stdlib's structured parser, which is slow on it."""
MAX_TEXT_CHARS = 1_000_000
"""Characters of text kept from one body: far beyond any human reply."""
MAX_HTML_CHARS = 2_000_000
"""Characters of HTML handed to the HTML parser."""
MAX_HTML_TAGS = 20_000
"""Tags handed to the HTML parser (a long newsletter has a few thousand); it costs per tag."""
MAX_ADDRESS_CHARS = 254
"""RFC 5321's longest path: a longer "address" is not one."""
MAX_MBOX_HEADER_BYTES = 256 * 1024
"""How far into a message an mbox reader looks for its Takeout headers."""
MAX_ADDRESS_HEADER_CHARS = 256 * 1024
"""Of each From/To/Cc/Bcc/Reply-To header, only this much is read (some 10,000 addresses)."""
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_CALENDAR_BYTES = 1024 * 1024
MAX_REPLY_ANSWERS = 50
"""Answers (one per VEVENT and ATTENDEE) read from one iTIP REPLY, in file order. A
REPLY carries one attendee's answer, usually for one meeting; a stranger's message
naming thousands would make the agent update thousands of participants, so the
rest are left out and counted ``replies_capped``."""
MAX_ICS_FILE_BYTES = 64 * 1024 * 1024

_ELLIPSIS = "…"


@dataclass(frozen=True)
class Limits:
    """The bounds a team may raise (``[limits]``); see the module docstring for each."""

    occurrences_per_series: int = 5_000
    occurrences_per_sync: int = 100_000
    recurrence_steps: int = 100_000
    series_per_calendar: int = 50
    contact_recipients: int = 100


DEFAULT = Limits()


def bounded_id(value: str) -> str:
    """``value``, or its SHA-256 when it is longer than :data:`MAX_ID_CHARS`.

    The hash is of the whole value, so two copies of one long id still
    deduplicate, and two different long ids never meet.
    """
    if len(value) <= MAX_ID_CHARS:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def clip(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters, the last one an ellipsis when it was cut."""
    return value if len(value) <= limit else value[: limit - 1] + _ELLIPSIS


def out_of_range(moment: datetime, now: datetime | None = None) -> str | None:
    """Why ``moment`` is not a date mail or a meeting can have; None when it can."""
    latest = (now or datetime.now(UTC)) + LATEST_AHEAD
    if EARLIEST <= moment <= latest:
        return None
    return (
        f"date {moment.isoformat()} is outside the accepted range "
        f"{EARLIEST.date().isoformat()} to {latest.date().isoformat()}"
    )
