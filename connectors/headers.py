"""The message headers the agent reads: what a source that fetches headers alone must
ask for.

Gmail's ``metadata`` scope returns only the headers named in the request, so a
header a filter reads but the request omits is silently absent there and present
in ``readonly`` mode: the same message would be skipped in one mode and logged
in the other. Every reader of headers in the agent takes its names from here.
"""

from __future__ import annotations

HEADERS_READ: tuple[str, ...] = (
    "From",
    "To",
    "Cc",
    "Bcc",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "Precedence",
    "Auto-Submitted",
    "Content-Type",
)
