"""The two runs the generator exists for: the committed demo set and the ingest benchmark.

Kept in one place because they are the demo files' recipe: changing a number
here changes the committed demo data, which ``tests/support/test_mailgen.py``
then reports as stale.
"""

from __future__ import annotations

from tests.support.mailgen.people import PRIYA, TOM, ZOE

DEMO_SEED = 1
DEMO_MESSAGES = 160
DEMO_CONTACTS = 24
DEMO_MEETINGS = 18
DEMO_MAILBOXES = (PRIYA, TOM, ZOE)
"""The staff whose mailboxes the demo ships; the calendar is the first one's."""

DEMO_ATTACHMENT_BYTES = (1_500, 5_000)
BENCH_ATTACHMENT_BYTES = (40_000, 150_000)
"""Raw attachment sizes; base64 makes them about 4/3 larger on the wire."""
