"""The message headers the agent reads: what a source that fetches headers alone must
ask for.

Gmail's ``metadata`` scope returns only the headers named in the request, so a
header a filter reads but the request omits is silently absent there and present
in ``readonly`` mode: the same message would be skipped in one mode and logged
in the other. Every reader of headers in the agent takes its names from here.
"""

from __future__ import annotations

SPAM_HEADERS: tuple[str, ...] = (
    "X-Spam-Flag",
    "X-Spam-Status",
    "X-Spam-Score",
    "X-Spam-Level",
    "X-Spam",
    "X-MS-Exchange-Organization-SCL",
    "X-Forefront-Antispam-Report",
    "Authentication-Results",
)
"""The verdicts receiving servers write (SpamAssassin, rspamd, Microsoft's filters) and
RFC 8601's Authentication-Results: what the spam filter (``agent.pipeline.spam``) reads.
Microsoft documents the spam confidence level in ``X-Forefront-Antispam-Report`` and
``X-MS-Exchange-Organization-SCL``; ``X-Microsoft-Antispam`` holds the bulk level (BCL)
only, so it is not read."""

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
    *SPAM_HEADERS,
    "X-Autoreply",
    "X-Autorespond",
    "Return-Path",
    "Sender",
    "Content-Class",
)
