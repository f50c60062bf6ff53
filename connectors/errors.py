"""The errors a connector raises, one per thing the agent does about them.

Each connector maps its provider's failures onto these with one pure
function, so the agent's reaction (retry, resync, park, quarantine) never
depends on which provider failed.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error a connector raises on purpose."""


class TransientError(ConnectorError):
    """Worth retrying later: rate limits, 5xx, dropped connections.

    ``retry_after`` is the provider's hint in seconds, when it gave one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CursorInvalid(ConnectorError):
    """The stored cursor no longer means anything (expired history id, 410,
    changed UIDVALIDITY): start again from no cursor; idempotent writes make
    that safe."""


class AuthError(ConnectorError):
    """The grant is revoked, expired or lacks a scope; only an admin can fix it.

    ``hint`` says what the admin should run.
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


class BadItem(ConnectorError):
    """One item cannot be processed; it is quarantined with ``reason`` and the sync goes on."""

    def __init__(self, source_id: str, reason: str) -> None:
        super().__init__(f"{source_id}: {reason}")
        self.source_id = source_id
        self.reason = reason
